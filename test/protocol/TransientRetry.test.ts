/**
 * `retryOnFailure` is `Effect.retry(self, { schedule, while })` with the retry's machinery built
 * only after a failure `while` accepts: for any run of failures and a final outcome, the same
 * runs, the same result and the same total delay as `Effect.retry`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, FastCheck as fc, Fiber, Schedule, TestClock } from "effect"
import { retryOnFailure } from "../../src/protocol/TransientRetry.js"

type Err = { readonly _tag: "StorageUnavailable" | "AccessDenied" }

/** An effect that fails with `errors` in turn, then succeeds with the number of runs. */
const scripted = (errors: ReadonlyArray<Err["_tag"]>) => {
  let runs = 0
  const self = Effect.suspend(() => {
    const error = errors[runs]
    runs++
    return error === undefined ? Effect.succeed(runs) : Effect.fail<Err>({ _tag: error })
  })
  return { self, runs: () => runs }
}

const schedule = Schedule.exponential(Duration.millis(50), 2).pipe(Schedule.intersect(Schedule.recurs(3)))
const options = { schedule, while: (e: Err) => e._tag === "StorageUnavailable" }

/** Runs under the TestClock, advancing it 10 ms at a time: the exit, the runs and the time taken. */
const observe = (self: Effect.Effect<number, Err>, runs: () => number) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(self)
    let elapsed = 0
    while ((yield* Fiber.poll(fiber))._tag === "None") {
      yield* TestClock.adjust(Duration.millis(10))
      elapsed += 10
    }
    const exit = yield* Fiber.await(fiber)
    return { exit, runs: runs(), elapsed }
  })

describe("retryOnFailure", () => {
  it.effect.prop(
    "runs, result and delays equal Effect.retry's for any failures",
    [fc.array(fc.constantFrom<Err["_tag"]>("StorageUnavailable", "AccessDenied"), { maxLength: 6 })],
    ([errors]) =>
      Effect.gen(function*() {
        const a = scripted(errors)
        const ours = yield* observe(retryOnFailure(a.self, options), a.runs)
        const b = scripted(errors)
        const theirs = yield* observe(Effect.retry(b.self, options), b.runs)
        expect(ours.runs).toBe(theirs.runs)
        expect(ours.elapsed).toBe(theirs.elapsed)
        expect(Exit.isSuccess(ours.exit)).toBe(Exit.isSuccess(theirs.exit))
        expect(ours.exit).toStrictEqual(theirs.exit)
      }),
    { fastCheck: { numRuns: 40 } }
  )

  it.effect("a success costs one run and no wait; a refused error is not retried", () =>
    Effect.gen(function*() {
      const ok = scripted([])
      expect(yield* retryOnFailure(ok.self, options)).toBe(1)
      const refused = scripted(["AccessDenied", "StorageUnavailable"])
      const exit = yield* Effect.exit(retryOnFailure(refused.self, options))
      expect(exit).toStrictEqual(Exit.fail({ _tag: "AccessDenied" }))
      expect(refused.runs()).toBe(1)
    }))

  it.effect("gives up after the schedule: the last failure, 1 + 3 runs", () =>
    Effect.gen(function*() {
      const always = scripted(Array.from({ length: 10 }, () => "StorageUnavailable" as const))
      const { exit, runs } = yield* observe(retryOnFailure(always.self, options), always.runs)
      expect(exit).toStrictEqual(Exit.fail({ _tag: "StorageUnavailable" }))
      expect(runs).toBe(4)
    }))
})
