/**
 * Flows (issue 18, settlement effects: "a parent task can wait for its children's results"):
 * `Queue.flow` creates a parent that is not claimable until its children have all ended, then
 * runs and reads their results. MemoryStorage + TestClock; a crash is a fiber interrupted while
 * one of its writes hangs (FaultyStorage), as in FollowUps.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, DateTime, Effect, Fiber, Option, Ref, Schema, Stream, TestClock } from "effect"
import { flowNode } from "../../src/domain/FlowRequest.js"
import { creationWindowMillis, maxFlowChildren, waitingAvailableAt } from "../../src/domain/Flows.js"
import { followUpId } from "../../src/domain/FollowUps.js"
import { PermanentError } from "../../src/domain/HandlerErrors.js"
import { leaseMarkerOf, neededMarker } from "../../src/domain/Markers.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { Task } from "../../src/domain/Task.js"
import { TaskType } from "../../src/domain/TaskType.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import * as Migrate from "../../src/programs/MigrateShards.js"
import * as Sweeper from "../../src/programs/monitor/Sweeper.js"
import * as Worker from "../../src/programs/Worker.js"
import { settle } from "../../src/programs/worker/Settle.js"
import { keyOfTask, keyOfTaskId, readTask } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { faultyMemory } from "../support/faultyMemory.js"
import { drive, getTask, hasStatus, queueLayer } from "./support.js"

const quiet: Worker.WorkerOptions = { wakeUp: false, monitor: false }

const Fetch = TaskType.make("fetch", { input: Schema.Struct({ part: Schema.Number }), output: Schema.Struct({ rows: Schema.Number }) })

describe("Queue.flow with a running worker", () => {
  it.scoped("the parent waits (not claimable, no ready marker) until every child ended, then runs once and reads their results", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const created = yield* queue.flow(flowNode("report", { month: 5 }, {
        children: [
          flowNode(Fetch, { part: 1 }),
          flowNode(Fetch, { part: 2 }),
          flowNode("merge", { n: 2 }, { children: [flowNode(Fetch, { part: 3 }), flowNode(Fetch, { part: 4 })] })
        ]
      }))
      // ids fixed by position under their parent
      expect(created.children.map((c) => c.id)).toEqual([0, 1, 2].map((i) => followUpId(created.id, i)))
      expect(created.children[2]!.children.map((c) => c.id)).toEqual([0, 1].map((i) => followUpId(created.children[2]!.id, i)))
      const root = yield* getTask(created.id)
      expect(root.status).toBe("pending")
      expect(root.availableAt).toEqual(waitingAvailableAt)
      expect(root.flow?.outbox).toBeUndefined()
      expect(neededMarker(root)).toBeUndefined()
      expect(Option.isNone(yield* storage.head(readyMarkerKey(root)))).toBe(true)
      const merge = yield* getTask(created.children[2]!.id)
      expect([merge.status, merge.parentId, merge.availableAt]).toEqual(["pending", created.id, waitingAvailableAt])

      const order = yield* Ref.make<ReadonlyArray<string>>([])
      const seen = yield* Ref.make<unknown>(undefined)
      yield* Worker.make({ ...quiet, concurrency: 4 }, [
        Worker.handler(Fetch, (input) =>
          Effect.as(Ref.update(order, (o) => [...o, `fetch ${input.part}`]), { rows: input.part * 10 })),
        Worker.handler("merge", (_input, ctx) =>
          Effect.gen(function*() {
            yield* Ref.update(order, (o) => [...o, "merge"])
            const rows = yield* ctx.childResults(Fetch)
            return { rows: rows.reduce((sum, c) => sum + (c.output?.rows ?? 0), 0) }
          })),
        Worker.handler("report", (_input, ctx) =>
          Effect.gen(function*() {
            yield* Ref.update(order, (o) => [...o, "report"])
            const all = yield* ctx.childrenResults
            yield* Ref.set(seen, all.map((c) => [c.taskType, c.status, c.output]))
            return "done"
          }))
      ])
      yield* drive(hasStatus(created.id, "completed"))
      const ran = yield* Ref.get(order)
      expect(ran.filter((r) => r === "report")).toEqual(["report"])
      expect(ran.indexOf("merge")).toBeGreaterThan(Math.max(ran.indexOf("fetch 3"), ran.indexOf("fetch 4")))
      expect(ran.at(-1)).toBe("report")
      expect(yield* Ref.get(seen)).toEqual([
        ["fetch", "completed", { rows: 10 }],
        ["fetch", "completed", { rows: 20 }],
        ["merge", "completed", { rows: 70 }]
      ])
      const done = yield* getTask(created.id)
      expect(done.flow?.children.map((c) => c.outcome)).toEqual(["completed", "completed", "completed"])
      expect(done.flow?.releasedAt).toBeDefined()
      expect(done.attempt).toBe(1)
      // every child told its parent and keeps no marker
      for (const id of [...created.children.map((c) => c.id), ...created.children[2]!.children.map((c) => c.id)]) {
        const child = yield* getTask(id)
        expect(child.parentWaits?.notifiedAt).toBeDefined()
        expect(neededMarker(child)).toBeUndefined()
      }
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("a failed child: by default the parent still runs and sees the failure", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const created = yield* queue.flow(flowNode("parent", {}, {
        children: [flowNode("ok", {}), flowNode("bad", {}, { options: { maxRetries: 0 } })]
      }))
      const seen = yield* Ref.make<unknown>(undefined)
      yield* Worker.make(quiet, [
        Worker.handler("ok", () => Effect.succeed(1)),
        Worker.handler("bad", () => Effect.fail(new PermanentError({ message: "no such thing" }))),
        Worker.handler("parent", (_i, ctx) =>
          Effect.flatMap(ctx.childrenResults, (all) => Ref.set(seen, all.map((c) => [c.status, c.output ?? null, c.error ?? null]))))
      ])
      yield* drive(hasStatus(created.id, "completed"))
      expect(yield* Ref.get(seen)).toEqual([["completed", 1, null], ["failed", null, "PermanentError: no such thing"]])
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("failParentOnFailure: the parent fails at once without running, naming the child, and its own parent hears of it", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const created = yield* queue.flow(flowNode("top", {}, {
        children: [
          flowNode("middle", {}, {
            failParentOnFailure: true,
            children: [flowNode("bad", {}, { failParentOnFailure: true }), flowNode("slow", {}, { options: { delay: "1 hour" } })]
          })
        ]
      }))
      const ran = yield* Ref.make<ReadonlyArray<string>>([])
      yield* Worker.make(quiet, [
        Worker.handler("bad", () => Effect.fail(new PermanentError({ message: "broken" }))),
        Worker.handler("slow", () => Effect.succeed("late")),
        Worker.handler("middle", () => Effect.as(Ref.update(ran, (r) => [...r, "middle"]), "x")),
        Worker.handler("top", () => Effect.as(Ref.update(ran, (r) => [...r, "top"]), "y"))
      ])
      const middleId = created.children[0]!.id
      const badId = created.children[0]!.children[0]!.id
      yield* drive(hasStatus(created.id, "failed"))
      const middle = yield* getTask(middleId)
      expect(middle.status).toBe("failed")
      expect(middle.lastError).toContain(`child task ${badId} (bad) ended failed`)
      expect((yield* getTask(created.id)).lastError).toContain(`child task ${middleId} (middle) ended failed`)
      expect(yield* Ref.get(ran)).toEqual([])
      // the sibling is left to finish; its report changes nothing
      expect((yield* getTask(created.children[0]!.children[1]!.id)).status).toBe("pending")
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("cancelling a waiting parent cancels its children (and theirs)", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const created = yield* queue.flow(flowNode("p", {}, { children: [flowNode("a", {}), flowNode("q", {}, { children: [flowNode("b", {})] })] }))
      const result = yield* queue.cancel(created.id, { reason: "not needed" })
      expect(result.outcome).toBe("cancelled")
      for (const id of [created.children[0]!.id, created.children[1]!.id, created.children[1]!.children[0]!.id]) {
        const child = yield* getTask(id)
        expect(child.status).toBe("cancelled")
        expect(child.parentWaits?.notifiedAt).toBeDefined()
      }
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("bad flows are refused with InvalidArgument before anything is written", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const tooMany = Array.from({ length: maxFlowChildren + 1 }, () => flowNode("c", {}))
      expect((yield* Effect.flip(queue.flow(flowNode("p", {}, { children: tooMany })))).message).toContain(`at most ${maxFlowChildren} children`)
      expect((yield* Effect.flip(queue.flow(flowNode("p", {}, { children: [flowNode("a b/", {})] }))))._tag).toBe("InvalidArgument")
      expect((yield* Effect.flip(queue.flow(flowNode("p", {}, { options: { idempotencyKey: "k" } as never })))).message).toContain("does not apply to a flow")
      expect((yield* queue.list()).tasks).toEqual([])
    }).pipe(Effect.provide(queueLayer())))
})

// --- crash windows ------------------------------------------------------------------------------

const setup = Effect.gen(function*() {
  const store = yield* faultyMemory()
  const { injector, on, queue } = store
  const task = (id: string) => Effect.map(queue.get(id), Option.getOrThrow)
  /** Completes a held child in a fiber that hangs on its report to the parent (a CAS on the parent's key): it dies there. */
  const completeAndDie = (held: { readonly task: Task; readonly etag: string }, parentId: string) =>
    Effect.gen(function*() {
      yield* injector.addRule({ operation: "put", key: keyOfTaskId(parentId, 1), condition: "ifMatch", fault: Fault.delay("1 hour") })
      const ref = yield* Ref.make(held)
      const settling = yield* Effect.fork(on(settle(ref, "w1-lease", { _tag: "Complete", output: { ok: held.task.id } })))
      yield* drive(Effect.map(task(held.task.id), (t) => t.status === "completed"), "10 millis")
      yield* Fiber.interrupt(settling)
      yield* injector.reset
    })
  return { ...store, task, completeAndDie }
})

