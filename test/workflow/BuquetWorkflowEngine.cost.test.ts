/**
 * What the buquet workflow engine costs in S3 requests (issue 18, engine gap 6; the table is in
 * BENCHMARKS.md "Workflows"), on MemoryStorage through two CountingStorage wrappers: one for the
 * engine's own objects (`workflows/…`), one for the queue it submits runs to. One execution — two
 * activities, a DurableClock, a DurableDeferred, a third activity — is driven run by run through
 * the `WorkflowRunner` (each run is what one task of the worker does), and each step's requests
 * are held to an upper bound. Then, with a real Worker: while an execution sleeps on its clock the
 * engine makes no request at all, and the execution took one task per wake-up (nothing polls).
 */
import { describe, expect, it } from "@effect/vitest"
import { Activity, DurableClock, DurableDeferred, Workflow } from "@effect/workflow"
import { Context, Effect, Exit, Layer, Option, Schema, TestClock } from "effect"
import { layerWorkerServices } from "../../src/Buquet.js"
import { workflowTaskType } from "../../src/domain/WorkflowKeys.js"
import * as BuquetWorkflowEngine from "../../src/layers/BuquetWorkflowEngine.js"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { Queue } from "../../src/services/Queue.js"
import type { RequestCounterService, RequestCounts } from "../../src/services/RequestCounter.js"
import { Storage } from "../../src/services/Storage.js"
import type { StorageService } from "../../src/services/Storage.js"
import { WorkflowRunner } from "../../src/services/WorkflowRunner.js"
import { drive } from "../worker/support.js"
import { startWorker } from "./support.js"

const EngineCounter = Context.GenericTag<RequestCounterService>("test/EngineCounter")
const QueueCounter = Context.GenericTag<RequestCounterService>("test/QueueCounter")
const EngineStorage = Context.GenericTag<StorageService>("test/EngineStorage")

const Approval = DurableDeferred.make("approval", { success: Schema.String })
const step = (name: string) => Activity.make({ name, success: Schema.String, execute: Effect.succeed(name) })

const Cost = Workflow.make({ name: "cost", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: (p) => p.id })
const CostLive = Cost.toLayer(Effect.fn(function*() {
  const a = yield* step("a")
  const b = yield* step("b")
  yield* DurableClock.sleep({ name: "nap", duration: "5 minutes" })
  const approver = yield* DurableDeferred.await(Approval)
  const c = yield* step("c")
  return [a, b, approver, c].join("|")
}))

// The queue and the engine on one MemoryStorage, each through its own CountingStorage.
const counted = Layer.effectContext(Effect.gen(function*() {
  const memory = yield* Effect.provide(Storage, MemoryStorage.layer())
  const queue = yield* CountingStorage.make(memory)
  const engine = yield* CountingStorage.make(memory)
  return Context.make(Storage, queue.storage).pipe(
    Context.add(QueueCounter, queue.counter),
    Context.add(EngineStorage, engine.storage),
    Context.add(EngineCounter, engine.counter)
  )
}))
const base = Layer.provideMerge(Layer.merge(QueueLayer.layer({ defaultTimeoutSeconds: 60 }), layerWorkerServices()), Layer.provideMerge(ServerClockLayer.layer, counted))
const engine = Layer.provideMerge(BuquetWorkflowEngine.layer.pipe(Layer.provide(Layer.effect(Storage, EngineStorage))), base)
const layer = Layer.provideMerge(CostLive, engine)

type Kinds = Pick<RequestCounts, "GET" | "HEAD" | "PUT" | "LIST" | "DELETE">
const kinds = (c: RequestCounts): Kinds => ({ GET: c.GET, HEAD: c.HEAD, PUT: c.PUT, LIST: c.LIST, DELETE: c.DELETE })
const take = Effect.all({ engine: Effect.flatMap(EngineCounter, (c) => c.take), queue: Effect.flatMap(QueueCounter, (c) => c.take) })

/** Runs `effect`, returns its value and the requests the engine and the queue made meanwhile. */
const measured = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    yield* take
    const value = yield* effect
    const { engine, queue } = yield* take
    return { value, engine: kinds(engine), queue: queue.total }
  })

const atMost = (found: Kinds, bound: Partial<Kinds>) => {
  for (const kind of ["GET", "HEAD", "PUT", "LIST", "DELETE"] as const) expect(found[kind], kind).toBeLessThanOrEqual(bound[kind] ?? 0)
}

