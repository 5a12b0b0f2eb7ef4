/**
 * A TCP proxy that adds network latency: every chunk is forwarded after a delay drawn per chunk
 * and per direction from a seeded generator (default 30 ms ± 5 ms each way), in order. The kernel
 * here has no netem; this puts an S3-like round trip (AWS S3 answers in ~20–50 ms) in front of the
 * local RGW so the scale-out of many workers can be measured where it matters.
 *
 * @module
 */
import net from "node:net"
import type { AddressInfo } from "node:net"

export interface DelayProxyOptions {
  /** Where to forward, e.g. `127.0.0.1:7480`. */
  readonly upstreamHost: string
  readonly upstreamPort: number
  /** Mean delay per direction (default 30 ms). */
  readonly delayMillis?: number
  /** Uniform jitter around it, ± (default 5 ms). */
  readonly jitterMillis?: number
  /** Seed of the delay sequence (default 1). */
  readonly seed?: number
}

export interface DelayProxy {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string
  readonly delayMillis: number
  readonly jitterMillis: number
  readonly seed: number
  readonly close: () => Promise<void>
}

/** mulberry32: small, fast, and the same sequence for the same seed. */
const seeded = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const startDelayProxy = (options: DelayProxyOptions): Promise<DelayProxy> => {
  const delayMillis = options.delayMillis ?? 30
  const jitterMillis = options.jitterMillis ?? 5
  const seed = options.seed ?? 1
  const random = seeded(seed)
  const sockets = new Set<net.Socket>()
  const draw = () => Math.max(0, delayMillis + (random() * 2 - 1) * jitterMillis)

  /** Forwards `from` → `to`, each chunk after its own delay but never before the previous one. */
  const pipeDelayed = (from: net.Socket, to: net.Socket): void => {
    let lastAt = 0
    const later = (f: () => void) => {
      const at = Math.max(Date.now() + draw(), lastAt)
      lastAt = at
      setTimeout(f, at - Date.now())
    }
    from.on("data", (chunk) => later(() => to.destroyed || to.write(chunk)))
    from.on("end", () => later(() => to.destroyed || to.end()))
    from.on("error", () => later(() => to.destroy()))
    from.on("close", () => later(() => to.destroy()))
  }

  const server = net.createServer((client) => {
    const upstream = net.connect(options.upstreamPort, options.upstreamHost)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.setNoDelay(true)
      s.on("close", () => sockets.delete(s))
    }
    pipeDelayed(client, upstream)
    pipeDelayed(upstream, client)
  })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        endpoint: `http://127.0.0.1:${port}`,
        delayMillis,
        jitterMillis,
        seed,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          })
      })
    })
  })
}
