/**
 * A worker embedded in a user's process loads only what it uses (issue 17, memory without heap
 * flags): ajv (+ ajv-formats, ~8 MB) only once a task type's JSON Schema is compiled, and the HTTP
 * router (~5 MB) only when a metrics endpoint is served. A spawned Node process imports
 * `buquet/promise`'s sources, runs a task through a worker on a memory store, then publishes a
 * schema; a module-load hook records every module it loads. The lazy load changes no error: a
 * bad input is still refused with `SchemaValidationFailed`, an invalid schema with `InvalidArgument`.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { root } from "../cli/support.js"

const dir = mkdtempSync(join(tmpdir(), "buquet-lazy-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

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
// CommonJS packages (ajv) are loaded by require: the load hook sees only ESM, the require cache the rest
const loaded = (stage) => {
  const cjs = Object.keys(createRequire(import.meta.url).cache)
  appendFileSync(${JSON.stringify(log)}, cjs.map((p) => "cjs:" + p).join("\\n") + "\\n=== " + stage + "\\n")
}
const queue = await connect({ storage: "memory", quiet: true })
const worker = queue.worker({ concurrency: 2, signals: false })
worker.task("echo", async (input) => input)
const running = worker.run()
const task = await queue.submit("echo", { n: 1 })
const done = await queue.waitFor(task.id, { timeoutMs: 60_000 })
console.log("status", done.status)
loaded("worked")
await queue.schemas.publish("ship", { input: { type: "object", required: ["item"], properties: { item: { type: "string" } } } })
const refusal = (p) => p.then(() => "accepted", (e) => e._tag)
console.log("bad input", await refusal(queue.submit("ship", { item: 5 })))
console.log("invalid schema", await refusal(queue.schemas.publish("bad", { input: { type: "no-such-type" } })))
loaded("schemas")
await worker.stop()
await running
await queue.close()
`

const run = (): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) =>
    execFile(
      process.execPath,
      ["--import", "tsx", "--import", register, "--input-type=module", "-e", script],
      { cwd: root, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
    )
  )

describe("buquet/promise loads only what a worker uses", () => {
  it("no ajv before a schema is compiled, no HTTP router without a metrics endpoint; errors unchanged", async () => {
    const out = await run()
    expect(out.code, out.stderr).toBe(0)
    expect(out.stdout).toContain("status completed")
    expect(out.stdout).toContain("bad input SchemaValidationFailed")
    expect(out.stdout).toContain("invalid schema InvalidArgument")
    const [worked = "", schemas = ""] = readFileSync(log, "utf8").split(/^=== worked$/m)
    const ajv = /node_modules\/ajv(-formats)?\//
    const router = /@effect\/platform\/dist\/esm\/(HttpRouter|internal\/httpRouter)\.js/
    expect(worked).toMatch(/src\/programs\/Worker\.ts/)
    expect(worked).not.toMatch(ajv)
    expect(worked).not.toMatch(router)
    expect(schemas).toMatch(ajv)
  }, 150_000)
})
