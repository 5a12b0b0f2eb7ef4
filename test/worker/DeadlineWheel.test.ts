/**
 * The worker's deadline wheel (worker/DeadlineWheel.ts): every running task's deadline and
 * fallback check in one fiber, driven by TestClock.
 */
import { describe, expect } from "@effect/vitest"
import { Clock, Effect, Exit, Scope, TestClock } from "effect"
import * as DeadlineWheel from "../../src/programs/worker/DeadlineWheel.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

/** Lets the wheel's fiber (and what it forked) run after a clock change. */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

const hour = 3_600_000

/** A wheel in the test's Scope, and a log of what fired when (TestClock millis). */
const setup = Effect.gen(function*() {
  const wheel = yield* DeadlineWheel.make(Clock.currentTimeMillis)
  const fired: Array<{ readonly what: string; readonly at: number }> = []
  const note = (what: string) => Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.sync(() => fired.push({ what, at })))
  /** Registers a timer in a Scope of its own (closed = the task ended); no fallback check within an hour. */
  const task = (name: string, deadline: number, check?: { readonly every: number }) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const timer = yield* wheel.register({
        deadline,
        onDeadline: note(`deadline ${name}`),
        checkEveryMillis: check?.every ?? hour,
        check: note(`check ${name}`)
      }).pipe(Scope.extend(scope))
      return { timer, end: Scope.close(scope, Exit.void) }
    })
  return { wheel, fired, task }
})

describe("DeadlineWheel", () => {
  it.scoped("a task whose handler runs past its deadline is stopped at the deadline, not before", () =>
    Effect.gen(function*() {
      const { fired, task, wheel } = yield* setup
      yield* task("a", 1_000)
      yield* settle
      yield* TestClock.adjust("999 millis")
      yield* settle
      expect(fired).toEqual([])
      yield* TestClock.adjust("1 millis")
      yield* settle
      expect(fired).toEqual([{ what: "deadline a", at: 1_000 }])
      // fired once, and no longer registered
      expect(yield* wheel.size).toBe(0)
      yield* TestClock.adjust("1 hour")
      yield* settle
      expect(fired.length).toBe(1)
    }))

  it.scoped("a task that finishes just before its deadline is never stopped", () =>
    Effect.gen(function*() {
      const { fired, task, wheel } = yield* setup
      const a = yield* task("a", 1_000)
      yield* settle
      yield* TestClock.adjust("999 millis")
      yield* settle
      yield* a.end
      expect(yield* wheel.size).toBe(0)
      yield* TestClock.adjust("2 hours")
      yield* settle
      expect(fired).toEqual([])
    }))

  it.scoped("many deadlines fire each at its own time, in order, whatever the order they were registered in", () =>
    Effect.gen(function*() {
      const { fired, task, wheel } = yield* setup
      // registered in a scrambled order
      const deadlines = Array.from({ length: 200 }, (_, i) => 5_000 + ((i * 7_919) % 200) * 100 + (i % 3))
      const ended = new Set([13, 57, 101])
      const tasks = []
      for (const [i, d] of deadlines.entries()) tasks.push({ i, d, t: yield* task(`t${i}`, d) })
      yield* settle
      // three tasks end before their deadline
      for (const { i, t } of tasks) if (ended.has(i)) yield* t.end
      expect(yield* wheel.size).toBe(197)
      for (let ms = 0; ms < 30_000; ms += 250) {
        yield* TestClock.adjust("250 millis")
        yield* settle
      }
      const expected = tasks.filter(({ i }) => !ended.has(i)).map(({ i, d }) => ({ what: `deadline t${i}`, at: d }))
        .sort((a, b) => a.at - b.at)
      expect([...fired].sort((a, b) => a.at - b.at)).toEqual(expected)
      expect(yield* wheel.size).toBe(0)
    }))

  it.scoped("a timer registered earlier than the one the wheel sleeps for wakes it", () =>
    Effect.gen(function*() {
      const { fired, task } = yield* setup
      yield* task("late", 60_000)
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* task("early", 2_000)
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      expect(fired).toEqual([{ what: "deadline early", at: 2_000 }])
    }))

  it.scoped("a moved deadline fires at its new time, earlier or later than the wheel sleeps for", () =>
    Effect.gen(function*() {
      const { fired, task } = yield* setup
      const a = yield* task("a", 10_000)
      yield* settle
      // the wheel sleeps until 10 s: an earlier deadline wakes it
      yield* a.timer.setDeadline(3_000)
      yield* settle
      yield* TestClock.adjust("2999 millis")
      yield* settle
      expect(fired).toEqual([])
      yield* TestClock.adjust("1 millis")
      yield* settle
      expect(fired).toEqual([{ what: "deadline a", at: 3_000 }])
      const b = yield* task("b", 4_000)
      yield* settle
      yield* b.timer.setDeadline(6_000)
      yield* TestClock.adjust("2999 millis")
      yield* settle
      expect(fired.length).toBe(1)
      yield* TestClock.adjust("1 millis")
      yield* settle
      expect(fired).toEqual([{ what: "deadline a", at: 3_000 }, { what: "deadline b", at: 6_000 }])
    }))

  it.scoped("the fallback check runs every interval while the task runs, forked into the task's Scope", () =>
    Effect.gen(function*() {
      const { fired, task } = yield* setup
      const a = yield* task("a", 10 * hour, { every: 300_000 })
      yield* settle
      for (let m = 0; m < 16; m++) {
        yield* TestClock.adjust("1 minute")
        yield* settle
      }
      expect(fired).toEqual([300_000, 600_000, 900_000].map((at) => ({ what: "check a", at })))
      yield* a.end
      yield* TestClock.adjust("1 hour")
      yield* settle
      expect(fired.length).toBe(3)
    }))

  it.scoped("a slow fallback check does not hold a deadline up, and ends with its task", () =>
    Effect.gen(function*() {
      const wheel = yield* DeadlineWheel.make(Clock.currentTimeMillis)
      const log: Array<string> = []
      const scope = yield* Scope.make()
      yield* wheel.register({
        deadline: 1_500,
        onDeadline: Effect.sync(() => log.push("deadline")),
        checkEveryMillis: 1_000,
        check: Effect.sync(() => log.push("check started")).pipe(
          Effect.zipRight(Effect.never),
          Effect.onInterrupt(() => Effect.sync(() => log.push("check interrupted")))
        )
      }).pipe(Scope.extend(scope))
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      yield* TestClock.adjust("500 millis")
      yield* settle
      expect(log).toEqual(["check started", "deadline"])
      yield* Scope.close(scope, Exit.void)
      yield* settle
      expect(log).toEqual(["check started", "deadline", "check interrupted"])
    }))

  it.scoped("the wheel's fiber lives in the Scope it was made in (the worker's): closed, nothing fires", () =>
    Effect.gen(function*() {
      const fired: Array<string> = []
      const workerScope = yield* Scope.make()
      const wheel = yield* DeadlineWheel.make(Clock.currentTimeMillis).pipe(Scope.extend(workerScope))
      // the task's Scope outlives the worker's here, on purpose
      yield* wheel.register({
        deadline: 1_000,
        onDeadline: Effect.sync(() => fired.push("deadline")),
        checkEveryMillis: 500,
        check: Effect.sync(() => fired.push("check"))
      })
      yield* settle
      yield* Scope.close(workerScope, Exit.void)
      yield* settle
      yield* TestClock.adjust("1 hour")
      yield* settle
      expect(fired).toEqual([])
    }))
})
