/**
 * The retry backoff of a task: exponential, capped and jittered, in the reference's JSON shape,
 * as a pure formula ({@link delayMs}) and as an Effect `Schedule` ({@link schedule}) that agrees with it.
 *
 * @module
 */
import { Duration, Effect, Random, Schedule, Schema } from "effect"

/**
 * How long to wait before each retry. Stored in the task as snake_case JSON.
 *
 * @since 0.1.0
 * @category models
 */
export class RetryPolicy extends Schema.Class<RetryPolicy>("RetryPolicy")({
  initialIntervalMs: Schema.propertySignature(Schema.NonNegativeInt).pipe(Schema.fromKey("initial_interval_ms")),
  maxIntervalMs: Schema.propertySignature(Schema.NonNegativeInt).pipe(Schema.fromKey("max_interval_ms")),
  multiplier: Schema.Number.pipe(Schema.finite(), Schema.greaterThanOrEqualTo(1)),
  jitterPercent: Schema.propertySignature(Schema.Number.pipe(Schema.between(0, 1))).pipe(
    Schema.fromKey("jitter_percent")
  )
}) {
  /** The reference's defaults: 1 s, ×2, capped at 60 s, ±25 % jitter. */
  static readonly default = new RetryPolicy({
    initialIntervalMs: 1000,
    maxIntervalMs: 60_000,
    multiplier: 2,
    jitterPercent: 0.25
  })
}

/**
 * The largest delay, in milliseconds: the reference saturates at `u32::MAX`.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxDelayMs = 4_294_967_295

/** The exponent is saturated at 30 like the reference (`multiplier^min(k, 30)`). */
const maxExponent = 30

/**
 * The un-jittered delay before retry number `retryCount` (0-based): `min(initial × multiplier^k, max)`,
 * with the exponent saturated at 30 like the reference.
 *
 * @since 0.1.0
 * @category utils
 */
export const baseDelayMs = (policy: RetryPolicy, retryCount: number): number => {
  // 0 × Infinity would be NaN for a huge multiplier; a zero interval stays zero.
  if (policy.initialIntervalMs === 0) return 0
  const exponent = Math.min(Math.max(Math.floor(retryCount), 0), maxExponent)
  return Math.min(policy.initialIntervalMs * Math.pow(policy.multiplier, exponent), policy.maxIntervalMs)
}

/**
 * The delay before retry number `retryCount`, with jitter applied from `random` in [0, 1):
 * the base delay scaled by `1 + jitter × (2 × random − 1)` (so within `1 ± jitter`), floored at 0,
 * rounded to whole milliseconds and saturated at {@link maxDelayMs}.
 *
 * @since 0.1.0
 * @category utils
 */
export const delayMs = (policy: RetryPolicy, retryCount: number, random: number): number => {
  const base = baseDelayMs(policy, retryCount)
  const r = Number.isFinite(random) ? Math.min(Math.max(random, 0), 1) : 0.5
  const factor = 1 + policy.jitterPercent * (2 * r - 1)
  return Math.min(maxDelayMs, Math.max(0, Math.round(base * factor)))
}

/**
 * Where a retry schedule starts and stops.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryScheduleOptions {
  /** How many retries the task may have in all (`max_retries`). */
  readonly maxRetries: number
  /** How many it has had already (`retry_count`, default 0): the first delay is for this retry number. */
  readonly retryCount?: number | undefined
}

/**
 * The policy as an Effect `Schedule`, for `Effect.retry`: recurrence `k` waits
 * `delayMs(policy, k, U)` with `U` from Effect's `Random` (so `TestRandom`/`Random.fixed` pin it),
 * outputs the retry number `k`, and recurs while `k < maxRetries`. It is exponential
 * (`initial × multiplier^k`), capped at `maxIntervalMs` and jittered by `jitterPercent`, exactly
 * as {@link delayMs}.
 *
 * @since 0.1.0
 * @category utils
 */
export const schedule = (policy: RetryPolicy, options: RetryScheduleOptions): Schedule.Schedule<number> =>
  Schedule.unfold(Math.max(0, Math.floor(options.retryCount ?? 0)), (k) => k + 1).pipe(
    Schedule.whileOutput((k) => k < options.maxRetries),
    Schedule.addDelayEffect((k) => Effect.map(Random.next, (random) => Duration.millis(delayMs(policy, k, random))))
  )
