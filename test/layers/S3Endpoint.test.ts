/**
 * The lean path's endpoint and credential resolution (src/layers/S3Endpoint.ts) gives what the AWS
 * SDK gives for every setting it answers (compared with the SDK's own endpoint rules and its
 * environment credential provider), and leaves to the SDK every setting whose outcome it cannot
 * be sure of. test/storage/S3Storage.test.ts runs requests through each path.
 *
 * @module
 */
import { GetObjectCommand, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3"
import { defaultProvider } from "@aws-sdk/credential-provider-node"
import { getEndpointFromInstructions } from "@smithy/core/endpoints"
import { describe, expect, it } from "vitest"
import * as S3Endpoint from "../../src/layers/S3Endpoint.js"

process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] = "true"

/** What the SDK resolves for a storage's settings (as S3Storage builds its client). */
const sdkEndpoint = async (input: S3Endpoint.EndpointInput) => {
  const config: S3ClientConfig = {
    forcePathStyle: input.forcePathStyle ?? input.endpoint !== undefined,
    region: input.region ?? (input.endpoint !== undefined ? "us-east-1" : undefined),
    credentials: { accessKeyId: "a", secretAccessKey: "b" },
    ...(input.endpoint === undefined ? {} : { endpoint: input.endpoint })
  }
  const client = new S3Client(config)
  try {
    const endpoint = await getEndpointFromInstructions({ Bucket: input.bucket, Key: "k" }, GetObjectCommand as never, client.config as never)
    const scheme = (endpoint.properties?.["authSchemes"] as unknown as ReadonlyArray<Record<string, unknown>>)[0]!
    return { url: String(endpoint.url).replace(/\/$/, ""), region: scheme["signingRegion"], name: scheme["name"], signingName: scheme["signingName"] }
  } finally {
    client.destroy()
  }
}

const leanCases: ReadonlyArray<S3Endpoint.EndpointInput> = [
  // custom endpoints: path-style (the default with an endpoint)
  { bucket: "buquet-test", endpoint: "http://127.0.0.1:7480" },
  { bucket: "buquet-test", endpoint: "http://127.0.0.1:7480", region: "us-east-1", forcePathStyle: true },
  { bucket: "jobs", endpoint: "http://127.0.0.1:7480/base" },
  { bucket: "jobs", endpoint: "http://127.0.0.1:7480/base/" },
  { bucket: "jobs", endpoint: "https://acc.r2.cloudflarestorage.com", region: "auto" },
  { bucket: "jobs", endpoint: "HTTP://Host.Example:80" },
  { bucket: "jobs", endpoint: "https://host.example:443/" },
  { bucket: "jobs", endpoint: "https://minio.example:9000", region: "eu-central-1" },
  { bucket: "my.dotted.bucket", endpoint: "http://localhost:9000" },
  { bucket: "Upper_Case", endpoint: "http://localhost:9000" },
  // AWS: virtual-hosted, path-style, dotted buckets
  { bucket: "jobs", region: "us-east-1" },
  { bucket: "jobs", region: "eu-west-1" },
  { bucket: "jobs-2026", region: "ap-southeast-5" },
  { bucket: "jobs", region: "il-central-1" },
  { bucket: "jobs", region: "eu-west-1", forcePathStyle: true },
  { bucket: "my.dotted.bucket", region: "eu-west-1" },
  { bucket: "jobs", region: "mx-central-1", forcePathStyle: false }
]

