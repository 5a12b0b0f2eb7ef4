/**
 * AWS Signature Version 4 for the lean S3 path's requests (the path already encoded once, as S3
 * wants it; the query string in canonical form, see {@link canonicalQuery}), on `node:crypto`.
 *
 * Why not `@smithy/signature-v4`: it derives its signing-key cache key with an HMAC of the
 * credentials and builds several hash objects on every request; that was ~5 % of a worker's CPU
 * per task on RGW (`bench/cpu.ts`). Here the signing key is derived once per day, region and
 * credentials, and a request costs one SHA-256 and one HMAC.
 *
 * @module
 */
import { createHash, createHmac } from "node:crypto"

/**
 * Credentials as the SDK's provider gives them.
 *
 * @since 0.1.0
 * @category models
 */
export interface SigningCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string | undefined
}

/**
 * A request to sign: the headers to send (names in lower case), the request's path as sent and
 * its query string as sent (canonical: {@link canonicalQuery}; "" for none).
 *
 * @since 0.1.0
 * @category models
 */
export interface SigningRequest {
  readonly method: string
  readonly path: string
  readonly query?: string | undefined
  /** Lower-case names; must hold `host` and `x-amz-content-sha256`. */
  readonly headers: Readonly<Record<string, string>>
}

/** Headers a proxy may change or drop on the way: never signed (as the SDK's signer). */
const unsignable = new Set(["authorization", "user-agent", "x-amzn-trace-id", "connection", "expect", "transfer-encoding"])

/** RFC 3986 encoding of one query name or value: every byte but the unreserved ones (as SigV4 wants). */
const encodeQueryPart = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

/**
 * A query string in SigV4's canonical form: names and values encoded, pairs sorted by name then
 * value, `name=` for a flag such as `delete`. Sent as it is signed, so the two cannot differ.
 *
 * @since 0.1.0
 * @category utils
 */
export const canonicalQuery = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  pairs
    .map(([name, value]) => [encodeQueryPart(name), encodeQueryPart(value)] as const)
    .sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join("&")

const hmac = (key: string | Buffer, data: string): Buffer => createHmac("sha256", key).update(data, "utf8").digest()

/** `20130524T000000Z` and `20130524` of a time. */
const amzDates = (millis: number): { readonly amzDate: string; readonly day: string } => {
  const amzDate = new Date(millis).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "")
  return { amzDate, day: amzDate.slice(0, 8) }
}

/** A header value as SigV4 canonicalizes it: trimmed, inner runs of whitespace as one space. */
const canonicalValue = (value: string): string => (/^\S+$/.test(value) ? value : value.trim().replace(/\s+/g, " "))

/**
 * A signer for one region and service; `sign` returns the headers to send (the given ones with
 * `x-amz-date`, `x-amz-security-token` when the credentials have one, and `authorization`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSigner = (region: string, service: string) => {
  let cached: { readonly id: string; readonly day: string; readonly key: Buffer } | undefined
  const signingKey = (credentials: SigningCredentials, day: string): Buffer => {
    const id = `${credentials.accessKeyId}\n${credentials.secretAccessKey}`
    if (cached !== undefined && cached.id === id && cached.day === day) return cached.key
    const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), service), "aws4_request")
    cached = { id, day, key }
    return key
  }

  // the dates of the last second signed in: a busy worker signs many requests per second
  let second = Number.NaN
  let dates = amzDates(0)

  return (request: SigningRequest, credentials: SigningCredentials, atMillis: number): Record<string, string> => {
    const at = Math.floor(atMillis / 1000)
    if (at !== second) {
      second = at
      dates = amzDates(atMillis)
    }
    const { amzDate, day } = dates
    const headers: Record<string, string> = { ...request.headers, "x-amz-date": amzDate }
    if (credentials.sessionToken !== undefined) headers["x-amz-security-token"] = credentials.sessionToken
    const names = Object.keys(headers).filter((name) => !unsignable.has(name)).sort()
    const canonicalHeaders = names.map((name) => `${name}:${canonicalValue(headers[name]!)}\n`).join("")
    const signedHeaders = names.join(";")
    const canonicalRequest = `${request.method}\n${request.path}\n${request.query ?? ""}\n${canonicalHeaders}\n${signedHeaders}\n${headers["x-amz-content-sha256"]}`
    const scope = `${day}/${region}/${service}/aws4_request`
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash("sha256").update(canonicalRequest, "utf8").digest("hex")}`
    const signature = createHmac("sha256", signingKey(credentials, day)).update(stringToSign, "utf8").digest("hex")
    headers["authorization"] = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`
    return headers
  }
}