describe("BuquetWorkflowEngine: S3 requests", () => {
  it.scoped("per execution, per run, per activity, per DurableClock and per DurableDeferred: within their bounds", () =>
    Effect.gen(function*() {
      const runner = yield* WorkflowRunner
      const executionId = yield* Cost.executionId({ id: "c1" })
      const run = (input: object) => runner.run("cost", { executionId, ...input }, { holder: "task-1", leaseSeconds: 60 })
      const rows: Array<readonly [string, ReturnType<typeof kinds>, number]> = []

      const started = yield* measured(Cost.execute({ id: "c1" }, { discard: true }))
      rows.push(["execute (first)", started.engine, started.queue])
      atMost(started.engine, { GET: 1, PUT: 1 })

      // run 1: two activities run, the clock is scheduled, the body suspends on it
      const first = yield* measured(run({}))
      expect(first.value.state).toBe("suspended")
      rows.push(["run 1: 2 activities + DurableClock.sleep", first.engine, first.queue])
      atMost(first.engine, { GET: 6, HEAD: 1, PUT: 4 })

      // run 2: the clock's wake-up; the activities replay, the body suspends on the deferred
      const second = yield* measured(run({ clock: "DurableClock/nap" }))
      expect(second.value.state).toBe("suspended")
      rows.push(["run 2: clock wake-up, 2 replays, await deferred", second.engine, second.queue])
      atMost(second.engine, { GET: 7, HEAD: 1, PUT: 3 })

      const token = DurableDeferred.tokenFromExecutionId(Approval, { workflow: Cost, executionId })
      const done = yield* measured(DurableDeferred.succeed(Approval, { token, value: "ok" }))
      rows.push(["DurableDeferred.succeed", done.engine, done.queue])
      atMost(done.engine, { PUT: 1 })

      // run 3: the deferred's wake-up; replays, the third activity runs, the result is recorded
      const third = yield* measured(run({}))
      expect(third.value.state).toBe("complete")
      rows.push(["run 3: deferred wake-up, 2 replays + 1 activity, result", third.engine, third.queue])
      atMost(third.engine, { GET: 8, HEAD: 2, PUT: 4 })

      const polled = yield* measured(Cost.poll(executionId))
      expect(polled.value?._tag).toBe("Complete")
      rows.push(["poll", polled.engine, polled.queue])
      atMost(polled.engine, { GET: 1 })

      yield* Effect.sync(() =>
        console.log(rows.map(([what, e, q]) => `| ${what} | ${e.GET} | ${e.HEAD} | ${e.PUT} | ${q} |`).join("\n"))
      )
    }).pipe(Effect.provide(layer)))

  it.scoped("with a worker: no request for an execution while it sleeps on its clock; one task per wake-up", () =>
    Effect.gen(function*() {
      yield* startWorker
      const executionId = yield* Cost.executionId({ id: "c2" })
      // discard: a waiting `execute` re-reads the result on its workflow's suspendedRetrySchedule
      yield* Cost.execute({ id: "c2" }, { discard: true })
      yield* drive(Effect.map(Effect.flatMap(EngineStorage, (s) => s.head(`workflows/cost/${executionId}/activities/b/1.json`)), Option.isSome), "1 second", 100)
      yield* TestClock.adjust("10 seconds")
      yield* take
      yield* TestClock.adjust("4 minutes")
      const { engine: asleep } = yield* take
      expect(kinds(asleep)).toEqual({ GET: 0, HEAD: 0, PUT: 0, LIST: 0, DELETE: 0 })
      yield* TestClock.adjust("1 minute")
      const token = DurableDeferred.tokenFromExecutionId(Approval, { workflow: Cost, executionId })
      yield* DurableDeferred.succeed(Approval, { token, value: "ok" })
      yield* drive(Effect.map(Cost.poll(executionId), (r) => r !== undefined), "1 second", 100)
      // the first run, the clock's and the deferred's wake-ups
      const tasks = yield* Effect.flatMap(Queue, (q) => q.list({ taskType: workflowTaskType("cost") }))
      expect(tasks.tasks.length).toBe(3)
      const polled = yield* Cost.poll(executionId)
      expect(polled?._tag === "Complete" && Exit.isSuccess(polled.exit) ? polled.exit.value : polled).toBe("a|b|ok|c")
    }).pipe(Effect.provide(layer)))
})
