/**
 * Settlement effects (issue 18): a handler's `ctx.enqueue` follow-ups are created exactly once with
 * its completion — by the worker right after its CAS, or by lease recovery / the sweeper when the
 * worker dies in between — and never for an attempt that did not complete.
 * MemoryStorage + TestClock; a crash is a settling fiber interrupted while a child's create hangs.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Option, Ref, Schema, Stream, TestClock } from "effect"
import { followUpId, maxFollowUps } from "../../src/domain/FollowUps.js"
import { makeFollowUp } from "../../src/domain/FollowUpRequest.js"
import { PermanentError, RetryableError } from "../../src/domain/HandlerErrors.js"
import { neededMarker, leaseMarkerOf } from "../../src/domain/Markers.js"
import { QueueConfig } from "../../src/domain/QueueConfig.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import { Task } from "../../src/domain/Task.js"
import { TaskType } from "../../src/domain/TaskType.js"
import * as Tr from "../../src/domain/Transitions.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Sweeper from "../../src/programs/monitor/Sweeper.js"
import * as Worker from "../../src/programs/Worker.js"
import { settle } from "../../src/programs/worker/Settle.js"
import { keyOfTask, keyOfTaskId, readTask } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { faultyMemory } from "../support/faultyMemory.js"
import { drive, getTask, hasStatus, queueLayer } from "./support.js"

const quiet: Worker.WorkerOptions = { wakeUp: false, monitor: false }

/** Every task whose `parent_id` is `parentId`. */
const childrenOf = (parentId: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const all = Chunk.toReadonlyArray(yield* Stream.runCollect(storage.listAll("tasks/")))
    const tasks = yield* Effect.forEach(all, (o) => Effect.map(readTask(o.key), Option.getOrThrow))
    return tasks.map((v) => v.task).filter((t) => t.parentId === parentId)
  })

