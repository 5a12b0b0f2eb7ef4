/**
 * Durable workflows in the deterministic simulation (issue 18, acceptance 7): each simulated worker
 * process also runs `@effect/workflow` executions through `BuquetWorkflowEngine` (a workflow with
 * three activities, a `DurableClock.sleep` and, for some executions, a `DurableDeferred` an operator
 * completes), under the same faults, crashes, pauses and clock steps as the rest of the queue.
 *
 * Invariants, on the bucket itself (below the faults):
 * - **each activity result is written once**: an activity attempt's, a deferred's or an execution's
 *   result object is only ever created with `If-None-Match`, and once there it never changes nor
 *   disappears (the first ETag and body seen stay);
 * - **a completed workflow stays completed**: its `result.json` keeps its first body, and the
 *   result is a success (the activities here never fail for good);
 * - at the end (after the drain, every waiting execution approved): every started execution has
 *   completed, or its run task is still pending or running (resumable).
 *
 * In a quarter of the seeds, producers also start DAG runs (`DagWorkflow`, steps a → (b, c) → d)
 * that the same workers run: each step result (`workflow/{id}/steps/{step}.json`) is written once
 * and keeps its first body, and a run whose state said `completed` stays completed (never
 * rewritten otherwise, never deleted).
 *
 * `sim.ts` wraps the observed bucket with `watch`, gives each worker process `handlers`, and calls
 * `start`/`approve` as producer and operator steps, `check` after every step and `final` at the end.
 *
 * @module
 */
import { Activity, DurableClock, DurableDeferred, Workflow } from "@effect/workflow"
import type { WorkflowEngine } from "@effect/workflow"
import { Duration, Effect, Layer, Option, Schema, type Scope, Stream } from "effect"
import { workflowTaskType } from "../../src/domain/WorkflowKeys.js"
import * as BuquetWorkflowEngine from "../../src/layers/BuquetWorkflowEngine.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as DagWorkflow from "../../src/programs/DagWorkflow.js"
import * as WorkflowWorker from "../../src/programs/WorkflowWorker.js"
import type { HandlerDefinition } from "../../src/programs/worker/Handler.js"
import { Queue } from "../../src/services/Queue.js"
import type { ServerClock } from "../../src/services/ServerClock.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"

const Approval = DurableDeferred.make("approval", { success: Schema.String })

const Flow = Workflow.make({
  name: "simflow",
  payload: { id: Schema.String, work: Schema.Number, approval: Schema.Boolean },
  success: Schema.String,
  idempotencyKey: (p) => p.id
})

// an activity that takes `ms` of (virtual) time
const step = (name: string, ms: number) =>
  Activity.make({ name, success: Schema.String, execute: Effect.as(Effect.sleep(Duration.millis(ms)), name) })

const FlowLive = Flow.toLayer(Effect.fn(function*(payload) {
  const a = yield* step("a", payload.work)
  yield* DurableClock.sleep({ name: "nap", duration: "20 seconds" })
  const b = yield* step("b", payload.work / 2)
  const approver = payload.approval ? yield* DurableDeferred.await(Approval) : "auto"
  const c = yield* step("c", payload.work)
  return [payload.id, a, b, approver, c].join("|")
}))

// A DAG run (src/programs/DagWorkflow.ts): a → (b, c) → d, each step some (virtual) time long.
const sleepy = (name: string) => ({
  output: Schema.String,
  run: (ctx: { readonly data: { readonly work: number } }) => Effect.as(Effect.sleep(Duration.millis(ctx.data.work)), name)
})
const Dag = DagWorkflow.make("simdag", { data: Schema.Struct({ work: Schema.Number }) })
  .step("a", sleepy("a"))
  .step("b", { ...sleepy("b"), dependsOn: ["a"] })
  .step("c", { ...sleepy("c"), dependsOn: ["a"] })
  .step("d", {
    dependsOn: ["b", "c"],
    output: Schema.String,
    run: (ctx) => Effect.map(Effect.all([ctx.result("b"), ctx.result("c")]), (parts) => parts.join("+"))
  })

// a DAG run's step results (write-once) and its state
const stepResultPattern = /^workflow\/[^/]+\/steps\/[^/]+\.json$/
const dagStatePattern = /^workflow\/([^/]+)\/state\.json$/

