/**
 * The buquet engine for `@effect/workflow` on MemoryStorage + TestClock, driven by real buquet
 * Workers: programs written against `@effect/workflow` only (Workflow, Activity, DurableClock,
 * DurableDeferred, withCompensation) finish, replay after a crash without re-running recorded
 * activities, and compensate in reverse order.
 */
import { describe, expect, it } from "@effect/vitest"
import { Activity, DurableClock, DurableDeferred, Workflow } from "@effect/workflow"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Option, Ref, Schedule, Schema, Scope, TestClock } from "effect"
import { activityKey, executionKey, resultKey } from "../../src/domain/WorkflowKeys.js"
import * as BuquetWorkflowEngine from "../../src/layers/BuquetWorkflowEngine.js"
import * as Worker from "../../src/programs/Worker.js"
import * as WorkflowWorker from "../../src/programs/WorkflowWorker.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, queueLayer } from "../worker/support.js"

const Approval = DurableDeferred.make("approval", { success: Schema.String })

const Order = Workflow.make({
  name: "order",
  payload: { id: Schema.String },
  success: Schema.String,
  idempotencyKey: (p) => p.id,
  // execute checks result.json this often while the execution is suspended
  suspendedRetrySchedule: Schedule.spaced("1 minute")
})

/** Side effects, one entry per executed activity body (success or not). */
class Effects extends Effect.Service<Effects>()("test/Effects", {
  effect: Effect.gen(function*() {
    const log = yield* Ref.make<ReadonlyArray<string>>([])
    // the first run of "charge" blocks here until the test "crashes" its worker
    const blockCharge = yield* Ref.make(false)
    const chargeStarted = yield* Deferred.make<void>()
    return { log, blockCharge, chargeStarted }
  })
}) {}

const record = (entry: string) => Effect.flatMap(Effects, (e) => Ref.update(e.log, (l) => [...l, entry]))

const OrderLive = Order.toLayer(Effect.fn(function*(payload) {
  const reserved = yield* Activity.make({
    name: "reserve",
    success: Schema.String,
    execute: Effect.as(record("reserve"), `r-${payload.id}`)
  })
  yield* DurableClock.sleep({ name: "cool-off", duration: "1 hour" })
  const charged = yield* Activity.make({
    name: "charge",
    success: Schema.String,
    execute: Effect.gen(function*() {
      const effects = yield* Effects
      if (yield* Ref.getAndSet(effects.blockCharge, false)) {
        yield* Deferred.succeed(effects.chargeStarted, void 0)
        return yield* Effect.never
      }
      yield* record("charge")
      return `c-${payload.id}`
    })
  })
  const approver = yield* DurableDeferred.await(Approval)
  const shipped = yield* Activity.make({
    name: "ship",
    success: Schema.String,
    execute: Effect.as(record("ship"), `s-${payload.id}`)
  })
  return [reserved, charged, approver, shipped].join("|")
}))

const engineLayer = <R>(workflows: Layer.Layer<never, never, R>) => {
  const base = Layer.merge(queueLayer(), Effects.Default)
  const engine = Layer.provideMerge(BuquetWorkflowEngine.layer, base)
  return Layer.provideMerge(workflows, engine)
}

/** Starts a worker for the registered workflows in its own scope; closing the scope stops it. */
const startWorker = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const handlers = yield* WorkflowWorker.handlers
  yield* Worker.make({
    wakeUp: false,
    monitor: false,
    polling: { _tag: "Adaptive", max: "30 seconds" },
    // an idle worker's periodic checks dominate a TestClock hour; nothing here depends on them
    cancelCheckInterval: "10 minutes",
    heartbeat: { idle: "10 minutes", busy: "10 minutes" },
    shutdownGracePeriod: "1 second"
  }, handlers).pipe(Scope.extend(scope))
  return scope
})

const log = Effect.flatMap(Effects, (e) => Ref.get(e.log))
const logHas = (entry: string) => Effect.map(log, (l) => l.includes(entry))

