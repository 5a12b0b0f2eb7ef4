/**
 * Shared helpers of the schedule suites: the Scheduler's environment on a Storage, and a view of
 * the tasks schedules submitted (by the `firing:{epoch}` tag each firing's task carries).
 *
 * @module
 */
import { DateTime, Effect, Layer, Option } from "effect"
import { decodeObject } from "../../src/domain/Codec.js"
import { scheduleLastRunKey } from "../../src/domain/Keys.js"
import { LastRun } from "../../src/domain/Schedule.js"
import type { Task } from "../../src/domain/Task.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as SchedulerLayer from "../../src/layers/Scheduler.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { Queue } from "../../src/services/Queue.js"
import type { Storage, StorageService } from "../../src/services/Storage.js"

/** Scheduler + Queue + ServerClock on the ambient clock (TestClock in `it.effect`), over `storage`. */
export const schedulerEnv = <A, E, R>(storage: Layer.Layer<A | Storage, E, R>, config: SchedulerLayer.SchedulerConfig = {}) =>
  SchedulerLayer.layer(config).pipe(
    Layer.provideMerge(QueueLayer.layer()),
    Layer.provideMerge(ServerClockLayer.layerLocal),
    Layer.provideMerge(storage)
  )

/** Every task of `taskType`, across all pages. */
export const tasksOf = (taskType: string) =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const out: Array<Task> = []
    let cursor: string | undefined
    do {
      const page = yield* queue.list({ taskType, limit: 1000, cursor })
      out.push(...page.tasks)
      cursor = page.cursor
    } while (cursor !== undefined)
    return out
  })

/** The firing instant a scheduled task was made for (from its `firing:{epoch}` tag). */
export const firingOf = (task: Task): number | undefined => {
  const tag = (task.tags ?? []).find((t) => t.startsWith("firing:"))
  return tag === undefined ? undefined : Number(tag.slice("firing:".length)) * 1000
}

/** The firing instants of `taskType`'s tasks as ISO strings, sorted (duplicates kept). */
export const firings = (taskType: string) =>
  Effect.map(tasksOf(taskType), (tasks) =>
    tasks.map((t) => firingOf(t)).filter((x): x is number => x !== undefined).sort((a, b) => a - b).map((ms) =>
      new Date(ms).toISOString().replace(".000Z", "Z")
    ))

/** The stored last-run record of a schedule, read straight from `storage`. */
export const storedLastRun = (storage: StorageService, id: string) =>
  Effect.gen(function*() {
    const found = yield* storage.get(scheduleLastRunKey(id))
    if (Option.isNone(found)) return Option.none<LastRun>()
    return Option.some(yield* decodeObject(LastRun, scheduleLastRunKey(id), found.value.body))
  })

/** ISO string of a DateTime without milliseconds, for readable expectations. */
export const iso = (dt: DateTime.DateTime): string => DateTime.formatIso(DateTime.toUtc(dt)).replace(".000Z", "Z")
