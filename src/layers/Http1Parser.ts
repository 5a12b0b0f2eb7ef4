/**
 * An incremental parser for HTTP/1.1 responses, written for what an S3 server sends (S3Http.ts's
 * client): the status line, the headers (names in lower case, into a plain object), a body framed
 * by `content-length`, by `transfer-encoding: chunked`, or by the connection's end, and none for
 * HEAD, 1xx, 204 and 304. Bytes may arrive split at any point, and one chunk may hold the end of
 * one response and the start of the next: {@link ResponseParser.feed} takes them as they come.
 *
 * What it refuses (a typed error with node's llhttp code, `HPE_*`, so S3Storage classifies it as
 * node:http's parser errors: a broken connection): a status line that is not `HTTP/1.x NNN`, a
 * header line without a colon, a bad `content-length` or chunk size, a head over 64 KiB, bytes
 * after a response that was not asked for. Not supported: obsolete line folding, trailers (skipped),
 * `transfer-encoding` other than chunked, HTTP/2 or upgrades.
 *
 * @module
 */
import type { IncomingHttpHeaders } from "node:http"

/**
 * What the parser calls as a response goes by.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResponseHandler {
  /** The final (non-1xx) status line and headers. */
  readonly onHead: (status: number, headers: IncomingHttpHeaders) => void
  /** A piece of the body (a view of the bytes fed: valid as long as they are). */
  readonly onBody: (chunk: Buffer) => void
  /** The response is complete; `keepAlive` says whether the connection can carry another. */
  readonly onComplete: (keepAlive: boolean) => void
}

/**
 * An error of the bytes received, with llhttp's code (`HPE_INVALID_CONSTANT`, ...).
 *
 * @since 0.1.0
 * @category errors
 */
export class HttpParseError extends Error {
  readonly code: string
  constructor(code: string, message: string) {
    super(`Parse Error: ${message}`)
    this.name = "Error"
    this.code = code
  }
}

/** The longest head (status line and headers) accepted, as node's default `maxHeaderSize` is 16 KiB; S3's are < 2 KiB. */
const MAX_HEAD = 64 * 1024

/** Headers whose repeats node drops (it keeps the first): the ones S3Storage reads among them. */
const FIRST_WINS = new Set([
  "age",
  "authorization",
  "content-length",
  "content-type",
  "etag",
  "expires",
  "from",
  "host",
  "if-modified-since",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "proxy-authorization",
  "referer",
  "retry-after",
  "server",
  "user-agent"
])

const enum State {
  /** Waiting for a response to be expected ({@link ResponseParser.expect}). */
  Idle,
  Head,
  /** A body of known length: `remaining` bytes left. */
  Length,
  /** A body that ends with the connection. */
  UntilClose,
  ChunkSize,
  ChunkData,
  /** The CRLF after a chunk's data. */
  ChunkEnd,
  Trailers
}

const CR = 13
const LF = 10

/**
 * Parses the responses of one connection, one at a time: {@link expect} arms it for the next
 * response (and says whether it answers a HEAD), {@link feed} gives it bytes, {@link end} says
 * the connection ended. Errors are thrown from `feed`/`end`; after one the parser is unusable.
 *
 * @since 0.1.0
 * @category models
 */
export class ResponseParser {
  private state = State.Idle
  private handler: ResponseHandler | undefined = undefined
  private head = false
  /** The part of a head (or a chunk-size or trailer line) received so far, when split. */
  private pending: Buffer | undefined = undefined
  private remaining = 0
  private keepAlive = true

  /** Arms the parser for the response to a request just sent. */
  expect(handler: ResponseHandler, isHead: boolean): void {
    this.handler = handler
    this.head = isHead
    this.state = State.Head
    this.pending = undefined
  }

  /** True while a response is expected and not complete. */
  get busy(): boolean {
    return this.state !== State.Idle
  }