describe("BuquetWorkflowEngine on MemoryStorage + TestClock", () => {
  it.scoped("three activities, a 1 hour DurableClock and a DurableDeferred completed from outside: each activity runs once, execute and poll return the result", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      yield* startWorker
      const executionId = yield* Order.executionId({ id: "o1" })
      const execution = yield* Effect.fork(Order.execute({ id: "o1" }))
      yield* drive(logHas("reserve"), "1 second")
      // the clock is a delayed task: nothing more happens before the hour is up
      yield* TestClock.adjust("59 minutes")
      expect(yield* log).toEqual(["reserve"])
      yield* drive(logHas("charge"), "1 minute")
      expect(yield* Order.poll(executionId)).toBeUndefined()
      // now it waits for the approval; complete it from outside with the deferred's token
      const token = DurableDeferred.tokenFromExecutionId(Approval, { workflow: Order, executionId })
      yield* DurableDeferred.succeed(Approval, { token, value: "alice" })
      yield* DurableDeferred.succeed(Approval, { token, value: "bob" }) // write-once: the first answer stays
      yield* drive(Effect.map(Fiber.poll(execution), Option.isSome), "1 second")
      expect(yield* Fiber.join(execution)).toBe("r-o1|c-o1|alice|s-o1")
      expect(yield* log).toEqual(["reserve", "charge", "ship"])
      const polled = yield* Order.poll(executionId)
      expect(polled?._tag).toBe("Complete")
      expect(polled?._tag === "Complete" && Exit.isSuccess(polled.exit) ? polled.exit.value : undefined).toBe("r-o1|c-o1|alice|s-o1")
      // the state is in the documented objects
      for (const key of [executionKey("order", executionId), resultKey("order", executionId), activityKey("order", executionId, "reserve", 1)]) {
        expect(Option.isSome(yield* storage.head(key))).toBe(true)
      }
      // executing again returns the recorded result without running anything
      expect(yield* Order.execute({ id: "o1" })).toBe("r-o1|c-o1|alice|s-o1")
      expect(yield* log).toEqual(["reserve", "charge", "ship"])
    }).pipe(Effect.provide(engineLayer(OrderLive))))

  it.scoped("a worker stopped in the middle of an activity: a fresh worker replays without re-running the recorded ones", () =>
    Effect.gen(function*() {
      const effects = yield* Effects
      yield* Ref.set(effects.blockCharge, true)
      const first = yield* startWorker
      const executionId = yield* Order.executionId({ id: "o2" })
      yield* Order.execute({ id: "o2" }, { discard: true })
      yield* drive(logHas("reserve"), "1 second")
      yield* TestClock.adjust("1 hour")
      yield* drive(Effect.map(Deferred.poll(effects.chargeStarted), Option.isSome), "1 second")
      // the worker dies mid-"charge" (its scope closes: the running handler is interrupted)
      yield* Effect.fork(Scope.close(first, Exit.void))
      yield* TestClock.adjust("2 seconds")
      yield* startWorker
      yield* drive(logHas("charge"), "1 second")
      const token = DurableDeferred.tokenFromExecutionId(Approval, { workflow: Order, executionId })
      yield* DurableDeferred.succeed(Approval, { token, value: "carol" })
      yield* drive(Effect.map(Order.poll(executionId), (r) => r !== undefined), "1 second", 5000)
      expect(yield* log).toEqual(["reserve", "charge", "ship"])
      expect(yield* Order.execute({ id: "o2" })).toBe("r-o2|c-o2|carol|s-o2")
    }).pipe(Effect.provide(engineLayer(OrderLive))))

  const Trip = Workflow.make({
    name: "trip",
    payload: { id: Schema.String, failAt: Schema.Literal("pay", "never") },
    success: Schema.String,
    error: Schema.String,
    idempotencyKey: (p) => p.id
  })
  const Confirm = DurableDeferred.make("confirm")

  const step = (name: string, fail = false) =>
    Activity.make({
      name,
      success: Schema.String,
      error: Schema.String,
      execute: Effect.zipRight(record(name), fail ? Effect.fail(`${name} refused`) : Effect.succeed(name))
    })
  // with blockCharge set, the first "undo-flight" blocks (the test stops its worker there)
  const undo = (name: string) =>
    Activity.make({
      name: `undo-${name}`,
      execute: Effect.gen(function*() {
        const effects = yield* Effects
        if (name === "flight" && (yield* Ref.getAndSet(effects.blockCharge, false))) {
          yield* Deferred.succeed(effects.chargeStarted, void 0)
          return yield* Effect.never
        }
        yield* record(`undo-${name}`)
      })
    })

  const TripLive = Trip.toLayer(Effect.fn(function*(payload) {
    const flight = yield* step("flight").pipe(Trip.withCompensation(() => undo("flight")))
    const hotel = yield* step("hotel").pipe(Trip.withCompensation(() => undo("hotel")))
    if (payload.failAt === "never") yield* DurableDeferred.await(Confirm)
    const paid = yield* step("pay", payload.failAt === "pay")
    return [flight, hotel, paid].join("|")
  }))

  it.scoped("withCompensation: a later activity fails, both compensations run in reverse order once each", () =>
    Effect.gen(function*() {
      yield* startWorker
      const exit = yield* Effect.fork(Effect.exit(Trip.execute({ id: "t1", failAt: "pay" })))
      yield* drive(Effect.map(Fiber.poll(exit), Option.isSome), "1 second")
      const result = yield* Fiber.join(exit)
      expect(Exit.isFailure(result) && Cause.failureOption(result.cause)).toEqual(Option.some("pay refused"))
      expect(yield* log).toEqual(["flight", "hotel", "pay", "undo-hotel", "undo-flight"])
      // the failure is recorded: executing again neither re-runs nor re-compensates
      const again = yield* Effect.exit(Trip.execute({ id: "t1", failAt: "pay" }))
      expect(Exit.isFailure(again)).toBe(true)
      expect((yield* log).length).toBe(5)
    }).pipe(Effect.provide(engineLayer(TripLive))))

  it.scoped("withCompensation: a worker stopped in the middle of the compensations; a fresh one finishes them, each once, in reverse order", () =>
    Effect.gen(function*() {
      const effects = yield* Effects
      yield* Ref.set(effects.blockCharge, true)
      const first = yield* startWorker
      const executionId = yield* Trip.executionId({ id: "t3", failAt: "pay" })
      yield* Trip.execute({ id: "t3", failAt: "pay" }, { discard: true })
      yield* drive(Effect.map(Deferred.poll(effects.chargeStarted), Option.isSome), "1 second")
      expect(yield* log).toEqual(["flight", "hotel", "pay", "undo-hotel"])
      yield* Effect.fork(Scope.close(first, Exit.void))
      yield* TestClock.adjust("2 seconds")
      yield* startWorker
      yield* drive(Effect.map(Trip.poll(executionId), (r) => r !== undefined), "1 second")
      expect(yield* log).toEqual(["flight", "hotel", "pay", "undo-hotel", "undo-flight"])
      const polled = yield* Trip.poll(executionId)
      expect(polled?._tag === "Complete" && Exit.isFailure(polled.exit) ? Cause.failureOption(polled.exit.cause) : undefined).toEqual(Option.some("pay refused"))
    }).pipe(Effect.provide(engineLayer(TripLive))))

  it.scoped("interrupt while waiting: compensations run in reverse order and the result is the interruption", () =>
    Effect.gen(function*() {
      yield* startWorker
      const executionId = yield* Trip.executionId({ id: "t2", failAt: "never" })
      yield* Trip.execute({ id: "t2", failAt: "never" }, { discard: true })
      yield* drive(logHas("hotel"), "1 second")
      yield* TestClock.adjust("5 seconds")
      expect(yield* Trip.poll(executionId)).toBeUndefined()
      yield* Trip.interrupt(executionId)
      yield* drive(Effect.map(Trip.poll(executionId), (r) => r !== undefined), "1 second")
      const polled = yield* Trip.poll(executionId)
      expect(polled?._tag === "Complete" && Exit.isInterrupted(polled.exit)).toBe(true)
      expect(yield* log).toEqual(["flight", "hotel", "undo-hotel", "undo-flight"])
    }).pipe(Effect.provide(engineLayer(TripLive))))
})
