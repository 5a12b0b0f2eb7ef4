/**
 * `buquet demo` (issue 7): the queue end to end in well under a minute. It submits a mix of tasks
 * — quick ones, flaky ones that fail and are retried, some scheduled a few seconds ahead, one
 * cancelled before it runs, one that fails for good, one that runs out of retries — then runs
 * several workers in this process (each a Worker in the Scope, polling fast), reports progress
 * every second through `onProgress`, and returns a summary once every demo task is terminal.
 *
 * Rendering is the caller's (the CLI draws a line per second, or redraws it on a TTY).
 *
 * @module
 */
import { DateTime, Duration, Effect, Option, Schedule, Schema } from "effect"
import { PermanentError, RetryableError } from "../domain/HandlerErrors.js"
import type { Task } from "../domain/Task.js"
import type { TaskStatus } from "../domain/TaskStatus.js"
import { Queue } from "../services/Queue.js"
import { ServerClock } from "../services/ServerClock.js"
import * as Worker from "./Worker.js"

/** Options of {@link run}; every one has a default. */
export interface DemoOptions {
  /** Workers run in this process (default 3). */
  readonly workers?: number | undefined
  /** Tasks each worker runs at once (default 2). */
  readonly concurrency?: number | undefined
  /** How far ahead the scheduled tasks are (default 3 s). */
  readonly scheduleAhead?: Duration.DurationInput | undefined
  /** Give up after this long (default 50 s). */
  readonly timeout?: Duration.DurationInput | undefined
  /** Called about once a second while the demo runs. */
  readonly onProgress?: ((progress: DemoProgress) => Effect.Effect<void>) | undefined
}

/** Where the demo stands. */
export interface DemoProgress {
  readonly elapsedMillis: number
  readonly total: number
  /** Demo tasks by status now. */
  readonly byStatus: Readonly<Partial<Record<TaskStatus, number>>>
  /** Attempts started so far, over all demo tasks. */
  readonly attempts: number
}

/** One line of the summary: a kind of demo task. */
export interface DemoRow {
  readonly taskType: string
  readonly what: string
  readonly tasks: number
  readonly byStatus: Readonly<Partial<Record<TaskStatus, number>>>
  readonly attempts: number
  /** Mean time from submission to the end (completed/failed/cancelled), in ms. */
  readonly meanMillis: number
}

/** What the demo did. */
export interface DemoSummary {
  readonly rows: ReadonlyArray<DemoRow>
  readonly total: number
  readonly byStatus: Readonly<Partial<Record<TaskStatus, number>>>
  readonly attempts: number
  readonly elapsedMillis: number
  readonly workers: number
}

/** The demo did not finish in time (a stuck store, or workers that cannot claim). */
export class DemoTimedOut extends Schema.TaggedError<DemoTimedOut>()("DemoTimedOut", {
  message: Schema.String
}) {}

/** The kinds of demo task, with how many of each and what they show. */
const kinds = [
  { taskType: "demo.resize", count: 8, what: "quick work" },
  { taskType: "demo.flaky", count: 4, what: "fails once or twice, then succeeds" },
  { taskType: "demo.report", count: 3, what: "scheduled a few seconds ahead" },
  { taskType: "demo.exhausted", count: 1, what: "fails every time: out of retries" },
  { taskType: "demo.invalid", count: 1, what: "fails for good (PermanentError)" },
  { taskType: "demo.cancelled", count: 1, what: "cancelled before it runs" }
] as const

const work = (millis: number) => Effect.sleep(Duration.millis(millis))

const handlers = [
  Worker.handler("demo.resize", (input) => Effect.as(work(150 + 50 * ((input as { n: number }).n % 4)), { resized: true })),
  Worker.handler("demo.flaky", (input, ctx) => {
    const failures = (input as { n: number }).n % 2 === 0 ? 1 : 2
    return ctx.attempt <= failures
      ? Effect.zipRight(work(100), Effect.fail(new RetryableError({ message: `upstream busy (attempt ${ctx.attempt})` })))
      : Effect.as(work(100), { ok: true, attempts: ctx.attempt })
  }),
  Worker.handler("demo.report", () => Effect.as(work(200), { rows: 42 })),
  Worker.handler("demo.exhausted", (_, ctx) => Effect.fail(new RetryableError({ message: `still broken (attempt ${ctx.attempt})` }))),
  Worker.handler("demo.invalid", () => Effect.fail(new PermanentError({ message: "the input can never be processed" }))),
  Worker.handler("demo.cancelled", () => Effect.succeed({ ranAnyway: true }))
]

const count = (tasks: ReadonlyArray<Task>): Partial<Record<TaskStatus, number>> => {
  const out: Partial<Record<TaskStatus, number>> = {}
  for (const t of tasks) out[t.status] = (out[t.status] ?? 0) + 1
  return out
}

const terminal: ReadonlySet<TaskStatus> = new Set<TaskStatus>(["completed", "failed", "cancelled", "expired", "archived"])

