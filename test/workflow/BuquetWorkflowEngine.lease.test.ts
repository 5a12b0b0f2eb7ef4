/**
 * One run of an execution at a time (issue 18, engine gaps 1 and 2), on MemoryStorage + TestClock:
 * a second run of an execution whose body is still running hands its wake-up to the running one
 * (which replays once more) instead of running the body beside it; a run whose holder died is
 * taken over once its execution lease runs out; a body longer than its task's lease keeps it; and a
 * run cut off in the middle (its worker stopped) suspends without running any compensation.
 */
import { describe, expect, it } from "@effect/vitest"
import { Activity, Workflow } from "@effect/workflow"
import { Deferred, Effect, Exit, Fiber, Layer, Option, Ref, Scope, Schema, TestClock } from "effect"
import { WorkflowRunner } from "../../src/services/WorkflowRunner.js"
import { drive } from "../worker/support.js"
import { memoryEngine, provideEngine, startWorker } from "./support.js"

/** Side effects, and the gate the "slow" activities wait at. */
class Effects extends Effect.Service<Effects>()("test/LeaseEffects", {
  effect: Effect.gen(function*() {
    const log = yield* Ref.make<ReadonlyArray<string>>([])
    const started = yield* Deferred.make<void>()
    const open = yield* Deferred.make<void>()
    return { log, started, open }
  })
}) {}

const record = (entry: string) => Effect.flatMap(Effects, (e) => Ref.update(e.log, (l) => [...l, entry]))
const log = Effect.flatMap(Effects, (e) => Ref.get(e.log))

/** An activity that records its start, waits at the gate, and records its end. */
const gated = (name: string) =>
  Activity.make({
    name,
    success: Schema.String,
    execute: Effect.gen(function*() {
      const effects = yield* Effects
      yield* record(`${name}-start`)
      yield* Deferred.succeed(effects.started, void 0)
      yield* Deferred.await(effects.open)
      yield* record(`${name}-done`)
      return name
    })
  })

const Gate = Workflow.make({ name: "gate", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: (p) => p.id })
const GateLive = Gate.toLayer(() => gated("slow"))

const Long = Workflow.make({ name: "long", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: (p) => p.id })
const LongLive = Long.toLayer(() =>
  Activity.make({
    name: "crunch",
    success: Schema.String,
    execute: Effect.gen(function*() {
      yield* record("crunch-start")
      yield* Effect.sleep("2 minutes")
      yield* record("crunch-done")
      return "crunched"
    })
  }))

const Book = Workflow.make({ name: "book", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: (p) => p.id })
const BookLive = Book.toLayer(Effect.fn(function*() {
  const flight = yield* Activity.make({ name: "flight", success: Schema.String, execute: Effect.as(record("flight"), "f") }).pipe(
    Book.withCompensation(() => Activity.make({ name: "undo-flight", execute: record("undo-flight") }))
  )
  const paid = yield* gated("pay")
  return `${flight}|${paid}`
}))

/** Workflow tasks get a 30 s lease: every body here that waits longer must keep it. */
const layer = memoryEngine(Layer.mergeAll(GateLive, LongLive, BookLive), Effects.Default, 30)

const run = (holder: string, executionId: string) =>
  Effect.flatMap(WorkflowRunner, (runner) => runner.run("gate", { executionId }, { holder, leaseSeconds: 30 }))

describe("BuquetWorkflowEngine: one run of an execution at a time", () => {
  it.scoped("a second run while the body runs hands over: the running one replays once more, the activity runs once", () =>
    Effect.gen(function*() {
      const effects = yield* Effects
      const executionId = yield* Gate.executionId({ id: "g1" })
      yield* Gate.execute({ id: "g1" }, { discard: true }) // records the execution; no worker runs here
      const first = yield* Effect.fork(run("run-a", executionId))
      yield* Deferred.await(effects.started)
      const second = yield* Effect.fork(run("run-b", executionId))
      yield* drive(Effect.map(Fiber.poll(second), Option.isSome), "1 second", 100)
      expect(yield* Fiber.join(second)).toEqual({ executionId, state: "handed-over" })
      yield* Deferred.succeed(effects.open, void 0)
      expect(yield* Fiber.join(first)).toEqual({ executionId, state: "complete" })
      expect(yield* log).toEqual(["slow-start", "slow-done"])
      // released: the next run goes through (and finds the result)
      expect(yield* run("run-c", executionId)).toEqual({ executionId, state: "complete" })
    }).pipe(provideEngine(layer)))

  it.scoped("a holder that died keeps the execution until its lease runs out; then a new run takes over", () =>
    Effect.gen(function*() {
      const effects = yield* Effects
      const executionId = yield* Gate.executionId({ id: "g2" })
      yield* Gate.execute({ id: "g2" }, { discard: true })
      const first = yield* Effect.fork(run("run-a", executionId))
      yield* Deferred.await(effects.started)
      yield* Fiber.interrupt(first) // its process dies: nothing is released
      expect(yield* run("run-b", executionId)).toEqual({ executionId, state: "handed-over" })
      expect(yield* log).toEqual(["slow-start"])
      yield* TestClock.adjust("31 seconds")
      const third = yield* Effect.fork(run("run-c", executionId))
      yield* drive(Effect.map(log, (l) => l.length === 2), "100 millis", 100)
      yield* Deferred.succeed(effects.open, void 0)
      expect(yield* Fiber.join(third)).toEqual({ executionId, state: "complete" })
      expect(yield* log).toEqual(["slow-start", "slow-start", "slow-done"])
    }).pipe(provideEngine(layer)))

  it.scoped("a body that runs four times longer than its task's lease keeps it: the activity runs once", () =>
    Effect.gen(function*() {
      yield* startWorker
      const executionId = yield* Long.executionId({ id: "l1" })
      const execution = yield* Effect.fork(Long.execute({ id: "l1" }))
      yield* drive(Effect.map(Fiber.poll(execution), Option.isSome), "1 second", 400)
      expect(yield* Fiber.join(execution)).toBe("crunched")
      expect(yield* log).toEqual(["crunch-start", "crunch-done"])
      const polled = yield* Long.poll(executionId)
      expect(polled?._tag === "Complete" && Exit.isSuccess(polled.exit)).toBe(true)
    }).pipe(provideEngine(layer)))

  it.scoped("a run cut off in the middle (its worker stopped) suspends without compensating; the next run finishes", () =>
    Effect.gen(function*() {
      const effects = yield* Effects
      const first = yield* startWorker
      const executionId = yield* Book.executionId({ id: "b1" })
      yield* Book.execute({ id: "b1" }, { discard: true })
      yield* drive(Effect.map(Deferred.poll(effects.started), Option.isSome), "1 second", 100)
      yield* Effect.fork(Scope.close(first, Exit.void))
      yield* TestClock.adjust("2 seconds")
      expect(yield* log).toEqual(["flight", "pay-start"])
      yield* Deferred.succeed(effects.open, void 0)
      yield* startWorker
      yield* drive(Effect.map(Book.poll(executionId), (r) => r !== undefined), "1 second", 200)
      expect(yield* log).toEqual(["flight", "pay-start", "pay-start", "pay-done"])
      const polled = yield* Book.poll(executionId)
      expect(polled?._tag === "Complete" && Exit.isSuccess(polled.exit) ? polled.exit.value : polled).toBe("f|pay")
    }).pipe(provideEngine(layer)))
})
