/**
 * The lean S3 client's own HTTP/1.1 connections (S3Http.ts on node:net / node:tls), against raw
 * TCP and TLS servers on 127.0.0.1: keep-alive reuse and its limits, connections the server closes
 * while idle, `connection: close`, the pool's bound and queue, timeouts, cancellation, node's
 * socket error codes, malformed answers, and https with SNI. S3Storage.test.ts covers the same
 * client through the storage (retries and classification) and against RGW.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as tls from "node:tls"
import { afterEach, describe, expect, it } from "vitest"
import * as S3Http from "../../src/layers/S3Http.js"

/** What the raw server does with one request (its head and body, as received). */
type Answer = (request: string, socket: net.Socket) => void

interface RawServer {
  readonly port: number
  /** Requests seen, as their first line. */
  readonly requests: Array<string>
  /** Connections accepted, and closed. */
  readonly opened: () => number
  readonly closed: () => number
  readonly open: () => number
}

const closers: Array<() => void> = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

/** A TCP server that reads each request (head, and body by content-length) and calls `answers[i]` (the last repeats). */
const rawServer = (answers: ReadonlyArray<Answer>, wrap?: (listener: (socket: net.Socket) => void) => net.Server): Promise<RawServer> =>
  new Promise((resolve) => {
    const requests: Array<string> = []
    let opened = 0
    let closed = 0
    const sockets = new Set<net.Socket>()
    const onSocket = (socket: net.Socket) => {
      opened++
      sockets.add(socket)
      socket.on("close", () => {
        closed++
        sockets.delete(socket)
      })
      socket.on("error", () => undefined)
      let buffered = Buffer.alloc(0)
      socket.on("data", (data: Buffer) => {
        buffered = Buffer.concat([buffered, data])
        for (;;) {
          const end = buffered.indexOf("\r\n\r\n")
          if (end === -1) return
          const head = buffered.subarray(0, end).toString("latin1")
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
          if (buffered.length < end + 4 + length) return
          const request = buffered.subarray(0, end + 4 + length).toString("latin1")
          buffered = buffered.subarray(end + 4 + length)
          const answer = answers[Math.min(requests.length, answers.length - 1)]!
          requests.push(head.split("\r\n")[0]!)
          answer(request, socket)
        }
      })
    }
    const server = wrap === undefined ? net.createServer(onSocket) : wrap(onSocket)
    server.listen(0, "127.0.0.1", () => {
      closers.push(() => {
        for (const socket of sockets) socket.destroy()
        server.close()
      })
      resolve({
        port: (server.address() as net.AddressInfo).port,
        requests,
        opened: () => opened,
        closed: () => closed,
        open: () => sockets.size
      })
    })
  })

const ok = (body = "ok", extra = ""): Answer => (_request, socket) => {
  socket.write(`HTTP/1.1 200 OK\r\nETag: "e"\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`)
}
const hold: Answer = () => undefined

const client = (port: number, options: { readonly maxSockets?: number; readonly timeout?: number; readonly scheme?: string; readonly host?: string } = {}) => {
  const c = S3Http.make({
    url: new URL(`${options.scheme ?? "http"}://${options.host ?? "127.0.0.1"}:${port}/b`),
    region: "us-east-1",
    signingName: "s3",
    credentials: () => Promise.resolve({ accessKeyId: "test", secretAccessKey: "test" }),
    maxSockets: options.maxSockets ?? 8,
    requestTimeoutMillis: options.timeout ?? 30_000
  })
  closers.push(() => c.destroy())
  return c
}

const until = async (condition: () => boolean): Promise<void> => {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(condition()).toBe(true)
}

const rejection = (p: Promise<unknown>): Promise<Record<string, unknown>> =>
  p.then(() => expect.unreachable("resolved"), (error: unknown) => error as Record<string, unknown>)