  /** Bytes from the connection. */
  feed(data: Buffer): void {
    let at = 0
    const n = data.length
    while (at < n) {
      switch (this.state) {
        case State.Idle:
          throw new HttpParseError("HPE_INVALID_CONSTANT", "Data after the response, none expected")
        case State.Head: {
          at = this.readHead(data, at)
          break
        }
        case State.Length: {
          const take = Math.min(this.remaining, n - at)
          this.handler!.onBody(at === 0 && take === n ? data : data.subarray(at, at + take))
          at += take
          this.remaining -= take
          if (this.remaining === 0) this.complete()
          break
        }
        case State.UntilClose: {
          this.handler!.onBody(at === 0 ? data : data.subarray(at))
          at = n
          break
        }
        case State.ChunkSize: {
          const line = this.line(data, at)
          if (line === undefined) return
          at = line.next
          const semi = line.text.indexOf(";")
          const hex = (semi === -1 ? line.text : line.text.slice(0, semi)).trim()
          if (!/^[0-9a-fA-F]{1,15}$/.test(hex)) throw new HttpParseError("HPE_INVALID_CHUNK_SIZE", "Invalid character in chunk size")
          this.remaining = parseInt(hex, 16)
          this.state = this.remaining === 0 ? State.Trailers : State.ChunkData
          break
        }
        case State.ChunkData: {
          const take = Math.min(this.remaining, n - at)
          this.handler!.onBody(data.subarray(at, at + take))
          at += take
          this.remaining -= take
          if (this.remaining === 0) this.state = State.ChunkEnd
          break
        }
        case State.ChunkEnd: {
          const line = this.line(data, at)
          if (line === undefined) return
          if (line.text !== "") throw new HttpParseError("HPE_STRICT", "Expected LF after chunk data")
          at = line.next
          this.state = State.ChunkSize
          break
        }
        case State.Trailers: {
          const line = this.line(data, at)
          if (line === undefined) return
          at = line.next
          if (line.text === "") this.complete()
          break
        }
      }
    }
  }

  /**
   * The connection ended (the server closed it): completes a body read until the close, and throws
   * for a response cut short. Returns whether a response was in progress.
   */
  end(): boolean {
    if (this.state === State.UntilClose) {
      this.complete()
      return true
    }
    return this.state !== State.Idle
  }

  private complete(): void {
    const handler = this.handler!
    this.state = State.Idle
    this.handler = undefined
    this.pending = undefined
    handler.onComplete(this.keepAlive)
  }

  /**
   * One CRLF-terminated line from `at` (joined with what `pending` holds), or undefined when the
   * data ends first (the part is kept in `pending`).
   */
  private line(data: Buffer, at: number): { readonly text: string; readonly next: number } | undefined {
    const lf = data.indexOf(LF, at)
    if (lf === -1) {
      const rest = data.subarray(at)
      this.pending = this.pending === undefined ? Buffer.from(rest) : Buffer.concat([this.pending, rest])
      if (this.pending.length > MAX_HEAD) throw new HttpParseError("HPE_HEADER_OVERFLOW", "Line overflow")
      return undefined
    }
    let bytes = data.subarray(at, lf)
    if (this.pending !== undefined) {
      bytes = Buffer.concat([this.pending, bytes])
      this.pending = undefined
    }
    const end = bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.length - 1 : bytes.length
    return { text: bytes.toString("latin1", 0, end), next: lf + 1 }
  }

  /** Reads the head from `at`; returns where the body starts, or `data.length` if the head goes on. */
  private readHead(data: Buffer, at: number): number {
    let buffer = data
    let from = at
    let searchFrom = at
    if (this.pending !== undefined) {
      // a head split across chunks: search the joined bytes (from 3 before the seam for a split CRLFCRLF)
      searchFrom = Math.max(0, this.pending.length - 3)
      buffer = Buffer.concat([this.pending, data.subarray(at)])
      from = 0
    }
    const end = buffer.indexOf("\r\n\r\n", searchFrom, "latin1")
    if (end === -1) {
      if (buffer.length - from > MAX_HEAD) throw new HttpParseError("HPE_HEADER_OVERFLOW", "Header overflow")
      this.pending = buffer === data ? Buffer.from(data.subarray(at)) : buffer
      if (!looksLikeStatus(this.pending)) throw new HttpParseError("HPE_INVALID_CONSTANT", "Expected HTTP/")
      return data.length
    }
    if (end - from > MAX_HEAD) throw new HttpParseError("HPE_HEADER_OVERFLOW", "Header overflow")
    const consumed = this.pending === undefined ? end + 4 : at + (end + 4 - this.pending.length)
    this.pending = undefined
    this.parseHead(buffer.toString("latin1", from, end))
    return consumed
  }

