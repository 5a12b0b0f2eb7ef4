/**
 * This worker's slice of the fleet (Discovery.ts `slice`): its index among the live workers, read
 * from ONE LIST of `workers/` (the records' keys and their last heartbeat; no GET), at most once
 * per `refreshEvery` (10 s; the first reads after 1, 2 and 4 s) and only when a pass asks, i.e.
 * when it has more due candidates than free slots: a busy worker with a backlog pays at most 6
 * LISTs a minute (3 more at its start), an idle worker none.
 *
 * A record whose last heartbeat is older than `liveWithin` (3 min, the monitor's "stale") is not
 * counted: a crashed worker's slice is then shared out again within minutes. Until then its tasks
 * are still taken, only after each worker's own (the slice is an order, never a filter). Workers
 * that see different lists (one just started or stopped) only overlap for a while: no task waits
 * on it. A worker whose own record is not in the list (registration failed) has no slice.
 *
 * @module
 */
import { DateTime, Effect } from "effect"
import { parseWorkerKey, workersPrefix } from "../../domain/Keys.js"
import type { ObjectMeta, StorageService } from "../../services/Storage.js"
import type { FleetSlice } from "./Discovery.js"

/** How often a busy worker re-reads the live workers (default). */
export const refreshEveryMillis = 10_000

/** A record with a heartbeat this recent counts as a live worker (default; the monitor's "stale"). */
export const liveWithinMillis = 180_000

/**
 * The slice of `workerId` among the records listed: its index among the live workers' ids in
 * sorted order, or undefined when it is not among them (or is alone: no preference).
 */
export const sliceOf = (
  workerId: string,
  records: ReadonlyArray<ObjectMeta>,
  nowMillis: number,
  liveWithin: number = liveWithinMillis
): FleetSlice | undefined => {
  const live: Array<string> = []
  for (const meta of records) {
    const id = parseWorkerKey(meta.key)
    if (id === undefined) continue
    if (id !== workerId && nowMillis - DateTime.toEpochMillis(meta.lastModified) > liveWithin) continue
    live.push(id)
  }
  live.sort()
  const index = live.indexOf(workerId)
  return index < 0 || live.length < 2 ? undefined : { index, count: live.length }
}

/**
 * The cached slice: read afresh when asked and older than `refreshEvery`; a failed LIST keeps the
 * last slice (and is tried again after `refreshEvery`).
 */
export const make = (options: {
  readonly workerId: string
  readonly storage: StorageService
  readonly now: Effect.Effect<number>
  readonly refreshEvery?: number | undefined
  readonly liveWithin?: number | undefined
}): Effect.Effect<FleetSlice | undefined> => {
  const refreshEvery = options.refreshEvery ?? refreshEveryMillis
  let slice: FleetSlice | undefined = undefined
  let readAt = Number.NEGATIVE_INFINITY
  let reads = 0
  return Effect.flatMap(options.now, (now) => {
    // The first reads come sooner (1 s, 2 s, 4 s): a fleet started together registers over a
    // moment, and a worker's first list may miss the slowest (slices of 3 and of 4 overlap).
    if (now - readAt < Math.min(refreshEvery, 1000 * 2 ** (reads - 1))) return Effect.succeed(slice)
    readAt = now
    reads++
    return options.storage.list(workersPrefix, { maxKeys: 1000 }).pipe(
      Effect.map((page) => {
        slice = sliceOf(options.workerId, page.objects, now, options.liveWithin)
        return slice
      }),
      Effect.catchAll((e) => Effect.as(Effect.logDebug(`could not list the workers: ${e.message}`), slice))
    )
  })
}