describe("S3Http: keep-alive connections", () => {
  it("sequential requests of every method share one connection (HEAD's too); the request is one well-formed write", async () => {
    const server = await rawServer([ok("hello"), (_r, s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), ok(""), (_r, s) => s.write("HTTP/1.1 204 No Content\r\n\r\n")])
    const c = client(server.port)
    expect(Buffer.from((await c.send({ method: "GET", key: "k" })).body).toString()).toBe("hello")
    expect((await c.send({ method: "HEAD", key: "k" })).headers["content-length"]).toBe("5")
    await c.send({ method: "PUT", key: "k", body: new TextEncoder().encode("body"), headers: { "if-none-match": "*" } })
    expect((await c.send({ method: "DELETE", key: "k" })).status).toBe(204)
    expect(server.requests).toEqual(["GET /b/k HTTP/1.1", "HEAD /b/k HTTP/1.1", "PUT /b/k HTTP/1.1", "DELETE /b/k HTTP/1.1"])
    expect(server.opened()).toBe(1)
  })

  it("a chunked answer (RGW's LIST) is read whole", async () => {
    const server = await rawServer([(_r, s) => {
      s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n<List")
      setTimeout(() => s.write(">\r\n3\r\nabc\r\n0\r\n\r\n"), 10)
    }, ok()])
    const c = client(server.port)
    expect(Buffer.from((await c.send({ method: "GET", key: undefined, query: [["list-type", "2"]] })).body).toString()).toBe("<List>abc")
    await c.send({ method: "GET", key: "k" })
    expect(server.opened()).toBe(1)
  })

  it("an answer with connection: close is not reused: the next request opens a new connection", async () => {
    const server = await rawServer([ok("a", "Connection: close\r\n"), ok("b")])
    const c = client(server.port)
    await c.send({ method: "GET", key: "k" })
    expect(Buffer.from((await c.send({ method: "GET", key: "k" })).body).toString()).toBe("b")
    expect(server.opened()).toBe(2)
    await until(() => server.closed() === 1)
  })

  it("a connection the server closed while idle is dropped: the next request goes out on a new one", async () => {
    // the server answers, then closes the connection (an idle timeout on its side)
    const server = await rawServer([(request, socket) => {
      ok("first")(request, socket)
      setTimeout(() => socket.end(), 10)
    }, ok("second")])
    const c = client(server.port)
    await c.send({ method: "GET", key: "k" })
    await until(() => server.closed() === 1)
    // give the client's socket its 'end' event
    await new Promise((r) => setTimeout(r, 20))
    expect(Buffer.from((await c.send({ method: "GET", key: "k" })).body).toString()).toBe("second")
    expect(server.opened()).toBe(2)
  })

  it("at most maxSockets connections; requests beyond wait their turn, in order", async () => {
    const server = await rawServer([(request, socket) => setTimeout(() => ok(request.split(" ")[1]!)(request, socket), 20)])
    const c = client(server.port, { maxSockets: 2 })
    const bodies = await Promise.all(["a", "b", "c", "d", "e"].map((k) => c.send({ method: "GET", key: k }).then((r) => Buffer.from(r.body).toString())))
    expect(bodies).toEqual(["/b/a", "/b/b", "/b/c", "/b/d", "/b/e"])
    expect(server.opened()).toBe(2)
  })
})

