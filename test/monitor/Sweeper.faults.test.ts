/**
 * The sweeper under injected faults (the chaos run's 10 % and more): continuous steps on a
 * FaultyStorage must never delete the marker of a live task (a pending task's ready marker, a
 * running task's lease marker), whatever request fails, and must still repair every crash window
 * once enough of its requests get through. Lease recovery likewise: an unreadable task costs its
 * marker a retry next walk, not the whole walk.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Option } from "effect"
import { encodeObject } from "../../src/domain/Codec.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import { shardOf } from "../../src/domain/Shard.js"
import { Task as TaskSchema } from "../../src/domain/Task.js"
import type { Task } from "../../src/domain/Task.js"
import * as Tr from "../../src/domain/Transitions.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { createTask, readTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import * as LeaseManagerLayer from "../../src/layers/LeaseManager.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { leaseMarkerOf } from "../../src/domain/Markers.js"
import * as Sweeper from "../../src/programs/monitor/Sweeper.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"

const policy = new RetryPolicy({ initialIntervalMs: 1000, maxIntervalMs: 60_000, multiplier: 2, jitterPercent: 0.25 })

const fresh = (now: DateTime.Utc): Task => {
  const id = randomUUID()
  return Tr.newTask({
    id,
    shard: shardOf(id, 1),
    taskType: "t",
    input: null,
    now,
    availableAt: now,
    timeoutSeconds: 3600,
    maxRetries: 3,
    retryPolicy: policy
  })
}

describe("Sweeper under injected faults", () => {
  it.live("never deletes a live task's marker, and repairs every crash window in the end", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStorage.make()
      const { injector, storage: faulty } = yield* FaultyStorage.make(memory, {
        seed: "sweeper-faults",
        rates: { unavailable: 0.15, slowDown: 0.05, ambiguous: 0.05, lostResponse: 0.05 }
      })
      const clockLayer = ServerClockLayer.layer.pipe(Layer.provideMerge(Layer.succeed(Storage, memory)), Layer.orDie)
      yield* Effect.gen(function*() {
        const now = yield* (yield* ServerClock).now
        const pending = Array.from({ length: 200 }, () => fresh(now))
        const running = Array.from({ length: 40 }, () => Tr.claim(fresh(now), { now, workerId: "w", leaseId: randomUUID() }))
        const terminal = Array.from({ length: 300 }, () => Tr.complete(Tr.claim(fresh(now), { now, workerId: "w", leaseId: randomUUID() }), { now, output: 1 }))
        // the crash windows: 40 pending without a ready marker, 10 running without a lease marker
        const unmarked = new Set([...pending.slice(0, 40), ...running.slice(0, 10)].map((t) => t.id))
        yield* Effect.forEach([...pending, ...running, ...terminal], (t) =>
          Effect.gen(function*() {
            const marker = t.status === "pending" ? readyMarkerKey(t) : t.status === "running" ? leaseMarkerOf(t) : undefined
            if (marker !== undefined && !unmarked.has(t.id)) yield* writeMarker(marker)
            yield* createTask(t)
          }), { concurrency: 16, discard: true })

        const needed = [...pending.map(readyMarkerKey), ...running.map((t) => leaseMarkerOf(t)!)]
        const marked = needed.filter((key) => !unmarked.has(key.slice(key.lastIndexOf("/") + 1)))
        const present = (key: string) => Effect.map(memory.head(key), Option.isSome)

        // Small steps on the faulty store (the sweeper counts its own requests through it).
        const sweeper = yield* Sweeper.make({ pageSize: 50, concurrency: 8 }).pipe(Effect.provideService(Storage, faulty))
        let failedSteps = 0
        let finishedPasses = 0
        let repaired = false
        for (let i = 0; i < 400 && !repaired; i++) {
          const report = yield* sweeper.step().pipe(
            Effect.map(Option.some),
            Effect.catchAll(() => Effect.sync(() => {
              failedSteps++
              return Option.none<Sweeper.SweepReport>()
            }))
          )
          // After every step, failed or not: no live marker is gone.
          for (const key of marked) expect(yield* present(key), `live marker ${key} after step ${i}`).toBe(true)
          if (Option.isSome(report) && report.value.finishedAt !== undefined) {
            finishedPasses++
            const missing = yield* Effect.filter(needed, (key) => Effect.map(present(key), (p) => !p))
            repaired = missing.length === 0
          }
        }
        const faults = (yield* injector.injected).length
        console.log(`sweeper under faults: ${faults} faults injected, ${failedSteps} failed steps, ${finishedPasses} passes`)
        expect(faults).toBeGreaterThan(20)
        expect(repaired).toBe(true)
        for (const key of needed) expect(yield* present(key), key).toBe(true)
      }).pipe(Effect.provide(clockLayer))
    }), 120_000)

  it.live("lease recovery recovers every expired lease through the faults, one walk after another", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStorage.make()
      const { injector, storage: faulty } = yield* FaultyStorage.make(memory, {
        seed: "recovery-faults",
        rates: { unavailable: 0.2, slowDown: 0.05, ambiguous: 0.05, lostResponse: 0.05, conditional500: 0.05 }
      })
      const clockLayer = ServerClockLayer.layer.pipe(Layer.provideMerge(Layer.succeed(Storage, memory)), Layer.orDie)
      yield* Effect.gen(function*() {
        const now = yield* (yield* ServerClock).now
        const longAgo = DateTime.subtract(now, { hours: 2 })
        // 60 tasks claimed two hours ago with a one-hour lease: all expired
        const expired = Array.from({ length: 60 }, () => Tr.claim(fresh(longAgo), { now: longAgo, workerId: "gone", leaseId: randomUUID() }))
        yield* Effect.forEach(expired, (t) => Effect.zipRight(writeMarker(leaseMarkerOf(t)!), createTask(t)), { concurrency: 16, discard: true })
        const lm = yield* LeaseManagerLayer.make.pipe(Effect.provideService(Storage, faulty))
        const status = (t: Task) => Effect.map(readTask(`tasks/${t.shard}/${t.id}.json`), (found) => Option.getOrThrow(found).task.status)
        let walks = 0
        let skipped = 0
        let left = expired.length
        while (left > 0 && walks < 50) {
          walks++
          const report = yield* lm.recoverExpired({ pageSize: 20 }).pipe(Effect.option)
          if (Option.isSome(report)) skipped += report.value.skipped
          left = (yield* Effect.filter(expired, (t) => Effect.map(status(t), (s) => s === "running"))).length
        }
        const faults = (yield* injector.injected).length
        console.log(`recovery under faults: ${faults} faults, ${walks} walks, ${skipped} markers skipped`)
        expect(faults).toBeGreaterThan(10)
        expect(left).toBe(0)
        for (const t of expired) expect(yield* status(t)).toBe("pending")
      }).pipe(Effect.provide(clockLayer))
    }), 120_000)

  it.live("a task claimed right after the sweeper read it as pending gets no ready marker written", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStorage.make()
      const clockLayer = ServerClockLayer.layer.pipe(Layer.provideMerge(Layer.succeed(Storage, memory)), Layer.orDie)
      yield* Effect.gen(function*() {
        const now = yield* (yield* ServerClock).now
        // a pending task with no ready marker (a crash window)…
        const task = fresh(now)
        yield* createTask(task)
        const key = `tasks/${task.shard}/${task.id}.json`
        // …claimed by a worker right after the sweeper read it as pending
        let claimed = false
        const racing: typeof memory = {
          ...memory,
          get: (k) =>
            Effect.gen(function*() {
              const found = yield* memory.get(k)
              if (k === key && !claimed) {
                claimed = true
                const current = Option.getOrThrow(yield* readTask(key).pipe(Effect.provideService(Storage, memory), Effect.orDie))
                const running = Tr.claim(current.task, { now, workerId: "w", leaseId: randomUUID() })
                yield* memory.put(key, encodeObject(TaskSchema, running), { ifMatch: current.etag }).pipe(Effect.orDie)
                yield* writeMarker(leaseMarkerOf(running)!).pipe(Effect.provideService(Storage, memory), Effect.orDie)
              }
              return found
            })
        }
        const sweeper = yield* Sweeper.make({}).pipe(Effect.provideService(Storage, racing))
        const report = yield* sweeper.fullSweep
        expect(claimed).toBe(true)
        expect(report.totals.readyMarkersWritten).toBe(0)
        expect(Option.isSome(yield* memory.head(readyMarkerKey(task)))).toBe(false)
      }).pipe(Effect.provide(clockLayer))
    }))
})
