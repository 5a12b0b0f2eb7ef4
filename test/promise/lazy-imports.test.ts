/**
 * A worker embedded in a user's process loads only what it uses (issue 17, memory without heap
 * flags): ajv (+ ajv-formats, ~8 MB) only once a task type's JSON Schema is compiled, and the HTTP
 * router (~5 MB) only when a metrics endpoint is served. A spawned Node process imports
 * `buquet/promise`'s sources, runs a task through a worker on a memory store, then publishes a
 * schema; a module-load hook records every module it loads. The lazy load changes no error: a
 * bad input is still refused with `SchemaValidationFailed`, an invalid schema with `InvalidArgument`.
 */
import { describe, expect, it } from "vitest"
import { moduleLoads } from "../support/moduleLoads.js"

const rec = moduleLoads("buquet-lazy-")

const script = `${rec.prelude}
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

describe("buquet/promise loads only what a worker uses", () => {
  it("no ajv before a schema is compiled, no HTTP router without a metrics endpoint; errors unchanged", async () => {
    const out = await rec.run(script)
    expect(out.code, out.stderr).toBe(0)
    expect(out.stdout).toContain("status completed")
    expect(out.stdout).toContain("bad input SchemaValidationFailed")
    expect(out.stdout).toContain("invalid schema InvalidArgument")
    const [worked, schemas] = rec.stages("worked")
    const ajv = /node_modules\/ajv(-formats)?\//
    const router = /@effect\/platform\/dist\/esm\/(HttpRouter|internal\/httpRouter)\.js/
    expect(worked).toMatch(/src\/programs\/Worker\.ts/)
    expect(worked).not.toMatch(ajv)
    expect(worked).not.toMatch(router)
    expect(schemas).toMatch(ajv)
  }, 150_000)
})
