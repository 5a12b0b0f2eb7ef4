// Issue 9, acceptance 1: a Promise-only program, spawned as its own process, submits 100 tasks and
// runs a worker (concurrency 4) that fails some with RetryableError (then succeeds) and some with
// PermanentError; it sees exactly the expected final statuses, and after `close()` the process
// exits on its own with code 0 (no open handles keep it alive).
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { track } from "../support/processes.js"

const fixture = join(import.meta.dirname, "fixtures", "hundred.ts")
const dirs: Array<string> = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

interface Outcome {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly killedByTest: boolean
  readonly stdout: string
  readonly stderr: string
}

/** Runs the fixture; kills it (and reports that) if it has not exited after `limitMs`. */
const runFixture = (env: Record<string, string>, limitMs: number): Promise<Outcome> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fixture], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    // stopped after the test (SIGTERM, then SIGKILL) if it is still running then: test/support/setup.ts
    track(child)
    let stdout = ""
    let stderr = ""
    let killedByTest = false
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const guard = setTimeout(() => {
      killedByTest = true
      child.kill("SIGKILL")
    }, limitMs)
    child.on("error", reject)
    child.on("exit", (code, signal) => {
      clearTimeout(guard)
      resolve({ code, signal, killedByTest, stdout, stderr })
    })
  })

interface Seen {
  readonly maxInFlight: number
  readonly tasks: ReadonlyArray<{
    readonly n: number
    readonly kind: "permanent" | "flaky" | "ok"
    readonly status: string
    readonly attempt: number
    readonly retryCount: number
    readonly output: unknown
    readonly lastError: string | null
    readonly createdAtIsDate: boolean
  }>
}

describe("Promise facade, acceptance 1", () => {
  it("the fixture is Promise-only: it imports nothing from effect", () => {
    const source = readFileSync(fixture, "utf8")
    expect(source).not.toMatch(/from\s+["'](effect|@effect\/[^"']*)["']/)
    expect(source).toMatch(/from\s+["'][^"']*promise(\.js)?["']/)
  })

  it("100 tasks on the embedded file store: retryable ones succeed on attempt 2, permanent ones fail at once, and the process exits by itself", async () => {
    const dir = mkdtempSync(join(tmpdir(), "buquet-promise-"))
    dirs.push(dir)
    const out = await runFixture({ BUQUET_FIXTURE_DIR: dir }, 100_000)
    expect(out.killedByTest, `the process did not exit on its own; stderr:\n${out.stderr}`).toBe(false)
    expect(out.signal).toBeNull()
    expect(out.code, out.stderr).toBe(0)

    const seen = JSON.parse(out.stdout.trim().split("\n").at(-1) ?? "") as Seen
    expect(seen.tasks).toHaveLength(100)
    expect(seen.maxInFlight).toBeGreaterThanOrEqual(1)
    expect(seen.maxInFlight).toBeLessThanOrEqual(4)
    for (const t of seen.tasks) {
      expect(t.createdAtIsDate).toBe(true)
      switch (t.kind) {
        case "permanent":
          expect(t).toMatchObject({ status: "failed", attempt: 1, retryCount: 0, output: null })
          expect(t.lastError).toContain(`task ${t.n} can never work`)
          break
        case "flaky":
          expect(t).toMatchObject({ status: "completed", attempt: 2, retryCount: 1, output: { doubled: t.n * 2 } })
          break
        case "ok":
          expect(t).toMatchObject({ status: "completed", attempt: 1, retryCount: 0, output: { doubled: t.n * 2 } })
          break
      }
    }
    const count = (kind: string, status: string) => seen.tasks.filter((t) => t.kind === kind && t.status === status).length
    expect([count("permanent", "failed"), count("flaky", "completed"), count("ok", "completed")]).toEqual([10, 30, 60])
  })
})
