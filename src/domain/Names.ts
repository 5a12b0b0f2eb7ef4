/**
 * The names that end up inside object keys: task ids, task types, schedule ids, worker ids and
 * idempotency scopes. Each is a Schema, so hostile input (`../x`, `a/b`, control characters,
 * oversized strings) is refused before any write with a message that says what is allowed.
 *
 * @module
 */
import { Schema } from "effect"

const safeName = (what: string, maxLength: number) =>
  Schema.String.pipe(
    Schema.minLength(1, { message: () => `${what} must not be empty` }),
    Schema.maxLength(maxLength, { message: () => `${what} must be at most ${maxLength} characters` }),
    Schema.pattern(/^[A-Za-z0-9_][A-Za-z0-9_.:@-]*$/, {
      message: () =>
        `${what} may contain only letters, digits and _ . : @ - (and must not start with . : @ or -); ` +
        `slashes, spaces and control characters are not allowed`
    }),
    Schema.filter((s) => !s.includes("..") || `${what} must not contain ".."`)
  )

/** A task id: a lower-case UUID (v4 for the tasks we create; any version is read). */
export const TaskId = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, {
    message: () => "a task id is a lower-case UUID such as 6f1c1c2e-8a4b-4c1e-9f0a-2b3c4d5e6f70"
  })
)

/** A task type name, such as `send_email` or `reports.daily`. */
export const TaskTypeName = safeName("a task type", 200)

/** A schedule id, such as `nightly-report`. */
export const ScheduleId = safeName("a schedule id", 200)

/** A worker id, such as `worker-3fa9c1d2`. */
export const WorkerId = safeName("a worker id", 200)

/** An idempotency scope: a task type, the literal `queue`, or a custom name. */
export const IdempotencyScope = safeName("an idempotency scope", 200)
