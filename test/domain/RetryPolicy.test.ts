/**
 * The retry backoff: the reference's formula `min(initial × multiplier^min(k,30), max) × (1 ± U(jitter))`,
 * its cap and jitter bounds, and the Effect Schedule that must agree with it (driven by TestClock).
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, FastCheck as fc, Random, Ref, Schedule, ScheduleDecision, ScheduleIntervals, Schema, TestClock } from "effect"
import * as RP from "../../src/domain/RetryPolicy.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"

const policyArb = fc.record({
  initialIntervalMs: fc.integer({ min: 0, max: 100_000 }),
  maxIntervalMs: fc.integer({ min: 0, max: 10_000_000 }),
  multiplier: fc.double({ min: 1, max: 10, noNaN: true }),
  jitterPercent: fc.double({ min: 0, max: 1, noNaN: true })
}).map((fields) => new RetryPolicy(fields))

describe("delayMs", () => {
  const p = RetryPolicy.default

  it("follows the formula for the reference's defaults (1 s × 2^k, capped at 60 s)", () => {
    // random = 0.5 means no jitter.
    expect([0, 1, 2, 3, 4, 5, 6, 7, 30, 31, 1000].map((k) => RP.delayMs(p, k, 0.5))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000, 60000
    ])
    expect(RP.baseDelayMs(p, -3)).toBe(1000)
  })

  it("saturates the exponent at 30", () => {
    const slow = new RetryPolicy({ initialIntervalMs: 1, maxIntervalMs: 4_000_000_000, multiplier: 2, jitterPercent: 0 })
    expect(RP.baseDelayMs(slow, 29)).toBe(2 ** 29)
    expect(RP.baseDelayMs(slow, 30)).toBe(2 ** 30)
    expect(RP.baseDelayMs(slow, 31)).toBe(2 ** 30)
    expect(RP.baseDelayMs(slow, 500)).toBe(2 ** 30)
  })

  it("applies jitter as 1 ± jitter at the extremes", () => {
    expect(RP.delayMs(p, 0, 0)).toBe(750)
    expect(RP.delayMs(p, 0, 0.999999)).toBe(1250)
    expect(RP.delayMs(p, 6, 0)).toBe(45_000)
  })

  it("saturates at u32::MAX and never yields NaN", () => {
    const huge = new RetryPolicy({ initialIntervalMs: 4_000_000_000, maxIntervalMs: 4_294_967_295, multiplier: 1e300, jitterPercent: 1 })
    expect(RP.delayMs(huge, 30, 0.9999)).toBe(RP.maxDelayMs)
    const zero = new RetryPolicy({ initialIntervalMs: 0, maxIntervalMs: 1000, multiplier: 1e300, jitterPercent: 0.5 })
    expect(RP.delayMs(zero, 30, 0.3)).toBe(0)
    expect(RP.delayMs(p, 0, Number.NaN)).toBe(1000)
  })

  it.prop(
    "stays within [base × (1 − jitter), base × (1 + jitter)], rounded, and never above the cap × (1 + jitter)",
    [policyArb, fc.integer({ min: 0, max: 200 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })],
    ([policy, k, random]) => {
      const base = RP.baseDelayMs(policy, k)
      const d = RP.delayMs(policy, k, random)
      expect(Number.isInteger(d)).toBe(true)
      expect(d).toBeGreaterThanOrEqual(Math.floor(base * (1 - policy.jitterPercent)))
      expect(d).toBeLessThanOrEqual(Math.ceil(base * (1 + policy.jitterPercent)))
      expect(base).toBeLessThanOrEqual(policy.maxIntervalMs)
      expect(base).toBe(Math.min(policy.initialIntervalMs * policy.multiplier ** Math.min(k, 30), policy.maxIntervalMs))
    }
  )

  it.prop("the base delay never decreases with the retry number", [policyArb, fc.integer({ min: 0, max: 100 })], ([policy, k]) => {
    expect(RP.baseDelayMs(policy, k + 1)).toBeGreaterThanOrEqual(RP.baseDelayMs(policy, k))
  })

  it("decodes from and encodes to the reference's JSON", () => {
    const json = { initial_interval_ms: 1000, max_interval_ms: 60000, multiplier: 2, jitter_percent: 0.25 }
    expect(Schema.decodeUnknownSync(RetryPolicy)(json)).toEqual(RetryPolicy.default)
    expect(Schema.encodeSync(RetryPolicy)(RetryPolicy.default)).toEqual(json)
    expect(() => Schema.decodeUnknownSync(RetryPolicy)({ ...json, jitter_percent: 1.5 })).toThrow()
    expect(() => Schema.decodeUnknownSync(RetryPolicy)({ ...json, multiplier: 0.5 })).toThrow()
  })
})

/** Steps a schedule (no sleeping) and returns each recurrence's output and delay until it is done. */
const recurrences = <Out>(schedule: Schedule.Schedule<Out>, limit = 100) =>
  Effect.gen(function*() {
    const out: Array<{ readonly output: Out; readonly delayMs: number }> = []
    let state = schedule.initial
    let now = 0
    for (let i = 0; i < limit; i++) {
      const [next, output, decision] = yield* schedule.step(now, undefined, state)
      if (ScheduleDecision.isDone(decision)) break
      const start = ScheduleIntervals.start(decision.intervals)
      out.push({ output, delayMs: start - now })
      state = next
      now = start
    }
    return out
  })

