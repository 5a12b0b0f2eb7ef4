/**
 * The monitor's housekeeping on MemoryStorage + TestClock: retention (delete and archive),
 * the sweep of expired idempotency records, worker health, and the monitor's metrics.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Option, TestClock } from "effect"
import { PermanentError } from "../../src/domain/HandlerErrors.js"
import { recordKey } from "../../src/domain/Idempotency.js"
import { cancelSignalKey, taskKey } from "../../src/domain/Keys.js"
import type { Task } from "../../src/domain/Task.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as MetricsLayer from "../../src/layers/Metrics.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Monitor from "../../src/programs/Monitor.js"
import * as IdempotencySweep from "../../src/programs/monitor/Idempotency.js"
import * as Sweeper from "../../src/programs/monitor/Sweeper.js"
import * as WorkerHealth from "../../src/programs/monitor/WorkerHealth.js"
import * as Worker from "../../src/programs/Worker.js"
import type { QueueService } from "../../src/services/Queue.js"
import { ServerClock, type ServerClockService } from "../../src/services/ServerClock.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"
import { kill, startProcess } from "./fleet.js"
import { keysUnder } from "./support.js"
import { layerWorkerServices } from "../../src/Buquet.js"

const setup = Effect.gen(function*() {
  const mem = yield* MemoryStorage.make()
  const clock = ServerClockLayer.fromLocalClock(yield* Effect.clock)
  const queue = yield* QueueLayer.make({ payloadThresholdBytes: 200 }).pipe(
    Effect.provideService(Storage, mem),
    Effect.provideService(ServerClock, clock)
  )
  const on = <A, E>(self: Effect.Effect<A, E, Storage | ServerClock>) =>
    self.pipe(Effect.provideService(Storage, mem), Effect.provideService(ServerClock, clock))
  return { mem, clock, queue, on }
})

const get = (queue: QueueService, id: string) => Effect.map(queue.get(id), Option.getOrUndefined)

/** Runs a real worker (job → ok, bad → permanent failure) until every task is terminal, then stops it. */
const runWorker = (mem: StorageService, clock: ServerClockService, queue: QueueService, tasks: ReadonlyArray<Task>) =>
  Effect.scoped(Effect.gen(function*() {
    yield* Worker.make({ wakeUp: false, payloadThresholdBytes: 200 }, [
      Worker.handler("job", () => Effect.succeed({ big: "y".repeat(500) })),
      Worker.handler("bad", () => Effect.fail(new PermanentError({ message: "no" })))
    ]).pipe(Effect.provide(layerWorkerServices()))
    for (let s = 0; s < 200; s++) {
      const all = yield* Effect.forEach(tasks, (t) => get(queue, t.id))
      if (all.every((t) => t !== undefined && (t.status === "completed" || t.status === "failed"))) return
      yield* TestClock.adjust("200 millis")
    }
    return yield* Effect.dieMessage("the worker did not finish its tasks")
  })).pipe(Effect.provideService(Storage, mem), Effect.provideService(ServerClock, clock))

/** Old terminal tasks (some with payloads), an old pending one, then recent terminal ones. */
const seedAges = Effect.gen(function*() {
  const env = yield* setup
  const { queue } = env
  const big = { blob: "x".repeat(500) } // offloaded to payloads/
  const oldDone = yield* Effect.forEach([big, {}, {}], (input) => queue.submit("job", input))
  const oldFailed = yield* queue.submit("bad", big)
  yield* runWorker(env.mem, env.clock, queue, [...oldDone, oldFailed])
  const oldCancelled = yield* queue.submit("job", {}, { delay: "1 hour" })
  yield* queue.cancel(oldCancelled.id)
  const oldPending = yield* queue.submit("later", {}, { delay: "30 days" })
  yield* TestClock.adjust("8 days")
  const recentDone = yield* Effect.forEach([big, {}], (input) => queue.submit("job", input))
  yield* runWorker(env.mem, env.clock, queue, recentDone)
  const recentCancelled = yield* queue.submit("job", {}, { delay: "1 hour" })
  yield* queue.cancel(recentCancelled.id)
  return {
    ...env,
    old: [...oldDone, oldFailed, oldCancelled],
    recent: [...recentDone, recentCancelled],
    oldPending
  }
})

