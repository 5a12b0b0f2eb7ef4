/**
 * The lean path's SigV4 signer (src/layers/SigV4.ts) signs exactly as the AWS SDK's signer
 * (`@smithy/signature-v4`, configured as S3 uses it) for the requests the lean path sends: GET,
 * HEAD, PUT with and without a condition, DELETE; LIST, DeleteObjects and the bucket's versioning
 * (query strings, with values that need encoding); keys with characters that need encoding;
 * session tokens; two days (the cached signing key must follow the date). The RGW conformance
 * suite (test/storage/S3Storage.test.ts) proves the server accepts them.
 *
 * @module
 */
import { SignatureV4 } from "@smithy/signature-v4"
import type { SourceData } from "@smithy/types"
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto"
import { describe, expect, it } from "vitest"
import { canonicalQuery, makeSigner } from "../../src/layers/SigV4.js"

const bytes = (data: SourceData): string | Uint8Array =>
  typeof data === "string" ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data)

/** The SDK signer's hash interface on node:crypto (an HMAC when given a secret). */
class Sha256 {
  private hash: Hash | Hmac
  constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh()
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(this.secret))
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data))
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()))
  }
  reset(): void {
    this.hash = this.fresh()
  }
}

const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

const cases = [
  { method: "GET", path: "/bucket/tasks/0/0a1b2c3d.json", headers: {} },
  { method: "HEAD", path: "/bucket/control/wakeup", headers: {} },
  { method: "DELETE", path: "/bucket/ready/3/00/0000000000000000/abc", headers: {} },
  {
    method: "PUT",
    path: "/bucket/tasks/a/x.json",
    headers: { "content-type": "application/json", "if-match": "\"9b2cf535f27731c974343645a3985328\"", "content-length": "12" },
    payload: "0f6d3a1b2c"
  },
  { method: "PUT", path: "/bucket/pre%20fix/k%C3%A9y%2Bplus%21", headers: { "if-none-match": "*", "content-length": "0" } },
  {
    method: "GET",
    path: "/bucket",
    headers: {},
    query: { "list-type": "2", prefix: "ready/0 a+b=é/", "continuation-token": "1/AbC+dEf==", "max-keys": "1000", delimiter: "/" }
  },
  { method: "GET", path: "/bucket", headers: {}, query: { "list-type": "2", prefix: "p/", "start-after": "p/k*(x)!'" } },
  { method: "GET", path: "/bucket", headers: {}, query: { versioning: "" } },
  { method: "GET", path: "/bucket/tasks/k.json", headers: {}, query: { versionId: "3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo" } },
  {
    method: "POST",
    path: "/bucket",
    headers: { "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "content-type": "application/xml", "content-length": "120" },
    query: { delete: "" },
    payload: "5f3e"
  }
] as const

const credentialSets = [
  { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
  { accessKeyId: "ASIAEXAMPLE", secretAccessKey: "secret/with+chars", sessionToken: "FQoGZXIvYXdzEXAMPLE//token==" }
]

describe("SigV4 signer of the lean S3 path", () => {
  it("gives the same headers and signature as the SDK's signer", async () => {
    const ours = makeSigner("us-east-1", "s3")
    for (const credentials of credentialSets) {
      const theirs = new SignatureV4({ service: "s3", region: "us-east-1", credentials, sha256: Sha256, uriEscapePath: false, applyChecksum: true })
      // two days apart: the signing key is cached per day
      for (const at of [Date.UTC(2026, 11, 6, 23, 59, 59), Date.UTC(2026, 11, 7, 0, 0, 1), Date.UTC(2026, 11, 6, 12, 0, 0)]) {
        for (const c of cases) {
          const headers = { host: "127.0.0.1:7480", "x-amz-content-sha256": "payload" in c ? c.payload : emptyHash, ...c.headers }
          const expected = await theirs.sign(
            { method: c.method, protocol: "http:", hostname: "127.0.0.1", port: 7480, path: c.path, query: "query" in c ? { ...c.query } : {}, headers },
            { signingDate: new Date(at) }
          )
          const query = "query" in c ? canonicalQuery(Object.entries(c.query)) : undefined
          const got = ours({ method: c.method, path: c.path, query, headers }, credentials, at)
          expect(got["authorization"]).toBe(expected.headers["authorization"])
          expect(got["x-amz-date"]).toBe(expected.headers["x-amz-date"])
          expect(got["x-amz-security-token"]).toBe(expected.headers["x-amz-security-token"])
        }
      }
    }
  })
})
