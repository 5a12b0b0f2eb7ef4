/**
 * The monitor, the sweeper and shard leasing on the real S3 server (Ceph RGW), in real time:
 * - acceptance 3 at full size: 10,000 terminal + 500 pending + 50 running tasks, one full sweep
 *   (request counts printed), then a restart that resumes the persisted pass;
 * - acceptance 1: writers killed after the claim CAS and after a retry CAS, tasks completed after
 *   one monitor period + the (short) lease;
 * - acceptance 4: shard leasing with 3 then 4 workers, one killed; never two owners.
 */
import { expect, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Fiber, Layer, Option, Scope, Exit, SubscriptionRef } from "effect"
import { taskKey } from "../../src/domain/Keys.js"
import { scanReadyKey } from "../../src/domain/ReadyIndex.js"
import { allShards, bucketOf } from "../../src/domain/Shard.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import { readTask } from "../../src/layers/internal/TaskObjects.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Monitor from "../../src/programs/Monitor.js"
import * as ShardLeasing from "../../src/programs/ShardLeasing.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"
import { describeS3, s3Layer } from "../support/s3.js"
import { claimTask, completeTask, inScope, keysUnder, makeHistory, overlaps, processStorage, retryTask, storedLeases, submitTask } from "./support.js"
import { sweepScenario } from "./sweepScenario.js"

const env = () => ServerClockLayer.layer.pipe(Layer.provideMerge(s3Layer({ maxSockets: 32 })))

