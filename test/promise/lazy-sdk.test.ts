/**
 * A worker on S3 does not load the AWS SDK (issue 17, memory without heap flags: `@aws-sdk/client-s3`
 * and its HTTP handler are ~10 MB of a worker's RSS). A spawned Node process imports
 * `buquet/promise`'s sources, connects to the real server (RGW) with keys from the environment,
 * runs a task through a worker and lists the queue; a module-load hook records every module it
 * loads. Then it imports the SDK itself, which the hook must see (the check can fail).
 */
import { expect, it } from "vitest"
import { moduleLoads } from "../support/moduleLoads.js"
import { cliEnv, describeS3, prefixesEmptiedAfterAll } from "../support/s3.js"

const freshPrefix = prefixesEmptiedAfterAll()
const rec = moduleLoads("buquet-lazy-sdk-")

const script = `${rec.prelude}
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
    const out = await rec.run(script, { ...process.env, ...cliEnv(settings, freshPrefix(settings)) })
    expect(out.code, out.stderr).toBe(0)
    expect(out.stdout).toContain("status completed")
    expect(out.stdout).toMatch(/listed [1-9]/)
    const [worked, imported] = rec.stages("worked")
    const sdk = /@aws-sdk\/client-s3\/|@smithy\/node-http-handler\/|@aws-sdk\/credential-provider-node\//
    expect(worked).toMatch(/src\/layers\/S3Http\.ts/)
    expect(worked).not.toMatch(sdk)
    // the hook does see the SDK once something imports it
    expect(imported).toMatch(/@aws-sdk\/client-s3\//)
  }, 150_000)
})
