/**
 * The options of `Queue.submit` (design.md §7) and their resolution against server time into the
 * values a new task is built from. Every option is checked here, before any write, with a message
 * that names the option and what is allowed.
 *
 * @module
 */
import { DateTime, Duration, Effect, Option } from "effect"
import { InvalidArgument } from "./QueueError.js"
import type { QueueConfig, TypeCheck } from "./QueueConfig.js"
import { isValidPriority, maxPriority } from "./ReadyIndex.js"
import { RetryPolicy } from "./RetryPolicy.js"

/**
 * A point in time given by the caller: an Effect `DateTime` or a JS `Date`.
 *
 * @since 0.1.0
 * @category models
 */
export type Instant = DateTime.DateTime | Date

/**
 * Overrides of the retry backoff; unset fields keep the defaults (1 s, ×2, 60 s cap, ±25 %).
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryPolicyOptions {
  readonly initialIntervalMs?: number | undefined
  readonly maxIntervalMs?: number | undefined
  readonly multiplier?: number | undefined
  readonly jitterPercent?: number | undefined
}

/**
 * How to de-duplicate submits: `task_type` (the default: per type), `queue` (across types) or a custom scope name.
 *
 * @since 0.1.0
 * @category models
 */
export type IdempotencyScopeOption = "task_type" | "queue" | (string & {})

/**
 * Options of one submit. All optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubmitOptions {
  /** Lease length of one attempt, in seconds (default 300). */
  readonly timeoutSeconds?: number | undefined
  /** Retries after the first attempt (default 3). */
  readonly maxRetries?: number | undefined
  /** Retry backoff. */
  readonly retryPolicy?: RetryPolicyOptions | undefined
  /** How many times a handler may reschedule the task (unlimited when unset). */
  readonly maxReschedules?: number | undefined
  /** Do not run before this instant (server time). Exclusive with `delay`/`delayMs`. */
  readonly scheduleAt?: Instant | undefined
  /** Do not run before now + delay. */
  readonly delay?: Duration.DurationInput | undefined
  /** Do not run before now + this many milliseconds. */
  readonly delayMs?: number | undefined
  /** Expire (never run) if not claimed within this many seconds. Exclusive with `expiresAt`. */
  readonly ttlSeconds?: number | undefined
  /** Expire (never run) if not claimed by this instant. */
  readonly expiresAt?: Instant | undefined
  /** 0 (default) to 9999: in a shard, higher priorities are claimed first. */
  readonly priority?: number | undefined
  /** Free-form labels stored with the task. */
  readonly tags?: ReadonlyArray<string> | undefined
  /** De-duplication key: submits with the same key (in one scope, within the TTL) make one task. */
  readonly idempotencyKey?: string | undefined
  /** Where the key is unique (default `task_type`). */
  readonly idempotencyScope?: IdempotencyScopeOption | undefined
  /** How long the key de-duplicates, in seconds (default 30 days). */
  readonly idempotencyTtlSeconds?: number | undefined
  /** W3C trace context to carry to the worker. */
  readonly traceparent?: string | undefined
  /**
   * What to do when no worker has ever registered a handler for the type (a misspelled type stays
   * pending forever): `"warn"` logs a warning, `"strict"` refuses with `UnhandledTaskType`, `"off"`
   * does not check. Default: the queue's `typeCheck` (`"warn"`).
   */
  readonly typeCheck?: TypeCheck | undefined
}

/**
 * Submit options resolved against server time.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedSubmit {
  readonly timeoutSeconds: number
  readonly maxRetries: number
  readonly retryPolicy: RetryPolicy
  readonly maxReschedules: number | undefined
  readonly availableAt: DateTime.Utc
  readonly expiresAt: DateTime.Utc | undefined
  readonly priority: number | undefined
  readonly tags: ReadonlyArray<string> | undefined
  readonly traceparent: string | undefined
  readonly idempotency:
    | { readonly key: string; readonly scope: IdempotencyScopeOption; readonly ttlSeconds: number }
    | undefined
}

/**
 * Most tags a task may carry, and their longest length.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxTags = 50
const maxTagLength = 200
/**
 * Longest idempotency key (it is hashed, so any characters are fine).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxIdempotencyKeyLength = 1024

const bad = (argument: string, message: string) => Effect.fail(new InvalidArgument({ argument, message }))

const checkInt = (name: string, value: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER) =>
  value === undefined || (Number.isInteger(value) && value >= min && value <= max)
    ? Effect.void
    : bad(name, `${name} must be a whole number from ${min} to ${max}, got ${String(value)}`)

const toUtc = (name: string, instant: Instant) => {
  const dt = DateTime.isDateTime(instant) ? Option.some(DateTime.toUtc(instant)) : DateTime.make(instant)
  return Option.match(dt, {
    onNone: () => bad(name, `${name} is not a valid date`),
    onSome: (d) => Effect.succeed(DateTime.toUtc(d))
  })
}

// eslint-disable-next-line no-control-regex
const controlChars = /[\u0000-\u001f\u007f]/

/**
 * Checks the options and resolves them at server time `now` with the queue's defaults.
 * Fails with {@link InvalidArgument} naming the first bad option.
 *
 * @since 0.1.0
 * @category utils
 */