describe("endpoint resolution without the SDK", () => {
  it("gives the SDK's URL and signing region for every case it answers", async () => {
    for (const input of leanCases) {
      const lean = S3Endpoint.resolve(input, {}, "")
      expect(lean._tag, JSON.stringify(input)).toBe("Lean")
      if (lean._tag !== "Lean") continue
      const sdk = await sdkEndpoint(input)
      expect({ url: lean.url.href.replace(/\/$/, ""), region: lean.region }, JSON.stringify(input)).toEqual({ url: sdk.url, region: sdk.region })
      expect([sdk.name, sdk.signingName]).toEqual(["sigv4", "s3"])
    }
  })

  it("takes AWS_REGION as the SDK does when no region is set (no endpoint)", async () => {
    const lean = S3Endpoint.resolve({ bucket: "jobs" }, { AWS_REGION: "eu-north-1" }, "")
    expect(lean._tag === "Lean" && [lean.url.href, lean.region]).toEqual(["https://jobs.s3.eu-north-1.amazonaws.com/", "eu-north-1"])
    // with an endpoint, S3Storage's own default (us-east-1) applies, as before
    const custom = S3Endpoint.resolve({ bucket: "jobs", endpoint: "http://127.0.0.1:7480" }, { AWS_REGION: "eu-north-1" }, "")
    expect(custom._tag === "Lean" && custom.region).toBe("us-east-1")
  })

  it("leaves every case it cannot be sure of to the SDK", () => {
    const cases: ReadonlyArray<readonly [S3Endpoint.EndpointInput, Record<string, string>, string, RegExp]> = [
      [{ bucket: "jobs" }, {}, "", /region comes from the SDK's chain/],
      [{ bucket: "jobs" }, {}, "[default]\nregion = eu-west-1\n", /region comes from the SDK's chain/],
      [{ bucket: "jobs", region: "cn-north-1" }, {}, "", /outside the aws partition/],
      [{ bucket: "jobs", region: "us-gov-west-1" }, {}, "", /outside the aws partition/],
      [{ bucket: "jobs", region: "eu-west-1" }, { AWS_USE_FIPS_ENDPOINT: "true" }, "", /AWS_USE_FIPS_ENDPOINT/],
      [{ bucket: "jobs", region: "eu-west-1" }, { AWS_USE_DUALSTACK_ENDPOINT: "true" }, "", /AWS_USE_DUALSTACK_ENDPOINT/],
      [{ bucket: "jobs", region: "eu-west-1" }, { AWS_ENDPOINT_URL_S3: "http://x" }, "", /AWS_ENDPOINT_URL_S3/],
      [{ bucket: "jobs", endpoint: "http://127.0.0.1:7480" }, { AWS_ENDPOINT_URL: "http://x" }, "", /AWS_ENDPOINT_URL/],
      [{ bucket: "jobs", region: "eu-west-1" }, { AWS_S3_USE_ARN_REGION: "true" }, "", /AWS_S3_USE_ARN_REGION/],
      [{ bucket: "jobs", region: "eu-west-1" }, { AWS_CONFIG_FILE: "/etc/aws" }, "", /AWS_CONFIG_FILE/],
      [{ bucket: "jobs", region: "eu-west-1" }, {}, "[profile x]\nuse_fips_endpoint = true\n", /use_fips_endpoint/],
      [{ bucket: "jobs", region: "eu-west-1" }, {}, "[services s]\ns3 =\n  endpoint_url = http://x\n", /endpoint_url/],
      [{ bucket: "jobs", region: "eu-west-1" }, {}, "[default]\ns3_disable_multiregion_access_points = true\n", /s3_disable/],
      [{ bucket: "jobs", endpoint: "http://minio.local:9000", forcePathStyle: false }, {}, "", /virtual-hosted/],
      [{ bucket: "jobs", endpoint: "http://u:p@127.0.0.1:7480" }, {}, "", /user info/],
      [{ bucket: "jobs", endpoint: "http://127.0.0.1:7480?x=1" }, {}, "", /query/],
      [{ bucket: "jobs", endpoint: "ftp://127.0.0.1" }, {}, "", /not http/],
      [{ bucket: "jobs", endpoint: "not a url" }, {}, "", /not a URL/],
      [{ bucket: "jobs", endpoint: "http://127.0.0.1:7480", region: "weird region" }, {}, "", /not a host label/],
      [{ bucket: "b--x-s3", region: "eu-west-1" }, {}, "", /special form/],
      [{ bucket: "arn:aws:s3:eu-west-1:123:accesspoint/ap", region: "eu-west-1" }, {}, "", /needs encoding/],
      [{ bucket: "with space", endpoint: "http://127.0.0.1:7480" }, {}, "", /needs encoding/]
    ]
    for (const [input, env, shared, reason] of cases) {
      const r = S3Endpoint.resolve(input, env, shared)
      expect(r._tag === "Sdk" && r.reason, JSON.stringify([input, env, shared])).toMatch(reason)
    }
    // an empty variable is no setting, as for the SDK
    expect(S3Endpoint.resolve({ bucket: "jobs", region: "eu-west-1" }, { AWS_USE_FIPS_ENDPOINT: "" }, "")._tag).toBe("Lean")
  })
})

describe("credentials without the SDK", () => {
  const withEnv = async <A>(vars: Record<string, string | undefined>, f: () => Promise<A>): Promise<A> => {
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
    const set = (values: Record<string, string | undefined>) => {
      for (const [k, v] of Object.entries(values)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
    }
    set(vars)
    try {
      return await f()
    } finally {
      set(saved)
    }
  }
  const none = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SESSION_TOKEN: undefined, AWS_PROFILE: undefined, AWS_CREDENTIAL_EXPIRATION: undefined }

  it("environment keys: the same as the SDK's chain takes", async () => {
    for (const vars of [
      { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "secret" },
      { AWS_ACCESS_KEY_ID: "ASIA", AWS_SECRET_ACCESS_KEY: "secret", AWS_SESSION_TOKEN: "token" },
      { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "secret", AWS_SESSION_TOKEN: "" }
    ]) {
      const env = { ...none, ...vars }
      const sdk = await withEnv(env, () => defaultProvider()())
      const ours = S3Endpoint.envCredentials(env)
      expect(ours, JSON.stringify(vars)).toEqual({
        accessKeyId: sdk.accessKeyId,
        secretAccessKey: sdk.secretAccessKey,
        ...(sdk.sessionToken === undefined ? {} : { sessionToken: sdk.sessionToken })
      })
    }
  })

  it("leaves the chain to the SDK when a profile is named, the keys expire, or a key is missing", () => {
    const keys = { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "secret" }
    expect(S3Endpoint.envCredentials({ ...keys, AWS_PROFILE: "work" })).toBeUndefined()
    expect(S3Endpoint.envCredentials({ ...keys, AWS_CREDENTIAL_EXPIRATION: "2030-01-01T00:00:00Z" })).toBeUndefined()
    expect(S3Endpoint.envCredentials({ AWS_ACCESS_KEY_ID: "AKID" })).toBeUndefined()
    expect(S3Endpoint.envCredentials({ AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "" })).toBeUndefined()
    expect(S3Endpoint.envCredentials({ ...keys, AWS_PROFILE: "" })).toEqual({ accessKeyId: "AKID", secretAccessKey: "secret" })
  })
})
