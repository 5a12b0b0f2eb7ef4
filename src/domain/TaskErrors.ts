/**
 * Typed failures of the Queue's operations on tasks (submit, lifecycle, payloads, schemas).
 * Each message says what happened and what to do.
 *
 * @module
 */
import { Schema } from "effect"
import { TaskStatus } from "./TaskStatus.js"

/**
 * No task with this id exists (it was never submitted, or it was deleted).
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskNotFound extends Schema.TaggedError<TaskNotFound>()("TaskNotFound", {
  taskId: Schema.String,
  message: Schema.String
}) {
  /** A TaskNotFound with the standard message. */
  static of(taskId: string): TaskNotFound {
    return new TaskNotFound({ taskId, message: `task ${taskId} does not exist; check the id (list tasks with \`buquet list\`)` })
  }
}

/**
 * An idempotency key was reused with a different task type or input while its record is live.
 * Use a new key for a different request, or wait until the key's TTL has passed.
 *
 * @since 0.1.0
 * @category errors
 */
export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>()("IdempotencyConflict", {
  idempotencyKey: Schema.String,
  scope: Schema.String,
  existingTaskId: Schema.String,
  message: Schema.String
}) {}

/**
 * A strict submit (`typeCheck: "strict"`) of a task type no worker has ever registered a handler
 * for: most likely a misspelled type, which would stay pending forever.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnhandledTaskType extends Schema.TaggedError<UnhandledTaskType>()("UnhandledTaskType", {
  taskType: Schema.String,
  message: Schema.String
}) {}

/**
 * An input (or output) does not match the task type's Schema or its published JSON Schema.
 *
 * @since 0.1.0
 * @category errors
 */
export class SchemaValidationFailed extends Schema.TaggedError<SchemaValidationFailed>()("SchemaValidationFailed", {
  taskType: Schema.String,
  which: Schema.Literal("input", "output"),
  message: Schema.String
}) {}

/**
 * The task is not in a status this operation applies to (e.g. replaying a running task).
 *
 * @since 0.1.0
 * @category errors
 */
export class IllegalTransition extends Schema.TaggedError<IllegalTransition>()("IllegalTransition", {
  taskId: Schema.String,
  action: Schema.String,
  status: TaskStatus,
  message: Schema.String
}) {}

/**
 * A task refers to an offloaded payload that is not in the bucket (deleted out of band).
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadMissing extends Schema.TaggedError<PayloadMissing>()("PayloadMissing", {
  taskId: Schema.String,
  key: Schema.String,
  message: Schema.String
}) {}
