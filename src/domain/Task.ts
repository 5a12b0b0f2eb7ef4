/**
 * The task object: the source of truth, stored at `tasks/{shard}/{id}.json` in the reference's
 * snake_case JSON (design.md §5.2). In TypeScript the fields are camelCase; the Schema maps them.
 * Our additions (`priority`, `progress`, `tags`, `events`, `traceparent`, `follow_ups`, `flow`, `parent_waits`) are optional fields the
 * reference ignores.
 *
 * @module
 */
import { DateTime, Effect, Schema } from "effect"
import { decodeObject } from "./Codec.js"
import { isOwnPayloadRef, parseTaskKey, payloadKey, payloadPrefix } from "./Keys.js"
import { Flow, ParentWaits } from "./Flows.js"
import { FollowUps } from "./FollowUps.js"
import { TaskId } from "./Names.js"
import { MalformedObject } from "./QueueError.js"
import { RetryPolicy } from "./RetryPolicy.js"
import { TaskStatus } from "./TaskStatus.js"
import { field, nullableField as optionalField } from "./SnakeCase.js"

/**
 * An RFC 3339 UTC timestamp in JSON, a `DateTime.Utc` in memory.
 *
 * @since 0.1.0
 * @category models
 */
export const Timestamp = Schema.DateTimeUtc

/** A non-negative whole number (counters, seconds). */
const Count = Schema.NonNegativeInt

/**
 * One entry of a task's transition log: what changed, when, in which attempt, by whom, and why.
 *
 * @since 0.1.0
 * @category models
 */
export class TaskEvent extends Schema.Class<TaskEvent>("TaskEvent")({
  at: Timestamp,
  from: Schema.NullOr(TaskStatus),
  to: TaskStatus,
  attempt: Count,
  workerId: optionalField(Schema.String, "worker_id"),
  error: optionalField(Schema.String, "error"),
  /** The stack trace of a failed attempt's error, when it had one (ours; the reference ignores it). */
  stack: optionalField(Schema.String, "stack")
}) {}

/**
 * How many transitions a task keeps in its own log (older ones are dropped first).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxTaskEvents = 50

/**
 * A task, as stored in the bucket.
 *
 * @since 0.1.0
 * @category models
 */
export class Task extends Schema.Class<Task>("Task")({
  id: Schema.String,
  shard: Schema.String,
  taskType: field(Schema.String, "task_type"),
  input: Schema.Unknown,
  output: Schema.optionalWith(Schema.Unknown, { default: () => null }),
  inputRef: optionalField(Schema.String, "input_ref"),
  outputRef: optionalField(Schema.String, "output_ref"),
  timeoutSeconds: field(Count, "timeout_seconds"),
  maxRetries: field(Count, "max_retries"),
  retryCount: field(Count, "retry_count"),
  retryPolicy: field(RetryPolicy, "retry_policy"),
  status: TaskStatus,
  createdAt: field(Timestamp, "created_at"),
  updatedAt: field(Timestamp, "updated_at"),
  availableAt: field(Timestamp, "available_at"),
  leaseExpiresAt: field(Schema.NullOr(Timestamp), "lease_expires_at"),
  leaseId: field(Schema.NullOr(Schema.String), "lease_id"),
  attempt: Count,
  completedAt: field(Schema.NullOr(Timestamp), "completed_at"),
  workerId: field(Schema.NullOr(Schema.String), "worker_id"),
  lastError: field(Schema.NullOr(Schema.String), "last_error"),
  rescheduleCount: Schema.optionalWith(Count, { default: () => 0 }).pipe(Schema.fromKey("reschedule_count")),
  maxReschedules: optionalField(Count, "max_reschedules"),
  cancelRequested: Schema.optionalWith(Schema.Boolean, { default: () => false }).pipe(
    Schema.fromKey("cancel_requested")
  ),
  cancelledAt: optionalField(Timestamp, "cancelled_at"),
  cancelledBy: optionalField(Schema.String, "cancelled_by"),
  expiresAt: optionalField(Timestamp, "expires_at"),
  expiredAt: optionalField(Timestamp, "expired_at"),
  // ours; the reference ignores unknown fields
  priority: optionalField(Schema.Int, "priority"),
  progress: optionalField(Schema.Unknown, "progress"),
  tags: optionalField(Schema.Array(Schema.String), "tags"),
  events: optionalField(Schema.Array(TaskEvent), "events"),
  traceparent: optionalField(Schema.String, "traceparent"),
  /**
   * Submitted with an idempotency key: when that key's record expires. Until then a same-key
   * resubmit must find this task (and its outcome), so retention keeps it at least that long.
   */
  idempotencyExpiresAt: optionalField(Timestamp, "idempotency_expires_at"),
  /** The task whose completion enqueued this one (a follow-up), or whose flow it is a child of. */
  parentId: optionalField(TaskId, "parent_id"),
  /** The follow-up tasks its completion enqueues, and whether they exist yet (domain/FollowUps.ts). */
  followUps: optionalField(FollowUps, "follow_ups"),
  /** A flow's parent: its children, their outcomes, and those not created yet (domain/Flows.ts). */
  flow: optionalField(Flow, "flow"),
  /** A flow's child: its parent waits for it; when its end was (or may be) reported (domain/Flows.ts). */
  parentWaits: optionalField(ParentWaits, "parent_waits")
}) {}

