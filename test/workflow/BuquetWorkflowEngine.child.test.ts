/**
 * Child workflows (issue 18, engine gap 3), on MemoryStorage + TestClock with a real Worker: a
 * parent that `execute`s a child suspends until the child completes and is woken by the child's
 * completion (no run of the parent in between: nothing polls); interrupting the parent interrupts
 * the child it waits for, as `@effect/workflow` specifies. The layers are closed under a guard
 * (`provideEngine`): that interrupt is submitted from a finalizer, and its wake-up timer once held
 * the close forever on the TestClock (WakeUp.test.ts has the deterministic case).
 */
import { describe, expect, it } from "@effect/vitest"
import { Activity, DurableDeferred, Workflow } from "@effect/workflow"
import { Effect, Exit, Layer, Ref, Schema, TestClock } from "effect"
import { workflowTaskType } from "../../src/domain/WorkflowKeys.js"
import { Queue } from "../../src/services/Queue.js"
import { drive } from "../worker/support.js"
import { memoryEngine, provideEngine, startWorker } from "./support.js"

class Effects extends Effect.Service<Effects>()("test/ChildEffects", {
  effect: Effect.map(Ref.make<ReadonlyArray<string>>([]), (log) => ({ log }))
}) {}

const record = (entry: string) => Effect.flatMap(Effects, (e) => Ref.update(e.log, (l) => [...l, entry]))
const log = Effect.flatMap(Effects, (e) => Ref.get(e.log))
const step = (name: string) => Activity.make({ name, success: Schema.String, execute: Effect.as(record(name), name) })

const Go = DurableDeferred.make("go", { success: Schema.String })

const Child = Workflow.make({ name: "child", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: (p) => p.id })
const ChildLive = Child.toLayer(Effect.fn(function*() {
  const kid = yield* step("kid")
  const go = yield* DurableDeferred.await(Go)
  return `${kid}+${go}`
}))

const Parent = Workflow.make({ name: "parent", payload: { id: Schema.String }, success: Schema.String, idempotencyKey: (p) => p.id })
const ParentLive = Parent.toLayer(Effect.fn(function*(payload) {
  const before = yield* step("before")
  const child = yield* Child.execute({ id: `${payload.id}-child` })
  const after = yield* step("after")
  return [before, child, after].join("|")
}))

const layer = memoryEngine(Layer.merge(ParentLive, ChildLive), Effects.Default)

/** How many tasks of this workflow's runs were ever submitted. */
const runsOf = (workflow: string) =>
  Effect.flatMap(Queue, (q) => q.list({ taskType: workflowTaskType(workflow) })).pipe(Effect.map((page) => page.tasks.length))

describe("BuquetWorkflowEngine: child workflows", () => {
  it.scoped("a parent waiting for its child is woken when the child completes, with the child's result", () =>
    Effect.gen(function*() {
      yield* startWorker
      const parentId = yield* Parent.executionId({ id: "p1" })
      const childId = yield* Child.executionId({ id: "p1-child" })
      yield* Parent.execute({ id: "p1" }, { discard: true })
      yield* drive(Effect.map(log, (l) => l.includes("kid")), "1 second", 100, "the child's first activity")
      yield* TestClock.adjust("2 minutes")
      expect(yield* Parent.poll(parentId)).toBeUndefined()
      expect(yield* runsOf("parent")).toBe(1)
      yield* DurableDeferred.succeed(Go, { token: DurableDeferred.tokenFromExecutionId(Go, { workflow: Child, executionId: childId }), value: "now" })
      yield* drive(Effect.map(Parent.poll(parentId), (r) => r !== undefined), "1 second", 100, "the parent's result")
      const polled = yield* Parent.poll(parentId)
      expect(polled?._tag === "Complete" && Exit.isSuccess(polled.exit) ? polled.exit.value : polled).toBe("before|kid+now|after")
      expect(yield* log).toEqual(["before", "kid", "after"])
      // the first run and the one the child's completion submitted
      expect(yield* runsOf("parent")).toBe(2)
    }).pipe(provideEngine(layer)))

  it.scoped("interrupting the parent interrupts the child it waits for", () =>
    Effect.gen(function*() {
      yield* startWorker
      const parentId = yield* Parent.executionId({ id: "p2" })
      const childId = yield* Child.executionId({ id: "p2-child" })
      yield* Parent.execute({ id: "p2" }, { discard: true })
      yield* drive(Effect.map(log, (l) => l.includes("kid")), "1 second", 100, "the child's first activity")
      yield* TestClock.adjust("10 seconds")
      yield* Parent.interrupt(parentId)
      yield* drive(Effect.map(Child.poll(childId), (r) => r !== undefined), "1 second", 100, "the interrupted child's result")
      const child = yield* Child.poll(childId)
      expect(child?._tag === "Complete" && Exit.isInterrupted(child.exit)).toBe(true)
      const parent = yield* Parent.poll(parentId)
      expect(parent?._tag === "Complete" && Exit.isInterrupted(parent.exit)).toBe(true)
      expect(yield* log).toEqual(["before", "kid"])
    }).pipe(provideEngine(layer)))
})
