/**
 * Task type markers `control/types/{task_type}.json`: "some worker has handled this type". A
 * worker registers its handler types when it starts — one LIST of `control/types/`, then a
 * create-only PUT (`If-None-Match: *`) of each type not listed yet — so each type costs one PUT
 * ever, however many workers start. `submit`'s type check HEADs the marker (cached by the Queue):
 * a type no worker ever registered is most likely misspelled. Markers are never deleted (a few
 * bytes per type); delete one by hand to forget a type.
 *
 * @module
 */
import { Chunk, DateTime, Effect, Option, Schema, Stream } from "effect"
import { encodeObject } from "../domain/Codec.js"
import { taskTypeMarkerKey, taskTypeMarkersPrefix } from "../domain/Keys.js"
import { StorageUnavailable } from "../domain/StorageError.js"
import type { StorageReadError } from "../domain/StorageError.js"
import { Timestamp } from "../domain/Task.js"
import { field } from "../domain/SnakeCase.js"
import { Storage } from "../services/Storage.js"
import { retryTransient } from "./TransientRetry.js"

/** The marker's body: which type, and who registered it first and when (for people; never read by the queue). */
export class TaskTypeMarker extends Schema.Class<TaskTypeMarker>("TaskTypeMarker")({
  taskType: field(Schema.String, "task_type"),
  firstWorkerId: field(Schema.String, "first_worker_id"),
  registeredAt: field(Timestamp, "registered_at")
}) {}

/**
 * Writes the markers of `taskTypes` that do not exist yet. A marker another worker created first
 * (a lost `If-None-Match`) is fine; an ambiguous outcome fails (as unavailable), so the caller's
 * retry lists again and finds it or writes it.
 */
export const registerTaskTypes = Effect.fn("TaskTypeMarkers.register")(function*(
  workerId: string,
  taskTypes: ReadonlyArray<string>,
  now: DateTime.Utc
) {
  const storage = yield* Storage
  const listed = yield* retryTransient(Stream.runCollect(storage.listAll(taskTypeMarkersPrefix)))
  const existing = new Set(Chunk.toReadonlyArray(listed).map((o) => o.key))
  const missing = taskTypes.filter((t) => !existing.has(taskTypeMarkerKey(t)))
  yield* Effect.forEach(
    missing,
    (taskType) => {
      const key = taskTypeMarkerKey(taskType)
      const body = encodeObject(TaskTypeMarker, new TaskTypeMarker({ taskType, firstWorkerId: workerId, registeredAt: now }))
      return retryTransient(storage.put(key, body, { ifNoneMatch: "*" })).pipe(
        Effect.asVoid,
        Effect.catchTags({
          PreconditionFailed: () => Effect.void,
          OutcomeUnknown: (e) => Effect.fail(new StorageUnavailable({ operation: "PutObject", key, message: e.message }))
        })
      )
    },
    { concurrency: 8, discard: true }
  )
  return missing.length
})

/** Whether some worker ever registered a handler for `taskType`: one HEAD. */
export const taskTypeRegistered = (taskType: string): Effect.Effect<boolean, StorageReadError, Storage> =>
  Effect.flatMap(Storage, (storage) => Effect.map(storage.head(taskTypeMarkerKey(taskType)), Option.isSome))
