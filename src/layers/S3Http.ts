/**
 * The lean request path of {@link S3Storage}: HTTP/1.1 on keep-alive `node:net` sockets (or
 * `node:tls` for an https endpoint, with the host as SNI servername), signed with AWS Signature
 * V4 (SigV4.ts), for object requests (GET, HEAD, PUT, DELETE, with or without a condition) and
 * the bucket requests a queue makes (ListObjectsV2, DeleteObjects, the bucket's versioning; their
 * XML is read by S3Xml.ts). Answers are read by Http1Parser.ts.
 *
 * Why: the AWS SDK spends ~1.25 ms of CPU per request on its middleware, serde and endpoint
 * rules (measured on RGW, `bench/cpu.ts`), and a worker makes ~5 requests per task; not loading
 * the SDK saves ~10 MB of a worker's RSS. Why not `node:http`: what it cost per request was its
 * own JavaScript (a ClientRequest and an IncomingMessage stream per request, the agent's
 * bookkeeping, ~6 listeners added and removed, a socket timeout set and cleared), ~40 % of this
 * path's CPU per request on RGW (BENCHMARKS.md, "Twelfth targeted re-run … raw sockets"); undici
 * saved as much but loads ~15 MB of fixed RSS (node:http2, node:tls, a wasm parser). Here a
 * request is one string, one Buffer and one `socket.write`; a connection's listeners and timeout
 * are set once, when it opens.
 *
 * What the client does: a pool of at most `maxSockets` connections to the one origin, idle ones
 * reused last-in first-out, one request on a connection at a time, requests beyond the bound
 * queued in order; `requestTimeoutMillis` bounds every silence of a connection that has a request
 * on it (connect, answer, each gap in the body), and an idle connection silent that long is
 * closed. A connection the server closes while idle leaves the pool on its `end` event; one it
 * closes just as a request goes out fails that request with `ECONNRESET` (as node:http does: the
 * request may have arrived). `connection: close`, HTTP/1.0 without keep-alive, and a body framed
 * by the connection's end close the connection after the answer. What it does not do: pipelining,
 * `Expect: 100-continue` (a 1xx answer is skipped), proxies, redirects, compression, HTTP/2,
 * client certificates or custom CAs (node's default trust store only).
 *
 * A failed request is rejected with an error shaped like the SDK's (`name` = the S3 error code,
 * `$metadata.httpStatusCode`), or node's: a socket's `code` (`ECONNRESET`, `ECONNREFUSED`,
 * `EPIPE`, ...), `ECONNRESET` "socket hang up" for a connection that ended under a request, an
 * `HPE_*` code for bytes that are not a valid answer (the connection is destroyed), a
 * `TimeoutError`, an `AbortError`; so one classification serves both paths.
 *
 * @module
 */
import { createHash } from "node:crypto"
import type * as http from "node:http"
import * as net from "node:net"
import { createRequire } from "node:module"
import type * as Tls from "node:tls"
import { type ResponseHandler, ResponseParser } from "./Http1Parser.js"
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

/** `node:tls`, loaded for an https endpoint only (it is ~3 MB of RSS an http endpoint does not need). */
const loadTls = (): typeof Tls => createRequire(import.meta.url)("node:tls") as typeof Tls

/** node's error for a connection that ended or broke under a request (`socket hang up`). */
const hangUp = (): Error => Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })

const EMPTY = Buffer.alloc(0)

/** One request, from its send to its settling. */
interface Job {
  readonly head: string
  readonly body: Uint8Array | undefined
  readonly isHead: boolean
  readonly onResponse: ((headers: http.IncomingHttpHeaders) => void) | undefined
  readonly resolve: (response: LeanResponse) => void
  readonly reject: (error: Error) => void
  settled: boolean
  conn: Conn | undefined
  status: number
  headers: http.IncomingHttpHeaders
  chunks: Array<Buffer> | undefined
}

