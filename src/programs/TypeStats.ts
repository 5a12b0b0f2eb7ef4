/**
 * The per-type overview read once (`buquet stats`) and its JSON document (also the dashboard's
 * `/api/v1/types`). Both take the numbers from a {@link QueueSnapshot} refresh and
 * `domain/TypeStats.ts`, so the CLI and the dashboard compute them in one place.
 *
 * Cost of {@link read}, in requests (counted, and part of the result): one LIST page of `tasks/`
 * per 1 000 tasks, up to `maxTasks` (default 50 000, i.e. 50 LISTs); one GET per task listed;
 * one LIST of `workers/` and one GET per worker record. Nothing else: the run times come from the
 * transition logs of the completed tasks it reads anyway, not from extra reads. The dashboard adds
 * no request at all: its refresh has read the same objects already.
 *
 * ```ts
 * const result = yield* TypeStats.read({ shardPrefixLen: 1 })  // needs Storage, ServerClock
 * for (const row of result.snapshot.types) console.log(row.taskType, row.pending)
 * ```
 *
 * @module
 */
import { DateTime, Effect, Option } from "effect"
import { failedWindowMinutes, rateWindowMinutes, runTimeSampleSize, typeStatsJson } from "../domain/TypeStats.js"
import * as QueueSnapshot from "./QueueSnapshot.js"
import type { Snapshot } from "./QueueSnapshot.js"

/** Tasks one {@link read} reads at most by default (50 LIST pages). */
export const defaultMaxTasks = 50_000

/** Options of {@link read}. */
export interface ReadOptions {
  /** Most tasks to read (rounded up to whole LIST pages of 1 000); a bigger bucket gives a partial overview. */
  readonly maxTasks?: number | undefined
  /** The queue's shard prefix length. */
  readonly shardPrefixLen?: number | undefined
}

/**
 * Reads the bucket once (tasks up to `maxTasks`, and the worker records) and returns the snapshot
 * with its `types`, `lastCost` (the requests made) and `complete` (false when the bucket holds
 * more tasks than `maxTasks`).
 */
export const read = Effect.fn("TypeStats.read")(function*(options: ReadOptions = {}) {
  const pages = Math.max(1, Math.ceil((options.maxTasks ?? defaultMaxTasks) / 1000))
  return yield* Effect.scoped(
    Effect.gen(function*() {
      const snapshot = yield* QueueSnapshot.make({
        maxListPagesPerRefresh: pages,
        // every task listed, and the worker records after them
        maxGetsPerRefresh: pages * 1000 + 10_000,
        readSchedules: false,
        shardPrefixLen: options.shardPrefixLen
      })
      return yield* snapshot.refreshNow
    })
  )
})

/**
 * The overview as a JSON document: `buquet stats --json` prints it, the dashboard serves it at
 * `/api/v1/types`. Rows are {@link typeStatsJson}; `cost` is the requests of the read behind them.
 */
export const statsDocument = (s: Snapshot) => ({
  refreshed_at: Option.match(s.refreshedAt, { onNone: () => null, onSome: DateTime.formatIso }),
  complete: s.complete,
  tasks_read: s.tasks.length,
  unread: s.unread,
  windows: { failed_minutes: failedWindowMinutes, rate_minutes: rateWindowMinutes, run_time_samples: runTimeSampleSize },
  types: s.types.map(typeStatsJson),
  cost: s.lastCost,
  malformed: s.malformed,
  error: Option.getOrNull(s.error)
})
