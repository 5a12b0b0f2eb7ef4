/**
 * TestClock without its idle milliseconds. Before each sleep it wakes, `TestClock.adjust` waits
 * until every fiber of the test is suspended: it snapshots their statuses across `setTimeout(0)`
 * turns of the event loop, at least three per wake-up — and Node clamps `setTimeout(0)` to 1 ms.
 * A simulated idle hour wakes thousands of sleeps (the worker's 1 s probe alone is 3,600), so
 * test/worker/IdleCost.test.ts spent 95 s of wall time for 24 s of CPU, the rest waiting on those
 * timers with the CPU idle.
 *
 * {@link immediateYields} makes those turns `setImmediate`. The condition TestClock checks is the
 * same: a fiber's status is a message the fiber answers after any work already queued for it, so
 * a fiber with work pending still reads as running whichever macrotask the check runs in. Only
 * for tests whose fibers wait on nothing but the TestClock and each other (MemoryStorage): a test
 * waiting on real I/O (RGW, the file system) keeps the default, under which some real time passes.
 *
 * Use {@link immediateYields} in one test, or this module's {@link it} for a whole file: `it.effect`
 * and `it.scoped` start each test with it; everything else is @effect/vitest's `it`.
 *
 * Reaches into a private field of effect's TestClock; if an upgrade renames it, this fails loudly
 * (and the fix is to follow the rename), never silently slow.
 *
 * @module
 */
import { it as base, type Vitest } from "@effect/vitest"
import { Effect, TestClock } from "effect"

const immediate: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** Makes the current test's TestClock yield with `setImmediate` instead of a 1 ms `setTimeout(0)`. */
export const immediateYields: Effect.Effect<void> = Effect.flatMap(TestClock.testClock(), (clock) =>
  Effect.sync(() => {
    const impl = clock as unknown as { yieldTimer?: unknown }
    if (!Effect.isEffect(impl.yieldTimer)) {
      throw new Error("effect's TestClock has no yieldTimer any more: follow its rename in test/support/immediateYields.ts")
    }
    impl.yieldTimer = immediate
  }))

const startingWithImmediateYields = <R>(tester: Vitest.Tester<R>): Vitest.Tester<R> =>
  Object.assign(
    ((name, self, timeout) => tester(name, (...args) => Effect.zipRight(immediateYields, self(...args)), timeout)) as Vitest.Test<R>,
    tester
  )

const effect = startingWithImmediateYields(base.effect)
const scoped = startingWithImmediateYields(base.scoped)

/** @effect/vitest's `it`, whose `it.effect` and `it.scoped` tests run with {@link immediateYields}. */
export const it: typeof base = new Proxy(base, {
  get: (target, key, receiver) => key === "effect" ? effect : key === "scoped" ? scoped : Reflect.get(target, key, receiver)
})
