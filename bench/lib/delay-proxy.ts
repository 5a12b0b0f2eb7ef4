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

  /**
   * Forwards `from` → `to` through one FIFO per direction drained by a single timer: each chunk
   * (and the end or close after it) is released no earlier than its own arrival + drawn delay and
   * never before the one ahead of it. One timer per chunk would not do: Node does not promise that
   * timers of different durations expiring in the same millisecond run in creation order, and a
   * reordered chunk garbles the HTTP stream (the 8-worker scale-out row saw "Expected HTTP/" and
   * "Invalid character in chunk size").
   */
  const pipeDelayed = (from: net.Socket, to: net.Socket): void => {
    const queue: Array<{ readonly at: number; readonly release: () => void }> = []
    let timer: NodeJS.Timeout | undefined
    const drain = () => {
      timer = undefined
      const now = performance.now()
      while (queue.length > 0 && queue[0]!.at <= now) queue.shift()!.release()
      arm()
    }
    const arm = () => {
      if (timer !== undefined || queue.length === 0) return
      timer = setTimeout(drain, Math.max(0, queue[0]!.at - performance.now()))
    }
    const later = (release: () => void) => {
      const previous = queue.at(-1)?.at ?? 0
      queue.push({ at: Math.max(performance.now() + draw(), previous), release })
      arm()
    }
    from.on("data", (chunk) => later(() => to.destroyed || to.write(chunk)))
    from.on("end", () => later(() => to.destroyed || to.end()))
    from.on("error", () => later(() => to.destroy()))
    // after a clean end the bytes still buffered in `to` must go out: end it rather than destroy it
    from.on("close", (hadError) => later(() => hadError ? to.destroy() : to.destroyed || to.end()))
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
