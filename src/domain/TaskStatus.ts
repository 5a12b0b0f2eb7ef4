/**
 * The lifecycle states of a task, exactly the reference's set: adding one would make the
 * Rust/Python buquet reject our objects.
 *
 * @module
 */
import { Schema } from "effect"

/**
 * A task's status as stored in its JSON (`"pending"`, `"running"`, …).
 *
 * @since 0.1.0
 * @category models
 */
export const TaskStatus = Schema.Literal(
  "pending",
  "running",
  "completed",
  "failed",
  "cancelled",
  "archived",
  "expired"
)

/**
 * A task's status.
 *
 * @since 0.1.0
 * @category models
 */
export type TaskStatus = typeof TaskStatus.Type

/**
 * Every status, in lifecycle order.
 *
 * @since 0.1.0
 * @category utils
 */
export const allStatuses: ReadonlyArray<TaskStatus> = TaskStatus.literals

/**
 * Statuses a task never leaves on its own (only replay or archive move it on).
 *
 * @since 0.1.0
 * @category guards
 */
export const isTerminal = (status: TaskStatus): boolean =>
  status === "completed" || status === "failed" || status === "cancelled" || status === "archived" ||
  status === "expired"