describe("S3Http: failures keep node's shapes", () => {
  it("no answer within the timeout: TimeoutError, the connection closed", async () => {
    const server = await rawServer([hold])
    const c = client(server.port, { timeout: 100 })
    expect(await rejection(c.send({ method: "GET", key: "k" }))).toMatchObject({ name: "TimeoutError" })
    await until(() => server.closed() === 1)
  })

  it("a body that stops arriving: TimeoutError", async () => {
    const server = await rawServer([(_r, s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel")])
    const c = client(server.port, { timeout: 100 })
    expect(await rejection(c.send({ method: "GET", key: "k" }))).toMatchObject({ name: "TimeoutError" })
  })

  it("cancelled in flight: AbortError, the connection destroyed; cancelled while queued: AbortError, never sent", async () => {
    const server = await rawServer([hold])
    const c = client(server.port, { maxSockets: 1 })
    const first: S3Http.Cancellation = { cancelled: false, cancel: undefined }
    const second: S3Http.Cancellation = { cancelled: false, cancel: undefined }
    const inFlight = rejection(c.send({ method: "GET", key: "first", cancellation: first }))
    const queued = rejection(c.send({ method: "GET", key: "second", cancellation: second }))
    await until(() => server.requests.length === 1)
    second.cancelled = true
    second.cancel?.()
    expect(await queued).toMatchObject({ name: "AbortError" })
    first.cancelled = true
    first.cancel?.()
    expect(await inFlight).toMatchObject({ name: "AbortError" })
    await until(() => server.closed() === 1)
    expect(server.requests).toEqual(["GET /b/first HTTP/1.1"])
  })

  it("a connection cut under the request: ECONNRESET", async () => {
    const server = await rawServer([(_r, s) => s.destroy()])
    const c = client(server.port)
    expect(await rejection(c.send({ method: "PUT", key: "k", body: new Uint8Array(3) }))).toMatchObject({ code: "ECONNRESET" })
  })

  it("an answer cut short by the server's close: ECONNRESET", async () => {
    const server = await rawServer([(_r, s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel")])
    const c = client(server.port)
    expect(await rejection(c.send({ method: "GET", key: "k" }))).toMatchObject({ code: "ECONNRESET" })
  })

  it("nothing listening: ECONNREFUSED", async () => {
    const server = await rawServer([ok()])
    const port = server.port
    for (const close of closers.splice(0)) close()
    await new Promise((r) => setTimeout(r, 20))
    expect(await rejection(client(port).send({ method: "GET", key: "k" }))).toMatchObject({ code: "ECONNREFUSED" })
  })

  it("a malformed answer: an HPE_* code, the connection destroyed, the next request on a new one", async () => {
    const server = await rawServer([(_r, s) => s.write("0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), ok("fine")])
    const c = client(server.port)
    expect(await rejection(c.send({ method: "GET", key: "k" }))).toMatchObject({ code: "HPE_INVALID_CONSTANT" })
    await until(() => server.closed() === 1)
    expect(Buffer.from((await c.send({ method: "GET", key: "k" })).body).toString()).toBe("fine")
  })

  it("an S3 error answer: name from its XML code, $metadata.httpStatusCode; the connection stays up", async () => {
    const xml = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>slow</Message></Error>"
    const server = await rawServer([(_r, s) => s.write(`HTTP/1.1 503 Slow Down\r\nContent-Length: ${xml.length}\r\n\r\n${xml}`), ok()])
    const c = client(server.port)
    expect(await rejection(c.send({ method: "GET", key: "k" }))).toMatchObject({ name: "SlowDown", $metadata: { httpStatusCode: 503 } })
    await c.send({ method: "GET", key: "k" })
    expect(server.opened()).toBe(1)
  })
})

describe("S3Http: https", () => {
  let dir: string | undefined
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it("connects with tls.connect and the endpoint's host as servername (SNI); an untrusted certificate is refused", async () => {
    dir = mkdtempSync(join(tmpdir(), "s3http-tls-"))
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")
    ], { stdio: "ignore" })
    const key = readFileSync(join(dir, "key.pem"))
    const cert = readFileSync(join(dir, "cert.pem"))
    const names: Array<string> = []
    const server = await rawServer([ok()], (listener) =>
      tls.createServer({
        key,
        cert,
        SNICallback: (name, done) => {
          names.push(name)
          done(null, tls.createSecureContext({ key, cert }))
        }
      }, listener))
    const error = await rejection(client(server.port, { scheme: "https", host: "localhost" }).send({ method: "GET", key: "k" }))
    expect(names).toEqual(["localhost"])
    expect(error["code"]).toBe("DEPTH_ZERO_SELF_SIGNED_CERT")
  })
})
