/**
 * The worker's own failures.
 *
 * @module
 */
import { Schema } from "effect"

/**
 * The worker no longer owns the task: its lease ran out and another worker (or the monitor) took
 * it, or it was cancelled. The handler should stop; nothing it does will be recorded.
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  taskId: Schema.String,
  message: Schema.String
}) {}

/** A worker option is invalid. The message names the option and what is allowed. */
export class InvalidWorkerOptions extends Schema.TaggedError<InvalidWorkerOptions>()("InvalidWorkerOptions", {
  option: Schema.String,
  message: Schema.String
}) {}
