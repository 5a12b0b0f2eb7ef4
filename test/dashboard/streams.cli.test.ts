/**
 * Issue 16 item 10: thousands of open `/events` streams do not take the dashboard down. A
 * dashboard started by `buquet dashboard` gets 3 000 concurrent `/events` clients (raw sockets
 * from this process); it answers the ones past its stream cap with 503, keeps serving `/`, shows
 * the open streams in `/metrics`, and its RSS stays under 200 MB throughout.
 *
 * The RSS bound is the acceptance's, absolute: the peak VmRSS of the spawned process, read from
 * /proc/PID/status, stays under 200 MB. The process runs as a user's `buquet` does, through the
 * executable's shebang with its heap flags. The compiled CLI (CI builds dist/) idles at ~110 MB and
 * peaks near 145 MB; without a fresh dist/ the sources run through tsx, which costs ~40 MB more.
 */
import { readFileSync } from "node:fs"
import { connect } from "node:net"
import type { Socket } from "node:net"
import { describe, expect, it } from "vitest"
import { eventually, spawnCli, tempDir } from "../cli/support.js"

const rssMb = (pid: number): number => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))
  return Number(line?.replace(/\D+/g, "") ?? "0") / 1024
}

/** Opens a raw `/events` request; resolves with the status code of its answer. */
const openStream = (port: number, sockets: Array<Socket>): Promise<number> =>
  new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port })
    sockets.push(socket)
    let head = ""
    socket.setEncoding("latin1")
    socket.on("connect", () => socket.write("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
    socket.on("data", (chunk: string) => {
      head += chunk
      const match = /^HTTP\/1\.1 (\d{3})/.exec(head)
      if (match !== null) resolve(Number(match[1]))
    })
    socket.on("error", () => resolve(-1))
    socket.on("close", () => resolve(-1))
  })

describe("buquet dashboard under 3 000 /events clients", () => {
  it("caps the streams (503 past the cap), keeps serving / and stays under 200 MB", async () => {
    const dir = tempDir("buquet-streams-")
    const dashboard = spawnCli(["dashboard", "--port", "0"], { cwd: dir, asExecutable: true })
    const sockets: Array<Socket> = []
    try {
      const url = await eventually(
        async () => /dashboard on (http:\/\/\S+?);/.exec(dashboard.output().stderr)?.[1],
        () => `the dashboard to start (${dashboard.output().stderr})`
      )
      const port = Number(new URL(url).port)
      const idle = rssMb(dashboard.pid)
      let peak = idle
      const sampler = setInterval(() => (peak = Math.max(peak, rssMb(dashboard.pid))), 100)
      const statuses: Array<number> = []
      try {
        // in waves of 500, so the listen backlog does not drop connections before they are answered
        for (let wave = 0; wave < 6; wave++) {
          statuses.push(...await Promise.all(Array.from({ length: 500 }, () => openStream(port, sockets))))
        }
        const served = statuses.filter((s) => s === 200).length
        const refused = statuses.filter((s) => s === 503).length
        expect(served + refused, `every client got an answer: ${JSON.stringify(statuses.filter((s) => s !== 200 && s !== 503).slice(0, 5))}`).toBe(3000)
        expect(served).toBeGreaterThan(0)
        expect(refused).toBeGreaterThan(0)

        const page = await fetch(`${url}/`)
        expect(page.status).toBe(200)
        expect(await page.text()).toContain("Overview")

        const metrics = await (await fetch(`${url}/metrics`)).text()
        expect(metrics).toMatch(new RegExp(`^buquet_dashboard_event_streams ${served}$`, "m"))
        expect(metrics).toMatch(/^buquet_dashboard_event_streams_refused_total [1-9]\d*$/m)
      } finally {
        clearInterval(sampler)
      }
      peak = Math.max(peak, rssMb(dashboard.pid))
      expect(peak, `the dashboard's peak RSS in MB (idle ${idle.toFixed(0)})`).toBeLessThan(200)
    } finally {
      for (const s of sockets) s.destroy()
      dashboard.signal("SIGTERM")
      await dashboard.exited
    }
  }, 120_000)
})
