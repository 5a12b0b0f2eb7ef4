/**
 * Where the lean S3 path sends a bucket's requests, and with which credentials, without loading
 * the AWS SDK, for the settings whose outcome is certain; every other case is left to the SDK,
 * which then resolves exactly as it always did.
 *
 * Why: `@aws-sdk/client-s3` is ~10 MB of a worker's RSS (issue 17, memory without heap flags), and
 * on the common configurations (a custom endpoint with path-style addressing, or an AWS region;
 * keys in the settings or the environment) its endpoint rules and credential chain come to a
 * URL, a signing region and two strings. test/layers/S3Endpoint.test.ts compares every answer
 * here with the SDK's own rules.
 *
 * What sends a case to the SDK: environment variables or shared-config keys that change the SDK's
 * endpoint (FIPS, dual-stack, configured endpoint URLs, S3 ARN/MRAP/Express switches, auth scheme
 * preference), a region the SDK must look up in a profile, a custom endpoint with virtual-hosted
 * addressing, user info, a query or a fragment in it, a region outside the `aws` partition, a
 * bucket name that is not plain.
 *
 * @module
 */

/**
 * The inputs of the resolution (S3StorageConfig's).
 *
 * @since 0.1.0
 * @category models
 */
export interface EndpointInput {
  readonly bucket: string
  readonly endpoint?: string | undefined
  readonly region?: string | undefined
  readonly forcePathStyle?: boolean | undefined
}

/**
 * The outcome: the bucket's base URL (the bucket in the host or as the path's first segment) and
 * the signing region; or the reason the SDK must resolve it.
 *
 * @since 0.1.0
 * @category models
 */
export type Resolution =
  | { readonly _tag: "Lean"; readonly url: URL; readonly region: string }
  | { readonly _tag: "Sdk"; readonly reason: string }

/**
 * Environment variables the SDK reads that change the endpoint or the auth scheme of a request
 * (and the shared files' locations, which are then the SDK's to read).
 */
const SDK_ENDPOINT_ENV = /^AWS_(CONFIG_FILE|SHARED_CREDENTIALS_FILE|ENDPOINT_URL|IGNORE_CONFIGURED_ENDPOINT_URLS|USE_FIPS_ENDPOINT|USE_DUALSTACK_ENDPOINT|S3_|AUTH_SCHEME_PREFERENCE|ACCOUNT_ID_ENDPOINT_MODE)/

/** The same settings in the shared config and credentials files (any profile: conservative). */
const SDK_ENDPOINT_KEYS =
  /^\s*(use_fips_endpoint|use_dualstack_endpoint|endpoint_url|services|ignore_configured_endpoint_urls|s3_\w+|auth_scheme_preference|account_id_endpoint_mode)\s*=/im

/** The `aws` partition's region pattern (the SDK's partitions.json). */
const AWS_REGION = /^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$/

/** A valid host label, as the SDK's rules require of a region. */
const HOST_LABEL = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/

/** A bucket the SDK may put in the host: lower case, no dots, not an S3 Express / access point form. */
const VIRTUAL_HOSTABLE = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/
/** A bucket the SDK puts in the path as it is (no encoding needed). */
const PATH_BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$/

const sdk = (reason: string): Resolution => ({ _tag: "Sdk", reason })

/**
 * Resolves where requests go. `env` is the process environment; `sharedConfig` the text of the
 * AWS shared config and credentials files ("" when there are none).
 *
 * @since 0.1.0
 * @category resolution
 */
export const resolve = (
  input: EndpointInput,
  env: Readonly<Record<string, string | undefined>>,
  sharedConfig: string
): Resolution => {
  const envSetting = Object.keys(env).find((name) => SDK_ENDPOINT_ENV.test(name) && env[name] !== undefined && env[name] !== "")
  if (envSetting !== undefined) return sdk(`${envSetting} is set`)
  const fileSetting = SDK_ENDPOINT_KEYS.exec(sharedConfig)?.[1]
  if (fileSetting !== undefined) return sdk(`the shared AWS config sets ${fileSetting}`)
  const { bucket } = input
  if (bucket.includes("--")) return sdk("the bucket name has a special form")
  if (input.endpoint !== undefined) {
    const region = input.region ?? "us-east-1"
    if (!HOST_LABEL.test(region)) return sdk("the region is not a host label")
    if (input.forcePathStyle === false) return sdk("virtual-hosted addressing on a custom endpoint")
    if (!PATH_BUCKET.test(bucket)) return sdk("the bucket name needs encoding")
    let url: URL
    try {
      url = new URL(input.endpoint)
    } catch {
      return sdk("the endpoint is not a URL")
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return sdk("the endpoint is not http(s)")
    if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "" || input.endpoint.includes("?")) {
      return sdk("the endpoint has user info, a query or a fragment")
    }
    const path = url.pathname.endsWith("/") ? url.pathname : `${url.pathname}/`
    return { _tag: "Lean", url: new URL(`${url.protocol}//${url.host}${path}${bucket}`), region }
  }
  const envRegion = env["AWS_REGION"]
  const region = input.region ?? (envRegion === undefined || envRegion === "" ? undefined : envRegion)
  if (region === undefined) return sdk("the region comes from the SDK's chain")
  if (!AWS_REGION.test(region)) return sdk(`the region ${region} is outside the aws partition`)
  if (input.forcePathStyle !== true && VIRTUAL_HOSTABLE.test(bucket)) {
    return { _tag: "Lean", url: new URL(`https://${bucket}.s3.${region}.amazonaws.com/`), region }
  }
  if (!PATH_BUCKET.test(bucket)) return sdk("the bucket name needs encoding")
  return { _tag: "Lean", url: new URL(`https://s3.${region}.amazonaws.com/${bucket}`), region }
}

/**
 * Credentials the SDK's default chain would take from the environment, when its answer is
 * certain: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), no `AWS_PROFILE`
 * (which makes the SDK skip the environment), no `AWS_CREDENTIAL_EXPIRATION` (which makes it
 * refresh them). Otherwise undefined: the SDK's chain decides (profile, SSO, web identity, IMDS…).
 *
 * @since 0.1.0
 * @category resolution
 */
export const envCredentials = (
  env: Readonly<Record<string, string | undefined>>
): { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string } | undefined => {
  const accessKeyId = env["AWS_ACCESS_KEY_ID"]
  const secretAccessKey = env["AWS_SECRET_ACCESS_KEY"]
  const sessionToken = env["AWS_SESSION_TOKEN"]
  const set = (v: string | undefined): v is string => v !== undefined && v !== ""
  if (!set(accessKeyId) || !set(secretAccessKey) || set(env["AWS_PROFILE"]) || set(env["AWS_CREDENTIAL_EXPIRATION"])) return undefined
  return { accessKeyId, secretAccessKey, ...(set(sessionToken) ? { sessionToken } : {}) }
}