describeS3("Monitor on the real S3 server", () => {
  it.live("acceptance 3: 10,000 terminal + 500 pending + 50 running — one full sweep repairs and cleans; a restart resumes", () =>
    sweepScenario({ terminal: 10_000, pending: 500, running: 50 }, 32).pipe(Effect.provide(env())), 600_000)

  it.live("acceptance 1: writers killed after the claim CAS and after a retry CAS; all completed after one period + the lease", () =>
    Effect.gen(function*() {
      const real = yield* Storage
      const clock = yield* ServerClock
      const { injector, storage: faulty } = yield* FaultyStorage.make(real)
      const on = (s: StorageService) => <A, E>(self: Effect.Effect<A, E, Storage | ServerClock>) =>
        self.pipe(Effect.provideService(Storage, s), Effect.provideService(ServerClock, clock))
      const lease = 3
      const period = 2
      const now = yield* clock.now
      const tasks = yield* Effect.forEach([1, 2, 3, 1, 2, 3], (prefixLen) => on(real)(submitTask({ prefixLen, now, timeoutSeconds: lease })))
      const afterRetry = tasks.slice(3).map((t) => t.id)
      for (const [i, t] of tasks.entries()) {
        yield* injector.addRule({ operation: "put", key: taskKey(t.shard, t.id), condition: "ifMatch", timing: "after", skip: i < 3 ? 0 : 1, fault: Fault.interrupt })
      }
      const scope = yield* Scope.make()
      yield* on(real)(Monitor.make({ checkInterval: `${period} seconds`, sweepInterval: 0, leader: { ttl: "10 seconds" } }).pipe(Scope.extend(scope)))
      const firstClaim = new Map<string, number>()
      const completedAt = new Map<string, number>()
      const process = (shard: string, id: string) =>
        on(faulty)(Effect.gen(function*() {
          if (!firstClaim.has(id)) firstClaim.set(id, yield* clock.currentTimeMillis)
          const held = yield* claimTask(taskKey(shard, id), "w1")
          if (Option.isNone(held)) return
          if (afterRetry.includes(id) && held.value.task.attempt === 1) return yield* retryTask(held.value)
          yield* completeTask(held.value)
          completedAt.set(id, yield* clock.currentTimeMillis)
        }))
      const worker = yield* Effect.fork(Effect.forever(Effect.gen(function*() {
        const nowBucket = bucketOf(yield* clock.currentTimeMillis)
        for (const key of yield* keysUnder(real, "ready/")) {
          const step = scanReadyKey(key, nowBucket)
          if (step._tag === "Due" && !completedAt.has(step.entry.taskId)) yield* Effect.fork(process(step.entry.shard, step.entry.taskId))
        }
        yield* Effect.sleep("250 millis")
      })))
      const deadline = Date.now() + 30_000
      while (completedAt.size < tasks.length && Date.now() < deadline) yield* Effect.sleep("250 millis")
      yield* Fiber.interrupt(worker)
      yield* Scope.close(scope, Exit.void)
      expect((yield* injector.injected).filter((f) => f.kind === "Interrupt").length).toBe(6)
      for (const t of tasks) {
        expect(Option.getOrThrow(yield* readTask(taskKey(t.shard, t.id))).task.status).toBe("completed")
        const took = (completedAt.get(t.id)! - firstClaim.get(t.id)!) / 1000
        // period + lease + backoff (≤ 1.25 s) + a poll and request latency
        expect(took).toBeLessThanOrEqual(lease + period + 1.25 + 2)
      }
    }).pipe(Effect.provide(env())), 120_000)

  it.live("acceptance 4: shard leasing on RGW — 3 workers 5–6 each, a 4th → 4 each, one killed → re-owned within a TTL, never two owners", () =>
    Effect.gen(function*() {
      const real = yield* Storage
      const clock = yield* ServerClock
      const shards = allShards(1)
      const history = makeHistory()
      const ttlMs = 6000
      const start = (id: string) =>
        Effect.gen(function*() {
          const p = processStorage(real, history)
          const { value } = yield* inScope(p.storage, ShardLeasing.make({ workerId: id, leaseTtl: Duration.millis(ttlMs), renewInterval: "2 seconds" }), clock)
          return { id, leasing: value, p }
        })
      const procs = [yield* start("w-a"), yield* start("w-b"), yield* start("w-c")]
      const sizes = Effect.gen(function*() {
        const out: Array<number> = []
        const seen = new Set<string>()
        for (const x of procs) {
          if (x.p.isDead()) continue
          const mine = yield* SubscriptionRef.get(x.leasing.owned)
          for (const s of mine) {
            expect(seen.has(s), `shard ${s} owned twice`).toBe(false)
            seen.add(s)
          }
          out.push(mine.length)
        }
        return out
      })
      const waitFor = (ok: (s: ReadonlyArray<number>) => boolean, limitMs: number) =>
        Effect.gen(function*() {
          const t0 = Date.now()
          while (Date.now() - t0 < limitMs) {
            if (ok(yield* sizes)) return Date.now() - t0
            yield* Effect.sleep("100 millis")
          }
          return Number.POSITIVE_INFINITY
        })
      expect(yield* waitFor((s) => s.every((n) => n === 5 || n === 6) && s.reduce((a, b) => a + b, 0) === 16, 2 * ttlMs)).toBeLessThan(2 * ttlMs)
      procs.push(yield* start("w-d"))
      expect(yield* waitFor((s) => s.every((n) => n === 4), 2 * ttlMs)).toBeLessThan(2 * ttlMs)
      const victim = procs[0]!
      const itsShards = yield* SubscriptionRef.get(victim.leasing.owned)
      victim.p.kill()
      const t0 = Date.now()
      let reowned = Number.POSITIVE_INFINITY
      while (Date.now() - t0 < 3 * ttlMs) {
        const leases = yield* storedLeases(real, shards)
        const nowMs = yield* clock.currentTimeMillis
        if (itsShards.every((s) => {
          const l = leases.get(s)
          return l !== undefined && l.workerId !== victim.id && DateTime.toEpochMillis(l.leaseExpiresAt) > nowMs
        })) {
          reowned = Date.now() - t0
          break
        }
        yield* Effect.sleep("100 millis")
      }
      console.log(`RGW shard leasing: victim's ${itsShards.length} shards re-owned after ${reowned} ms (TTL ${ttlMs} ms)`)
      expect(reowned).toBeLessThanOrEqual(ttlMs + 1500) // + clock uncertainty and request latency
      for (const x of procs.slice(1)) yield* x.leasing.stop
      expect(overlaps(history)).toEqual([])
      expect(history.writes.length).toBeGreaterThan(30)
    }).pipe(Effect.provide(env())), 120_000)
})
