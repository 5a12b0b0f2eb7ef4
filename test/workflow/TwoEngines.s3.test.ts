/**
 * Two queues with their own `BuquetWorkflowEngine` in one Effect program (RGW): two key prefixes
 * of one bucket, each with the same `@effect/workflow` workflow registered and a worker running its
 * executions, the same execution id started on both. A DurableDeferred completed on A wakes A's
 * execution only (B's keeps waiting for its own); each body's activities run on its own stack;
 * closing A's scope (its worker and engine) leaves B executing new work. Real time.
 */
import { Activity, DurableDeferred, Workflow } from "@effect/workflow"
import { expect, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Layer, Ref, Schema, Scope } from "effect"
import * as Buquet from "../../src/Buquet.js"
import * as BuquetWorkflowEngine from "../../src/layers/BuquetWorkflowEngine.js"
import * as Worker from "../../src/programs/Worker.js"
import * as WorkflowWorker from "../../src/programs/WorkflowWorker.js"
import { connectOptions, describeS3, prefixesEmptiedAfterAll } from "../support/s3.js"
import type { S3Settings } from "../support/s3.js"

const freshPrefix = prefixesEmptiedAfterAll()

/** Which stack a body runs on, and what its activities did there. */
class Stack extends Context.Tag("test/TwoEngines/Stack")<Stack, { readonly name: string; readonly ran: Ref.Ref<ReadonlyArray<string>> }>() {}

const Go = DurableDeferred.make("go", { success: Schema.String })
const Pair = Workflow.make({ name: "pair", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: (p) => p.id })
const PairLive = Pair.toLayer(Effect.fn(function*(payload) {
  const stack = yield* Stack
  const first = yield* Activity.make({
    name: "first",
    success: Schema.String,
    execute: Effect.as(Ref.update(stack.ran, (l) => [...l, `first ${payload.id}`]), `${stack.name}-${payload.id}`)
  })
  const go = yield* DurableDeferred.await(Go)
  return `${first}|${go}`
}))

const stackLayer = (settings: S3Settings, name: string, shardPrefixLen: number, ran: Ref.Ref<ReadonlyArray<string>>) =>
  PairLive.pipe(
    Layer.provideMerge(Layer.succeed(Stack, { name, ran })),
    Layer.provideMerge(BuquetWorkflowEngine.layer),
    Layer.provideMerge(Buquet.layer({ ...connectOptions(settings, freshPrefix(settings)), shardPrefixLen }))
  )

/** Polls (real time, every 250 ms) until `done` holds; dies after `withinMillis`. */
const waitUntil = <E, R>(what: string, done: Effect.Effect<boolean, E, R>, withinMillis = 60_000) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + withinMillis
    while ((yield* Clock.currentTimeMillis) < deadline) {
      if (yield* done) return
      yield* Effect.sleep("250 millis")
    }
    return yield* Effect.dieMessage(`timed out waiting until ${what}`)
  })

describeS3("two queues with their own workflow engine in one Effect program (RGW)", (settings) => {
  it.scopedLive("the same workflow and execution id on both: a deferred wakes only its own; closing A leaves B working", () =>
    Effect.gen(function*() {
      const ranA = yield* Ref.make<ReadonlyArray<string>>([])
      const ranB = yield* Ref.make<ReadonlyArray<string>>([])
      const scopeA = yield* Scope.make()
      const a = yield* Layer.build(stackLayer(settings, "A", 1, ranA)).pipe(Scope.extend(scopeA))
      const b = yield* Layer.build(stackLayer(settings, "B", 2, ranB))
      const worker = Effect.flatMap(WorkflowWorker.handlers, (handlers) => Worker.make({ monitor: false, concurrency: 4, shutdownGracePeriod: "1 second", wakeUp: { checkInterval: "300 millis" } }, handlers))
      yield* worker.pipe(Effect.provide(a), Scope.extend(scopeA))
      yield* worker.pipe(Effect.provide(b))

      const idA = yield* Pair.execute({ id: "x" }, { discard: true }).pipe(Effect.provide(a))
      const idB = yield* Pair.execute({ id: "x" }, { discard: true }).pipe(Effect.provide(b))
      expect(idA).toBe(idB)
      yield* waitUntil("both ran their first activity", Effect.map(Effect.zip(Ref.get(ranA), Ref.get(ranB)), ([x, y]) => x.length === 1 && y.length === 1))

      const token = DurableDeferred.tokenFromExecutionId(Go, { workflow: Pair, executionId: idA })
      yield* DurableDeferred.succeed(Go, { token, value: "go-a" }).pipe(Effect.provide(a))
      yield* waitUntil("A's execution completed", Effect.map(Pair.poll(idA).pipe(Effect.provide(a)), (r) => r !== undefined))
      expect(yield* Pair.execute({ id: "x" }).pipe(Effect.provide(a))).toBe("A-x|go-a")
      // B's execution of the same id still waits for its own deferred (had A's reached it, B's
      // write-once result below would hold "go-a")
      expect(yield* Pair.poll(idB).pipe(Effect.provide(b))).toBeUndefined()

      // closing A's scope stops A's worker and engine; B completes its execution and runs a new one
      yield* Scope.close(scopeA, Exit.void)
      yield* DurableDeferred.succeed(Go, { token, value: "go-b" }).pipe(Effect.provide(b))
      yield* waitUntil("B's execution completed", Effect.map(Pair.poll(idB).pipe(Effect.provide(b)), (r) => r !== undefined))
      expect(yield* Pair.execute({ id: "x" }).pipe(Effect.provide(b))).toBe("B-x|go-b")
      yield* Pair.execute({ id: "y" }, { discard: true }).pipe(Effect.provide(b))
      yield* waitUntil("B ran the new execution's activity", Effect.map(Ref.get(ranB), (l) => l.includes("first y")))
      // each body ran its activity once, on its own stack
      expect(yield* Ref.get(ranA)).toEqual(["first x"])
      expect(yield* Ref.get(ranB)).toEqual(["first x", "first y"])
    }), 120_000)
})