/** One keep-alive connection: at most one request on it at a time; its parser's handler (no object per request). */
interface Conn extends ResponseHandler {
  readonly socket: net.Socket
  readonly parser: ResponseParser
  job: Job | undefined
  /** The last answer allowed reuse (no `connection: close`). */
  reusable: boolean
  /** The job on it completed during the current `data` event: released once the event's bytes are parsed. */
  finished: boolean
  closed: boolean
}

/**
 * Builds the lean client: a pool of keep-alive connections to the endpoint's origin (`node:net`,
 * or `node:tls` with SNI for https), at most `maxSockets`, idle ones reused last-in first-out,
 * one request on a connection at a time (no pipelining), requests beyond `maxSockets` queued in
 * order. `requestTimeoutMillis` bounds every silence of a connection with a request on it (the
 * connect, the wait for the answer, every gap in its body), as node:http's socket timeout did; an
 * idle connection silent that long is closed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: LeanTarget & {
  readonly maxSockets: number
  readonly requestTimeoutMillis: number
}): LeanClient => {
  const { url, credentials, maxSockets, requestTimeoutMillis } = options
  const secure = url.protocol === "https:"
  const base = url.pathname.replace(/\/$/, "")
  const sign = makeSigner(options.region, options.signingName)
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname
  const port = url.port === "" ? (secure ? 443 : 80) : Number(url.port)
  const servername = net.isIP(host) === 0 ? host : undefined
  const tls = secure ? loadTls() : undefined
  // what the server's clock is ahead of ours, learnt from a RequestTimeTooSkewed answer, as the SDK
  // does: signatures carry the host's time, and S3 refuses one more than 15 minutes off
  let skewMillis = 0

  const idle: Array<Conn> = []
  const all = new Set<Conn>()
  const waiting: Array<Job> = []

  const settle = (job: Job, error: Error | undefined): void => {
    if (job.settled) return
    job.settled = true
    if (error !== undefined) return job.reject(error)
    const chunks = job.chunks
    const body = chunks === undefined ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
    const status = job.status
    if (status < 200 || status >= 300) {
      const failed = httpError(status, body.toString("utf8"))
      const serverDate = Date.parse(String(job.headers.date ?? ""))
      if (CLOCK_SKEW.has(failed.name) && Number.isFinite(serverDate)) skewMillis = serverDate - hostNow()
      return job.reject(failed)
    }
    job.resolve({ status, headers: job.headers, body: new Uint8Array(body.buffer, body.byteOffset, body.length) })
  }

  /**
   * Closes a connection (its state is unknown, or it is done) and fails the job on it, if any. It
   * leaves the pool at once, not on its 'close' event: no request can be put on it in between.
   */
  const breakConn = (conn: Conn, error: Error): void => {
    const job = conn.job
    conn.job = undefined
    conn.reusable = false
    conn.socket.destroy()
    if (job !== undefined) {
      job.conn = undefined
      settle(job, error)
    }
    remove(conn)
  }

  const start = (conn: Conn, job: Job): void => {
    conn.job = job
    conn.finished = false
    job.conn = conn
    conn.parser.expect(conn, job.isHead)
    const body = job.body
    const socket = conn.socket
    if (body === undefined || body.length === 0) {
      socket.write(job.head, "latin1")
    } else {
      // one write of one Buffer: measured no dearer than head and body in one cork (a writev)
      const size = job.head.length
      const buffer = Buffer.allocUnsafe(size + body.length)
      buffer.write(job.head, 0, size, "latin1")
      buffer.set(body, size)
      socket.write(buffer)
    }
  }

  /** After its answer: the connection takes the next queued request, goes idle, or is closed. */
  const release = (conn: Conn): void => {
    conn.finished = false
    if (conn.closed) return
    if (!conn.reusable) return breakConn(conn, hangUp())
    const next = waiting.shift()
    if (next !== undefined) return start(conn, next)
    idle.push(conn)
  }

  const remove = (conn: Conn): void => {
    if (conn.closed) return
    conn.closed = true
    all.delete(conn)
    const at = idle.lastIndexOf(conn)
    if (at !== -1) idle.splice(at, 1)
    // a slot is free: the first queued request gets a new connection
    const next = waiting.shift()
    if (next !== undefined) start(connect(), next)
  }

  const connect = (): Conn => {
    const socket = tls !== undefined
      ? tls.connect({ host, port, ...(servername === undefined ? {} : { servername }), ALPNProtocols: ["http/1.1"] })
      : net.connect({ host, port })
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 1000)
    socket.setTimeout(requestTimeoutMillis)
    const parser = new ResponseParser()
    const conn: Conn = {
      socket,
      parser,
      job: undefined,
      reusable: true,
      finished: false,
      closed: false,
      onHead: (status, headers) => {
        const job = conn.job!
        job.status = status
        job.headers = headers
        job.onResponse?.(headers)
      },
      onBody: (chunk) => {
        const job = conn.job!
        if (job.chunks === undefined) job.chunks = [chunk]
        else job.chunks.push(chunk)
      },
      onComplete: (keepAlive) => {
        const job = conn.job!
        conn.job = undefined
        conn.reusable = keepAlive
        conn.finished = true
        job.conn = undefined
        settle(job, undefined)
      }
    }
    all.add(conn)
    socket.on("data", (data: Buffer) => {
      if (conn.job === undefined) {
        // bytes no request asked for: the connection cannot be trusted with the next one
        return breakConn(conn, hangUp())
      }
      try {
        parser.feed(data)
      } catch (error) {
        return breakConn(conn, error as Error)
      }
      if (conn.finished) release(conn)
    })
    socket.on("end", () => {
      // the server closed its side: a body read to the close is complete; a response cut short,
      // or a request with no answer yet, failed as node:http fails it (ECONNRESET)
      if (conn.job !== undefined) {
        try {
          parser.end()
        } catch (error) {
          return breakConn(conn, error as Error)
        }
      }
      conn.reusable = false
      breakConn(conn, hangUp())
    })
    socket.on("timeout", () => {
      breakConn(conn, Object.assign(new Error(`no answer within ${requestTimeoutMillis} ms`), { name: "TimeoutError" }))
    })
    socket.on("error", (error) => breakConn(conn, error))
    socket.on("close", () => breakConn(conn, hangUp()))
    return conn
  }

  const dispatch = (job: Job): void => {
    const conn = idle.pop()
    if (conn !== undefined) return start(conn, job)
    if (all.size < maxSockets) return start(connect(), job)
    waiting.push(job)
  }

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
    let head = `${req.method} ${query === "" ? path : `${path}?${query}`} HTTP/1.1\r\n`
    for (const name in signed) {
      const value = signed[name]!
      if (value.includes("\n") || value.includes("\r")) {
        throw Object.assign(new TypeError(`Invalid character in header content ["${name}"]`), { code: "ERR_INVALID_CHAR" })
      }
      head += `${name}: ${value}\r\n`
    }
    head += "\r\n"
    return new Promise<LeanResponse>((resolve, reject) => {
      const job: Job = {
        head,
        body,
        isHead: req.method === "HEAD",
        onResponse: req.onResponse,
        resolve,
        reject,
        settled: false,
        conn: undefined,
        status: 0,
        headers: {},
        chunks: undefined
      }
      if (cancellation !== undefined) {
        cancellation.cancel = () => {
          if (job.settled) return
          if (job.conn !== undefined) return breakConn(job.conn, aborted())
          const at = waiting.indexOf(job)
          if (at !== -1) waiting.splice(at, 1)
          settle(job, aborted())
        }
      }
      dispatch(job)
    })
  }

  const destroy = (): void => {
    for (const job of waiting.splice(0)) settle(job, hangUp())
    for (const conn of [...all]) breakConn(conn, hangUp())
  }

  return { send, destroy }
}