/** Runs the demo on the Queue in context; returns once every demo task is terminal. */
export const run = Effect.fn("Demo.run")(function*(options: DemoOptions = {}) {
  const queue = yield* Queue
  const clock = yield* ServerClock
  const started = yield* clock.currentTimeMillis
  const fast = {
    retryPolicy: { initialIntervalMs: 300, maxIntervalMs: 1000, multiplier: 2, jitterPercent: 0.1 },
    // its workers start right after the submits: no "no worker has ever handled" warnings
    typeCheck: "off" as const
  }
  const ahead = Duration.decode(options.scheduleAhead ?? Duration.seconds(3))

  // --- submit the mix ---------------------------------------------------------------------------
  const submitted: Array<{ readonly taskType: string; readonly id: string }> = []
  for (const kind of kinds) {
    for (let n = 0; n < kind.count; n++) {
      const extra = kind.taskType === "demo.report"
        ? { delay: Duration.sum(ahead, Duration.millis(500 * n)) }
        : kind.taskType === "demo.cancelled"
        ? { delay: Duration.minutes(10) }
        : kind.taskType === "demo.exhausted"
        ? { maxRetries: 2 }
        : {}
      const task = yield* queue.submit(kind.taskType, { n }, { ...fast, ...extra })
      submitted.push({ taskType: kind.taskType, id: task.id })
    }
  }
  for (const s of submitted.filter((s) => s.taskType === "demo.cancelled")) {
    yield* queue.cancel(s.id, { reason: "the demo cancels one task", cancelledBy: "demo" })
  }

  // --- read the demo's tasks back ---------------------------------------------------------------
  const readAll = Effect.forEach(submitted, (s) => Effect.map(queue.get(s.id), Option.getOrUndefined), { concurrency: 8 }).pipe(
    Effect.map((ts) => ts.filter((t): t is Task => t !== undefined))
  )
  const progress = Effect.gen(function*() {
    const tasks = yield* readAll
    const now = yield* clock.currentTimeMillis
    const p: DemoProgress = {
      elapsedMillis: now - started,
      total: submitted.length,
      byStatus: count(tasks),
      attempts: tasks.reduce((n, t) => n + t.attempt, 0)
    }
    return { tasks, progress: p }
  })

  // --- run the workers until every demo task is terminal ----------------------------------------
  const workers = options.workers ?? 3
  const finalTasks = yield* Effect.scoped(Effect.gen(function*() {
    for (let i = 1; i <= workers; i++) {
      yield* Worker.make({
        id: `demo-worker-${i}`,
        concurrency: options.concurrency ?? 2,
        shardPrefixLen: queue.config.shardPrefixLen,
        polling: { _tag: "Adaptive", min: Duration.millis(50), max: Duration.millis(500) },
        wakeUp: false,
        monitor: false,
        shutdownGracePeriod: Duration.seconds(5)
      }, handlers)
    }
    const onProgress = options.onProgress ?? (() => Effect.void)
    const poll = Effect.gen(function*() {
      const p = yield* progress
      yield* onProgress(p.progress)
      return p.tasks
    })
    const done = (tasks: ReadonlyArray<Task>) => tasks.length === submitted.length && tasks.every((t) => terminal.has(t.status))
    // once a second until every demo task is terminal; the schedule passes the last read through
    const everySecond = Schedule.spaced(Duration.seconds(1)).pipe(
      Schedule.whileInput((tasks: ReadonlyArray<Task>) => !done(tasks)),
      Schedule.passthrough
    )
    return yield* Effect.repeat(poll, everySecond).pipe(
      Effect.timeoutFail({
        duration: options.timeout ?? Duration.seconds(50),
        onTimeout: () =>
          new DemoTimedOut({
            message: "the demo did not finish in time; check that the store is reachable (buquet doctor) and try again"
          })
      })
    )
  }))

  // --- summary ----------------------------------------------------------------------------------
  const ended = yield* clock.currentTimeMillis
  const byId = new Map(finalTasks.map((t) => [t.id, t]))
  const rows: ReadonlyArray<DemoRow> = kinds.map((kind) => {
    const tasks = submitted.filter((s) => s.taskType === kind.taskType).flatMap((s) => {
      const t = byId.get(s.id)
      return t === undefined ? [] : [t]
    })
    const durations = tasks.map((t) => DateTime.toEpochMillis(t.updatedAt) - DateTime.toEpochMillis(t.createdAt))
    return {
      taskType: kind.taskType,
      what: kind.what,
      tasks: tasks.length,
      byStatus: count(tasks),
      attempts: tasks.reduce((n, t) => n + t.attempt, 0),
      meanMillis: durations.length === 0 ? 0 : Math.round(durations.reduce((a, b) => a + b, 0) / durations.length)
    }
  })
  return {
    rows,
    total: finalTasks.length,
    byStatus: count(finalTasks),
    attempts: finalTasks.reduce((n, t) => n + t.attempt, 0),
    elapsedMillis: ended - started,
    workers
  } satisfies DemoSummary
})