// the write-once objects of an execution: activities/…, deferred/…, result.json
const writeOncePattern = /^workflows\/[^/]+\/([^/]+)\/(?:activities\/[^/]+\/\d+\.json|deferred\/[^/]+\.json|result\.json)$/
const resultPattern = /^workflows\/simflow\/([^/]+)\/result\.json$/
const decoder = new TextDecoder()

/** The workflow part of one seed; its own random choices (xorshift32 from the seed) leave the rest of the seed's as they were. */
export const make = (seed: number, violation: (message: string) => void) => {
  let x = (seed ^ 0x9e3779b9) >>> 0 || 1
  const rnd = () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 4294967296
  }
  // DAG runs in a quarter of the seeds, a few per seed (each is 4 step tasks and ~5 orchestrator
  // tasks: at the @effect/workflow's rate in every seed, a seed's CPU doubled)
  const dagRate = rnd() < 0.25 ? 0.02 : 0
  // every write-once object that landed: its first ETag and body
  const written = new Map<string, { readonly etag: string; readonly body: string }>()
  const started = new Map<string, { readonly approval: boolean; approved: boolean }>()
  let completed = 0
  // DAG runs started (told so by start), and those whose state said "completed"
  const dagStarted = new Set<string>()
  const dagCompleted = new Set<string>()
  // steps under way (the drain waits for them)
  let busy = 0

  /** Wraps the observed bucket: every write and delete of a write-once workflow object is judged as it lands. */
  const watch = (mem: StorageService): StorageService => {
    const onWrite = (key: string, body: Uint8Array, etag: string, ifNoneMatch: boolean) =>
      Effect.sync(() => {
        const run = dagStatePattern.exec(key)?.[1]
        if (run !== undefined) {
          const status = (JSON.parse(decoder.decode(body)) as { status?: string }).status
          if (dagCompleted.has(run) && status !== "completed") violation(`DAG run ${run} was completed and is now ${status}`)
          if (status === "completed") dagCompleted.add(run)
          return
        }
        if (!writeOncePattern.test(key) && !stepResultPattern.test(key)) return
        if (!ifNoneMatch) violation(`write-once: ${key} was written without If-None-Match`)
        const first = written.get(key)
        if (first !== undefined) {
          violation(`write-once: ${key} was written twice (${first.etag} → ${etag})`)
          return
        }
        const text = decoder.decode(body)
        written.set(key, { etag, body: text })
        if (resultPattern.test(key)) {
          completed++
          if (!text.includes("\"Success\"")) violation(`workflow failed: ${key} holds ${text}`)
        }
      })
    const onDelete = (key: string) =>
      Effect.sync(() => {
        if (written.has(key)) violation(`write-once: ${key} was deleted`)
        const run = dagStatePattern.exec(key)?.[1]
        if (run !== undefined && dagCompleted.has(run)) violation(`DAG run ${run} was completed and its state was deleted`)
      })
    return {
      ...mem,
      put: (key, body, condition) =>
        Effect.tap(mem.put(key, body, condition), (etag) => onWrite(key, body, etag, condition !== undefined && "ifNoneMatch" in condition)),
      delete: (key) => Effect.zipRight(onDelete(key), mem.delete(key)),
      deleteIfMatch: (key, etag) => Effect.zipRight(onDelete(key), mem.deleteIfMatch(key, etag)),
      deleteMany: (keys) => Effect.zipRight(Effect.forEach(keys, onDelete, { discard: true }), mem.deleteMany(keys))
    }
  }

  /** A worker process's workflow handlers: the engine with `simflow` registered, alive in the process's scope. */
  const handlers = (shardPrefixLen: number): Effect.Effect<ReadonlyArray<HandlerDefinition>, never, Storage | ServerClock | Scope.Scope> =>
    Effect.gen(function*() {
      const queue = yield* Effect.orDie(QueueLayer.make({ shardPrefixLen }))
      const context = yield* Layer.buildWithScope(
        Layer.provideMerge(FlowLive, BuquetWorkflowEngine.layer),
        yield* Effect.scope
      ).pipe(Effect.provideService(Queue, queue))
      const handlers = yield* Effect.provide(WorkflowWorker.handlers, context)
      // the DAG's handlers use this process's queue and view of the bucket
      const storage = yield* Storage
      const dag = DagWorkflow.handlers(Dag).map((h): HandlerDefinition => ({
        ...h,
        run: (input, ctx) => h.run(input, ctx).pipe(Effect.provideService(Queue, queue), Effect.provideService(Storage, storage))
      }))
      return [...handlers, ...dag]
    })

  // the client's engine (execute, DurableDeferred.succeed): nothing registered, nothing run
  const asClient = <A, E>(self: Effect.Effect<A, E, WorkflowEngine.WorkflowEngine>) =>
    Effect.scoped(Effect.flatMap(Layer.build(BuquetWorkflowEngine.layer), (context) => Effect.provide(self, context)))

  /** A producer step: starts an execution (recorded once `execute` said so). */
  const start = Effect.gen(function*() {
    const payload = { id: `f${started.size}-${Math.floor(rnd() * 1e6)}`, work: Math.floor(rnd() * 8_000), approval: rnd() < 0.5 }
    const executionId = yield* Flow.executionId(payload)
    const ok = yield* asClient(Flow.execute(payload, { discard: true })).pipe(Effect.as(true), Effect.catchAllCause(() => Effect.succeed(false)))
    if (ok) started.set(executionId, { approval: payload.approval, approved: false })
  })

  /** A producer step: starts a DAG run (recorded once `start` said so). */
  const startDag = Effect.gen(function*() {
    const id = `d${dagStarted.size}-${Math.floor(rnd() * 1e6)}`
    const ok = yield* DagWorkflow.start(Dag, { work: Math.floor(rnd() * 5_000) }, { id }).pipe(Effect.as(true), Effect.catchAllCause(() => Effect.succeed(false)))
    if (ok) dagStarted.add(id)
  })

  /** An operator step: approves one waiting execution (all of them when `all`). */
  const approve = (all: boolean) =>
    Effect.gen(function*() {
      const waiting = [...started].filter(([, s]) => s.approval && !s.approved)
      if (waiting.length === 0) return
      for (const [executionId, s] of all ? waiting : [waiting[Math.floor(rnd() * waiting.length)]!]) {
        const token = DurableDeferred.tokenFromExecutionId(Approval, { workflow: Flow, executionId })
        const done = yield* asClient(DurableDeferred.succeed(Approval, { token, value: `op${Math.floor(rnd() * 10)}` })).pipe(
          Effect.as(true),
          Effect.catchAllCause(() => Effect.succeed(false))
        )
        // an approval that failed (a fault) is given again later
        if (done) s.approved = true
      }
    })

  /** One busy-phase step of the producers and operators (needs the client's Queue, Storage, ServerClock). */
  const step = Effect.gen(function*() {
    busy++
    if (rnd() < 0.04) yield* start
    if (rnd() < 0.04) yield* approve(false)
    if (rnd() < dagRate) yield* startDag
  }).pipe(Effect.ensuring(Effect.sync(() => busy--)))

  /** After every step: each write-once object still holds its first body (a completed execution stays completed). */
  const check = (mem: StorageService) =>
    Effect.gen(function*() {
      for (const [key, first] of written) {
        const now = yield* Effect.orDie(mem.head(key))
        if (Option.isNone(now)) violation(`write-once: ${key} disappeared${resultPattern.test(key) ? " (a completed workflow is no longer completed)" : ""}`)
        else if (now.value.etag !== first.etag) violation(`write-once: ${key} changed (${first.etag} → ${now.value.etag})`)
      }
    })

  /** At the end: every started execution completed, or its run task is still pending or running. */
  const final = (mem: StorageService) =>
    Effect.gen(function*() {
      yield* check(mem)
      const live = new Set<string>()
      const tasks = yield* Effect.orDie(Stream.runCollect(mem.listAll("tasks/")))
      for (const object of tasks) {
        const found = yield* Effect.orDie(mem.get(object.key))
        if (Option.isNone(found)) continue
        const task = JSON.parse(decoder.decode(found.value.body)) as { task_type: string; status: string; input: { executionId?: string } }
        if (task.task_type === workflowTaskType("simflow") && (task.status === "pending" || task.status === "running")) {
          live.add(task.input.executionId ?? "")
        }
      }
      for (const executionId of started.keys()) {
        if (written.has(`workflows/simflow/${encodeURIComponent(executionId)}/result.json`) || live.has(executionId)) continue
        violation(`workflow stranded: execution ${executionId} has no result and no pending or running task`)
      }
    })

  return { watch, handlers, step, approve, check, final, busy: () => busy, stats: () => ({ workflows: started.size, workflowsCompleted: completed, dagRuns: dagStarted.size, dagRunsCompleted: dagCompleted.size }) }
}
