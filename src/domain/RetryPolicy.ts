/**
 * The retry backoff of a task: exponential, capped and jittered, in the reference's JSON shape.
 *
 * @module
 */
import { Schema } from "effect"

/** How long to wait before each retry. Stored in the task as snake_case JSON. */
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
 * The un-jittered delay before retry number `retryCount` (0-based): `min(initial × multiplier^k, max)`,
 * with the exponent saturated at 30 like the reference.
 */
export const baseDelayMs = (policy: RetryPolicy, retryCount: number): number =>
  Math.min(policy.initialIntervalMs * Math.pow(policy.multiplier, Math.min(Math.max(retryCount, 0), 30)), policy.maxIntervalMs)

/**
 * The delay before retry number `retryCount`, with jitter applied from `random` in [0, 1):
 * the base delay scaled by `1 ± jitter`, floored at 0 and rounded to whole milliseconds.
 */
export const delayMs = (policy: RetryPolicy, retryCount: number, random: number): number => {
  const base = baseDelayMs(policy, retryCount)
  const factor = 1 + policy.jitterPercent * (2 * random - 1)
  return Math.max(0, Math.round(base * factor))
}
