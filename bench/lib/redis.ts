/**
 * The peer's broker: Debian's `redis-server` on 127.0.0.1, on a free port, without persistence,
 * started and stopped by the bench itself (installed from apt when missing and we are root).
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import net from "node:net"
import { log, sleep } from "./env.js"

const onPath = (bin: string): boolean => spawnSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" }).status === 0

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const answers = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1")
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("error", () => done(false))
    socket.once("data", (d) => done(d.toString().startsWith("+PONG")))
    socket.once("connect", () => socket.write("PING\r\n"))
  })

export interface RedisServer {
  readonly port: number
  readonly stop: () => Promise<void>
}

/** Starts a private redis-server, or explains why it cannot. */
export const startRedis = async (): Promise<RedisServer | { readonly unavailable: string }> => {
  if (!onPath("redis-server")) {
    if (process.getuid?.() === 0 && onPath("apt-get")) {
      log("redis-server is missing: installing Debian's package")
      const r = spawnSync("apt-get", ["install", "-y", "-q", "redis-server"], { stdio: ["ignore", "ignore", "inherit"], timeout: 600_000 })
      if (r.status !== 0 || !onPath("redis-server")) return { unavailable: "apt-get install redis-server failed" }
    } else {
      return { unavailable: "redis-server is not installed (apt-get install redis-server)" }
    }
  }
  const port = await freePort()
  const proc: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
    { stdio: ["ignore", "ignore", "inherit"] }
  )
  for (let i = 0; i < 100; i++) {
    if (await answers(port)) break
    await sleep(100)
  }
  if (!(await answers(port))) {
    proc.kill("SIGKILL")
    return { unavailable: "redis-server did not answer within 10 s" }
  }
  log(`redis-server ${proc.pid} on 127.0.0.1:${port}`)
  return {
    port,
    stop: async () => {
      if (proc.exitCode !== null) return
      const exited = new Promise<void>((r) => proc.once("exit", () => r()))
      proc.kill("SIGTERM")
      await Promise.race([exited, sleep(5000)])
      if (proc.exitCode === null) proc.kill("SIGKILL")
    }
  }
}
