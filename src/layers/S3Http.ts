/**
 * The lean request path of {@link S3Storage}: `node:http(s)` with a keep-alive agent, signed with
 * AWS Signature V4 (SigV4.ts), for object requests (GET, HEAD, PUT, DELETE, with or without a
 * condition) and the bucket requests a queue makes (ListObjectsV2, DeleteObjects, the bucket's
 * versioning; their XML is read by S3Xml.ts).
 *
 * Why: the AWS SDK spends ~1.25 ms of CPU per request on its middleware, serde and endpoint
 * rules (measured on RGW, `bench/cpu.ts`), this path ~0.3 ms, and a worker makes ~6.5 requests
 * per task; and not loading the SDK saves ~10 MB of a worker's RSS. The endpoint, signing region
 * and credentials come from S3Endpoint.ts, or from the SDK where only it can resolve them. A
 * failed request is rejected with an error shaped like the SDK's (`name` = the S3 error code,
 * `$metadata.httpStatusCode`, or the socket's `code`), so one classification serves both paths.
 *
 * @module
 */
import { createHash } from "node:crypto"
import * as http from "node:http"
import * as https from "node:https"
import { errorBody } from "./S3Xml.js"
import { canonicalQuery, makeSigner, type SigningCredentials } from "./SigV4.js"

/**
 * One request of the lean path.
 *
 * @since 0.1.0
 * @category models
 */
export interface LeanRequest {
  readonly method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE"
  /** The full object key (with the storage's key prefix); undefined for a request on the bucket. */
  readonly key: string | undefined
  /** Query parameters (`["delete", ""]` for a flag). */
  readonly query?: ReadonlyArray<readonly [string, string]> | undefined
  readonly headers?: Record<string, string> | undefined
  readonly body?: Uint8Array | undefined
  /** Lets the caller abort the request (an interrupted fiber): see {@link Cancellation}. */
  readonly cancellation?: Cancellation | undefined
  /** Called when the response's status line and headers arrive (the Date probe's "received"). */
  readonly onResponse?: ((headers: http.IncomingHttpHeaders) => void) | undefined
}

/**
 * How a caller aborts a request in flight without an `AbortSignal` (an AbortController per request,
 * whose listeners node:http adds and removes, cost ~12 µs of CPU per request): the caller sets
 * `cancelled` and calls `cancel`, which {@link LeanClient.send} sets once the request exists; a
 * request cancelled before then is never sent. Either way `send` rejects with an `AbortError`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cancellation {
  cancelled: boolean
  cancel: (() => void) | undefined
}

/**
 * A response with a 2xx status.
 *
 * @since 0.1.0
 * @category models
 */
export interface LeanResponse {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: Uint8Array
}

/**
 * The lean client: sends one request, or destroys its sockets.
 *
 * @since 0.1.0
 * @category models
 */
export interface LeanClient {
  readonly send: (request: LeanRequest) => Promise<LeanResponse>
  readonly destroy: () => void
}

/**
 * S3's answers to a signature whose time is too far from the server's.
 *
 * @since 0.1.0
 * @category constants
 */
export const CLOCK_SKEW: ReadonlySet<string> = new Set(["RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture"])

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/**
 * The host's wall clock, for signatures only: the server compares a signature's time with its own
 * real time, as it does for the SDK's signer. Effect's Clock would be a TestClock in tests, whose
 * time the server would refuse.
 */
// eslint-disable-next-line no-restricted-properties
const hostNow = (): number => Date.now()

/** S3's key encoding in a path: every byte but the unreserved ones and `/` (RFC 3986, like the SDK). */
const encodeKey = (key: string): string =>
  /^[\w.~/-]*$/.test(key) ? key : encodeURIComponent(key).replace(/%2F/g, "/").replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

/** What an aborted request is rejected with (as node:http's abort signal would). */
const aborted = (): Error => Object.assign(new Error("the request was aborted"), { name: "AbortError", code: "ABORT_ERR" })

