/**
 * Interrupt and resume through the engine (issue 18, engine gap 5), on MemoryStorage + TestClock
 * with real Workers: `interrupt` while the body is inside an activity lets the activity finish,
 * then ends the execution as interrupted and runs the compensations in reverse order (as the
 * in-memory engine does); `resume` re-runs an execution that suspended on a failure
 * (`SuspendOnFailure`) without re-running what was recorded; interrupting a finished execution
 * changes nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Activity, Workflow } from "@effect/workflow"
import { Deferred, Effect, Exit, Layer, Option, Ref, Schema, TestClock } from "effect"
import { drive } from "../worker/support.js"
import { memoryEngine, provideEngine, startWorker } from "./support.js"

class Effects extends Effect.Service<Effects>()("test/InterruptEffects", {
  effect: Effect.gen(function*() {
    const log = yield* Ref.make<ReadonlyArray<string>>([])
    const started = yield* Deferred.make<void>()
    const open = yield* Deferred.make<void>()
    const ready = yield* Ref.make(false)
    return { log, started, open, ready }
  })
}) {}

const record = (entry: string) => Effect.flatMap(Effects, (e) => Ref.update(e.log, (l) => [...l, entry]))
const log = Effect.flatMap(Effects, (e) => Ref.get(e.log))
const step = (name: string) => Activity.make({ name, success: Schema.String, execute: Effect.as(record(name), name) })

const Hold = Workflow.make({ name: "hold", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: (p) => p.id })
const HoldLive = Hold.toLayer(Effect.fn(function*() {
  const flight = yield* step("flight").pipe(Hold.withCompensation(() => record("undo-flight")))
  const hotel = yield* step("hotel").pipe(Hold.withCompensation(() => record("undo-hotel")))
  const paid = yield* Activity.make({
    name: "pay",
    success: Schema.String,
    execute: Effect.gen(function*() {
      const effects = yield* Effects
      yield* record("pay-start")
      yield* Deferred.succeed(effects.started, void 0)
      yield* Deferred.await(effects.open)
      yield* record("pay-done")
      return "paid"
    })
  })
  return [flight, hotel, paid].join("|")
}))

// A body that fails outside any activity until `ready`: with SuspendOnFailure it suspends instead.
const Flaky = Workflow.make({ name: "flaky", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: (p) => p.id })
  .annotate(Workflow.SuspendOnFailure, true)
const FlakyLive = Flaky.toLayer(Effect.fn(function*() {
  const prepared = yield* step("prep")
  const ready = yield* Effect.flatMap(Effects, (e) => Ref.get(e.ready))
  if (!ready) return yield* Effect.dieMessage("the outside world is not ready")
  return prepared
}))

const layer = memoryEngine(Layer.merge(HoldLive, FlakyLive), Effects.Default)

describe("BuquetWorkflowEngine: interrupt and resume", () => {
  it.scoped("interrupt while an activity runs: it finishes, then the compensations run in reverse order and the result is the interruption", () =>
    Effect.gen(function*() {
      const effects = yield* Effects
      yield* startWorker
      const executionId = yield* Hold.executionId({ id: "h1" })
      yield* Hold.execute({ id: "h1" }, { discard: true })
      yield* drive(Effect.map(Deferred.poll(effects.started), Option.isSome), "1 second", 100)
      yield* Hold.interrupt(executionId)
      yield* TestClock.adjust("10 seconds")
      expect(yield* Hold.poll(executionId)).toBeUndefined()
      yield* Deferred.succeed(effects.open, void 0)
      yield* drive(Effect.map(Hold.poll(executionId), (r) => r !== undefined), "1 second", 100)
      const polled = yield* Hold.poll(executionId)
      expect(polled?._tag === "Complete" && Exit.isInterrupted(polled.exit)).toBe(true)
      expect(yield* log).toEqual(["flight", "hotel", "pay-start", "pay-done", "undo-hotel", "undo-flight"])
    }).pipe(provideEngine(layer)))

  it.scoped("resume re-runs an execution suspended on a failure; recorded activities do not run again; a later interrupt changes nothing", () =>
    Effect.gen(function*() {
      const effects = yield* Effects
      yield* startWorker
      const executionId = yield* Flaky.executionId({ id: "f1" })
      yield* Flaky.execute({ id: "f1" }, { discard: true })
      yield* drive(Effect.map(log, (l) => l.includes("prep")), "1 second", 100)
      yield* TestClock.adjust("10 seconds")
      expect(yield* Flaky.poll(executionId)).toBeUndefined()
      yield* Ref.set(effects.ready, true)
      yield* Flaky.resume(executionId)
      yield* drive(Effect.map(Flaky.poll(executionId), (r) => r !== undefined), "1 second", 100)
      const polled = yield* Flaky.poll(executionId)
      expect(polled?._tag === "Complete" && Exit.isSuccess(polled.exit) ? polled.exit.value : polled).toBe("prep")
      yield* Flaky.interrupt(executionId)
      yield* TestClock.adjust("10 seconds")
      const after = yield* Flaky.poll(executionId)
      expect(after?._tag === "Complete" && Exit.isSuccess(after.exit)).toBe(true)
      expect(yield* log).toEqual(["prep"])
    }).pipe(provideEngine(layer)))
})
