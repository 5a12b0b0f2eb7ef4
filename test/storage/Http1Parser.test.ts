/**
 * The HTTP/1.1 response parser of the lean S3 client: RGW's recorded answers, fed whole, split at
 * every byte, byte by byte and several in one chunk, give the same responses; malformed bytes are
 * refused with llhttp's codes.
 */
import type { IncomingHttpHeaders } from "node:http"
import { describe, expect, it } from "vitest"
import { HttpParseError, type ResponseHandler, ResponseParser } from "../../src/layers/Http1Parser.js"
import { rgwAnswers } from "./rgwAnswers.js"

interface Parsed {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
  readonly keepAlive: boolean
}

/** Parses `pieces` as the answers to `requests` (true = a HEAD), one after the other on one connection. */
const parse = (pieces: ReadonlyArray<Buffer>, requests: ReadonlyArray<boolean>): Array<Parsed> => {
  const parser = new ResponseParser()
  const done: Array<Parsed> = []
  let status = 0
  let headers: IncomingHttpHeaders = {}
  let body: Array<Buffer> = []
  const handler: ResponseHandler = {
    onHead: (s, h) => {
      status = s
      headers = h
    },
    onBody: (chunk) => body.push(Buffer.from(chunk)),
    onComplete: (keepAlive) => {
      done.push({ status, headers, body: Buffer.concat(body).toString("latin1"), keepAlive })
      body = []
      // the next request goes out on the same connection as soon as the answer is complete
      if (done.length < requests.length) parser.expect(handler, requests[done.length]!)
    }
  }
  parser.expect(handler, requests[0]!)
  for (const piece of pieces) parser.feed(piece)
  return done
}

const bytes = (s: string): Buffer => Buffer.from(s, "latin1")
const answers = Object.entries(rgwAnswers).map(([name, raw]) => ({ name, raw: bytes(raw), isHead: name.startsWith("head") }))

const errorCode = (f: () => unknown): string | undefined => {
  try {
    f()
  } catch (error) {
    expect(error).toBeInstanceOf(HttpParseError)
    return (error as HttpParseError).code
  }
  return undefined
}

describe("Http1Parser on RGW's recorded answers", () => {
  it("whole: status, headers (lower-case names), bodies by content-length and chunked, none for HEAD and 204", () => {
    const one = (name: keyof typeof rgwAnswers) => parse([bytes(rgwAnswers[name])], [name.startsWith("head")])
    const [put] = one("put")
    expect(put).toMatchObject({ status: 200, body: "", keepAlive: true })
    expect(put!.headers.etag).toBe("\"a5bbf138f27c0fad4967f7c54db1ece6\"")
    expect(put!.headers["content-length"]).toBe("0")
    expect(one("get")[0]).toMatchObject({ status: 200, body: "{\"id\":1,\"state\":\"ready\"}" })
    expect(one("get")[0]!.headers["last-modified"]).toBe("Mon, 07 Dec 2026 21:09:18 GMT")
    expect(one("head")[0]).toMatchObject({ status: 200, body: "" })
    expect(one("head")[0]!.headers["content-length"]).toBe("24")
    expect(one("headMissing")[0]).toMatchObject({ status: 404, body: "" })
    expect(one("getMissing")[0]!.body).toContain("<Code>NoSuchKey</Code>")
    expect(one("putPreconditionFailed")[0]!.body).toContain("<Code>PreconditionFailed</Code>")
    expect(one("delete")[0]).toMatchObject({ status: 204, body: "" })
    const list = one("list")[0]!
    expect(list.headers["transfer-encoding"]).toBe("chunked")
    expect(list.body).toMatch(/^<\?xml.*<\/ListBucketResult>$/)
    expect(one("deleteObjects")[0]!.body).toBe(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></DeleteResult>"
    )
    expect(one("versioning")[0]!.body).toContain("<VersioningConfiguration")
  })

  it("split at every byte, and byte by byte: the same response", () => {
    for (const { isHead, name, raw } of answers) {
      const whole = parse([raw], [isHead])
      expect(whole.length, name).toBe(1)
      for (let at = 0; at <= raw.length; at++) {
        expect(parse([raw.subarray(0, at), raw.subarray(at)], [isHead]), `${name} split at ${at}`).toEqual(whole)
      }
      expect(parse(Array.from(raw, (b) => Buffer.from([b])), [isHead]), `${name} byte by byte`).toEqual(whole)
    }
  })

  it("every answer in one chunk, and that chunk split at every byte: each response in order", () => {
    const all = Buffer.concat(answers.map((a) => a.raw))
    const heads = answers.map((a) => a.isHead)
    const expected = answers.map((a) => parse([a.raw], [a.isHead])[0]!)
    expect(parse([all], heads)).toEqual(expected)
    for (let at = 0; at <= all.length; at += 7) {
      expect(parse([all.subarray(0, at), all.subarray(at)], heads), `split at ${at}`).toEqual(expected)
    }
  })

  it("an interim 100 Continue before the answer is skipped", () => {
    expect(parse([bytes("HTTP/1.1 100 Continue\r\n\r\n" + rgwAnswers.put)], [false])).toEqual(parse([bytes(rgwAnswers.put)], [false]))
  })
})