describe("Retention (MemoryStorage + TestClock)", () => {
  it.scoped("delete: terminal tasks older than 7 days go with their payloads and markers; recent and non-terminal ones stay", () =>
    Effect.gen(function*() {
      const s = yield* seedAges
      const payloadsBefore = yield* keysUnder(s.mem, "payloads/")
      // old: 1 input + 3 outputs of completed jobs + 1 input of the failed one; recent: 1 input + 2 outputs
      expect(payloadsBefore.length).toBe(8)
      const sweeper = yield* s.on(Sweeper.make({ retention: { olderThan: "7 days", action: "delete" } }))
      const report = yield* s.on(sweeper.fullSweep)
      expect(report.totals.retentionDeleted).toBe(s.old.length)
      for (const t of s.old) {
        expect(yield* get(s.queue, t.id), t.id).toBeUndefined()
        expect(yield* keysUnder(s.mem, `payloads/${t.id}/`)).toEqual([])
      }
      for (const t of s.recent) expect((yield* get(s.queue, t.id))?.status).toMatch(/completed|cancelled/)
      expect((yield* get(s.queue, s.oldPending.id))?.status).toBe("pending")
      // the recent tasks keep their payloads; the old pending one keeps its ready marker
      expect((yield* keysUnder(s.mem, "payloads/")).length).toBe(3)
      expect((yield* keysUnder(s.mem, "ready/")).some((k) => k.endsWith(s.oldPending.id))).toBe(true)
      // a second pass finds nothing more to do
      yield* TestClock.adjust("1 hour")
      const again = yield* s.on(sweeper.fullSweep)
      expect(again.totals.retentionDeleted).toBe(0)
      expect(again.totals.tasks).toBe(s.recent.length + 1)
    }), 60_000)

  it.scoped("archive: old terminal tasks become archived (kept, payloads kept); recent ones untouched", () =>
    Effect.gen(function*() {
      const s = yield* seedAges
      const sweeper = yield* s.on(Sweeper.make({ retention: { olderThan: "7 days", action: "archive" } }))
      const report = yield* s.on(sweeper.fullSweep)
      expect(report.totals.retentionArchived).toBe(s.old.length)
      for (const t of s.old) expect((yield* get(s.queue, t.id))?.status).toBe("archived")
      for (const t of s.recent) expect((yield* get(s.queue, t.id))?.status).toMatch(/completed|cancelled/)
      expect((yield* get(s.queue, s.oldPending.id))?.status).toBe("pending")
      expect((yield* keysUnder(s.mem, "payloads/")).length).toBe(8)
      // archived tasks are not archived twice
      const again = yield* s.on(sweeper.fullSweep)
      expect(again.totals.retentionArchived).toBe(0)
    }), 60_000)
})

