/**
 * A producer in Effect style: a typed task contract shared with the worker (its input is
 * type-checked and encoded by a Schema), submitted through the `Queue` service on the stack the
 * configuration describes (S3_BUCKET, BUQUET_STORAGE, …; else the embedded file store
 * ./.buquet-examples, kept apart from your project's ./.buquet).
 *
 *   npx tsx examples/effect-producer.ts
 *
 * In your own project, import from "buquet" instead of "../src/index.js".
 *
 * @module
 */
import { Console, DateTime, Effect, Schema } from "effect"
import { Buquet, Queue, TaskType } from "../src/index.js"

/** The contract of `send_email`, shared by producer and worker. */
export const SendEmail = TaskType.make("send_email", {
  input: Schema.Struct({ to: Schema.String, subject: Schema.String }),
  output: Schema.Struct({ sent: Schema.Boolean })
})

const program = Effect.gen(function*() {
  const queue = yield* Queue
  const task = yield* queue.submit(SendEmail, { to: "ada@example.com", subject: "Welcome" }, { maxRetries: 5, delay: "1 second" })
  // times are Effect DateTimes: format them for people (their toString is a debugging form)
  yield* Console.log(`submitted ${task.taskType} ${task.id}, available at ${DateTime.formatIso(task.availableAt)}`)

  const results = yield* queue.submitMany(SendEmail, [
    { to: "grace@example.com", subject: "Hello" },
    { to: "alan@example.com", subject: "Hello" }
  ])
  yield* Console.log(`bulk: ${results.filter((r) => r._tag === "Submitted").length} submitted`)

  const page = yield* queue.list({ taskType: "send_email", status: "pending" })
  yield* Console.log(`pending send_email tasks: ${page.tasks.length}`)
})

program.pipe(Effect.provide(Buquet.layerFromConfig({ defaultDirectory: ".buquet-examples" })), Effect.runPromise).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
