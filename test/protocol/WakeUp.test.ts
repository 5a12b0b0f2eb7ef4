import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Scope, TestClock } from "effect"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import { makeSignal } from "../../src/protocol/WakeUp.js"
import { closeOrFail } from "../support/stuck.js"

const setup = Effect.gen(function*() {
  const memory = yield* MemoryStorage.make()
  return yield* CountingStorage.make(memory)
})

describe("WakeUp signal", () => {
  it.effect("a burst costs one PUT now and one trailing PUT at the end of the window", () =>
    Effect.gen(function*() {
      const { counter, storage } = yield* setup
      yield* Effect.scoped(Effect.gen(function*() {
        const signal = yield* makeSignal(storage)
        yield* signal.touch
        yield* signal.touch
        yield* signal.touch
        expect((yield* counter.snapshot).PUT).toBe(1)
        yield* TestClock.adjust(Duration.seconds(1))
        expect((yield* counter.snapshot).PUT).toBe(2)
      }))
      // nothing was pending at the close: no extra PUT
      expect((yield* counter.snapshot).PUT).toBe(2)
    }))

  it.effect("a producer that exits right after a burst still writes the trailing touch (closing its scope flushes it)", () =>
    Effect.gen(function*() {
      const { counter, storage } = yield* setup
      yield* Effect.scoped(Effect.gen(function*() {
        const signal = yield* makeSignal(storage)
        yield* signal.touch
        yield* signal.touch
        expect((yield* counter.snapshot).PUT).toBe(1)
      }))
      // the clock never reached the end of the window: the close wrote the pending touch
      expect((yield* counter.snapshot).PUT).toBe(2)
    }))

  it.effect("the trailing touch is a fiber of the caller's scope, not a daemon: after the close nothing more runs", () =>
    Effect.gen(function*() {
      const { counter, storage } = yield* setup
      const fiber = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const signal = yield* makeSignal(storage)
        yield* signal.touch
        yield* signal.touch
        yield* Effect.never
      })))
      yield* TestClock.adjust(Duration.millis(10))
      yield* Fiber.interrupt(fiber)
      const afterClose = (yield* counter.snapshot).PUT
      yield* TestClock.adjust(Duration.seconds(5))
      expect((yield* counter.snapshot).PUT).toBe(afterClose)
    }))

  // A touch from where interruption is off — a scope's finalizer, e.g. a workflow's finalizer that
  // interrupts the child it waited for, which submits a run — used to fork the trailing timer
  // uninterruptible: closing the scope then waited for the timer's sleep, forever on a TestClock
  // nobody adjusts (test/workflow/BuquetWorkflowEngine.child.test.ts hung so in CI).
  it.effect("a trailing touch asked for where interruption is off does not hold the close until the window ends", () =>
    Effect.gen(function*() {
      const { counter, storage } = yield* setup
      const scope = yield* Scope.make()
      const signal = yield* Scope.extend(makeSignal(storage), scope)
      yield* signal.touch
      yield* Effect.uninterruptible(signal.touch)
      expect((yield* counter.snapshot).PUT).toBe(1)
      yield* closeOrFail(scope, Exit.void, "closing the signal's scope with a trailing touch pending")
      // the close wrote the pending touch
      expect((yield* counter.snapshot).PUT).toBe(2)
    }))
})
