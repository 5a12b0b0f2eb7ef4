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
 * Reaches into a private field of effect's TestClock; if an upgrade renames it, this fails loudly
 * (and the fix is to follow the rename), never silently slow.
 *
 * @module
 */
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
