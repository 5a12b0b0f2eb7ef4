/**
 * Deterministic behaviour of the worker on MemoryStorage with TestClock: claiming, concurrency,
 * failure routing, timeouts, lease extension, cancellation, starvation and shutdown.
 */
import { describe, expect } from "@effect/vitest"
import { Chunk, DateTime, Effect, Fiber, Option, Ref, Stream, TestClock } from "effect"
import { PermanentError, RescheduleError, RetryableError } from "../../src/domain/HandlerErrors.js"
import { workerKey } from "../../src/domain/Keys.js"
import { decodeWorkerRecordAt, WorkerView } from "../../src/domain/WorkerRecord.js"
import { readFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { TaskType } from "../../src/domain/TaskType.js"
import { makeSignal } from "../../src/protocol/WakeUp.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { Schema } from "effect"
import { drive, exactPolicy, getTask, hasStatus, idInShard, millisBetween, queueLayer, seedTask } from "./support.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

const noWake: Worker.WorkerOptions = { wakeUp: false }

describe("Worker on MemoryStorage + TestClock", () => {
  it.scoped("runs every task once with concurrency, never more at a time than its slots", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const active = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      const runs = yield* Ref.make<Array<string>>([])
      const tasks = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) => queue.submit("job", { i }))
      const worker = yield* Worker.make({ ...noWake, concurrency: 4 }, [
        Worker.handler("job", (input, ctx) =>
          Effect.gen(function*() {
            const n = yield* Ref.updateAndGet(active, (x) => x + 1)
            yield* Ref.update(peak, (p) => Math.max(p, n))
            yield* Ref.update(runs, (r) => [...r, ctx.taskId])
            yield* Effect.sleep("1 second")
            yield* Ref.update(active, (x) => x - 1)
            return { doubled: (input as { i: number }).i * 2 }
          }))
      ])
      yield* drive(Effect.map(Effect.forEach(tasks, (t) => hasStatus(t.id, "completed")), (all) => all.every(Boolean)))
      expect((yield* Ref.get(runs)).length).toBe(20)
      expect(new Set(yield* Ref.get(runs)).size).toBe(20)
      expect(yield* Ref.get(peak)).toBe(4)
      const t = yield* getTask(tasks[3]!.id)
      expect(t.output).toEqual({ doubled: 6 })
      expect(t.attempt).toBe(1)
      expect((yield* worker.stats).completed).toBe(20)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("typed contracts decode input and encode output; bad input fails permanently with the decode message", () =>
    Effect.gen(function*() {
      const Add = TaskType.make("add", {
        input: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
        output: Schema.Struct({ sum: Schema.Number })
      })
      const queue = yield* Queue
      const good = yield* queue.submit(Add, { a: 2, b: 3 })
      const bad = yield* queue.submit("add", { a: "two" })
      yield* Worker.make(noWake, [Worker.handler(Add, (input) => Effect.succeed({ sum: input.a + input.b }))])
      yield* drive(Effect.zipWith(hasStatus(good.id, "completed"), hasStatus(bad.id, "failed"), (x, y) => x && y))
      expect((yield* getTask(good.id)).output).toEqual({ sum: 5 })
      const failed = yield* getTask(bad.id)
      expect(failed.lastError).toContain("does not match its Schema")
      expect(failed.attempt).toBe(1)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("RetryableError twice then success: completed with retry_count 2, delays as the policy says", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const calls = yield* Ref.make<Array<number>>([])
      const task = yield* queue.submit("flaky", {}, { retryPolicy: exactPolicy, maxRetries: 3 })
      const worker = yield* Worker.make(noWake, [
        Worker.handler("flaky", (_input, ctx) =>
          Effect.gen(function*() {
            yield* Ref.update(calls, (c) => [...c, ctx.attempt])
            if (ctx.attempt <= 2) return yield* new RetryableError({ message: `try ${ctx.attempt} failed` })
            return "ok"
          }))
      ])
      const events = yield* worker.subscribe
      const collected = yield* events.pipe(Stream.take(6), Stream.runCollect, Effect.fork)
      yield* drive(hasStatus(task.id, "completed"))
      const done = yield* getTask(task.id)
      expect(done.retryCount).toBe(2)
      expect(done.attempt).toBe(3)
      expect(yield* Ref.get(calls)).toEqual([1, 2, 3])
      const evs = Chunk.toReadonlyArray(yield* Fiber.join(collected))
      expect(evs.map((e) => e._tag)).toEqual(["Claimed", "Retried", "Claimed", "Retried", "Claimed", "Completed"])
      const retried = evs.filter((e) => e._tag === "Retried")
      // backoff = initial × multiplier^k: 1 s, then 2 s (no jitter in this policy)
      expect(retried.map((e) => millisBetween(e.task.updatedAt, e.task.availableAt))).toEqual([1000, 2000])
      // and no claim happened before the task was available again
      const claims = evs.filter((e) => e._tag === "Claimed")
      expect(millisBetween(retried[0]!.task.availableAt, claims[1]!.task.updatedAt)).toBeGreaterThanOrEqual(0)
      expect(millisBetween(retried[1]!.task.availableAt, claims[2]!.task.updatedAt)).toBeGreaterThanOrEqual(0)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("PermanentError fails after one attempt; a thrown Error and a defect are retried", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const perm = yield* queue.submit("perm", {}, { retryPolicy: exactPolicy })
      const thrown = yield* queue.submit("thrown", {}, { retryPolicy: exactPolicy, maxRetries: 1 })
      yield* Worker.make({ ...noWake, concurrency: 2 }, [
        Worker.handler("perm", () => Effect.fail(new PermanentError({ message: "bad request: fix the input" }))),
        Worker.handler("thrown", (_i, ctx) =>
          ctx.attempt === 1
            ? Effect.tryPromise({ try: () => Promise.reject(new Error("boom")), catch: (e) => e })
            : Effect.sync(() => {
              throw new Error("crash")
            }))
      ])
      yield* drive(Effect.zipWith(hasStatus(perm.id, "failed"), hasStatus(thrown.id, "failed"), (a, b) => a && b))
      const p = yield* getTask(perm.id)
      expect(p.attempt).toBe(1)
      expect(p.retryCount).toBe(0)
      expect(p.lastError).toContain("fix the input")
      const t = yield* getTask(thrown.id)
      expect(t.attempt).toBe(2)
      expect(t.retryCount).toBe(1)
      expect(t.lastError).toContain("crash")
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("RescheduleError: pending again after the delay without consuming a retry; failed past max_reschedules", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("later", {}, { maxReschedules: 1 })
      const worker = yield* Worker.make(noWake, [
        Worker.handler("later", () => Effect.fail(RescheduleError.after("30 seconds", "rate limited upstream")))
      ])
      const events = yield* worker.subscribe
      const first = yield* events.pipe(Stream.filter((e) => e._tag === "Rescheduled"), Stream.take(1), Stream.runCollect, Effect.fork)
      yield* drive(Effect.map(getTask(task.id), (t) => t.rescheduleCount === 1))
      const after = yield* getTask(task.id)
      expect(after.status).toBe("pending")
      expect(after.retryCount).toBe(0)
      expect(millisBetween(after.updatedAt, after.availableAt)).toBe(30_000)
      yield* Fiber.join(first)
      yield* drive(hasStatus(task.id, "failed"), "1 second")
      const failed = yield* getTask(task.id)
      expect(failed.retryCount).toBe(0)
      expect(failed.attempt).toBe(2)
      expect(failed.lastError).toContain("max_reschedules")
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("a handler that never returns is interrupted at its timeout (finalizer runs) and the task is retried", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const finalized = yield* Ref.make(0)
      const task = yield* queue.submit("hang", {}, { timeoutSeconds: 5, retryPolicy: exactPolicy, maxRetries: 1 })
      yield* Worker.make(noWake, [
        Worker.handler("hang", () => Effect.never.pipe(Effect.ensuring(Ref.update(finalized, (n) => n + 1))))
      ])
      yield* drive(Effect.map(getTask(task.id), (t) => t.retryCount === 1))
      const retried = yield* getTask(task.id)
      expect(retried.lastError).toContain("timed out")
      expect(yield* Ref.get(finalized)).toBe(1)
      // interrupted before the lease ran out: the retry was written within the 5 s lease
      const claimEvent = retried.events!.find((e) => e.to === "running")!
      const retryEvent = retried.events!.find((e) => e.from === "running" && e.to === "pending")!
      expect(millisBetween(claimEvent.at, retryEvent.at)).toBeLessThan(5000)
      expect(millisBetween(claimEvent.at, retryEvent.at)).toBeGreaterThanOrEqual(4000)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("extendLease lets a handler run past its original timeout without being duplicated", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const starts = yield* Ref.make(0)
      const task = yield* queue.submit("long", {}, { timeoutSeconds: 3 })
      const worker = yield* Worker.make(noWake, [
        Worker.handler("long", (_i, ctx) =>
          Effect.gen(function*() {
            yield* Ref.update(starts, (n) => n + 1)
            for (let i = 0; i < 5; i++) {
              yield* ctx.extendLease("3 seconds")
              yield* Effect.sleep("2 seconds")
            }
            return "done after 10 s"
          }))
      ])
      yield* drive(hasStatus(task.id, "completed"))
      expect(yield* Ref.get(starts)).toBe(1)
      const t = yield* getTask(task.id)
      expect(t.attempt).toBe(1)
      expect(t.retryCount).toBe(0)
      expect((yield* worker.stats).retried).toBe(0)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("automatic lease renewal keeps a long handler's lease alive", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("auto", {}, { timeoutSeconds: 4 })
      yield* Worker.make(noWake, [
        Worker.handler("auto", () => Effect.as(Effect.sleep("15 seconds"), "ok"), { autoExtendLease: true })
      ])
      yield* drive(hasStatus(task.id, "completed"))
      const t = yield* getTask(task.id)
      expect(t.attempt).toBe(1)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("cancelling a running task interrupts its handler within 5 s; finalizer runs; task ends cancelled", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const finalized = yield* Ref.make(false)
      const task = yield* queue.submit("cancellable", {}, { timeoutSeconds: 600 })
      yield* Worker.make(noWake, [
        Worker.handler("cancellable", () => Effect.never.pipe(Effect.ensuring(Ref.set(finalized, true))))
      ])
      yield* drive(hasStatus(task.id, "running"))
      const result = yield* queue.cancel(task.id, { reason: "not needed" })
      expect(result.outcome).toBe("cancel_requested")
      yield* TestClock.adjust("5 seconds")
      yield* drive(hasStatus(task.id, "cancelled"), "10 millis", 10)
      expect(yield* Ref.get(finalized)).toBe(true)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("a shard whose first 500 ready markers are of an unhandled type still gets its tasks done (idle mode on)", () =>
    Effect.gen(function*() {
      const now = yield* Effect.flatMap(Queue, (q) => q.now)
      const earlier = DateTime.subtract(now, { minutes: 5 })
      for (let i = 0; i < 500; i++) yield* seedTask(idInShard("a", i), "not_mine", earlier)
      const mine = yield* Effect.forEach([0, 1, 2], (i) => seedTask(idInShard("a", 1000 + i), "mine", now))
      const storage = yield* Storage
      const worker = yield* Worker.make({ shards: ["a"], pageSize: 100, concurrency: 2 }, [
        Worker.handler("mine", () => Effect.succeed("ok"))
      ])
      yield* drive(Effect.map(Effect.forEach(mine, (t) => hasStatus(t.id, "completed")), (a) => a.every(Boolean)))
      // the foreign tasks are untouched and their markers remain
      const page = yield* storage.list("ready/a/", { maxKeys: 1000 })
      expect(page.objects.length).toBe(500)
      // each foreign marker cost one GET at most: later passes remember them
      const stats = yield* worker.stats
      expect(stats.completed).toBe(3)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("tasks scheduled ahead are not claimed before they are due", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("delayed", {}, { delayMs: 30_000 })
      const worker = yield* Worker.make(noWake, [Worker.handler("delayed", () => Effect.succeed("ok"))])
      yield* TestClock.adjust("29 seconds")
      expect((yield* getTask(task.id)).status).toBe("pending")
      expect((yield* worker.stats).claimed).toBe(0)
      yield* drive(hasStatus(task.id, "completed"))
      const t = yield* getTask(task.id)
      const claimed = t.events!.find((e) => e.to === "running")!
      expect(millisBetween(t.availableAt, claimed.at)).toBeGreaterThanOrEqual(0)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("pause stops claiming within one poll; resume restarts it", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      yield* queue.pause("paused_type")
      const task = yield* queue.submit("paused_type", {})
      const worker = yield* Worker.make(noWake, [Worker.handler("paused_type", () => Effect.succeed("ok"))])
      yield* TestClock.adjust("20 seconds")
      expect((yield* getTask(task.id)).status).toBe("pending")
      expect((yield* worker.stats).claimed).toBe(0)
      yield* queue.resume("paused_type")
      yield* drive(hasStatus(task.id, "completed"), "100 millis", 100)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("graceful stop: a short handler finishes; a long one is released after the grace period with retry_count unchanged; the worker deregisters", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const short = yield* queue.submit("short", {})
      const long = yield* queue.submit("long", {}, { timeoutSeconds: 600 })
      const worker = yield* Worker.make({ ...noWake, id: "w-stop", concurrency: 2, shutdownGracePeriod: "2 seconds" }, [
        Worker.handler("short", () => Effect.as(Effect.sleep("1 second"), "ok")),
        Worker.handler("long", () => Effect.as(Effect.sleep("60 seconds"), "ok"))
      ])
      yield* drive(Effect.zipWith(hasStatus(short.id, "running"), hasStatus(long.id, "running"), (a, b) => a && b), "10 millis")
      expect(Option.isSome(yield* storage.head(workerKey("w-stop")))).toBe(true)
      const stopping = yield* Effect.fork(worker.stop)
      yield* drive(Effect.map(Fiber.poll(stopping), Option.isSome), "100 millis")
      expect((yield* getTask(short.id)).status).toBe("completed")
      const released = yield* getTask(long.id)
      expect(released.status).toBe("pending")
      expect(released.retryCount).toBe(0)
      expect(Option.isNone(yield* storage.head(workerKey("w-stop")))).toBe(true)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("the worker record lists the task types it handles, its buquet version and host; a record without them still reads", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      yield* Worker.make({ ...noWake, id: "w-types" }, [
        Worker.handler("send_email", () => Effect.succeed("ok")),
        Worker.handler("resize", () => Effect.succeed("ok"))
      ])
      const found = yield* storage.get(workerKey("w-types"))
      const json = JSON.parse(new TextDecoder().decode(Option.getOrThrow(found).body)) as Record<string, unknown>
      const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8")) as { version: string }
      expect(json["task_types"]).toEqual(["resize", "send_email"])
      expect(json["buquet_version"]).toBe(pkg.version)
      expect(json["hostname"]).toBe(hostname())
      // the reference's fields, unrenamed
      expect(Object.keys(json)).toEqual(expect.arrayContaining(["worker_id", "started_at", "last_heartbeat", "shards", "current_task", "tasks_completed", "tasks_failed"]))
      const view = yield* decodeWorkerRecordAt(WorkerView, (w) => w.workerId)("workers/w-types.json", Option.getOrThrow(found).body)
      expect(view.taskTypes).toEqual(["resize", "send_email"])
      // a reference (or older) worker's record: its types are unknown, not "none"
      const { buquet_version: _v, task_types: _t, ...older } = json
      const oldView = yield* decodeWorkerRecordAt(WorkerView, (w) => w.workerId)("workers/w-types.json", new TextEncoder().encode(JSON.stringify(older)))
      expect(oldView.taskTypes).toBeUndefined()
      expect(oldView.buquetVersion).toBeUndefined()
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("idle with the wake-up signal: no LIST while nothing changes; a touch wakes it", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const worker = yield* Worker.make({}, [
        Worker.handler("job", () => Effect.succeed("ok"))
      ])
      yield* TestClock.adjust("10 seconds")
      const before = (yield* worker.stats).passes
      yield* TestClock.adjust("10 minutes")
      expect((yield* worker.stats).passes).toBe(before)
      const { touch } = yield* Effect.flatMap(Storage, (s) => makeSignal(s))
      const task = yield* queue.submit("job", {})
      yield* touch
      yield* drive(hasStatus(task.id, "completed"), "100 millis", 30)
    }).pipe(Effect.provide(queueLayer())))
})

