/**
 * Retention (opt-in): terminal tasks older than a configured age are deleted (with their markers
 * and offloaded payloads) or archived. Applied by the sweeper to the tasks it reads anyway, so it
 * costs no extra LIST or GET; the age is measured on server time from the task's last change
 * (`updated_at`: when it became terminal, or was archived).
 *
 * @module
 */
import { DateTime, Duration, Effect, Option } from "effect"
import type { TaskStatus } from "../../domain/TaskStatus.js"
import { isTerminal } from "../../domain/TaskStatus.js"
import * as Tr from "../../domain/Transitions.js"
import { deletePayloads } from "../../protocol/Payloads.js"
import { keep, keyOfTask, readTask, updateTask, write } from "../../protocol/TaskObjects.js"
import type { VersionedTask } from "../../protocol/TaskObjects.js"
import { Storage } from "../../services/Storage.js"
import { leaseMarkerOf } from "../../domain/Markers.js"
import { readyMarkerKey } from "../../domain/ReadyIndex.js"

/** Retention settings. */
export interface RetentionOptions {
  /** Terminal tasks whose last change is older than this are handled (e.g. `"30 days"`). */
  readonly olderThan: Duration.DurationInput
  /** `"delete"`: the task, its markers and its payloads go; `"archive"`: it becomes `archived` (kept). */
  readonly action: "delete" | "archive"
}

/** What retention does with a task: nothing, delete it, or archive it. */
export const retentionDecision = (
  status: TaskStatus,
  updatedAtMillis: number,
  nowMillis: number,
  options: RetentionOptions
): "keep" | "delete" | "archive" => {
  if (!isTerminal(status)) return "keep"
  if (updatedAtMillis + Duration.toMillis(Duration.decode(options.olderThan)) > nowMillis) return "keep"
  if (options.action === "delete") return "delete"
  return status === "archived" ? "keep" : "archive"
}

/**
 * Deletes a terminal task we have just read, with its markers and payloads. The object is read
 * again first and must still carry the ETag we decided on (S3 has no conditional delete, so this
 * keeps the window for a concurrent replay to milliseconds). Returns whether it was deleted.
 */
export const deleteTerminal = Effect.fn("Retention.delete")(function*(read: VersionedTask) {
  const storage = yield* Storage
  const key = keyOfTask(read.task)
  const again = yield* readTask(key)
  if (Option.isNone(again) || again.value.etag !== read.etag || !isTerminal(again.value.task.status)) return false
  const markers = [readyMarkerKey(read.task), leaseMarkerOf(read.task)].filter((k): k is string => k !== undefined)
  // The task first: a crash after it leaves only orphans the sweeper removes, never a task without its payload.
  yield* storage.delete(key)
  yield* storage.deleteMany(markers)
  yield* deletePayloads(read.task.id)
  return true
})

/** Archives a terminal task (CAS; a concurrent change is re-decided). Returns whether it was archived. */
export const archiveTerminal = Effect.fn("Retention.archive")(function*(read: VersionedTask, now: DateTime.Utc) {
  const { result } = yield* updateTask<boolean>(keyOfTask(read.task), (found) =>
    Option.isSome(found) && Tr.canArchive(found.value.task)
      ? write(Tr.archive(found.value.task, { now }), true)
      : keep(false))
  return result
})
