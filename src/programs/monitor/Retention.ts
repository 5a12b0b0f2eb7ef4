/**
 * Retention (opt-in): terminal tasks older than a configured age are deleted (with their markers
 * and offloaded payloads) or archived. Applied by the sweeper to the tasks it reads anyway, so it
 * costs no extra LIST or GET; the age is measured on server time from the task's last change
 * (`updated_at`: when it became terminal, or was archived).
 *
 * @module
 */
import { DateTime, Duration, Effect, Option } from "effect"
import type { Task } from "../../domain/Task.js"
import type { TaskStatus } from "../../domain/TaskStatus.js"
import { isTerminal } from "../../domain/TaskStatus.js"
import * as Tr from "../../domain/Transitions.js"
import { deletePayloads } from "../../protocol/Payloads.js"
import { casTask, keep, keyOfTask, keyOfTaskId, readTask, updateTask, write } from "../../protocol/TaskObjects.js"
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

/**
 * How long past its idempotency record's expiry a task is still kept: the submitter judges the
 * record on its own estimate of server time, which may trail ours.
 */
export const idempotencyHoldMarginMillis = 60 * 60 * 1000

/**
 * What retention does with a task: nothing, delete it, or archive it. A task whose idempotency
 * record still lives (`heldUntilMillis`, from `idempotency_expires_at`) is kept whatever its age:
 * a same-key resubmit must find it and return its outcome, never create and run it again.
 */
export const retentionDecision = (
  status: TaskStatus,
  updatedAtMillis: number,
  nowMillis: number,
  options: RetentionOptions,
  heldUntilMillis?: number | undefined
): "keep" | "delete" | "archive" => {
  if (!isTerminal(status)) return "keep"
  if (updatedAtMillis + Duration.toMillis(Duration.decode(options.olderThan)) > nowMillis) return "keep"
  if (options.action === "delete") {
    return heldUntilMillis !== undefined && heldUntilMillis + idempotencyHoldMarginMillis > nowMillis ? "keep" : "delete"
  }
  return status === "archived" ? "keep" : "archive"
}

/** The `heldUntilMillis` of {@link retentionDecision} for a task. */
export const heldUntilOf = (task: Task): number | undefined =>
  task.idempotencyExpiresAt === undefined ? undefined : DateTime.toEpochMillis(task.idempotencyExpiresAt)

/**
 * Whether a flow's child must outlive retention for now: its parent exists and has not ended (it
 * waits for it, or its handler has yet to read its result). One GET, for flow children only.
 */
export const parentStillNeeds = (task: Task) =>
  task.parentWaits === undefined || task.parentId === undefined
    ? Effect.succeed(false)
    : Effect.map(readTask(keyOfTaskId(task.parentId, task.shard.length)), (found) =>
      Option.isSome(found) && !isTerminal(found.value.task.status))

/**
 * Deletes a terminal task we have just read, with its markers and payloads — only if it is still
 * exactly the version we decided on. A replay may make it pending again at any moment, and an
 * unconditional DELETE after that would lose a task the operator was told is queued. So:
 * - where the store honours `If-Match` on DELETE (AWS S3, the in-process stores), the DELETE names
 *   the ETag we read: a changed task is left alone;
 * - where it does not (Ceph RGW ignores the header), the task is first archived by CAS on that
 *   ETag. Nothing takes an `archived` task back to pending (replay refuses it), so the plain DELETE
 *   that follows can only remove a finished task. A crash in between leaves an archived task, which
 *   a later pass deletes.
 * Returns whether it was deleted.
 */
export const deleteTerminal = Effect.fn("Retention.delete")(function*(read: VersionedTask, now: DateTime.Utc) {
  const storage = yield* Storage
  const key = keyOfTask(read.task)
  if (!isTerminal(read.task.status)) return false
  const capabilities = yield* storage.capabilities
  const deleted = capabilities.conditionalDelete
    ? yield* storage.deleteIfMatch(key, read.etag).pipe(
      Effect.as(true),
      Effect.catchTag("PreconditionFailed", () => Effect.succeed(false)),
      // ambiguous: gone means it went (nothing can re-create a deleted id but a resubmit, which the record fences)
      Effect.catchTag("OutcomeUnknown", () => Effect.map(storage.head(key), Option.isNone))
    )
    : yield* fenceThenDelete(read, now)
  if (!deleted) return false
  const markers = [readyMarkerKey(read.task), leaseMarkerOf(read.task)].filter((k): k is string => k !== undefined)
  // The task first: a crash after it leaves only orphans the sweeper removes, never a task without its payload.
  yield* storage.deleteMany(markers)
  yield* deletePayloads(read.task.id, read.task)
  return true
})

/** Without a conditional DELETE: archive by CAS on the ETag we read (the fence), then delete. */
const fenceThenDelete = (read: VersionedTask, now: DateTime.Utc) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const key = keyOfTask(read.task)
    if (read.task.status !== "archived") {
      const fenced = yield* casTask(Tr.archive(read.task, { now }), read.etag).pipe(
        Effect.as(true),
        Effect.catchTag("PreconditionFailed", () => Effect.succeed(false))
      )
      if (!fenced) return false
    }
    yield* storage.delete(key)
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
