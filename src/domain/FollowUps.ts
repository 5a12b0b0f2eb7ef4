/**
 * Settlement effects: the follow-up tasks a handler enqueues with its completion (taquba's
 * `enqueue_with_kv`), created exactly once even if the worker dies between the two.
 *
 * The completing CAS writes the follow-ups into the task's own body (`follow_ups`, an outbox), each
 * with an id fixed by the parent's id and its position ({@link followUpId}). Creating them
 * ("materialising") is then a create-only PUT per child, which lands once whoever repeats it (the
 * worker right after its CAS, or lease recovery / the sweeper after a crash), followed by one CAS
 * that stamps `materialized_at`. Until then the completed task still needs its last lease marker
 * (`Markers.neededMarker`), so the lease-recovery walk that already looks at lease markers finds
 * it; no new index and nothing polled. A task without follow-ups has no `follow_ups` field and
 * costs nothing more.
 *
 * The reference ignores the field (its task has no such key), so it stays readable; a reference
 * worker never completes a task with follow-ups.
 *
 * @since 0.1.0
 * @module
 */
import { createHash } from "node:crypto"
import { DateTime, Schema } from "effect"
import { RetryPolicy } from "./RetryPolicy.js"
import { optionalField } from "./SnakeCase.js"

/**
 * One follow-up task, as stored in its parent's outbox: everything needed to create it, with the
 * submit options already resolved (so a monitor that knows no queue settings can create it).
 *
 * @since 0.1.0
 * @category models
 */
export class FollowUp extends Schema.Class<FollowUp>("FollowUp")({
  id: Schema.String,
  taskType: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("task_type")),
  input: Schema.Unknown,
  timeoutSeconds: Schema.propertySignature(Schema.NonNegativeInt).pipe(Schema.fromKey("timeout_seconds")),
  maxRetries: Schema.propertySignature(Schema.NonNegativeInt).pipe(Schema.fromKey("max_retries")),
  retryPolicy: Schema.propertySignature(RetryPolicy).pipe(Schema.fromKey("retry_policy")),
  maxReschedules: optionalField(Schema.NonNegativeInt, "max_reschedules"),
  priority: optionalField(Schema.Int, "priority"),
  tags: optionalField(Schema.Array(Schema.String), "tags"),
  /** Due this long after it is created (from `delay`, `delayMs` or `scheduleAt` at enqueue time). */
  delayMs: optionalField(Schema.NonNegativeInt, "delay_ms"),
  /** Expires this long after it is created (from `ttlSeconds` or `expiresAt` at enqueue time). */
  ttlMs: optionalField(Schema.NonNegativeInt, "ttl_ms"),
  traceparent: optionalField(Schema.String, "traceparent")
}) {}

/**
 * A completed task's outbox: its follow-ups, when the worker's lease ended (recovery waits until
 * then, as for a running task), and when they were all created.
 *
 * @since 0.1.0
 * @category models
 */
export class FollowUps extends Schema.Class<FollowUps>("FollowUps")({
  tasks: Schema.Array(FollowUp),
  recoverAt: Schema.propertySignature(Schema.DateTimeUtc).pipe(Schema.fromKey("recover_at")),
  materializedAt: optionalField(Schema.DateTimeUtc, "materialized_at")
}) {}

/**
 * Most follow-ups one completion may enqueue (they are stored in the task's body).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxFollowUps = 100

/**
 * The id of a task's `index`-th follow-up: a UUID (version 4 layout, as task ids are) taken from a
 * SHA-256 of the parent's id and the index, so every materialisation names the same object.
 *
 * @since 0.1.0
 * @category utils
 */
export const followUpId = (parentId: string, index: number): string => {
  const h = createHash("sha256").update(`buquet:follow-up:${parentId}:${index}`, "utf8").digest("hex")
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

/**
 * The outbox of a completed task whose follow-ups are not all known to exist yet, if any.
 *
 * @since 0.1.0
 * @category guards
 */
export const unmaterialized = (task: { readonly status: string; readonly followUps?: FollowUps | undefined }): FollowUps | undefined =>
  task.status === "completed" && task.followUps !== undefined && task.followUps.materializedAt === undefined
    ? task.followUps
    : undefined

/**
 * Whether recovery may create the follow-ups now: the completing worker's lease has surely ended
 * (it creates them itself right after its CAS, and would otherwise race the monitor for nothing).
 *
 * @since 0.1.0
 * @category guards
 */
export const isRecoverableAt = (outbox: FollowUps, now: DateTime.Utc): boolean =>
  DateTime.greaterThan(now, outbox.recoverAt)
