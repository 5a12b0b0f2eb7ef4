/**
 * Shard leasing in combination with every orchestration feature (issue 18 × issue 15), on RGW
 * through the Effect API a user writes: two workers with shard leasing on a queue of 256 shards
 * (`shardPrefixLen: 2`), each owning at most 40 (so most shards have no owner), and with
 * different handler sets — one runs the `@effect/workflow` executions and a DAG workflow, the other
 * the flow's parent and children and the follow-ups. Tasks of every type land in shards owned by
 * the worker that cannot run them (and in unowned ones): an `@effect/workflow` execution with two
 * activities, a DurableClock wake-up (a delayed task) and a DurableDeferred completed from outside;
 * a DAG run with fan-out, fan-in and a step that waits for a signal; a flow whose parent waits for
 * its three children; a handler whose completion enqueues two follow-ups. Everything completes,
 * each activity and step once; nothing waits forever in a shard nobody polls. Real time.
 */
import { Activity, DurableClock, DurableDeferred, Workflow } from "@effect/workflow"
import { expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Layer, Option, Ref, Schema } from "effect"
import * as Buquet from "../../src/Buquet.js"
import { flowNode } from "../../src/domain/FlowRequest.js"
import { allShards } from "../../src/domain/Shard.js"
import * as BuquetWorkflowEngine from "../../src/layers/BuquetWorkflowEngine.js"
import * as DagWorkflow from "../../src/programs/DagWorkflow.js"
import * as Worker from "../../src/programs/Worker.js"
import * as WorkflowWorker from "../../src/programs/WorkflowWorker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { connectOptions, describeS3, prefixesEmptiedAfterAll } from "../support/s3.js"

const freshPrefix = prefixesEmptiedAfterAll()

/** What the handlers did, by name (activities, steps, ordinary handlers); one process, so a Ref. */
class Ran extends Effect.Service<Ran>()("test/ShardLeasingCombo/Ran", {
  effect: Ref.make<ReadonlyArray<string>>([])
}) {}
const note = (what: string) => Effect.flatMap(Ran, (r) => Ref.update(r, (l) => [...l, what]))

const Go = DurableDeferred.make("go", { success: Schema.String })
const Combo = Workflow.make({ name: "combo", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: (p) => p.id })
const activity = (name: string, id: string) =>
  Activity.make({ name, success: Schema.String, execute: Effect.as(note(`activity ${name} ${id}`), `${name}-${id}`) })
const ComboLive = Combo.toLayer(Effect.fn(function*(payload) {
  const a = yield* activity("a", payload.id)
  yield* DurableClock.sleep({ name: "nap", duration: "1 second", inMemoryThreshold: 0 })
  const go = yield* DurableDeferred.await(Go)
  const b = yield* activity("b", payload.id)
  return [a, go, b].join("|")
}))

const step = (name: string) => ({ output: Schema.String, run: (ctx: { readonly runId: string }) => Effect.as(note(`step ${name} ${ctx.runId}`), name) })
const Dag = DagWorkflow.make("fan", { data: Schema.Struct({ n: Schema.Number }) })
  .step("a", step("a"))
  .step("b1", { ...step("b1"), dependsOn: ["a"] })
  .step("b2", { ...step("b2"), dependsOn: ["a"] })
  .step("b3", { ...step("b3"), dependsOn: ["a"] })
  .step("wait", {
    dependsOn: ["a"],
    output: Schema.String,
    run: (ctx) => Effect.tap(ctx.waitForSignal("ok", Schema.String), () => note(`step wait ${ctx.runId}`))
  })
  .step("c", { ...step("c"), dependsOn: ["b1", "b2", "b3", "wait"] })

const ordinary = [
  Worker.handler("part", (input: unknown, ctx) => Effect.as(note(`part ${ctx.taskId}`), (input as { n: number }).n * 10)),
  Worker.handler("report", (_input: unknown, ctx) =>
    Effect.gen(function*() {
      const children = yield* ctx.childrenResults
      yield* note(`report ${ctx.taskId}`)
      return children.reduce((sum, c) => sum + (c.output as number), 0)
    })),
  Worker.handler("order", (_input: unknown, ctx) =>
    Effect.gen(function*() {
      for (const item of [1, 2]) yield* ctx.enqueue("ship", { item })
      yield* note(`order ${ctx.taskId}`)
      return "ordered"
    })),
  Worker.handler("ship", (input: unknown, ctx) => Effect.as(note(`ship ${ctx.taskId}`), (input as { item: number }).item))
]

/** Polls (real time, every 250 ms) until `done` holds; dies after `withinMillis`. */
const waitUntil = <E, R>(what: string, done: Effect.Effect<boolean, E, R>, withinMillis = 60_000, every: Duration.DurationInput = "250 millis") =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + withinMillis
    while ((yield* Clock.currentTimeMillis) < deadline) {
      if (yield* done) return
      yield* Effect.sleep(every)
    }
    return yield* Effect.dieMessage(`timed out waiting until ${what}`)
  })

