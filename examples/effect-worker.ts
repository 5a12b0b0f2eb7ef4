/**
 * A worker in Effect style: handlers are Effects, failures are tagged errors routed by type
 * (RetryableError → retry with backoff, PermanentError → failed now). It submits its own work, runs
 * the worker in a Scope, waits on the worker's event stream until every task is final, and stops.
 *
 *   npx tsx examples/effect-worker.ts
 *
 * A long-running worker uses `Worker.run(options, handlers)`, which returns after SIGINT/SIGTERM.
 * In your own project, import from "buquet" instead of "../src/index.js".
 *
 * @module
 */
import { Console, Effect, Option, Schema, Stream } from "effect"
import { Buquet, PermanentError, Queue, RetryableError, TaskType, Worker } from "../src/index.js"

const Resize = TaskType.make("resize", {
  input: Schema.Struct({ image: Schema.String, width: Schema.Int }),
  output: Schema.Struct({ thumbnail: Schema.String })
})

const resize = Worker.handler(Resize, (input, ctx) =>
  Effect.gen(function*() {
    if (input.width <= 0) return yield* new PermanentError({ message: `width ${input.width} is not positive` })
    if (ctx.attempt === 1) return yield* new RetryableError({ message: "image service busy" })
    yield* ctx.progress({ step: "resizing" })
    return { thumbnail: `${input.image}@${input.width}` }
  }))

/** One line per worker event: what happened to which task. */
const describe = (e: Worker.WorkerEvent): string => {
  switch (e._tag) {
    case "Progress":
      return `Progress ${e.taskId} ${JSON.stringify(e.progress)}`
    case "LeaseLost":
      return `LeaseLost ${e.taskId}: ${e.reason}`
    case "Retried":
    case "Failed":
      return `${e._tag} ${e.task.id}: ${e.error}`
    default:
      return `${e._tag} ${e.task.id}`
  }
}

const program = Effect.gen(function*() {
  const queue = yield* Queue
  const worker = yield* Worker.make({ concurrency: 2, shardPrefixLen: queue.config.shardPrefixLen }, [resize])
  // subscribe before submitting, so no event is missed
  const events = yield* worker.subscribe

  const fast = { retryPolicy: { initialIntervalMs: 100, maxIntervalMs: 500 } }
  const tasks = [
    yield* queue.submit(Resize, { image: "cat.png", width: 200 }, fast),
    yield* queue.submit(Resize, { image: "dog.png", width: 0 }, fast)
  ]
  yield* events.pipe(
    Stream.tap((e) => Console.log(describe(e))),
    Stream.filter((e) => e._tag === "Completed" || e._tag === "Failed"),
    Stream.take(tasks.length),
    Stream.runDrain
  )
  yield* worker.stop

  for (const t of tasks) {
    // get returns an Option (the task may have been deleted): unwrap it before printing
    const now = yield* queue.get(t.id)
    yield* Option.match(now, {
      onNone: () => Console.log(`${t.id}: gone`),
      onSome: (task) => Console.log(`${task.id}: ${task.status}`, task.output ?? task.lastError)
    })
  }
})

program.pipe(Effect.scoped, Effect.provide(Buquet.layerFromConfig({ defaultDirectory: ".buquet-examples" })), Effect.runPromise).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
