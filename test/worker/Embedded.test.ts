/**
 * What a worker runs beside its own loop (design.md §6): the embedded monitor (on by default,
 * leader-elected), the embedded scheduler loop (off by default), and shard leasing (opt-in).
 * MemoryStorage + TestClock.
 */
import { describe, expect } from "@effect/vitest"
import { DateTime, Duration, Effect, Layer, Option, Ref, TestClock } from "effect"
import { readyMarkerKey, scanReadyKey } from "../../src/domain/ReadyIndex.js"
import { sweepCursorKey } from "../../src/domain/SweepCursor.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import { bucketOf } from "../../src/domain/Shard.js"
import { makeSignal } from "../../src/protocol/WakeUp.js"
import * as SchedulerLayer from "../../src/layers/Scheduler.js"
import { tryClaim } from "../../src/programs/worker/Claim.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Scheduler } from "../../src/services/Scheduler.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, getTask, hasStatus, idInShard, queueLayer, seedTask } from "./support.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

const leaderKey = (name: string) => `control/leader/${name}.json`

/** The stored leader lease of an election, as JSON (none if never held). */
const leaderOf = (name: string) =>
  Effect.gen(function*() {
    const found = yield* (yield* Storage).get(leaderKey(name))
    return Option.map(found, (o) => JSON.parse(new TextDecoder().decode(o.body)) as { holder: string; released?: boolean })
  })

const ok = (type: string) => Worker.handler(type, () => Effect.succeed("ok"))