describe("a process killed between a child's end and its report to the parent", () => {
  it.scoped("lease recovery reports it once the child's lease has ended: the parent becomes due exactly once", () =>
    Effect.gen(function*() {
      const { claim, completeAndDie, lm, mem, on, queue, task } = yield* setup
      const created = yield* queue.flow(flowNode("parent", {}, { children: [flowNode("child", {}, { options: { timeoutSeconds: 30 } })] }))
      const childId = created.children[0]!.id
      const held = yield* claim(childId)
      yield* completeAndDie(held, created.id)
      const child = yield* task(childId)
      expect(child.status).toBe("completed")
      expect(child.parentWaits?.notifiedAt).toBeUndefined()
      // the child keeps its lease marker: that is how recovery finds it
      const marker = leaseMarkerOf(held.task)!
      expect(neededMarker(child)).toBe(marker)
      expect(Option.isSome(yield* mem.head(marker))).toBe(true)
      expect((yield* task(created.id)).availableAt).toEqual(waitingAvailableAt)
      // not before the worker's lease has ended (it may still be reporting)
      expect((yield* on(lm.recoverExpired())).flowsRecovered).toBe(0)
      yield* TestClock.adjust("31 seconds")
      expect((yield* on(lm.recoverExpired())).flowsRecovered).toBe(1)
      const parent = yield* task(created.id)
      expect(parent.status).toBe("pending")
      expect(parent.flow?.releasedAt).toBeDefined()
      expect(parent.flow?.children[0]?.outcome).toBe("completed")
      expect(Option.isSome(yield* mem.head(readyMarkerKey(parent)))).toBe(true)
      expect((yield* task(childId)).parentWaits?.notifiedAt).toBeDefined()
      // again: nothing more, and the marker goes once its bucket has closed
      yield* TestClock.adjust("2 minutes")
      expect((yield* on(lm.recoverExpired())).flowsRecovered).toBe(0)
      expect((yield* task(created.id)).updatedAt).toEqual(parent.updatedAt)
      expect(Option.isSome(yield* mem.head(marker))).toBe(false)
    }))

  it.scoped("the sweeper reports it too when the marker was lost", () =>
    Effect.gen(function*() {
      const { claim, completeAndDie, mem, on, queue, task } = yield* setup
      const created = yield* queue.flow(flowNode("parent", {}, { children: [flowNode("child", {}, { options: { timeoutSeconds: 30 } })] }))
      const held = yield* claim(created.children[0]!.id)
      yield* completeAndDie(held, created.id)
      yield* mem.delete(leaseMarkerOf(held.task)!)
      // a worker's claim deletes the ready marker (the test's claim leaves it): with it, the task
      // would look indexed, and the sweeper leaves an indexed task younger than a minute unread
      yield* mem.delete(readyMarkerKey(held.task))
      yield* TestClock.adjust("31 seconds")
      const sweeper = yield* on(Sweeper.make({}))
      expect((yield* on(sweeper.fullSweep)).totals.flowsRecovered).toBe(1)
      expect((yield* task(created.id)).flow?.releasedAt).toBeDefined()
      expect((yield* on(sweeper.fullSweep)).totals.flowsRecovered).toBe(0)
    }))

  it.scoped("a creator killed before the children exist: recovery creates them once the creation window has passed", () =>
    Effect.gen(function*() {
      const { injector, lm, mem, on, queue, task } = yield* setup
      const rootHolder = yield* Ref.make<string | undefined>(undefined)
      // a child's create hangs (the root's and one child's go through): the creator dies there
      yield* injector.addRule({ operation: "put", condition: "ifNoneMatch", key: /^tasks\//, fault: Fault.delay("1 hour"), skip: 2 })
      const creating = yield* Effect.fork(queue.flow(flowNode("parent", {}, { children: [flowNode("a", {}), flowNode("b", {}), flowNode("c", {})] })))
      yield* drive(Effect.gen(function*() {
        const all = (yield* queue.list()).tasks
        const root = all.find((t) => t.taskType === "parent")
        if (root !== undefined) yield* Ref.set(rootHolder, root.id)
        return root !== undefined
      }), "10 millis")
      yield* Fiber.interrupt(creating)
      yield* injector.reset
      const rootId = (yield* Ref.get(rootHolder))!
      const root = yield* task(rootId)
      expect(root.flow?.outbox?.length).toBe(3)
      const marker = neededMarker(root)!
      expect(marker.startsWith("leases/")).toBe(true)
      expect(Option.isSome(yield* mem.head(marker))).toBe(true)
      expect((yield* on(lm.recoverExpired())).flowsRecovered).toBe(0)
      yield* TestClock.adjust(`${creationWindowMillis + 61_000} millis`)
      expect((yield* on(lm.recoverExpired())).flowsRecovered).toBe(1)
      const after = yield* task(rootId)
      expect(after.flow?.outbox).toBeUndefined()
      const kids = yield* Effect.forEach([0, 1, 2], (i) => queue.get(followUpId(rootId, i)))
      expect(kids.map((k) => Option.getOrThrow(k).status)).toEqual(["pending", "pending", "pending"])
      expect((yield* queue.list()).tasks.length).toBe(4)
      expect((yield* on(lm.recoverExpired())).flowsRecovered).toBe(0)
    }))
})

describe("a parent cancelled while its children are being created", () => {
  it.scoped("the creator cancels the children the cancel's cascade could not reach yet", () =>
    Effect.gen(function*() {
      const { injector, queue, task } = yield* setup
      // one child's create is slow: the cancel lands while it is in flight
      yield* injector.addRule({ operation: "put", condition: "ifNoneMatch", key: /^tasks\//, fault: Fault.delay("5 seconds"), skip: 2 })
      const creating = yield* Effect.fork(queue.flow(flowNode("parent", {}, { children: [flowNode("a", {}), flowNode("b", {}), flowNode("c", {})] })))
      let rootId: string | undefined
      yield* drive(Effect.map(queue.list(), (page) => {
        rootId = page.tasks.find((t) => t.taskType === "parent")?.id
        return rootId !== undefined && page.tasks.length >= 3
      }), "10 millis")
      expect((yield* queue.cancel(rootId!)).outcome).toBe("cancelled")
      yield* TestClock.adjust("6 seconds")
      const created = yield* Fiber.join(creating)
      expect(created.task.status).toBe("cancelled")
      for (const c of created.children) expect((yield* task(c.id)).status).toBe("cancelled")
    }))
})

describe("a child that expires", () => {
  it.scoped("the sweeper that expires it tells the parent, which becomes due", () =>
    Effect.gen(function*() {
      const { on, queue, task } = yield* setup
      const created = yield* queue.flow(flowNode("p", {}, { children: [flowNode("c", {}, { options: { ttlSeconds: 60 } })] }))
      yield* TestClock.adjust("2 minutes")
      const sweeper = yield* on(Sweeper.make({}))
      const report = yield* on(sweeper.fullSweep)
      expect(report.totals.expired).toBe(1)
      const child = yield* task(created.children[0]!.id)
      expect(child.status).toBe("expired")
      expect(child.parentWaits?.notifiedAt).toBeDefined()
      const parent = yield* task(created.id)
      expect(parent.flow?.children[0]?.outcome).toBe("expired")
      expect(parent.flow?.releasedAt).toBeDefined()
      expect(DateTime.lessThanOrEqualTo(parent.availableAt, yield* queue.now)).toBe(true)
    }))
})

describe("retention", () => {
  it.scoped("keeps a child while its parent has not ended, and deletes it once the parent has", () =>
    Effect.gen(function*() {
      const { on, queue, task } = yield* setup
      const created = yield* queue.flow(flowNode("p", {}, { children: [flowNode("a", {}), flowNode("b", {})] }))
      const [a, b] = created.children
      yield* queue.cancel(a!.id)
      yield* TestClock.adjust("2 hours")
      const sweeper = yield* on(Sweeper.make({ retention: { olderThan: "1 hour", action: "delete" } }))
      yield* on(sweeper.fullSweep)
      // the parent waits for b: a is kept although it is old enough
      expect((yield* task(a!.id)).status).toBe("cancelled")
      expect((yield* task(created.id)).status).toBe("pending")
      yield* queue.cancel(created.id)
      expect((yield* task(b!.id)).status).toBe("cancelled")
      yield* TestClock.adjust("2 hours")
      yield* on(sweeper.fullSweep)
      expect(Option.isNone(yield* queue.get(a!.id))).toBe(true)
      expect(Option.isNone(yield* queue.get(b!.id))).toBe(true)
    }))
})

describe("a flow in flight across migrate-shards (the fleet stopped, as the README says)", () => {
  it.scoped("the moved tasks keep exactly the markers they need: none for the waiting parent, the lease-bucket one for a child whose report was cut off, which recovery then delivers at the new layout", () =>
    Effect.gen(function*() {
      const { claim, completeAndDie, lm, mem, on, queue } = yield* setup
      const created = yield* queue.flow(flowNode("parent", {}, {
        children: [flowNode("done", {}, { options: { timeoutSeconds: 30 } }), flowNode("waiting", {})]
      }))
      const [done, waiting] = created.children
      // the fleet was killed between a child's end and its report to the parent
      yield* completeAndDie(yield* claim(done!.id), created.id)
      const result = yield* on(Migrate.execute(yield* on(Migrate.plan(1, 2))))
      expect(result.moved).toBe(3)
      const keys = Chunk.toReadonlyArray(yield* Stream.runCollect(mem.listAll(""))).map((m) => m.key)
      const markers = keys.filter((k) => k.startsWith("ready/") || k.startsWith("leases/"))
      const moved = yield* Effect.forEach([created.id, done!.id, waiting!.id], (id) =>
        on(Effect.map(readTask(keyOfTaskId(id, 2)), (t) => Option.getOrThrow(t).task)))
      // each marker is one some moved task needs, and each needed one is there
      expect(markers.sort()).toEqual(moved.flatMap((t) => neededMarker(t) ?? []).sort())
      expect(neededMarker(moved[0]!)).toBeUndefined()
      // recovery, at the new layout, tells the parent, which becomes due
      yield* TestClock.adjust("31 seconds")
      expect((yield* on(lm.recoverExpired())).flowsRecovered).toBe(1)
      const parent = Option.getOrThrow(yield* on(readTask(keyOfTaskId(created.id, 2)))).task
      expect(parent.flow?.children.find((c) => c.id === done!.id)?.outcome).toBe("completed")
    }))
})

describe("the stored shape", () => {
  it.effect("a waiting parent and a child round-trip under snake_case keys the reference ignores", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const created = yield* queue.flow(flowNode("p", { a: 1 }, { children: [flowNode("c", {}, { failParentOnFailure: true })] }))
      const parent = Schema.encodeSync(Task)(yield* getTask(created.id)) as unknown as Record<string, unknown>
      expect(parent["status"]).toBe("pending")
      expect(parent["available_at"]).toBe("9999-12-31T23:59:00.000Z")
      expect(parent["flow"]).toMatchObject({ children: [{ id: created.children[0]!.id, task_type: "c", fail_parent: true }] })
      const child = Schema.encodeSync(Task)(yield* getTask(created.children[0]!.id)) as unknown as Record<string, unknown>
      expect(child).toMatchObject({ parent_id: created.id, parent_waits: {}, status: "pending" })
      void keyOfTask
    }).pipe(Effect.provide(queueLayer())))
})
