/**
 * Writing a new pending task: ready marker → create-only PUT, then, when the create landed late,
 * a move to a fresh ready marker. Shared by submit (layers/Queue.ts) and the creation of a
 * completed task's follow-ups (protocol/FollowUps.ts).
 *
 * After a create that landed late (the writer stalled between building the task and its create:
 * GC, a VM pause, a slow request), a worker or the sweeper may have deleted the ready marker as an
 * orphan once its bucket was over. Then the pending task moves to a fresh marker in the current
 * bucket (written before the CAS), so a delayed DELETE of the old key cannot touch it. A worker's
 * settle back to pending whose CAS landed after its marker's bucket closed moves the same way
 * ({@link refreshClosedMarker}).
 *
 * @module
 */
import { DateTime, Effect, Option } from "effect"
import { isWaitingParent } from "../domain/Flows.js"
import { bucketEndMillis, isBucketClosed, submitWindowMillis } from "../domain/Markers.js"
import { readyMarkerKey } from "../domain/ReadyIndex.js"
import { bucketOf } from "../domain/Shard.js"
import type { Task } from "../domain/Task.js"
import * as Tr from "../domain/Transitions.js"
import { ServerClock } from "../services/ServerClock.js"
import type { Storage } from "../services/Storage.js"
import type { VersionedTask } from "./TaskObjects.js"
import { createTask, keep, keyOfTask, updateTask, write, writeMarker } from "./TaskObjects.js"

/**
 * Moves a pending task still on `marker` to a fresh ready marker in the current bucket (written
 * before the CAS); returns whether it moved and the task as stored afterwards.
 */
const moveToFreshMarker = (key: string, marker: string, landedAt: DateTime.Utc) =>
  updateTask<boolean>(key, (found) => {
    // Only a task still pending on that marker (a worker may have found it through it meanwhile).
    if (Option.isNone(found) || found.value.task.status !== "pending" || readyMarkerKey(found.value.task) !== marker) {
      return keep(false)
    }
    const next = Tr.dueNow(found.value.task, { now: landedAt })
    return write(next, true, { before: [readyMarkerKey(next)], after: [marker] })
  })

/**
 * Moves a task whose create landed late (and whose marker's bucket is over) to a fresh ready
 * marker; returns the task as stored.
 */
export const refreshLateMarker = Effect.fn("NewTask.refreshLateMarker")(function*(stored: Task) {
  const clock = yield* ServerClock
  const landedAt = yield* clock.now
  const marker = readyMarkerKey(stored)
  const landed = DateTime.toEpochMillis(landedAt)
  const late = landed - DateTime.toEpochMillis(stored.createdAt) >= submitWindowMillis
  if (!late || !isBucketClosed(bucketOf(DateTime.toEpochMillis(stored.availableAt)), landed)) return stored
  const { current, result: moved } = yield* moveToFreshMarker(keyOfTask(stored), marker, landedAt)
  if (moved) {
    const lateBy = landed - DateTime.toEpochMillis(stored.createdAt)
    yield* Effect.logWarning(`submit: task ${stored.id} was created ${lateBy} ms after it was built; moved it to a fresh ready marker`)
  }
  return Option.match(current, { onNone: () => stored, onSome: (v) => v.task })
})

/**
 * After a CAS that made a task pending on a ready marker written before it (a worker's retry,
 * reschedule or release): if the CAS may have landed after that marker's bucket closed, a sweeper
 * that read the task before the CAS (still running, so not needing the marker) may judge the
 * marker stale for good and delete it (Markers.isDeletable). Then the task moves to a fresh marker
 * in the current bucket, which no such sweeper deletes. "May have landed after": the bucket is over
 * by our clock when the CAS was answered (writers' clocks differ by at most the bucket margin the
 * sweeper waits). Returns the task as stored, when it moved.
 */
export const refreshClosedMarker = Effect.fn("NewTask.refreshClosedMarker")(function*(stored: Task) {
  const clock = yield* ServerClock
  const landedAt = yield* clock.now
  const marker = readyMarkerKey(stored)
  if (bucketEndMillis(bucketOf(DateTime.toEpochMillis(stored.availableAt))) > DateTime.toEpochMillis(landedAt)) {
    return Option.none<VersionedTask>()
  }
  const { current, result: moved } = yield* moveToFreshMarker(keyOfTask(stored), marker, landedAt)
  if (!moved) return Option.none<VersionedTask>()
  yield* Effect.logWarning(`task ${stored.id} became pending after its ready marker's minute was over; moved it to a fresh ready marker`)
  return current
})

/**
 * Keeps a task that a CAS just made pending on a ready marker written before it findable:
 * {@link refreshClosedMarker}, for every protocol that does so (a worker's settle, lease recovery's
 * retry, a replay, a flow's parent released). Any other task (a flow's waiting parent has no ready
 * marker) is left as it is. A failure to move it is logged, not raised: its CAS did land, and the
 * sweeper writes a pending task's missing marker. Returns the task as stored.
 */
export const keepFindable = (stored: VersionedTask): Effect.Effect<VersionedTask, never, Storage | ServerClock> =>
  stored.task.status !== "pending" || isWaitingParent(stored.task)
    ? Effect.succeed(stored)
    : refreshClosedMarker(stored.task).pipe(
      Effect.map(Option.getOrElse(() => stored)),
      Effect.catchAll((e) =>
        Effect.as(
          Effect.logWarning(`task ${stored.task.id}: could not move it to a fresh ready marker (the sweeper will write one): ${e.message}`),
          stored
        )
      )
    )

/**
 * Writes a new pending task: its ready marker, then the create-only PUT (`PreconditionFailed` if
 * the id exists), then {@link refreshLateMarker}. Returns the task as stored.
 */
export const createPending = (task: Task) =>
  Effect.gen(function*() {
    yield* writeMarker(readyMarkerKey(task))
    yield* createTask(task)
    return yield* refreshLateMarker(task)
  })
