/**
 * A write-once workflow object whose PUT answer was lost and which did NOT land (found by the
 * deterministic simulation, seeds 5 and 8): the ambiguous write is resolved by re-reading, finds
 * nothing, and reports `PreconditionFailed` — which the engine took for "another run recorded it
 * first". Finding no such record, the run suspended with nothing left to wake it: its task
 * completed and the execution was stranded for good. A create that did not land is now sent again
 * (protocol/TaskObjects.ts, test/protocol/AmbiguousCreate.test.ts); one that never lands must count
 * as a failed request (the run is retried and replays), on MemoryStorage + FaultyStorage + TestClock.
 *
 * And a run task is retried for as long as the bucket keeps failing (found by the simulation,
 * seed 28): its failure is never the workflow's own (a body's failure is recorded as its result), so
 * a run task that used up the queue's default 3 retries on 5xx answers failed for good, leaving the
 * execution with no result and nothing to run it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Activity, DurableDeferred, Workflow } from "@effect/workflow"
import { Effect, Exit, Fiber, Layer, Option, Ref, Schema } from "effect"
import { layerWorkerServices } from "../../src/Buquet.js"
import { activityKey, deferredKey, executionKey, resultKey } from "../../src/domain/WorkflowKeys.js"
import * as BuquetWorkflowEngine from "../../src/layers/BuquetWorkflowEngine.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { drive } from "../worker/support.js"
import { startWorker } from "./support.js"

const Approval = DurableDeferred.make("approval", { success: Schema.String })

const Flow = Workflow.make({
  name: "lostanswer",
  payload: { id: Schema.String, approval: Schema.Boolean },
  success: Schema.String,
  idempotencyKey: (p) => p.id
})

class Runs extends Effect.Service<Runs>()("test/Runs", { effect: Ref.make(0) }) {}

const FlowLive = Flow.toLayer(Effect.fn(function*(payload) {
  const a = yield* Activity.make({
    name: "a",
    success: Schema.String,
    execute: Effect.zipRight(Effect.flatMap(Runs, (r) => Ref.update(r, (n) => n + 1)), Effect.succeed("a"))
  })
  const approver = payload.approval ? yield* DurableDeferred.await(Approval) : "auto"
  return `${payload.id}|${a}|${approver}`
}))

// MemoryStorage under FaultyStorage (no random faults: only the scripted ones)
const layer = Layer.provideMerge(
  FlowLive,
  Layer.provideMerge(
    BuquetWorkflowEngine.layer,
    Layer.provideMerge(
      Layer.mergeAll(QueueLayer.layer({ defaultTimeoutSeconds: 30 }), layerWorkerServices(), Runs.Default),
      Layer.provideMerge(ServerClockLayer.layer, Layer.provideMerge(FaultyStorage.layer(), MemoryStorage.layer()))
    )
  )
)

// The next create-only PUT of `key` gets no answer and never reaches the bucket, nor do the two
// times it is sent again (putConditional's resends of a create that did not land).
const loseFirstWrite = (key: string) =>
  Effect.flatMap(FaultyStorage.FaultInjector, (injector) =>
    injector.addRule({ operation: "put", key, condition: "ifNoneMatch", fault: FaultyStorage.Fault.outcomeUnknown, timing: "before", times: 3 }))

const completes = (execution: Fiber.Fiber<string, never>) =>
  drive(Effect.map(Fiber.poll(execution), Option.isSome), "1 second", 600)

describe("BuquetWorkflowEngine: a write-once record whose lost write did not land", () => {
  it.scoped("an activity's result: the run is retried and the execution completes", () =>
    Effect.gen(function*() {
      const executionId = yield* Flow.executionId({ id: "x1", approval: false })
      yield* loseFirstWrite(activityKey("lostanswer", executionId, "a", 1))
      yield* startWorker
      const execution = yield* Effect.fork(Flow.execute({ id: "x1", approval: false }))
      yield* completes(execution)
      expect(yield* Fiber.join(execution)).toBe("x1|a|auto")
      const storage = yield* Storage
      expect(Option.isSome(yield* storage.head(activityKey("lostanswer", executionId, "a", 1)))).toBe(true)
      // the first run's result never landed, so the activity ran again on the retry
      expect(yield* Effect.flatMap(Runs, Ref.get)).toBe(2)
    }).pipe(Effect.provide(layer)))

  it.scoped("the execution's result: the run is retried and records it", () =>
    Effect.gen(function*() {
      const executionId = yield* Flow.executionId({ id: "x2", approval: false })
      yield* loseFirstWrite(resultKey("lostanswer", executionId))
      yield* startWorker
      const execution = yield* Effect.fork(Flow.execute({ id: "x2", approval: false }))
      yield* completes(execution)
      expect(yield* Fiber.join(execution)).toBe("x2|a|auto")
      const polled = yield* Flow.poll(executionId)
      expect(polled?._tag === "Complete" && Exit.isSuccess(polled.exit) ? polled.exit.value : undefined).toBe("x2|a|auto")
      expect(yield* Effect.flatMap(Runs, Ref.get)).toBe(1)
    }).pipe(Effect.provide(layer)))

  it.scoped("a DurableDeferred's result: completing it fails loudly, and completing it again wakes the execution", () =>
    Effect.gen(function*() {
      const executionId = yield* Flow.executionId({ id: "x3", approval: true })
      yield* startWorker
      const execution = yield* Effect.fork(Flow.execute({ id: "x3", approval: true }))
      yield* drive(Effect.map(Effect.flatMap(Runs, Ref.get), (n) => n === 1), "1 second")
      yield* loseFirstWrite(deferredKey("lostanswer", executionId, "approval"))
      const token = DurableDeferred.tokenFromExecutionId(Approval, { workflow: Flow, executionId })
      const first = yield* Effect.exit(DurableDeferred.succeed(Approval, { token, value: "alice" }))
      expect(Exit.isFailure(first)).toBe(true)
      expect(Exit.isFailure(first) ? String(first.cause) : "").toMatch(/did not land/)
      yield* DurableDeferred.succeed(Approval, { token, value: "bob" })
      yield* completes(execution)
      expect(yield* Fiber.join(execution)).toBe("x3|a|bob")
    }).pipe(Effect.provide(layer)))
})

describe("BuquetWorkflowEngine: a run task on a failing bucket", () => {
  it.scoped("is retried until the bucket answers (here 6 runs in a row fail), and the execution completes", () =>
    Effect.gen(function*() {
      const executionId = yield* Flow.executionId({ id: "x4", approval: false })
      const injector = yield* FaultyStorage.FaultInjector
      // every run reads the execution record first: the first 6 reads get a 5xx
      yield* injector.addRule({ operation: "get", key: executionKey("lostanswer", executionId), fault: FaultyStorage.Fault.unavailable, times: 6 })
      yield* startWorker
      const execution = yield* Effect.fork(Flow.execute({ id: "x4", approval: false }))
      yield* completes(execution)
      expect(yield* Fiber.join(execution)).toBe("x4|a|auto")
      expect((yield* injector.injected).length).toBe(6)
    }).pipe(Effect.provide(layer)))
})
