/**
 * The failures a handler raises to tell the worker what to do with its task (design.md §6).
 * The worker routes by TYPE (the `_tag`), never by message text:
 *
 * - {@link PermanentError} → `failed` now, no retry;
 * - {@link RescheduleError} → `pending` again after `delay`, without consuming a retry
 *   (durable sleep / rate limiting), `failed` once `max_reschedules` is exceeded;
 * - {@link RetryableError}, any other failure, defects and local timeouts → retried with the
 *   task's RetryPolicy while `retry_count < max_retries`, then `failed`.
 *
 * @module
 */
import { Duration, Schema } from "effect"

/**
 * A failure worth retrying (a flaky dependency, a 503): retried with backoff while retries remain.
 *
 * @since 0.1.0
 * @category errors
 */
export class RetryableError extends Schema.TaggedError<RetryableError>()("RetryableError", {
  message: Schema.String
}) {}

/**
 * A failure that will not go away by retrying (bad input, a refused request): the task fails now.
 *
 * @since 0.1.0
 * @category errors
 */
export class PermanentError extends Schema.TaggedError<PermanentError>()("PermanentError", {
  message: Schema.String
}) {}

/**
 * "Not now, try again after `delay`": the task goes back to `pending`, available after `delay`,
 * without consuming a retry (`reschedule_count + 1`). Bounded by the task's `max_reschedules`.
 *
 * @since 0.1.0
 * @category errors
 */
export class RescheduleError extends Schema.TaggedError<RescheduleError>()("RescheduleError", {
  delay: Schema.DurationFromSelf,
  message: Schema.optionalWith(Schema.String, { default: () => "rescheduled by the handler" })
}) {
  /** A RescheduleError after `delay` (any Duration input: `"30 seconds"`, millis, …). */
  static after(delay: Duration.DurationInput, message?: string): RescheduleError {
    return new RescheduleError({ delay: Duration.decode(delay), ...(message !== undefined ? { message } : {}) })
  }
}

/**
 * Any of the failures a handler may use to steer its task.
 *
 * @since 0.1.0
 * @category errors
 */
export type HandlerError = RetryableError | PermanentError | RescheduleError
