/**
 * A library's log lines belong on stderr: a program that uses `buquet/promise` owns its stdout
 * (`node export.js | jq`), and a warning printed there corrupts it. A spawned Node process
 * connects to the embedded store at `logLevel: "info"`, submits a type no worker ever registered
 * (which warns) and runs a worker; its stdout must hold only what the program printed.
 */
import { execFile } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { describe, expect, it } from "vitest"
import { root } from "../cli/support.js"

const script = (dir: string) => `
const { connect } = await import(${JSON.stringify(pathToFileURL(join(root, "src", "promise.ts")).href)})
const queue = await connect({ directory: ${JSON.stringify(dir)}, logLevel: "info" })
await queue.submit("nobody-handles-this", { n: 1 })
const worker = queue.worker({ concurrency: 1, signals: false }).task("echo", async (input) => input)
const running = worker.run()
const task = await queue.submit("echo", { n: 2 })
await queue.waitFor(task.id, { timeoutMs: 60_000 })
await worker.stop()
await running
await queue.close()
console.log("OUTPUT-ONLY")
`

describe("the Promise API's log lines", () => {
  it("go to stderr, never to the program's stdout", async () => {
    const dir = mkdtempSync(join(tmpdir(), "buquet-logstream-"))
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script(dir)], {
        cwd: root,
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: dir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
        timeout: 120_000
      }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }))
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe("OUTPUT-ONLY\n")
    // the warning was printed, on stderr
    expect(r.stderr).toMatch(/level=WARN .*nobody-handles-this/)
  }, 150_000)
})
