/**
 * A producer in Promise style: submits tasks with options, in bulk and idempotently, then reads
 * them back. Runs against whatever the configuration says (S3_BUCKET, BUQUET_STORAGE, …; with
 * nothing configured, the embedded file store ./.buquet-examples, kept apart from your project's
 * ./.buquet).
 *
 *   npx tsx examples/promise-producer.ts
 *
 * In your own project, import from "buquet/promise" instead of "../src/promise.js".
 *
 * @module
 */
import { connect } from "../src/promise.js"

const queue = await connect({ defaultDirectory: ".buquet-examples" })
try {
  // one task, with a few of the submit options
  const email = await queue.submit("send_email", { to: "ada@example.com", subject: "Welcome" }, {
    maxRetries: 5,
    timeoutSeconds: 60,
    priority: 10,
    tags: ["onboarding"],
    retryPolicy: { initialIntervalMs: 500, maxIntervalMs: 30_000 }
  })
  console.log(`submitted ${email.taskType} ${email.id}: ${email.status}, created ${email.createdAt.toISOString()}`)

  // a task for tomorrow that expires if nobody has run it an hour after that
  const reminder = await queue.submit("send_email", { to: "ada@example.com", subject: "Still there?" }, {
    delayMs: 24 * 3600 * 1000,
    ttlSeconds: 25 * 3600
  })
  console.log(`reminder available at ${reminder.availableAt.toISOString()}`)

  // the same idempotency key makes one task, however often it is submitted
  const a = await queue.submit("charge", { order: 42, cents: 1999 }, { idempotencyKey: "order-42" })
  const b = await queue.submit("charge", { order: 42, cents: 1999 }, { idempotencyKey: "order-42" })
  console.log(`idempotent submit: ${a.id === b.id ? "one task" : "two tasks (unexpected)"}`)

  // bulk: one result per item, failures reported, never hidden
  const results = await queue.submitMany([
    { taskType: "resize", input: { image: "a.png", width: 200 } },
    { taskType: "resize", input: { image: "b.png", width: 200 } },
    { taskType: "resize", input: { image: "c.png", width: 200 }, options: { priority: 100 } }
  ])
  console.log(`bulk: ${results.filter((r) => r.ok).length} submitted, ${results.filter((r) => !r.ok).length} failed`)

  // read back
  const again = await queue.get(email.id)
  console.log(`get: ${again?.id} is ${again?.status}`)
  const pending = await queue.list({ status: "pending", taskType: "resize", limit: 10 })
  console.log(`pending resize tasks: ${pending.tasks.length}`)

  // cancel the reminder: it was pending, so it is cancelled now
  const cancelled = await queue.cancel(reminder.id, { reason: "user replied" })
  console.log(`cancel: ${cancelled.outcome}`)
} finally {
  await queue.close()
}