describe("Idempotency sweep (MemoryStorage + TestClock)", () => {
  it.scoped("deletes expired records in bounded steps from a persisted cursor; live and taken-over records stay", () =>
    Effect.gen(function*() {
      const s = yield* setup
      const { injector, storage: faulty } = yield* FaultyStorage.make(s.mem)
      const short = ["a", "b", "c", "d"]
      for (const k of short) yield* s.queue.submit("job", { k }, { idempotencyKey: k, idempotencyTtlSeconds: 3600 })
      // like the scheduler's per-firing records
      yield* s.queue.submit("job", { k: "fire" }, { idempotencyKey: "fire-1", idempotencyScope: "schedules", idempotencyTtlSeconds: 3600 })
      const long = ["x", "y"]
      for (const k of long) yield* s.queue.submit("job", { k }, { idempotencyKey: k, idempotencyTtlSeconds: 86_400 })
      expect((yield* keysUnder(s.mem, "idempotency/")).length).toBe(7)
      yield* TestClock.adjust("2 hours")
      // "a" expired and was taken over by a new submit: live again
      const again = yield* s.queue.submit("job", { k: "a2" }, { idempotencyKey: "a", idempotencyTtlSeconds: 3600 })
      // "b" is taken over while the sweep is between its GET and its delete (the HEAD re-check is slowed down)
      const bKey = recordKey("task_type", "job", "b")
      yield* injector.addRule({ operation: "head", key: bKey, fault: Fault.delay("5 seconds") })

      const sweep = yield* IdempotencySweep.make({ pageSize: 3, concurrency: 1 }).pipe(
        Effect.provideService(Storage, faulty),
        Effect.provideService(ServerClock, s.clock)
      )
      const stepping = yield* Effect.fork(Effect.gen(function*() {
        const reports: Array<IdempotencySweep.IdempotencyStepReport> = []
        for (;;) {
          const r = yield* sweep.step
          reports.push(r)
          if (r.passFinished) return reports
        }
      }))
      yield* TestClock.adjust("1 second")
      const takenB = yield* s.queue.submit("job", { k: "b2" }, { idempotencyKey: "b", idempotencyTtlSeconds: 3600 })
      yield* TestClock.adjust("5 seconds")
      const reports = yield* Fiber.join(stepping)

      // 7 records, 3 per step: three steps, each listing at most a page
      expect(reports.map((r) => r.listed)).toEqual([3, 3, 1])
      expect(reports.reduce((n, r) => n + r.deleted, 0)).toBe(3) // c, d, fire-1
      const left = yield* keysUnder(s.mem, "idempotency/")
      expect(left.sort()).toEqual(
        [recordKey("task_type", "job", "a"), bKey, recordKey("task_type", "job", "x"), recordKey("task_type", "job", "y")].sort()
      )
      // the surviving keys still de-duplicate: same request → same task
      expect((yield* s.queue.submit("job", { k: "a2" }, { idempotencyKey: "a", idempotencyTtlSeconds: 3600 })).id).toBe(again.id)
      expect((yield* s.queue.submit("job", { k: "b2" }, { idempotencyKey: "b", idempotencyTtlSeconds: 3600 })).id).toBe(takenB.id)
      const cursor = Option.getOrThrow(yield* sweep.cursor.pipe(Effect.provideService(Storage, s.mem)))
      expect(cursor.passes).toBe(1)
      expect(cursor.deleted).toBe(3)
      expect(cursor.after).toBeUndefined()

      // a second pass reads no live record again (remembered by ETag) except "b", which changed under
      // the first pass; every other GET is the cursor's
      const second = [yield* sweep.step, yield* sweep.step]
      expect(second.map((r) => r.listed)).toEqual([3, 1])
      expect(second.reduce((n, r) => n + r.read, 0)).toBe(1)
      expect(second.reduce((n, r) => n + r.requests.GET, 0)).toBe(2 + 1)
      expect(second.map((r) => r.deleted)).toEqual([0, 0])
      expect(second[1]!.passFinished).toBe(true)

      // a new sweeper (a restart) resumes from the persisted cursor
      const restarted = yield* IdempotencySweep.make({ pageSize: 3 }).pipe(
        Effect.provideService(Storage, s.mem),
        Effect.provideService(ServerClock, s.clock)
      )
      yield* TestClock.adjust("2 days")
      const first = yield* restarted.step
      expect(first.listed).toBe(3)
      expect(first.passFinished).toBe(false)
      const rest = yield* restarted.step
      expect(rest.listed).toBe(1)
      expect(rest.passFinished).toBe(true)
      expect(first.deleted + rest.deleted).toBe(4)
      expect(yield* keysUnder(s.mem, "idempotency/")).toEqual([])
    }), 60_000)
})

describe("Worker health (MemoryStorage + TestClock)", () => {
  it.scoped("a killed worker is reported stale after three heartbeat intervals and its record deleted much later; a live one is kept", () =>
    Effect.gen(function*() {
      const s = yield* setup
      const handlers = [Worker.handler("job", () => Effect.succeed(1))]
      const dead = yield* startProcess(s.mem, s.clock, { id: "w-dead", worker: {}, handlers })
      yield* startProcess(s.mem, s.clock, { id: "w-live", worker: {}, handlers })
      yield* TestClock.adjust("1 second")
      const health = yield* s.on(WorkerHealth.make({ staleAfter: "3 minutes", deleteAfter: "15 minutes" }))
      const first = yield* s.on(health.check)
      expect([first.total, first.healthy, first.stale.length]).toEqual([2, 2, 0])
      // a cancel touched the dead worker's signal before it died: it goes with the record
      yield* s.mem.put(cancelSignalKey("w-dead"), new TextEncoder().encode("{}"))
      yield* dead.die
      yield* TestClock.adjust("2 minutes")
      expect((yield* s.on(health.check)).stale).toEqual([])
      yield* TestClock.adjust("90 seconds")
      const stale = yield* s.on(health.check)
      expect(stale.stale.map((w) => w.workerId)).toEqual(["w-dead"])
      expect(stale.healthy).toBe(1)
      expect(stale.deleted).toEqual([])
      expect(stale.requests.LIST).toBe(1)
      expect(stale.requests.GET + stale.requests.HEAD + stale.requests.DELETE).toBe(0)
      yield* TestClock.adjust("10 minutes")
      expect((yield* s.on(health.check)).deleted).toEqual([])
      yield* TestClock.adjust("2 minutes")
      const gone = yield* s.on(health.check)
      expect(gone.deleted).toEqual(["w-dead"])
      expect(gone.stale).toEqual([])
      expect(yield* keysUnder(s.mem, "workers/")).toEqual(["workers/w-live.json"])
      expect(yield* keysUnder(s.mem, "control/cancel/")).toEqual([])
    }), 60_000)
})

