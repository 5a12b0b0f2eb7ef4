/**
 * Writing a new pending task: ready marker → create-only PUT, then, when the create landed late,
 * a move to a fresh ready marker. Shared by submit (layers/Queue.ts) and the creation of a
 * completed task's follow-ups (protocol/FollowUps.ts).
 *
 * After a create that landed late (the writer stalled between building the task and its create:
 * GC, a VM pause, a slow request), a worker or the sweeper may have deleted the ready marker as an
 * orphan once its bucket was over. Then the pending task moves to a fresh marker in the current
 * bucket (written before the CAS), so a delayed DELETE of the old key cannot touch it.
 *
 * @module
 */
import { DateTime, Effect, Option } from "effect"
import { isBucketClosed, submitWindowMillis } from "../domain/Markers.js"
import { readyMarkerKey } from "../domain/ReadyIndex.js"
import { bucketOf } from "../domain/Shard.js"
import type { Task } from "../domain/Task.js"
import * as Tr from "../domain/Transitions.js"
import { ServerClock } from "../services/ServerClock.js"
import { createTask, keep, keyOfTask, updateTask, write, writeMarker } from "./TaskObjects.js"

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
  // Only a task still pending on that marker (a worker may have found it through it meanwhile).
  const { current, result: moved } = yield* updateTask<boolean>(keyOfTask(stored), (found) => {
    if (Option.isNone(found) || found.value.task.status !== "pending" || readyMarkerKey(found.value.task) !== marker) {
      return keep(false)
    }
    const next = Tr.dueNow(found.value.task, { now: landedAt })
    return write(next, true, { before: [readyMarkerKey(next)], after: [marker] })
  })
  if (moved) {
    const lateBy = landed - DateTime.toEpochMillis(stored.createdAt)
    yield* Effect.logWarning(`submit: task ${stored.id} was created ${lateBy} ms after it was built; moved it to a fresh ready marker`)
  }
  return Option.match(current, { onNone: () => stored, onSome: (v) => v.task })
})

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
