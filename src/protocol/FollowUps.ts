/**
 * Creating a completed task's follow-ups (domain/FollowUps.ts): each one by a create-only PUT of
 * its fixed id (an existing one is left as it is: whoever created it, it is the same task), then
 * one CAS stamping `materialized_at`, then the lease marker the outbox kept alive is deleted once
 * its bucket is closed (the sweeper and lease recovery delete it later otherwise).
 *
 * Run by the worker right after its completing CAS, and by lease recovery or the sweeper when that
 * worker died first. Running it twice, or concurrently, creates nothing twice.
 *
 * @module
 */
import { DateTime, Effect, Option } from "effect"
import { unmaterialized } from "../domain/FollowUps.js"
import { closedMarkers, neededMarker } from "../domain/Markers.js"
import * as Tr from "../domain/Transitions.js"
import { ServerClock } from "../services/ServerClock.js"
import { createPending } from "./NewTask.js"
import { casTask, deleteMarkers, keep, keyOfTask, updateTask, type VersionedTask, write } from "./TaskObjects.js"

/** How many follow-ups are created at once. */
const createConcurrency = 8

/**
 * Creates the follow-ups of `held` (a completed task as read or written, with its ETag) that do not
 * exist yet and marks them created. `onCreated` runs once they all exist (the caller touches the
 * wake-up signal). Returns the task as stored afterwards (unchanged when there was nothing to do,
 * or when another process marked them first).
 */
export const materialize = Effect.fn("FollowUps.materialize")(function*(
  held: VersionedTask,
  onCreated: Effect.Effect<void> = Effect.void
) {
  const outbox = unmaterialized(held.task)
  if (outbox === undefined) return held
  const clock = yield* ServerClock
  const now = yield* clock.now
  yield* Effect.forEach(
    outbox.tasks,
    (f) => createPending(Tr.followUpTask(held.task, f, now)).pipe(Effect.catchTag("PreconditionFailed", () => Effect.void)),
    { concurrency: createConcurrency, discard: true }
  )
  yield* onCreated
  const marker = neededMarker(held.task)
  const stamp = (current: VersionedTask) => Tr.followUpsCreated(current.task, { now })
  // The held ETag first (no GET on the worker's path); a lost CAS re-reads and decides again.
  const first = yield* casTask(stamp(held), held.etag).pipe(
    Effect.map((etag): Option.Option<VersionedTask> => Option.some({ task: stamp(held), etag })),
    Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<VersionedTask>()))
  )
  const stored = Option.isSome(first) ? first : (yield* updateTask(keyOfTask(held.task), (found) =>
    Option.isSome(found) && unmaterialized(found.value.task) !== undefined
      ? write(stamp(found.value), true)
      : keep(false))).current
  const landedAt = yield* clock.currentTimeMillis
  // (kept while the task still needs it: a flow's child whose parent is not told yet)
  if (marker !== undefined && (Option.isNone(stored) || neededMarker(stored.value.task) !== marker)) {
    yield* deleteMarkers(closedMarkers([marker], landedAt)).pipe(
      Effect.catchAll((e) => Effect.logDebug(`could not delete lease marker ${marker} (the monitor will): ${e.message}`))
    )
  }
  yield* Effect.logDebug(`task ${held.task.id}: ${outbox.tasks.length} follow-up(s) exist (${DateTime.formatIso(now)})`)
  return Option.getOrElse(stored, () => held)
})