/**
 * Decodes a task from its JSON text (use {@link decodeTask} on stored objects: it checks the key).
 *
 * @since 0.1.0
 * @category models
 */
export const TaskFromJson = Schema.parseJson(Task)

const shown = (value: string): string => JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)

/**
 * What is wrong with a decoded task stored at `key`, or undefined if nothing: its `id` and `shard`
 * must be the ones the key names, and its payload references only its own payload keys. Every key
 * the queue later builds from the body (markers, payloads) is then one of this task's own.
 *
 * @since 0.1.0
 * @category utils
 */
export const taskKeyProblem = (task: Task, key: string): string | undefined => {
  const named = parseTaskKey(key)
  if (named === undefined) return `${key} is not a task key (tasks/{shard}/{uuid}.json)`
  if (task.id !== named.taskId) return `its id ${shown(task.id)} is not the id its key names (${named.taskId})`
  if (task.shard !== named.shard && !isShardOfId(task.shard, task.id)) return `its shard ${shown(task.shard)} is not the shard its key names (${named.shard})`
  if (task.inputRef !== undefined && !isOwnPayloadRef(task.id, "input", task.inputRef)) {
    return `its input_ref ${shown(task.inputRef)} is not this task's input payload (${payloadKey(task.id, "input")})`
  }
  if (task.outputRef !== undefined && !isOwnPayloadRef(task.id, "output", task.outputRef)) {
    return `its output_ref ${shown(task.outputRef)} is not one of this task's output payloads (${payloadKey(task.id, "output")} or ${payloadPrefix(task.id)}output-{lease id}.json)`
  }
  return undefined
}

/**
 * Whether `shard` is the shard of `taskId` at some prefix length (1–4): what a task moved by the
 * reference's `migrate-shards` still says in its body (that tool copies the object to the new key
 * without rewriting the `shard` field).
 */
const isShardOfId = (shard: string, taskId: string): boolean =>
  /^[0-9a-f]{1,4}$/.test(shard) && taskId.replace(/-/g, "").startsWith(shard)

/**
 * Decodes the task object stored at `key` and checks it against the key ({@link taskKeyProblem}):
 * a planted or mangled body is a `MalformedObject` naming the key, never a task with another id.
 * A body whose `shard` is its id's shard at another prefix length (a task the reference's
 * migration moved) is the task at its key: its shard is taken from the key, so every key built
 * from it, and the body written back at the next transition, follows the key.
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodeTask = (key: string, body: Uint8Array): Effect.Effect<Task, MalformedObject> =>
  Effect.flatMap(decodeObject(Task, key, body), (task) => taskAtKey(key, task))

/**
 * A decoded task as the task stored at `key` ({@link decodeTask}'s check): a `MalformedObject`
 * naming the key when the body does not belong there, else the task with the key's shard.
 *
 * @since 0.1.0
 * @category codecs
 */
export const taskAtKey = (key: string, task: Task): Effect.Effect<Task, MalformedObject> => {
  const problem = taskKeyProblem(task, key)
  if (problem !== undefined) return Effect.fail(new MalformedObject({ key, message: `${key} is malformed: ${problem}` }))
  const shard = parseTaskKey(key)!.shard
  return Effect.succeed(task.shard === shard ? task : new Task({ ...task, shard }))
}

/**
 * Whether the task may be claimed at `now`: `now >= available_at`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isAvailableAt = (task: Task, now: DateTime.Utc): boolean =>
  DateTime.greaterThanOrEqualTo(now, task.availableAt)

/**
 * Whether the task's lease has run out at `now` (strictly after `lease_expires_at`).
 *
 * @since 0.1.0
 * @category guards
 */
export const isLeaseExpiredAt = (task: Task, now: DateTime.Utc): boolean =>
  task.leaseExpiresAt !== null && DateTime.greaterThan(now, task.leaseExpiresAt)

/**
 * Whether the task's TTL has passed at `now`: `now >= expires_at`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isExpiredAt = (task: Task, now: DateTime.Utc): boolean =>
  task.expiresAt !== undefined && DateTime.greaterThanOrEqualTo(now, task.expiresAt)

/**
 * Whether a failure may still be retried: `retry_count < max_retries`.
 *
 * @since 0.1.0
 * @category utils
 */
export const canRetry = (task: Task): boolean => task.retryCount < task.maxRetries

/**
 * The stack trace of the task's latest failure: the newest logged error, when it carried a stack.
 *
 * @since 0.1.0
 * @category utils
 */
export const lastErrorStack = (task: Task): string | undefined => {
  const events = task.events ?? []
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i]!
    if (event.error !== undefined) return event.stack
  }
  return undefined
}
