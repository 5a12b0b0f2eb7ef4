/**
 * `list` and `get` flag pending tasks whose type no live worker handles (issue 20): the worker
 * records are read (one LIST of `workers/`, one GET per record) only when something shown is
 * pending, and judged by domain/TypeCoverage.ts. A failed read is said on stderr and the command
 * goes on without the flags.
 *
 * @module
 */
import { Effect } from "effect"
import type { Task } from "../domain/Task.js"
import { handlingOf, typeCoverage } from "../domain/TypeCoverage.js"
import type { Handling } from "../domain/TypeCoverage.js"
import { readWorkerRecords } from "../protocol/WorkerRecords.js"
import { Queue } from "../services/Queue.js"
import type { Storage } from "../services/Storage.js"
import { stderrLine } from "./common.js"

/** The handling of each type of the pending tasks among `tasks` (empty when none is pending). */
export const pendingHandling = (tasks: ReadonlyArray<Task>): Effect.Effect<ReadonlyMap<string, Handling>, never, Queue | Storage> =>
  Effect.gen(function*() {
    const types = [...new Set(tasks.filter((t) => t.status === "pending").map((t) => t.taskType))]
    if (types.length === 0) return new Map()
    const now = yield* (yield* Queue).now
    const { records } = yield* readWorkerRecords
    const coverage = typeCoverage(records, now)
    return new Map(types.map((t) => [t, handlingOf(coverage, t)] as const))
  }).pipe(
    Effect.catchAll((e) =>
      Effect.as(stderrLine(`buquet: could not read the worker records to tell which task types have a live worker: ${e.message}`), new Map())
    )
  )

/** The `--json` form of a task with its handling (pending tasks only): the stored form plus `handling`. */
export const withHandling = (json: unknown, task: Task, handling: ReadonlyMap<string, Handling>): unknown => {
  const h = task.status === "pending" ? handling.get(task.taskType) : undefined
  return h === undefined ? json : { ...(json as Record<string, unknown>), handling: h }
}
