/**
 * Waiting for a task to finish (BullMQ's `waitUntilFinished`): re-reads the one task on a
 * Schedule — 50 ms, growing by half each time up to one read per second — until it is terminal,
 * so a short task is seen at once and a long wait costs at most one GET per second. Bounded by an
 * optional timeout that fails with {@link WaitTimeout}.
 *
 * ```ts
 * const done = yield* WaitFor.waitFor(task.id, { timeout: "30 seconds" })   // Effect<Task, …, Queue>
 * ```
 *
 * @module
 */
import { Duration, Effect, Option, Schedule, Schema } from "effect"
import { TaskNotFound } from "../domain/TaskErrors.js"
import { isTerminal } from "../domain/TaskStatus.js"
import type { Task } from "../domain/Task.js"
import { Queue } from "../services/Queue.js"

/**
 * The task did not finish within the wait's timeout (it is still there, in `status`).
 *
 * @since 0.1.0
 * @category errors
 */
export class WaitTimeout extends Schema.TaggedError<WaitTimeout>()("WaitTimeout", {
  taskId: Schema.String,
  status: Schema.String,
  message: Schema.String
}) {}

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this long (default: wait until the task finishes). */
  readonly timeout?: Duration.DurationInput | undefined
}

/** How often the task is read while waiting. */
const pollSchedule = Schedule.exponential(Duration.millis(50), 1.5).pipe(Schedule.union(Schedule.spaced(Duration.seconds(1))))

/**
 * Waits until the task is terminal (`completed`, `failed`, `cancelled`, `expired`, `archived`) and
 * returns it; fails with TaskNotFound when it does not exist (or is deleted meanwhile), and with
 * {@link WaitTimeout} when `timeout` passes first.
 *
 * @since 0.1.0
 * @category waiting
 */
export const waitFor = Effect.fn("WaitFor.waitFor")(function*(taskId: string, options: WaitForOptions = {}) {
  const queue = yield* Queue
  let lastStatus = "pending"
  const look = Effect.flatMap(queue.get(taskId), (found) => {
    if (Option.isNone(found)) return Effect.fail(TaskNotFound.of(taskId))
    lastStatus = found.value.status
    return Effect.succeed(isTerminal(found.value.status) ? Option.some(found.value) : Option.none<Task>())
  })
  // repeats while the read finds the task unfinished; the schedule passes the last read through
  const untilFinished = pollSchedule.pipe(Schedule.whileInput((o: Option.Option<Task>) => Option.isNone(o)), Schedule.passthrough)
  const finished = look.pipe(Effect.repeat(untilFinished), Effect.map((o) => Option.getOrThrow(o)))
  if (options.timeout === undefined) return yield* finished
  const timeout = Duration.decode(options.timeout)
  return yield* finished.pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new WaitTimeout({
          taskId,
          status: lastStatus,
          message: `task ${taskId} did not finish within ${Duration.format(timeout)} (it is ${lastStatus})`
        })
    })
  )
})
