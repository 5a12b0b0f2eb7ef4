// Issue 9, acceptance 2: every example runs to completion by itself against the embedded file
// store (each in its own directory, chosen through BUQUET_STORAGE as a user would), exits 0, and
// prints what it claims to do. The handlers module is loaded the way `buquet worker --handlers`
// loads it and its handlers run in a real worker. Generous limits: the machine is shared, and a
// worker that went idle may take its time to notice a short retry.
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, describe, expect, it as vitestIt } from "vitest"
import { connect, handlersFromModule } from "../../src/promise.js"
import handlers from "../../examples/handlers.js"
import { track } from "../support/processes.js"

const it = (name: string, fn: () => Promise<void>) => vitestIt(name, fn, 200_000)

const root = join(import.meta.dirname, "..", "..")
const dirs: Array<string> = []
const freshDir = () => {
  const d = mkdtempSync(join(tmpdir(), "buquet-example-"))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** The environment with no store configured at all: no S3, BUQUET_* or user config file. */
const unconfigured = (home: string): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(S3_|BUQUET_|AWS_)/.test(k))),
  HOME: home,
  XDG_CONFIG_HOME: join(home, ".config")
})

const runExample = (
  name: string,
  dir: string,
  where: { readonly cwd: string; readonly env: NodeJS.ProcessEnv } = { cwd: root, env: { ...process.env, BUQUET_STORAGE: `file://${dir}` } }
): Promise<{ code: number | null; killed: boolean; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    // tsx by its path, so the example also runs with a working directory outside the project
    const tsx = pathToFileURL(join(root, "node_modules", "tsx", "dist", "loader.mjs")).href
    const child = spawn(process.execPath, ["--import", tsx, join(root, "examples", `${name}.ts`)], {
      cwd: where.cwd,
      env: where.env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    // stopped after the test (SIGTERM, then SIGKILL) if it is still running then: test/support/setup.ts
    track(child)
    let stdout = ""
    let stderr = ""
    let killed = false
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const guard = setTimeout(() => {
      killed = true
      child.kill("SIGKILL")
    }, 170_000)
    child.on("error", reject)
    child.on("exit", (code) => {
      clearTimeout(guard)
      resolve({ code, killed, stdout, stderr })
    })
  })

/** What an example prints is for people: no Effect data types' inner form (`Option` as JSON, `DateTime.Utc(…)`). */
const expectReadable = (name: string, stdout: string) => {
  expect(stdout, `${name} prints a DateTime's inspect form`).not.toContain("DateTime.Utc(")
  expect(stdout, `${name} prints an Effect data type's JSON`).not.toMatch(/"?_id"?\s*:|"?_tag"?\s*:/)
}

const expectRuns = async (name: string) => {
  const out = await runExample(name, freshDir())
  expect(out.killed, `${name} did not finish by itself; stderr:\n${out.stderr}`).toBe(false)
  expect(out.code, `${name} stderr:\n${out.stderr}`).toBe(0)
  expectReadable(name, out.stdout)
  return out.stdout
}

describe("examples", () => {
  it("promise-producer submits, de-duplicates, bulk-submits, reads back and cancels", async () => {
    const stdout = await expectRuns("promise-producer")
    expect(stdout).toMatch(/submitted send_email [0-9a-f-]{36}: pending/)
    expect(stdout).toContain("idempotent submit: one task")
    expect(stdout).toContain("bulk: 3 submitted, 0 failed")
    expect(stdout).toContain("pending resize tasks: 3")
    expect(stdout).toContain("cancel: cancelled")
  })

  it("promise-worker retries, fails for good, reschedules, and stops when all are final", async () => {
    const stdout = await expectRuns("promise-worker")
    expect(stdout).toMatch(/send_email \S+: completed after 2 attempt\(s\)/)
    expect(stdout).toMatch(/send_email \S+: failed after 1 attempt\(s\) PermanentError: not-an-address is not an e-mail address/)
    expect(stdout).toMatch(/call_api \S+: completed after 2 attempt\(s\)/)
    expect(stdout).toContain("retrying")
    expect(stdout).toContain("rescheduled")
  })

  it("cron fires its every-second schedule twice through the embedded scheduler, then cleans up", async () => {
    const stdout = await expectRuns("cron")
    expect(stdout).toContain("report #1")
    expect(stdout).toContain("report #2")
    expect(stdout).toMatch(/last run: \d{4}-\d\d-\d\dT/)
  })

  it("effect-producer submits typed tasks", async () => {
    const stdout = await expectRuns("effect-producer")
    expect(stdout).toMatch(/submitted send_email [0-9a-f-]{36}, available at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\n/)
    expect(stdout).toContain("bulk: 2 submitted")
    expect(stdout).toContain("pending send_email tasks: 3")
  })

  it("effect-worker completes one task after a retry and fails the other for good", async () => {
    const stdout = await expectRuns("effect-worker")
    expect(stdout).toMatch(/^Progress [0-9a-f-]{36} \{"step":"resizing"\}$/m)
    expect(stdout).toMatch(/^Retried [0-9a-f-]{36}: image service busy$/m)
    expect(stdout).toMatch(/: completed \{ thumbnail: 'cat\.png@200' \}/)
    expect(stdout).toMatch(/: failed PermanentError: width 0 is not positive/)
  })

  // Issue 16 item 17: with nothing configured, an example must not put its tasks into the
  // project's own ./.buquet (a worker there would run them, or they would linger in its listings).
  it("with nothing configured, the Promise and Effect examples keep their tasks in ./.buquet-examples", async () => {
    for (const name of ["promise-producer", "effect-producer"]) {
      const cwd = freshDir()
      const out = await runExample(name, cwd, { cwd, env: unconfigured(cwd) })
      expect(out.code, `${name} stderr:\n${out.stderr}`).toBe(0)
      expect(existsSync(join(cwd, ".buquet-examples", "tasks")), `${name} wrote no tasks to ./.buquet-examples`).toBe(true)
      expect(existsSync(join(cwd, ".buquet")), `${name} wrote into the project's ./.buquet`).toBe(false)
    }
  })

  it("handlers.ts: its default export loads as handler definitions, and a worker runs them", async () => {
    const definitions = handlersFromModule(handlers)
    expect(definitions.map((d) => d.taskType).sort()).toEqual(["add", "send_email"])

    const queue = await connect({ directory: freshDir(), logLevel: "error" })
    try {
      const good = await queue.submit("send_email", { to: "ada@example.com" })
      const bad = await queue.submit("send_email", { to: "nobody" })
      const sum = await queue.submit("add", { a: 2, b: 3 })
      const worker = queue.worker({ monitor: false, signals: false, concurrency: 2 }).register(handlers)
      let final = 0
      const done = () => {
        if (++final === 3) void worker.stop()
      }
      worker.on("completed", done).on("failed", done)
      await worker.run()
      expect(await queue.get(good.id)).toMatchObject({ status: "completed", output: { sent: true, to: "ada@example.com" } })
      expect(await queue.get(bad.id)).toMatchObject({ status: "failed", attempt: 1, lastError: "PermanentError: nobody is not an e-mail address" })
      expect(await queue.get(sum.id)).toMatchObject({ status: "completed", output: { sum: 5 } })
    } finally {
      await queue.close()
    }
  })
})
