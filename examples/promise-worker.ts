/**
 * A worker in Promise style. It submits its own work first, so it runs to completion by itself:
 * one handler fails once with RetryableError and succeeds on the retry, one rejects bad input with
 * PermanentError, one asks to be run later with RescheduleError. It stops once every task is final.
 *
 *   npx tsx examples/promise-worker.ts
 *
 * A long-running worker leaves out the counting and just awaits `worker.run()`, which resolves
 * after SIGINT or SIGTERM (graceful: running handlers finish, then the worker deregisters).
 * In your own project, import from "buquet/promise" instead of "../src/promise.js".
 *
 * @module
 */
import { connect, PermanentError, RescheduleError, RetryableError } from "../src/promise.js"

const queue = await connect({ defaultDirectory: ".buquet-examples" })
try {
  const fast = { retryPolicy: { initialIntervalMs: 100, maxIntervalMs: 500 } }
  const tasks = [
    await queue.submit("send_email", { to: "ada@example.com" }, fast),
    await queue.submit("send_email", { to: "not-an-address" }, fast),
    await queue.submit("call_api", { endpoint: "/rates" }, fast)
  ]

  const worker = queue.worker({ concurrency: 4 })
  worker.task("send_email", async (input, ctx) => {
    const { to } = input as { to: string }
    if (!to.includes("@")) throw new PermanentError(`${to} is not an e-mail address`)
    // pretend the mail server is busy the first time
    if (ctx.attempt === 1) throw new RetryableError("mail server busy")
    ctx.progress({ step: "sending" })
    return { sent: true, to, attempt: ctx.attempt }
  })
  worker.task("call_api", async (_input, ctx) => {
    // a rate-limited API: come back in 200 ms, without using a retry
    if (ctx.task.rescheduleCount === 0) throw new RescheduleError({ delayMs: 200, message: "rate limited" })
    return { rate: 1.08 }
  })

  let final = 0
  const done = () => {
    if (++final === tasks.length) void worker.stop()
  }
  worker.on("completed", done).on("failed", done)
  worker.on("retried", (e) => console.log(`retrying ${e.taskId}: ${e.error}`))
  worker.on("rescheduled", (e) => console.log(`rescheduled ${e.taskId}`))
  await worker.run()

  for (const t of tasks) {
    const now = await queue.get(t.id)
    console.log(`${now?.taskType} ${now?.id}: ${now?.status} after ${now?.attempt} attempt(s)`, now?.output ?? now?.lastError)
  }
} finally {
  await queue.close()
}