export const resolveSubmitOptions = (options: SubmitOptions, now: DateTime.Utc, config: QueueConfig) =>
  Effect.gen(function*() {
    yield* checkInt("timeoutSeconds", options.timeoutSeconds, 1, 7 * 24 * 3600)
    yield* checkInt("maxRetries", options.maxRetries, 0, 10_000)
    yield* checkInt("maxReschedules", options.maxReschedules, 0, 1_000_000)
    yield* checkInt("ttlSeconds", options.ttlSeconds, 0)
    yield* checkInt("idempotencyTtlSeconds", options.idempotencyTtlSeconds, 1)
    if (options.priority !== undefined && !isValidPriority(options.priority)) {
      return yield* bad("priority", `priority must be a whole number from 0 (default) to ${maxPriority} (most urgent), got ${options.priority}`)
    }
    const rp = options.retryPolicy ?? {}
    yield* checkInt("retryPolicy.initialIntervalMs", rp.initialIntervalMs, 0, 2 ** 32 - 1)
    yield* checkInt("retryPolicy.maxIntervalMs", rp.maxIntervalMs, 0, 2 ** 32 - 1)
    if (rp.multiplier !== undefined && !(Number.isFinite(rp.multiplier) && rp.multiplier >= 1)) {
      return yield* bad("retryPolicy.multiplier", `retryPolicy.multiplier must be a number ≥ 1, got ${rp.multiplier}`)
    }
    if (rp.jitterPercent !== undefined && !(rp.jitterPercent >= 0 && rp.jitterPercent <= 1)) {
      return yield* bad("retryPolicy.jitterPercent", `retryPolicy.jitterPercent must be from 0 to 1 (0.25 = ±25 %), got ${rp.jitterPercent}`)
    }
    const retryPolicy = new RetryPolicy({
      initialIntervalMs: rp.initialIntervalMs ?? RetryPolicy.default.initialIntervalMs,
      maxIntervalMs: rp.maxIntervalMs ?? RetryPolicy.default.maxIntervalMs,
      multiplier: rp.multiplier ?? RetryPolicy.default.multiplier,
      jitterPercent: rp.jitterPercent ?? RetryPolicy.default.jitterPercent
    })

    const delays = [options.scheduleAt, options.delay, options.delayMs].filter((x) => x !== undefined).length
    if (delays > 1) return yield* bad("scheduleAt", "give only one of scheduleAt, delay and delayMs")
    let availableAt = now
    if (options.scheduleAt !== undefined) {
      const at = yield* toUtc("scheduleAt", options.scheduleAt)
      availableAt = DateTime.max(at, now)
    } else if (options.delay !== undefined || options.delayMs !== undefined) {
      const name = options.delay !== undefined ? "delay" : "delayMs"
      const d = Duration.decodeUnknown(options.delay ?? options.delayMs)
      if (Option.isNone(d) || !Duration.isFinite(d.value) || Duration.lessThan(d.value, Duration.zero)) {
        return yield* bad(name, `${name} must be a finite, non-negative duration such as 5000 or "5 minutes"`)
      }
      availableAt = DateTime.addDuration(now, d.value)
    }

    if (options.ttlSeconds !== undefined && options.expiresAt !== undefined) {
      return yield* bad("ttlSeconds", "give only one of ttlSeconds and expiresAt")
    }
    const expiresAt = options.ttlSeconds !== undefined
      ? DateTime.addDuration(now, Duration.seconds(options.ttlSeconds))
      : options.expiresAt !== undefined
      ? yield* toUtc("expiresAt", options.expiresAt)
      : undefined
    // A task whose expiry is not after the time it may first run could never run: refuse it here,
    // so the Effect, Promise and CLI surfaces all say so instead of storing a dead task.
    if (expiresAt !== undefined && DateTime.lessThanOrEqualTo(expiresAt, availableAt)) {
      return yield* bad(
        options.ttlSeconds !== undefined ? "ttlSeconds" : "expiresAt",
        `the task would expire at ${DateTime.formatIso(expiresAt)}, not after the time it may first run ` +
          `(${DateTime.formatIso(availableAt)}), so it could never run; give a later expiry (a TTL counts from the submit) or an earlier start`
      )
    }

    if (options.tags !== undefined) {
      if (options.tags.length > maxTags) return yield* bad("tags", `at most ${maxTags} tags, got ${options.tags.length}`)
      for (const tag of options.tags) {
        if (typeof tag !== "string" || tag.length === 0 || tag.length > maxTagLength || controlChars.test(tag)) {
          return yield* bad("tags", `each tag must be 1–${maxTagLength} characters without control characters`)
        }
      }
    }

    let idempotency: ResolvedSubmit["idempotency"] = undefined
    if (options.idempotencyKey !== undefined) {
      const key = options.idempotencyKey
      if (typeof key !== "string" || key.length === 0 || key.length > maxIdempotencyKeyLength) {
        return yield* bad("idempotencyKey", `idempotencyKey must be 1–${maxIdempotencyKeyLength} characters`)
      }
      idempotency = {
        key,
        scope: options.idempotencyScope ?? "task_type",
        ttlSeconds: options.idempotencyTtlSeconds ?? config.idempotencyTtlSeconds
      }
    } else if (options.idempotencyScope !== undefined || options.idempotencyTtlSeconds !== undefined) {
      return yield* bad("idempotencyKey", "idempotencyScope and idempotencyTtlSeconds need an idempotencyKey")
    }
    if (options.traceparent !== undefined && (options.traceparent.length > 512 || controlChars.test(options.traceparent))) {
      return yield* bad("traceparent", "traceparent must be a W3C trace context header value")
    }

    return {
      timeoutSeconds: options.timeoutSeconds ?? config.defaultTimeoutSeconds,
      maxRetries: options.maxRetries ?? config.defaultMaxRetries,
      retryPolicy,
      maxReschedules: options.maxReschedules,
      availableAt,
      expiresAt,
      priority: options.priority,
      tags: options.tags,
      traceparent: options.traceparent,
      idempotency
    } satisfies ResolvedSubmit
  })