/** The value of a counter in Prometheus text (summed over the samples whose labels match). */
const counter = (text: string, name: string, labels: Record<string, string> = {}): number =>
  text.split("\n").filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
    .reduce((n, line) => n + Number(line.slice(line.lastIndexOf(" ") + 1)), 0)

describe("Monitor metrics (MemoryStorage + TestClock)", () => {
  it.scoped("recovered leases and expired tasks show up in the /metrics exposition", () =>
    Effect.gen(function*() {
      const s = yield* setup
      const { injector, storage: faulty } = yield* FaultyStorage.make(s.mem)
      const before = yield* MetricsLayer.exposition
      const retried = yield* s.queue.submit("job", {}, { timeoutSeconds: 30 })
      const exhausted = yield* s.queue.submit("job", {}, { timeoutSeconds: 30, maxRetries: 0 })
      // nobody handles "orphan": it expires while pending and the sweeper marks it
      yield* s.queue.submit("orphan", {}, { ttlSeconds: 20 })
      for (const t of [retried, exhausted]) {
        yield* injector.addRule({ operation: "put", key: taskKey(t.shard, t.id), condition: "ifMatch", timing: "after", fault: Fault.die(kill) })
      }
      // the normal cadence throughout (once nothing runs, the quiet mode would sweep hourly, and the
      // orphan's expiry is what this test waits for)
      yield* Monitor.make({ checkInterval: "10 seconds", sweepInterval: "1 minute", leader: { holderId: "m" }, quiet: false }).pipe(
        Effect.provideService(Storage, s.mem),
        Effect.provideService(ServerClock, s.clock)
      )
      const handlers = [Worker.handler("job", () => Effect.succeed("ok"))]
      // two workers, each killed by one claim; a third completes the retried task
      const a = yield* startProcess(faulty, s.clock, { id: "a", worker: { concurrency: 1 }, handlers })
      for (let i = 0; i < 50 && !a.isDead(); i++) yield* TestClock.adjust("100 millis")
      const b = yield* startProcess(faulty, s.clock, { id: "b", worker: { concurrency: 1 }, handlers })
      for (let i = 0; i < 50 && !b.isDead(); i++) yield* TestClock.adjust("100 millis")
      expect([a.isDead(), b.isDead()]).toEqual([true, true])
      yield* startProcess(s.mem, s.clock, { id: "c", worker: { concurrency: 1 }, handlers })
      for (let i = 0; i < 200; i++) {
        if ((yield* get(s.queue, retried.id))?.status === "completed") break
        yield* TestClock.adjust("1 second")
      }
      yield* TestClock.adjust(Duration.minutes(2))
      expect((yield* get(s.queue, retried.id))?.status).toBe("completed")
      const failed = yield* get(s.queue, exhausted.id)
      expect(failed?.status).toBe("failed")
      expect(failed?.lastError).toContain("no retries left")

      const after = yield* MetricsLayer.exposition
      const delta = (name: string, labels: Record<string, string> = {}) => counter(after, name, labels) - counter(before, name, labels)
      expect(delta("buquet_tasks_timeout_recovered_total")).toBe(2)
      expect(delta("buquet_tasks_retried_total", { task_type: "job" })).toBe(1)
      expect(delta("buquet_tasks_failed_total", { task_type: "job", reason: "timeout" })).toBe(1)
      expect(delta("buquet_tasks_expired_total", { task_type: "orphan" })).toBe(1)
    }), 60_000)
})