  private parseHead(text: string): void {
    const lines = text.split("\r\n")
    const statusLine = lines[0]!
    // "HTTP/1.1 200 OK"
    if (
      statusLine.length < 12 || !statusLine.startsWith("HTTP/1.") || statusLine.charCodeAt(8) !== 32
    ) throw new HttpParseError("HPE_INVALID_CONSTANT", "Expected HTTP/")
    const minor = statusLine.charCodeAt(7) - 48
    const status = Number(statusLine.slice(9, 12))
    if (!(minor === 0 || minor === 1) || !Number.isInteger(status) || status < 100 || statusLine.charCodeAt(9) === 32) {
      throw new HttpParseError("HPE_INVALID_STATUS", "Invalid status code")
    }
    const headers: Record<string, string | Array<string>> = {}
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!
      const colon = line.indexOf(":")
      if (colon <= 0) throw new HttpParseError("HPE_INVALID_HEADER_TOKEN", "Invalid header token")
      const first = line.charCodeAt(0)
      if (first === 32 || first === 9) throw new HttpParseError("HPE_INVALID_HEADER_TOKEN", "Invalid header token")
      const name = line.slice(0, colon).toLowerCase()
      const value = line.slice(colon + 1).trim()
      const had = headers[name]
      if (had === undefined) headers[name] = name === "set-cookie" ? [value] : value
      else if (name === "set-cookie") (had as Array<string>).push(value)
      else if (!FIRST_WINS.has(name)) headers[name] = `${had as string}, ${value}`
    }
    if (status < 200) {
      // an interim answer (100 Continue, 103 Early Hints): the final one follows
      if (status === 101) throw new HttpParseError("HPE_UNEXPECTED_SPACE", "Upgrade not supported")
      return
    }
    const connection = headers["connection"]
    const close = typeof connection === "string" && /(^|,)\s*close\s*(,|$)/i.test(connection)
    const keepAliveHeader = typeof connection === "string" && /(^|,)\s*keep-alive\s*(,|$)/i.test(connection)
    this.keepAlive = minor === 1 ? !close : keepAliveHeader
    this.handler!.onHead(status, headers as IncomingHttpHeaders)
    if (this.head || status === 204 || status === 304) return this.complete()
    const te = headers["transfer-encoding"]
    if (typeof te === "string") {
      if (!/(^|,)\s*chunked\s*$/i.test(te)) throw new HttpParseError("HPE_INVALID_TRANSFER_ENCODING", "Unsupported transfer-encoding")
      this.state = State.ChunkSize
      return
    }
    const length = headers["content-length"]
    if (typeof length === "string") {
      if (!/^\d{1,15}$/.test(length)) throw new HttpParseError("HPE_INVALID_CONTENT_LENGTH", "Invalid character in Content-Length")
      this.remaining = Number(length)
      if (this.remaining === 0) return this.complete()
      this.state = State.Length
      return
    }
    // no framing: the body runs to the connection's end, which cannot carry another response
    this.keepAlive = false
    this.state = State.UntilClose
  }
}

/** Whether the start of a head can still be a status line (fail fast on garbage: "HTTP/" or a prefix of it). */
const looksLikeStatus = (bytes: Buffer): boolean => {
  const prefix = "HTTP/"
  const n = Math.min(prefix.length, bytes.length)
  for (let i = 0; i < n; i++) if (bytes[i] !== prefix.charCodeAt(i)) return false
  return true
}