const statusOf = (id: string) => Effect.flatMap(Queue, (q) => Effect.map(q.get(id), Option.match({ onNone: () => "missing", onSome: (t) => t.status })))

describeS3("shard leasing with workflows, DAG runs, flows and follow-ups (RGW)", (settings) => {
  it.scopedLive("two leasing workers with different handler sets over 256 shards: everything completes, each activity and step once", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const queue = yield* Queue
      const leasing = { leaseTtl: "30 seconds", renewInterval: "10 seconds", shardsPerWorker: 40 } as const
      const common = { monitor: false, concurrency: 8, shutdownGracePeriod: "1 second", wakeUp: { checkInterval: "300 millis" } } as const
      yield* Worker.make({ ...common, id: "lease-flows", shardLeasing: leasing }, ordinary)
      yield* Worker.make({ ...common, id: "lease-workflows", shardLeasing: leasing }, [...(yield* WorkflowWorker.handlers), ...DagWorkflow.handlers(Dag)])

      const flow = yield* queue.flow(flowNode("report", {}, { children: [1, 2, 3].map((n) => flowNode("part", { n })) }))
      const order = yield* queue.submit("order", {})
      const executionId = yield* Combo.execute({ id: "c1" }, { discard: true })
      const run = yield* DagWorkflow.start(Dag, { n: 1 }, { id: "dag-1" })

      yield* waitUntil("the DAG run waits for its signal", Effect.map(DagWorkflow.get(run.id), (s) => Option.getOrThrow(s).steps["wait"]?.status === "running"))
      yield* DagWorkflow.signal(run.id, "ok", "yes")
      yield* waitUntil("the execution ran its first activity", Effect.map(Effect.flatMap(Ran, Ref.get), (l) => l.includes("activity a c1")))
      yield* DurableDeferred.succeed(Go, { token: DurableDeferred.tokenFromExecutionId(Go, { workflow: Combo, executionId }), value: "go" })

      yield* waitUntil("the flow's parent completed", Effect.map(statusOf(flow.id), (s) => s === "completed"))
      yield* waitUntil("the order and its follow-ups completed", Effect.gen(function*() {
        const parent = Option.getOrThrow(yield* queue.get(order.id))
        const ids = (parent.followUps?.tasks ?? []).map((f) => f.id)
        if (parent.status !== "completed" || ids.length !== 2) return false
        return (yield* Effect.forEach(ids, statusOf)).every((s) => s === "completed")
      }))
      yield* waitUntil("the DAG run completed", Effect.map(DagWorkflow.get(run.id), (s) => Option.getOrThrow(s).status === "completed"))
      yield* waitUntil("the execution recorded its result", Effect.map(Combo.poll(executionId), (r) => r !== undefined))
      expect(yield* Combo.execute({ id: "c1" })).toBe("a-c1|go|b-c1")
      expect(Option.getOrThrow(yield* queue.get(flow.id)).output).toBe(60)

      // the leasing was in force: each worker holds its 100 shards (56 have no owner)
      const holders = Effect.map(
        Effect.forEach(allShards(2), (s) => Effect.map(storage.get(`shard-leases/${s}.json`), Option.map((o) => (JSON.parse(new TextDecoder().decode(o.body)) as { worker_id: string }).worker_id)), { concurrency: 16 }),
        (hs) => hs.flatMap((h) => (Option.isSome(h) ? [h.value] : []))
      )
      yield* waitUntil("both workers hold 40 shards", Effect.map(holders, (hs) => hs.filter((h) => h === "lease-flows").length === 40 && hs.filter((h) => h === "lease-workflows").length === 40), 30_000, "2 seconds")

      const ran = yield* Effect.flatMap(Ran, Ref.get)
      const count = (what: string) => ran.filter((l) => l === what).length
      expect([count("activity a c1"), count("activity b c1")]).toEqual([1, 1])
      for (const s of ["a", "b1", "b2", "b3", "wait", "c"]) expect(count(`step ${s} dag-1`), s).toBe(1)
      expect(ran.filter((l) => l.startsWith("part ")).length).toBe(3)
      expect(ran.filter((l) => l.startsWith("ship ")).length).toBe(2)
      expect(ran.filter((l) => l.startsWith("report ")).length).toBe(1)
    }).pipe(Effect.provide(ComboLive.pipe(
      Layer.provideMerge(Ran.Default),
      Layer.provideMerge(BuquetWorkflowEngine.layer),
      Layer.provideMerge(Buquet.layer({ ...connectOptions(settings, freshPrefix(settings)), shardPrefixLen: 2 }))
    ))), 120_000)
})