describe("Http1Parser: framing and connection reuse", () => {
  it("connection: close, and HTTP/1.0 without keep-alive, end the connection's reuse", () => {
    expect(parse([bytes("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")], [false])[0]).toMatchObject({ body: "ok", keepAlive: false })
    expect(parse([bytes("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")], [false])[0]!.keepAlive).toBe(false)
    expect(parse([bytes("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok")], [false])[0]!.keepAlive).toBe(true)
  })

  it("a body with no length runs to the connection's end; one cut short is reported in progress", () => {
    const parser = new ResponseParser()
    const got: Array<string> = []
    let completed: boolean | undefined
    parser.expect({ onHead: () => undefined, onBody: (c) => got.push(c.toString()), onComplete: (k) => (completed = k) }, false)
    parser.feed(bytes("HTTP/1.1 200 OK\r\n\r\nuntil "))
    parser.feed(bytes("the end"))
    expect(completed).toBeUndefined()
    expect(parser.end()).toBe(true)
    expect(completed).toBe(false)
    expect(got.join("")).toBe("until the end")

    const cut = new ResponseParser()
    cut.expect({ onHead: () => undefined, onBody: () => undefined, onComplete: () => expect.unreachable() }, false)
    cut.feed(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel"))
    expect(cut.end()).toBe(true)
    expect(cut.busy).toBe(true)
  })

  it("repeated headers: joined with ', ', but the first kept for etag, content-length, last-modified (as node does)", () => {
    const [r] = parse([bytes("HTTP/1.1 200 OK\r\nETag: \"a\"\r\nEtag: \"b\"\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n")], [false])
    expect(r!.headers.etag).toBe("\"a\"")
    expect(r!.headers["x-a"]).toBe("1, 2")
  })
})

describe("Http1Parser: malformed answers are refused with llhttp's codes", () => {
  const refused = (raw: string, isHead = false) => errorCode(() => parse([bytes(raw)], [isHead]))
  it("not HTTP at all, bad status, bad header, bad lengths, bytes after the answer", () => {
    expect(refused("0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")).toBe("HPE_INVALID_CONSTANT")
    expect(refused("<html>")).toBe("HPE_INVALID_CONSTANT")
    expect(refused("HTTP/1.1 2x0 OK\r\n\r\n")).toBe("HPE_INVALID_STATUS")
    expect(refused("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")).toBe("HPE_INVALID_HEADER_TOKEN")
    expect(refused("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n")).toBe("HPE_INVALID_CONTENT_LENGTH")
    expect(refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")).toBe("HPE_INVALID_CHUNK_SIZE")
    expect(refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n")).toBe("HPE_STRICT")
    expect(refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")).toBe("HPE_INVALID_TRANSFER_ENCODING")
    expect(refused(rgwAnswers.put + "HTTP/1.1 200 OK\r\n\r\n")).toBe("HPE_INVALID_CONSTANT")
    expect(refused(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(70_000)}`)).toBe("HPE_HEADER_OVERFLOW")
  })
})