describe("schedule", () => {
  const randoms = [0.1, 0.9, 0.5, 0.0, 0.75, 0.33] as const

  it.effect("its delays are delayMs's, with the same random numbers, and it stops when retries run out", () =>
    Effect.gen(function*() {
      const policy = RetryPolicy.default
      const steps = yield* recurrences(RP.schedule(policy, { maxRetries: 5 }))
      expect(steps.map((s) => s.output)).toEqual([0, 1, 2, 3, 4])
      expect(steps.map((s) => s.delayMs)).toEqual([0, 1, 2, 3, 4].map((k) => RP.delayMs(policy, k, randoms[k % randoms.length]!)))
      // 0.1 → 1000 × 0.8; 0.9 → 2000 × 1.2; 0.5 → 4000; 0.0 → 8000 × 0.75; 0.75 → 16000 × 1.125
      expect(steps.map((s) => s.delayMs)).toEqual([800, 2400, 4000, 6000, 18000])
    }).pipe(Effect.withRandom(Random.fixed([...randoms]))))

  it.effect("starts at the task's retry_count", () =>
    Effect.gen(function*() {
      const policy = RetryPolicy.default
      const steps = yield* recurrences(RP.schedule(policy, { maxRetries: 5, retryCount: 3 }))
      expect(steps.map((s) => s.output)).toEqual([3, 4])
      expect(steps.map((s) => s.delayMs)).toEqual([8000, 16000])
      expect(yield* recurrences(RP.schedule(policy, { maxRetries: 3, retryCount: 3 }))).toEqual([])
    }).pipe(Effect.withRandom(Random.fixed([0.5]))))

  it.effect("drives Effect.retry under TestClock: attempts happen exactly at the backoff instants", () =>
    Effect.gen(function*() {
      const policy = new RetryPolicy({ initialIntervalMs: 1000, maxIntervalMs: 5000, multiplier: 3, jitterPercent: 0 })
      const attempts = yield* Ref.make<ReadonlyArray<number>>([])
      const failing = Effect.flatMap(TestClock.currentTimeMillis, (t) => Ref.update(attempts, (a) => [...a, t])).pipe(
        Effect.zipRight(Effect.fail("boom" as const))
      )
      const fiber = yield* Effect.fork(Effect.retry(failing, RP.schedule(policy, { maxRetries: 4 })))
      // 1 s, 3 s, then capped at 5 s, 5 s: attempts at 0, 1000, 4000, 9000, 14000.
      yield* TestClock.adjust(Duration.millis(999))
      expect(yield* Ref.get(attempts)).toEqual([0])
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Ref.get(attempts)).toEqual([0, 1000])
      yield* TestClock.adjust(Duration.seconds(20))
      expect(yield* Ref.get(attempts)).toEqual([0, 1000, 4000, 9000, 14000])
      const exit = yield* Fiber.await(fiber)
      expect(exit._tag).toBe("Failure")
    }))

  it.effect.prop(
    "agrees with delayMs for any policy and any random sequence",
    [policyArb, fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 12 })],
    ([policy, rs, maxRetries]) =>
      Effect.gen(function*() {
        const steps = yield* recurrences(RP.schedule(policy, { maxRetries }))
        expect(steps.length).toBe(maxRetries)
        steps.forEach((s, k) => {
          expect(s.output).toBe(k)
          expect(s.delayMs).toBe(RP.delayMs(policy, k, rs[k % rs.length]!))
        })
      }).pipe(Effect.withRandom(Random.fixed([rs[0]!, ...rs.slice(1)])))
  )
})