/** The SDK's error names for a bodiless answer (HEAD, or a server that sends none). */
const statusName = (status: number): string =>
  status === 404 ? "NotFound" : status === 412 ? "PreconditionFailed" : status === 403 ? "Forbidden" : `Http${status}`

const httpError = (status: number, body: string): Error => {
  const { code, message: said } = errorBody(body)
  const message = said ?? (body.length > 0 && code === undefined ? body.slice(0, 200) : "")
  return Object.assign(new Error(message === "" ? `HTTP ${status}` : message), {
    name: code ?? statusName(status),
    $metadata: { httpStatusCode: status }
  })
}

/**
 * Where and how the lean client sends: the bucket's base URL (bucket in the host, or the path's
 * first segment), the signing region and service, and the credentials (a provider that caches
 * and refreshes, or fixed ones).
 *
 * @since 0.1.0
 * @category models
 */
export interface LeanTarget {
  readonly url: URL
  readonly region: string
  readonly signingName: string
  readonly credentials: () => Promise<SigningCredentials>
}

/**
 * Builds the lean client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: LeanTarget & {
  readonly maxSockets: number
  readonly requestTimeoutMillis: number
}): LeanClient => {
  const { url, credentials } = options
  const secure = url.protocol === "https:"
  const base = url.pathname.replace(/\/$/, "")
  const sign = makeSigner(options.region, options.signingName)
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: options.maxSockets })
    : new http.Agent({ keepAlive: true, maxSockets: options.maxSockets })
  const request = secure ? https.request : http.request
  const port = url.port === "" ? undefined : Number(url.port)
  // what the server's clock is ahead of ours, learnt from a RequestTimeTooSkewed answer, as the SDK
  // does: signatures carry the host's time, and S3 refuses one more than 15 minutes off
  let skewMillis = 0

  const send = async (req: LeanRequest): Promise<LeanResponse> => {
    const body = req.body
    const headers: Record<string, string> = {
      host: url.host,
      "x-amz-content-sha256": body === undefined || body.length === 0
        ? EMPTY_SHA256
        : createHash("sha256").update(body).digest("hex"),
      ...req.headers
    }
    if (body !== undefined) headers["content-length"] = String(body.length)
    const path = req.key === undefined ? (base === "" ? "/" : base) : `${base}/${encodeKey(req.key)}`
    const query = req.query === undefined || req.query.length === 0 ? "" : canonicalQuery(req.query)
    const signed = sign({ method: req.method, path, query, headers }, await credentials(), hostNow() + skewMillis)
    const cancellation = req.cancellation
    if (cancellation?.cancelled === true) throw aborted()
    return new Promise<LeanResponse>((resolve, reject) => {
      const outgoing = request({
        agent,
        method: req.method,
        hostname: url.hostname,
        ...(port === undefined ? {} : { port }),
        path: query === "" ? path : `${path}?${query}`,
        headers: signed
      }, (response) => {
        req.onResponse?.(response.headers)
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("error", reject)
        response.on("end", () => {
          const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
          const status = response.statusCode ?? 0
          if (status < 200 || status >= 300) {
            const error = httpError(status, all.toString("utf8"))
            const serverDate = Date.parse(response.headers.date ?? "")
            if (CLOCK_SKEW.has(error.name) && Number.isFinite(serverDate)) skewMillis = serverDate - hostNow()
            return reject(error)
          }
          resolve({ status, headers: response.headers, body: new Uint8Array(all.buffer, all.byteOffset, all.length) })
        })
      })
      outgoing.setTimeout(options.requestTimeoutMillis, () => {
        outgoing.destroy(Object.assign(new Error(`no answer within ${options.requestTimeoutMillis} ms`), { name: "TimeoutError" }))
      })
      outgoing.on("error", reject)
      if (cancellation !== undefined) cancellation.cancel = () => outgoing.destroy(aborted())
      outgoing.end(body)
    })
  }

  return { send, destroy: () => agent.destroy() }
}
