/**
 * Errors of the Promise facade: every failure of the Effect core surfaces as a {@link BuquetError}
 * (a plain `Error` with the tagged error's message, `_tag` and `code`), and handlers steer their
 * tasks by throwing {@link RetryableError}, {@link PermanentError} or {@link RescheduleError},
 * which the worker routes exactly like the Effect API's tagged errors.
 *
 * @module
 */
import { Cause, Duration, Exit, Option } from "effect"
import * as HandlerErrors from "../domain/HandlerErrors.js"

/** `InvalidArgument` → `INVALID_ARGUMENT`. */
const codeOf = (tag: string): string => tag.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()

/**
 * A failure of a buquet operation. `_tag` names the Effect API's tagged error (`TaskNotFound`,
 * `InvalidArgument`, `IdempotencyConflict`, `StorageUnavailable`, …), `code` is the same in
 * upper snake case (`TASK_NOT_FOUND`), and `cause` is the original tagged error with all its fields.
 *
 * ```ts
 * try {
 *   await queue.replay(id)
 * } catch (e) {
 *   if (e instanceof BuquetError && e._tag === "IllegalTransition") console.log(e.message)
 * }
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class BuquetError extends Error {
  /** The tagged error's name, e.g. `"TaskNotFound"`. */
  readonly _tag: string
  /** `_tag` in upper snake case, e.g. `"TASK_NOT_FOUND"`. */
  readonly code: string

  /** Wraps a failure named `tag`; `cause` is the original error. */
  constructor(tag: string, message: string, options?: { readonly cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this._tag = tag
    this.code = codeOf(tag)
    this.name = `BuquetError(${tag})`
  }
}

/**
 * Throw from a handler for a failure worth retrying (a flaky dependency, a 503): the task goes
 * back to `pending` after the task's retry backoff while `retryCount < maxRetries`, then `failed`.
 * Any other thrown error is treated the same way.
 *
 * @since 0.1.0
 * @category errors
 */
export class RetryableError extends Error {
  /** Always `"RetryableError"`: routing is by this tag, never by the message. */
  readonly _tag = "RetryableError" as const
  /** Always `"RETRYABLE"`. */
  readonly code = "RETRYABLE" as const

  /** A retryable failure with this message. */
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = "RetryableError"
  }
}

/**
 * Throw from a handler when retrying cannot help (bad input, a refused request): the task fails now.
 *
 * @since 0.1.0
 * @category errors
 */
export class PermanentError extends Error {
  /** Always `"PermanentError"`. */
  readonly _tag = "PermanentError" as const
  /** Always `"PERMANENT"`. */
  readonly code = "PERMANENT" as const

  /** A permanent failure with this message. */
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = "PermanentError"
  }
}

/**
 * When a {@link RescheduleError} wants its task back: give exactly one of `delayMs` and `delaySeconds`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RescheduleOptions {
  /** Run again after this many milliseconds. */
  readonly delayMs?: number | undefined
  /** Run again after this many seconds. */
  readonly delaySeconds?: number | undefined
  /** Why (stored in the task's history; default "rescheduled by the handler"). */
  readonly message?: string | undefined
}

/**
 * Throw from a handler for "not now, try again later" (rate limits, durable sleep): the task goes
 * back to `pending`, available after the delay, without consuming a retry (`rescheduleCount + 1`).
 * Bounded by the task's `maxReschedules`; beyond it the task fails.
 *
 * ```ts
 * throw new RescheduleError({ delaySeconds: 30, message: "rate limited" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RescheduleError extends Error {
  /** Always `"RescheduleError"`. */
  readonly _tag = "RescheduleError" as const
  /** Always `"RESCHEDULE"`. */
  readonly code = "RESCHEDULE" as const
  /** The delay, in milliseconds. */
  readonly delayMs: number

  /** A reschedule after `delayMs` or `delaySeconds` (a bad or missing delay is a TypeError). */
  constructor(options: RescheduleOptions) {
    super(options.message ?? "rescheduled by the handler")
    this.name = "RescheduleError"
    const given = [options.delayMs, options.delaySeconds].filter((d) => d !== undefined)
    const ms = options.delayMs ?? (options.delaySeconds === undefined ? Number.NaN : options.delaySeconds * 1000)
    if (given.length !== 1 || !Number.isFinite(ms) || ms < 0) {
      throw new TypeError("RescheduleError needs exactly one of delayMs and delaySeconds, a finite number ≥ 0")
    }
    this.delayMs = ms
  }
}

/**
 * The lease of a task was lost (its handler should stop): thrown by `ctx.extendLease`. Its `_tag` is `"LeaseLost"`.
 *
 * @since 0.1.0
 * @category errors
 */
export type LeaseLostError = BuquetError

const hasTag = (u: unknown): u is { readonly _tag: string; readonly message?: unknown } =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string"

/**
 * Converts a failure of the Effect core (a tagged error) into a {@link BuquetError}.
 *
 * @since 0.1.0
 * @category errors
 */
export const toBuquetError = (error: unknown): BuquetError => {
  if (error instanceof BuquetError) return error
  if (hasTag(error)) {
    const message = typeof error.message === "string" && error.message !== "" ? error.message : error._tag
    return new BuquetError(error._tag, message, { cause: error })
  }
  if (error instanceof Error) return new BuquetError("UnknownError", error.message, { cause: error })
  return new BuquetError("UnknownError", String(error), { cause: error })
}

/**
 * Turns the Exit of an Effect into a Promise outcome: the value, or a thrown {@link BuquetError}
 * for a typed failure; a defect is rethrown as it is (a bug, not an outcome).
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromExit = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) throw toBuquetError(failure.value)
  const defect = Cause.dieOption(exit.cause)
  if (Option.isSome(defect)) throw defect.value instanceof Error ? defect.value : toBuquetError(defect.value)
  throw new BuquetError("Interrupted", "the operation was interrupted (the queue was closed or the process is stopping)")
}

/**
 * What a thrown value means to the worker: the Effect API's tagged handler error for our classes
 * (recognised by `_tag` too, so a second copy of this module routes the same), the value itself
 * otherwise (any other failure is retried).
 *
 * @since 0.1.0
 * @category utils
 */
export const toHandlerFailure = (thrown: unknown): unknown => {
  if (thrown instanceof HandlerErrors.PermanentError || thrown instanceof HandlerErrors.RetryableError || thrown instanceof HandlerErrors.RescheduleError) {
    return thrown
  }
  if (hasTag(thrown)) {
    const message = typeof thrown.message === "string" ? thrown.message : thrown._tag
    switch (thrown._tag) {
      case "PermanentError":
        return new HandlerErrors.PermanentError({ message })
      case "RetryableError":
        return new HandlerErrors.RetryableError({ message })
      case "RescheduleError": {
        const delayMs = "delayMs" in thrown && typeof thrown.delayMs === "number" ? thrown.delayMs : undefined
        if (delayMs !== undefined) return new HandlerErrors.RescheduleError({ delay: Duration.millis(delayMs), message })
        break
      }
    }
  }
  return thrown
}
