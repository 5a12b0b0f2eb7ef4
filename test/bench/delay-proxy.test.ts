import net from "node:net"
import type { AddressInfo } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { startDelayProxy } from "../../bench/lib/delay-proxy.js"

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!()
})

/** A local echo server: every byte it reads goes straight back. */
const echoServer = (): Promise<number> =>
  new Promise((resolve) => {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((s) => {
      sockets.add(s)
      s.on("close", () => sockets.delete(s))
      s.on("error", () => s.destroy())
      s.pipe(s)
    })
    closers.push(() =>
      new Promise<void>((done) => {
        for (const s of sockets) s.destroy()
        server.close(() => done())
      })
    )
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
  })

/** Chunk `i`: its index and a filler whose length varies, so any reordering changes the bytes. */
const chunk = (i: number): Buffer => Buffer.from(`<${i}:${"x".repeat(i % 37)}>`)

describe("the bench's delay proxy", () => {
  it("delivers many small chunks byte-exact and in order in both directions, whatever each chunk's delay", async () => {
    const port = await echoServer()
    // a wide jitter relative to the delay: successive chunks draw very different delays
    const proxy = await startDelayProxy({ upstreamHost: "127.0.0.1", upstreamPort: port, delayMillis: 4, jitterMillis: 4, seed: 7 })
    closers.push(proxy.close)
    const url = new URL(proxy.endpoint)
    const n = 1500
    const sent = Buffer.concat(Array.from({ length: n }, (_, i) => chunk(i)))
    const received = await new Promise<Buffer>((resolve, reject) => {
      const parts: Array<Buffer> = []
      let length = 0
      const client = net.connect(Number(url.port), url.hostname)
      client.setNoDelay(true)
      client.on("error", reject)
      client.on("data", (b: Buffer) => {
        parts.push(b)
        length += b.length
        if (length >= sent.length) {
          client.destroy()
          resolve(Buffer.concat(parts))
        }
      })
      // one chunk per turn of the event loop, so the proxy reads them as separate chunks
      let i = 0
      const next = () => {
        if (i >= n) return
        client.write(chunk(i++))
        setImmediate(next)
      }
      client.on("connect", next)
    })
    expect(received.length).toBe(sent.length)
    expect(received.equals(sent)).toBe(true)
  })
})
