/**
 * A worker on S3 does not load the AWS SDK (issue 17, memory without heap flags: `@aws-sdk/client-s3`
 * and its HTTP handler are ~10 MB of a worker's RSS). A spawned Node process imports
 * `buquet/promise`'s sources, connects to the real server (RGW) with keys from the environment,
 * runs a task through a worker and lists the queue; a module-load hook records every module it
 * loads. Then it imports the SDK itself, which the hook must see (the check can fail).
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, expect, it } from "vitest"
import { root } from "../cli/support.js"
import { cliEnv, describeS3, prefixesEmptiedAfterAll } from "../support/s3.js"

const dir = mkdtempSync(join(tmpdir(), "buquet-lazy-sdk-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const freshPrefix = prefixesEmptiedAfterAll()

const log = join(dir, "loaded.txt")
const hook = join(dir, "hook.mjs")
writeFileSync(
  hook,
  `import { appendFileSync } from "node:fs"
export async function load(url, context, next) { appendFileSync(${JSON.stringify(log)}, url + "\\n"); return next(url, context) }
`
)
const register = join(dir, "register.mjs")
writeFileSync(register, `import { register } from "node:module"\nregister(${JSON.stringify(pathToFileURL(hook).href)})\n`)

const script = `
import { createRequire } from "node:module"
import { appendFileSync } from "node:fs"
const { connect } = await import(${JSON.stringify(pathToFileURL(join(root, "src", "promise.ts")).href)})
// CommonJS modules are loaded by require: the load hook sees only ESM, the require cache the rest
const loaded = (stage) => {
  const cjs = Object.keys(createRequire(import.meta.url).cache)
  appendFileSync(${JSON.stringify(log)}, cjs.map((p) => "cjs:" + p).join("\\n") + "\\n=== " + stage + "\\n")
}
const queue = await connect({ quiet: true })
const worker = queue.worker({ concurrency: 2, signals: false })
worker.task("echo", async (input) => input)
const running = worker.run()
const task = await queue.submit("echo", { n: 1 })
const done = await queue.waitFor(task.id, { timeoutMs: 60_000 })
console.log("status", done.status)
console.log("listed", (await queue.list({ limit: 10 })).tasks.length)
await worker.stop()
await running
await queue.close()
loaded("worked")
await import("@aws-sdk/client-s3")
loaded("imported")
`

describeS3("a worker on S3 loads no AWS SDK", (settings) => {
  it("runs a task with keys from the environment without @aws-sdk/client-s3 or its HTTP handler", async () => {
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        ["--import", "tsx", "--import", register, "--input-type=module", "-e", script],
        { cwd: root, timeout: 120_000, env: { ...process.env, ...cliEnv(settings, freshPrefix(settings)) } },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
      )
    )
    expect(out.code, out.stderr).toBe(0)
    expect(out.stdout).toContain("status completed")
    expect(out.stdout).toMatch(/listed [1-9]/)
    const [worked = "", imported = ""] = readFileSync(log, "utf8").split(/^=== worked$/m)
    const sdk = /@aws-sdk\/client-s3\/|@smithy\/node-http-handler\/|@aws-sdk\/credential-provider-node\//
    expect(worked).toMatch(/src\/layers\/S3Http\.ts/)
    expect(worked).not.toMatch(sdk)
    // the hook does see the SDK once something imports it
    expect(imported).toMatch(/@aws-sdk\/client-s3\//)
  }, 150_000)
})