describe("Embedded monitor and scheduler", () => {
  it.scoped("the monitor runs by default, one leader for two workers, and steps down when its worker stops", () =>
    Effect.gen(function*() {
      const a = yield* Worker.make({ id: "worker-a" }, [ok("job")])
      const b = yield* Worker.make({ id: "worker-b" }, [ok("job")])
      yield* TestClock.adjust("5 seconds")
      const first = yield* leaderOf("monitor")
      expect(Option.isSome(first)).toBe(true)
      const holder = Option.getOrThrow(first).holder
      expect(["worker-a", "worker-b"]).toContain(holder)
      // the leader's worker stops: its monitor releases the lease and the other takes over
      yield* (holder === "worker-a" ? a : b).stop
      const released = Option.getOrThrow(yield* leaderOf("monitor"))
      expect(released.holder === holder && released.released === true).toBe(true)
      yield* drive(Effect.map(leaderOf("monitor"), (l) => Option.isSome(l) && l.value.holder !== holder && l.value.released !== true), "1 second", 120)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("monitor: false runs no monitor", () =>
    Effect.gen(function*() {
      yield* Worker.make({ monitor: false }, [ok("job")])
      yield* TestClock.adjust("2 minutes")
      expect(Option.isNone(yield* leaderOf("monitor"))).toBe(true)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("the embedded monitor recovers a task whose worker vanished, and the worker then runs it", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("job", {}, { timeoutSeconds: 5 })
      // a worker that claimed it and died: the claim protocol's writes, then nothing
      const now = yield* queue.now
      const step = scanReadyKey(readyMarkerKey(task), bucketOf(DateTime.toEpochMillis(now)))
      if (step._tag !== "Due") return yield* Effect.dieMessage("the marker should be due")
      const claimed = yield* tryClaim(step.entry, {
        workerId: "vanished",
        handles: () => true,
        isPaused: () => Effect.succeed(false),
        admit: () => Effect.succeed(true as const)
      })
      expect(claimed._tag).toBe("Claimed")
      const runs = yield* Ref.make(0)
      yield* Worker.make({ id: "survivor", monitor: { checkInterval: "5 seconds" } }, [
        Worker.handler("job", () => Effect.as(Ref.update(runs, (n) => n + 1), "ok"))
      ])
      yield* drive(hasStatus(task.id, "completed"), "1 second", 300)
      expect(yield* Ref.get(runs)).toBe(1)
      const done = yield* getTask(task.id)
      expect(done.attempt).toBe(2)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("the embedded monitor's sweeper does not read again the tasks its own worker finished (it knows their ETags)", () => {
    const taskGets = new Map<string, number>()
    const counted = Layer.effect(Storage, Effect.map(MemoryStorage.make(), (mem) => ({
      ...mem,
      get: (key: string) =>
        Effect.zipRight(Effect.sync(() => {
          if (key.startsWith("tasks/")) taskGets.set(key, (taskGets.get(key) ?? 0) + 1)
        }), mem.get(key))
    })))
    return Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const cursor = Effect.map(storage.get(sweepCursorKey), Option.map((o) => JSON.parse(new TextDecoder().decode(o.body)) as { started_at: string; finished_at?: string }))
      // quiet: false — once the tasks are done the bucket turns quiet and sweeps hourly; this test
      // waits for the next pass at the normal cadence
      yield* Worker.make({ id: "sweeping", monitor: { checkInterval: "5 seconds", sweepInterval: "10 seconds", quiet: false } }, [ok("job")])
      const tasks = yield* Effect.forEach(Array.from({ length: 6 }, (_, i) => i), (i) => queue.submit("job", { i }))
      yield* drive(Effect.map(Effect.forEach(tasks, (t) => hasStatus(t.id, "completed")), (done) => done.every(Boolean)), "100 millis", 600)
      const finishedAt = yield* queue.now
      taskGets.clear()
      // a whole sweep pass that began after the tasks finished
      yield* drive(Effect.map(cursor, (c) => Option.isSome(c) && c.value.finished_at !== undefined && Date.parse(c.value.started_at) >= DateTime.toEpochMillis(finishedAt)), "1 second", 120)
      expect([...taskGets.entries()]).toEqual([])
    }).pipe(Effect.provide(queueLayer(counted)))
  })

  it.scoped("scheduler: true fires cron schedules from the worker (off by default)", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler
      const queue = yield* Queue
      yield* scheduler.create({ id: "every-minute", taskType: "tick", cron: "* * * * *" })
      const ticks = yield* Ref.make(0)
      const tick = Worker.handler("tick", () => Effect.as(Ref.update(ticks, (n) => n + 1), "ok"))
      const off = yield* Worker.make({ id: "no-scheduler" }, [tick])
      yield* TestClock.adjust("3 minutes")
      expect((yield* queue.list({ taskType: "tick" })).tasks.length).toBe(0)
      yield* off.stop
      yield* Worker.make({ id: "with-scheduler", scheduler: true }, [tick])
      yield* drive(Effect.map(Ref.get(ticks), (n) => n >= 2), "1 second", 200)
      expect(Option.isSome(yield* leaderOf("scheduler"))).toBe(true)
    }).pipe(Effect.provide(Layer.provideMerge(SchedulerLayer.layer(), queueLayer()))))
})

describe("Shard leasing", () => {
  it.scoped("two workers split 16 shards and each completes tasks from only its own shards", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const doneBy = yield* Ref.make(new Map<string, string>())
      const handler = Worker.handler("job", (_i, ctx) => Effect.as(Ref.update(doneBy, (m) => new Map(m).set(ctx.taskId, ctx.workerId)), "ok"))
      const leasing = { leaseTtl: Duration.seconds(30), renewInterval: Duration.seconds(10) }
      const a = yield* Worker.make({ id: "lease-a", monitor: false, concurrency: 4, shardLeasing: leasing }, [handler])
      const b = yield* Worker.make({ id: "lease-b", monitor: false, concurrency: 4, shardLeasing: leasing }, [handler])
      const holderOf = (shard: string) =>
        Effect.map(storage.get(`shard-leases/${shard}.json`), Option.map((o) => (JSON.parse(new TextDecoder().decode(o.body)) as { worker_id: string }).worker_id))
      const shards = "0123456789abcdef".split("")
      // let the split settle (a starts alone and owns all 16 until b is seen)
      yield* drive(
        Effect.map(Effect.forEach(shards, holderOf), (hs) => hs.filter((h) => Option.getOrUndefined(h) === "lease-a").length === 8 && hs.filter((h) => Option.getOrUndefined(h) === "lease-b").length === 8),
        "1 second",
        120
      )
      yield* TestClock.adjust("10 seconds")
      const now = yield* Effect.flatMap(Queue, (q) => q.now)
      const tasks = yield* Effect.forEach(shards, (s, i) => seedTask(idInShard(s, i), "job", now))
      yield* (yield* makeSignal(storage)).touch
      yield* drive(Effect.map(Effect.forEach(tasks, (t) => hasStatus(t.id, "completed")), (all) => all.every(Boolean)), "100 millis", 300)
      const byWorker = yield* Ref.get(doneBy)
      for (const t of tasks) {
        // each task was done by the worker that leases its shard
        expect(byWorker.get(t.id)).toBe(Option.getOrThrow(yield* holderOf(t.shard)))
      }
      expect((yield* a.stats).completed).toBe(8)
      expect((yield* b.stats).completed).toBe(8)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("workers with different handler sets: every task completes, whatever shard its type lands in (issue 15 fix 5)", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const leasing = { leaseTtl: Duration.seconds(30), renewInterval: Duration.seconds(10) }
      yield* Worker.make({ id: "a", monitor: false, concurrency: 4, shardLeasing: leasing }, [Worker.handler("alpha", () => Effect.succeed("ok"))])
      yield* Worker.make({ id: "b", monitor: false, concurrency: 4, shardLeasing: leasing }, [Worker.handler("beta", () => Effect.succeed("ok"))])
      const tasks = yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) => queue.submit(i % 2 === 0 ? "alpha" : "beta", { i }))
      yield* TestClock.adjust("5 minutes")
      const done = yield* Effect.forEach(tasks, (t) => hasStatus(t.id, "completed"))
      expect(done.filter(Boolean).length).toBe(40)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("shards_per_worker × workers < shards: the unowned shards' tasks still complete (issue 15 fix 5)", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const leasing = { leaseTtl: Duration.seconds(30), renewInterval: Duration.seconds(10), shardsPerWorker: 3 }
      const handler = Worker.handler("job", () => Effect.succeed("ok"))
      yield* Worker.make({ id: "a", monitor: false, concurrency: 4, shardLeasing: leasing }, [handler])
      yield* Worker.make({ id: "b", monitor: false, concurrency: 4, shardLeasing: leasing }, [handler])
      const tasks = yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) => queue.submit("job", { i }))
      yield* TestClock.adjust("5 minutes")
      const done = yield* Effect.forEach(tasks, (t) => hasStatus(t.id, "completed"))
      expect(done.filter(Boolean).length).toBe(40)
    }).pipe(Effect.provide(queueLayer())))
})