describe("ctx.enqueue with a running worker", () => {
  it.scoped("a completion creates its follow-ups once, with ids fixed by the parent, and they run", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const parent = yield* queue.submit("order", { n: 3 })
      const ids = yield* Ref.make<ReadonlyArray<string>>([])
      yield* Worker.make(quiet, [
        Worker.handler("order", (input, ctx) =>
          Effect.gen(function*() {
            const n = (input as { n: number }).n
            for (let i = 0; i < n; i++) {
              const id = yield* ctx.enqueue("ship", { item: i }, { priority: 5, tags: ["from-order"] })
              yield* Ref.update(ids, (all) => [...all, id])
            }
            return { queued: n }
          })),
        Worker.handler("ship", (input) => Effect.succeed({ shipped: (input as { item: number }).item }))
      ])
      yield* drive(hasStatus(parent.id, "completed"))
      const expected = [0, 1, 2].map((i) => followUpId(parent.id, i))
      expect(yield* Ref.get(ids)).toEqual(expected)
      const done = yield* getTask(parent.id)
      expect(done.followUps?.tasks.map((f) => f.id)).toEqual(expected)
      expect(done.followUps?.materializedAt).toBeDefined()
      expect(neededMarker(done)).toBeUndefined()
      yield* drive(Effect.map(Effect.forEach(expected, (id) => hasStatus(id, "completed")), (a) => a.every(Boolean)))
      const children = yield* childrenOf(parent.id)
      expect(children.map((c) => c.id).sort()).toEqual([...expected].sort())
      for (const c of children) {
        expect(c.priority).toBe(5)
        expect(c.tags).toEqual(["from-order"])
        expect(c.output).toEqual({ shipped: expected.indexOf(c.id) })
      }
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("an attempt that fails enqueues nothing; only the completing attempt's follow-ups exist", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const retried = yield* queue.submit("flaky", {}, { retryPolicy: { initialIntervalMs: 100, jitterPercent: 0 } })
      const failed = yield* queue.submit("doomed", {})
      yield* Worker.make(quiet, [
        Worker.handler("flaky", (_i, ctx) =>
          Effect.gen(function*() {
            if (ctx.attempt === 1) {
              yield* ctx.enqueue("ship", { first: 1 })
              yield* ctx.enqueue("ship", { first: 2 })
              return yield* new RetryableError({ message: "try again" })
            }
            yield* ctx.enqueue("ship", { second: 1 })
            return "ok"
          })),
        Worker.handler("doomed", (_i, ctx) =>
          Effect.zipRight(ctx.enqueue("ship", {}), Effect.fail(new PermanentError({ message: "no" })))),
        Worker.handler("ship", () => Effect.succeed("shipped"))
      ])
      yield* drive(Effect.zipWith(hasStatus(retried.id, "completed"), hasStatus(failed.id, "failed"), (a, b) => a && b))
      yield* drive(hasStatus(followUpId(retried.id, 0), "completed"))
      const children = yield* childrenOf(retried.id)
      expect(children.map((c) => [c.id, c.input])).toEqual([[followUpId(retried.id, 0), { second: 1 }]])
      expect(yield* childrenOf(failed.id)).toEqual([])
      expect((yield* getTask(failed.id)).followUps).toBeUndefined()
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("a typed contract's follow-up input is encoded by its Schema; bad requests fail the handler with a clear error", () =>
    Effect.gen(function*() {
      const Ship = TaskType.make("ship", { input: Schema.Struct({ at: Schema.DateFromString }) })
      const queue = yield* Queue
      const parent = yield* queue.submit("typed", {})
      const bad = yield* queue.submit("bad", {})
      yield* Worker.make(quiet, [
        Worker.handler("typed", (_i, ctx) => ctx.enqueue(Ship, { at: new Date("2026-01-02T03:04:05.000Z") })),
        Worker.handler("bad", (_i, ctx) => ctx.enqueue("ship", {}, { idempotencyKey: "k" } as never)),
        Worker.handler(Ship, () => Effect.succeed(undefined))
      ])
      yield* drive(Effect.zipWith(hasStatus(parent.id, "completed"), hasStatus(bad.id, "failed", "pending"), (a, b) => a && b))
      const child = yield* getTask(followUpId(parent.id, 0))
      expect(child.input).toEqual({ at: "2026-01-02T03:04:05.000Z" })
      const badTask = yield* getTask(bad.id)
      expect(badTask.lastError).toContain("idempotencyKey does not apply to a follow-up")
      expect(yield* childrenOf(bad.id)).toEqual([])
    }).pipe(Effect.provide(queueLayer())))
})

const base = { parentId: "6f1c1c2e-8a4b-4c1e-9f0a-2b3c4d5e6f70", taskType: "ship", input: {}, options: {}, config: QueueConfig.default }

describe("makeFollowUp", () => {
  it.effect("refuses more than maxFollowUps, a bad type name, bad options; keeps delays relative", () =>
    Effect.gen(function*() {
      const now = yield* Effect.flatMap(ServerClock, (c) => c.now).pipe(
        Effect.provideService(ServerClock, ServerClockLayer.fromLocalClock(yield* Effect.clock))
      )
      const tooMany = yield* Effect.flip(makeFollowUp({ ...base, index: maxFollowUps, now }))
      expect(tooMany.message).toContain(`at most ${maxFollowUps}`)
      expect((yield* Effect.flip(makeFollowUp({ ...base, index: 0, now, taskType: "a/b c" }))).argument).toBe("taskType")
      expect((yield* Effect.flip(makeFollowUp({ ...base, index: 0, now, options: { maxRetries: -1 } }))).argument).toBe("maxRetries")
      const f = yield* makeFollowUp({ ...base, index: 2, now, options: { delay: "5 minutes", ttlSeconds: 3600 } })
      expect(f.id).toBe(followUpId(base.parentId, 2))
      expect([f.delayMs, f.ttlMs, f.timeoutSeconds, f.maxRetries]).toEqual([300_000, 3_600_000, 300, 3])
    }))
})

// --- the crash window: completion written, follow-ups not yet created -------------------------

const setup = Effect.gen(function*() {
  const store = yield* faultyMemory()
  const { claim, clock, injector, on, queue } = store
  /** Claims the task as a worker does, then settles it with 3 follow-ups in a fiber that hangs on the second child's create. */
  const completeAndHang = Effect.gen(function*() {
    const parent = yield* queue.submit("order", {}, { timeoutSeconds: 30 })
    const claimed = yield* claim(parent.id)
    const now = yield* clock.now
    const followUps = yield* Effect.forEach([0, 1, 2], (index) =>
      makeFollowUp({ parentId: parent.id, index, taskType: "ship", input: { index }, options: {}, now, config: QueueConfig.default }))
    yield* injector.addRule({
      operation: "put",
      key: keyOfTaskId(followUpId(parent.id, 1), 1),
      condition: "ifNoneMatch",
      fault: Fault.delay("1 hour")
    })
    const held = yield* Ref.make(claimed)
    const settling = yield* Effect.fork(on(settle(held, "w1-lease", { _tag: "Complete", output: "done", followUps })))
    // the completion lands, then the worker hangs in the second create: it dies there
    yield* drive(Effect.map(on(readTask(keyOfTask(parent))), (t) => Option.getOrThrow(t).task.status === "completed"), "10 millis")
    yield* Fiber.interrupt(settling)
    yield* injector.reset
    return { parent, claimed }
  })
  const children = (parentId: string) => on(childrenOf(parentId))
  return { ...store, completeAndHang, children }
})

describe("a worker killed between its completion and its follow-ups", () => {
  it.scoped("lease recovery creates the missing ones once the lease has ended: exactly 3 children, and again nothing", () =>
    Effect.gen(function*() {
      const { children, completeAndHang, lm, mem, on, queue } = yield* setup
      const { claimed, parent } = yield* completeAndHang
      const stranded = Option.getOrThrow(yield* queue.get(parent.id))
      expect(stranded.status).toBe("completed")
      expect(stranded.followUps?.materializedAt).toBeUndefined()
      expect((yield* children(parent.id)).length).toBeLessThan(3)
      // the lease marker is kept: it is how recovery finds the completion
      const marker = leaseMarkerOf(claimed.task)!
      expect(neededMarker(stranded)).toBe(marker)
      expect(Option.isSome(yield* mem.head(marker))).toBe(true)
      // not before the worker's lease has ended (it might still be creating them)
      expect((yield* on(lm.recoverExpired())).followUpsCreated).toBe(0)
      yield* TestClock.adjust("31 seconds")
      const report = yield* on(lm.recoverExpired())
      expect(report.followUpsCreated).toBe(1)
      const created = yield* children(parent.id)
      expect(created.map((c) => c.id).sort()).toEqual([0, 1, 2].map((i) => followUpId(parent.id, i)).sort())
      expect(created.every((c) => c.status === "pending" && c.taskType === "ship")).toBe(true)
      expect(Option.getOrThrow(yield* queue.get(parent.id)).followUps?.materializedAt).toBeDefined()
      // a second walk creates nothing more, and the marker goes once its bucket has closed
      yield* TestClock.adjust("2 minutes")
      const again = yield* on(lm.recoverExpired())
      expect(again.followUpsCreated).toBe(0)
      expect((yield* children(parent.id)).length).toBe(3)
      expect(Option.isSome(yield* mem.head(marker))).toBe(false)
    }))

  it.scoped("the sweeper creates them too (a completion whose lease marker was lost), and writes nothing twice", () =>
    Effect.gen(function*() {
      const { children, completeAndHang, mem, on } = yield* setup
      const { claimed, parent } = yield* completeAndHang
      yield* mem.delete(leaseMarkerOf(claimed.task)!)
      // a worker's claim deletes the ready marker (the test's claim leaves it): with it, the task
      // would look indexed, and the sweeper leaves an indexed task younger than a minute unread
      yield* mem.delete(readyMarkerKey(claimed.task))
      yield* TestClock.adjust("31 seconds")
      const sweeper = yield* on(Sweeper.make({}))
      const report = yield* on(sweeper.fullSweep)
      expect(report.totals.followUpsCreated).toBe(1)
      expect((yield* children(parent.id)).length).toBe(3)
      const second = yield* on(sweeper.fullSweep)
      expect(second.totals.followUpsCreated).toBe(0)
      expect((yield* children(parent.id)).length).toBe(3)
    }))

  it.effect("an outbox and a child's parent round-trip through the stored JSON, under snake_case keys the reference ignores", () =>
    Effect.gen(function*() {
      const now = yield* Effect.flatMap(ServerClock, (c) => c.now).pipe(
        Effect.provideService(ServerClock, ServerClockLayer.fromLocalClock(yield* Effect.clock))
      )
      const id = "6f1c1c2e-8a4b-4c1e-9f0a-2b3c4d5e6f70"
      const task = Tr.newTask({ id, shard: "6", taskType: "order", input: {}, now, availableAt: now, timeoutSeconds: 30, maxRetries: 3, retryPolicy: RetryPolicy.default })
      const running = Tr.claim(task, { now, workerId: "w", leaseId: "l" })
      const f = yield* makeFollowUp({ ...base, parentId: id, index: 0, now, input: { a: 1 } })
      const done = Tr.completeWithFollowUps(running, { now, output: 1, followUps: [f] })
      const json = Schema.encodeSync(Task)(done) as unknown as Record<string, unknown>
      const outbox = json["follow_ups"] as { tasks: ReadonlyArray<unknown>; recover_at: string }
      expect(outbox.tasks[0]).toMatchObject({ id: f.id, task_type: "ship", input: { a: 1 }, timeout_seconds: 300 })
      expect(json["lease_expires_at"]).toBeNull()
      expect(outbox.recover_at).toBe(Schema.encodeSync(Schema.DateTimeUtc)(running.leaseExpiresAt!))
      expect(Schema.decodeUnknownSync(Task)(json)).toEqual(done)
      const child = Tr.followUpTask(done, f, now)
      expect(Schema.encodeSync(Task)(child)).toMatchObject({ id: f.id, shard: f.id.slice(0, 1), parent_id: id, status: "pending" })
      expect(f.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      expect(followUpId(id, 1)).not.toBe(f.id)
    }))
})
