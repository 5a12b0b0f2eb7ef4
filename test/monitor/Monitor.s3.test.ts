/**
 * The monitor, the sweeper and shard leasing on the real S3 server (Ceph RGW), in real time:
 * - acceptance 3 at full size: 10,000 terminal + 500 pending + 50 running tasks, one full sweep
 *   (request counts printed), then a restart that resumes the persisted pass;
 * - acceptance 1 with the real Worker: worker processes killed right after the claim CAS and
 *   after a retry CAS (prefix lengths 1-3), tasks completed within one monitor period + the
 *   (short) lease;
 * - retention: old terminal tasks deleted with their payloads, recent and pending ones kept;
 * - acceptance 4: shard leasing with 3 then 4 workers, one killed; never two owners.
 */
import { expect, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Layer, Option, Scope, Exit, SubscriptionRef } from "effect"
import { taskKey } from "../../src/domain/Keys.js"
import { bucketEndMillis } from "../../src/domain/Markers.js"
import { RetryableError } from "../../src/domain/HandlerErrors.js"
import { allShards, bucketOf } from "../../src/domain/Shard.js"
import type { Task } from "../../src/domain/Task.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import { readTask } from "../../src/protocol/TaskObjects.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Monitor from "../../src/programs/Monitor.js"
import { describeSweep } from "../../src/programs/Monitor.js"
import * as Sweeper from "../../src/programs/monitor/Sweeper.js"
import * as Worker from "../../src/programs/Worker.js"
import * as ShardLeasing from "../../src/programs/ShardLeasing.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { describeS3, s3Layer } from "../support/s3.js"
import { kill, supervise } from "./fleet.js"
import { inScope, keysUnder, makeHistory, overlaps, processStorage, storedLeases } from "./support.js"
import { sweepScenario } from "./sweepScenario.js"

const env = () => ServerClockLayer.layer.pipe(Layer.provideMerge(s3Layer({ maxSockets: 32 })))

describeS3("Monitor on the real S3 server", () => {
  it.live("acceptance 3: 10,000 terminal + 500 pending + 50 running — one full sweep repairs and cleans; a restart resumes", () =>
    sweepScenario({ terminal: 10_000, pending: 500, running: 50 }, 32).pipe(Effect.provide(env())), 600_000)

  it.scopedLive("acceptance 1 with the real Worker: workers killed after the claim CAS and after a retry CAS; all completed within the lease + one period (from the next minute, for a lease that ended in its claim's minute)", () =>
    Effect.gen(function*() {
      const real = yield* Storage
      const clock = yield* ServerClock
      const { injector, storage: faulty } = yield* FaultyStorage.make(real)
      const lease = 3
      const period = 2
      const tasks: Array<{ readonly task: Task; readonly kind: "claim" | "retry" }> = []
      for (const prefixLen of [1, 2, 3]) {
        const queue = yield* QueueLayer.make({ shardPrefixLen: prefixLen })
        tasks.push({ task: yield* queue.submit("job", {}, { timeoutSeconds: lease }), kind: "claim" })
        tasks.push({ task: yield* queue.submit("job", { failFirst: true }, { timeoutSeconds: lease }), kind: "retry" })
      }
      for (const { kind, task } of tasks) {
        yield* injector.addRule({
          operation: "put",
          key: taskKey(task.shard, task.id),
          condition: "ifMatch",
          timing: "after",
          skip: kind === "claim" ? 0 : 1,
          fault: Fault.die(kill)
        })
      }
      const scope = yield* Scope.make()
      yield* Monitor.make({ checkInterval: `${period} seconds`, sweepInterval: 0, leader: { ttl: "10 seconds" } }).pipe(Scope.extend(scope))
      const handlers = [
        Worker.handler("job", (input, ctx) =>
          (input as { readonly failFirst?: boolean }).failFirst === true && ctx.attempt === 1
            ? Effect.fail(new RetryableError({ message: "first attempt fails on purpose" }))
            : Effect.succeed({ done: ctx.attempt }))
      ]
      // One supervised worker per prefix length, polling the shards of its tasks: a discovery pass
      // over all 4,096 shards of prefix length 3 is 4,096 sequential LISTs (tens of seconds on RGW),
      // which would measure the worker's pass time, not the recovery. The monitor walks all of leases/.
      const fleets = yield* Effect.forEach([1, 2, 3], (prefixLen) =>
        supervise(faulty, clock, {
          prefix: `rgw-w${prefixLen}`,
          worker: {
            shardPrefixLen: prefixLen,
            shards: [...new Set(tasks.filter((t) => t.task.shard.length === prefixLen).map((t) => t.task.shard))],
            concurrency: 1,
            shutdownGracePeriod: "1 second"
          },
          handlers
        })).pipe(Scope.extend(scope))
      const read = Effect.forEach(tasks, ({ task }) => Effect.map(readTask(taskKey(task.shard, task.id)), (o) => Option.getOrThrow(o).task))
      const t0 = Date.now()
      while (Date.now() - t0 < 100_000 && !(yield* read).every((t) => t.status === "completed")) yield* Effect.sleep("250 millis")
      yield* Scope.close(scope, Exit.void)
      const kills = (yield* injector.injected).filter((f) => f.kind === "Die")
      expect(kills.length).toBe(6)
      let dead = 0
      for (const f of fleets) dead += (yield* f.processes).filter((p) => p.isDead()).length
      expect(dead).toBe(6)
      const final = yield* read
      for (const [i, t] of final.entries()) {
        expect(t.status, t.id).toBe("completed")
        expect(t.attempt).toBe(2)
        const firstClaim = DateTime.toEpochMillis((t.events ?? []).find((e) => e.to === "running")!.at)
        const took = (DateTime.toEpochMillis(t.completedAt!) - firstClaim) / 1000
        console.log(`RGW acceptance 1: ${tasks[i]!.kind}-killed task in shard ${t.shard} completed ${took.toFixed(2)} s after its first claim`)
        // lease + period + backoff (≤ 1.25 s) + the wake-up check (1 s) and request latency; a
        // lease that ended in the minute of its claim is retried from the next minute
        // (Markers.recoveryDueAt), found by an idle worker within its 5 s (+20 %) polling cap
        const toNextMinute = (bucketEndMillis(bucketOf(firstClaim)) - firstClaim) / 1000
        if (tasks[i]!.kind === "claim") expect(took).toBeGreaterThan(Math.max(lease, toNextMinute))
        expect(took).toBeLessThanOrEqual(Math.max(lease + period + 1.25, tasks[i]!.kind === "claim" ? toNextMinute + 6 : 0) + 2)
      }
    }).pipe(Effect.provide(env())), 180_000)

  it.scopedLive("retention on RGW: old terminal tasks deleted with their payloads; recent and pending ones untouched", () =>
    Effect.gen(function*() {
      const queue = yield* QueueLayer.make({ payloadThresholdBytes: 200 })
      const big = { blob: "x".repeat(500) }
      const old = [yield* queue.submit("job", big), yield* queue.submit("job", {})]
      for (const t of old) yield* queue.cancel(t.id)
      const pending = yield* queue.submit("job", big, { delay: "1 hour" })
      yield* Effect.sleep("3 seconds")
      const recent = yield* queue.submit("job", big)
      yield* queue.cancel(recent.id)
      const sweeper = yield* Sweeper.make({ retention: { olderThan: "2 seconds", action: "delete" } })
      const report = yield* sweeper.fullSweep
      console.log(`RGW retention: ${describeSweep(report)}`)
      expect(report.totals.retentionDeleted).toBe(2)
      for (const t of old) {
        expect(Option.isNone(yield* queue.get(t.id))).toBe(true)
        expect(yield* keysUnder(yield* Storage, `payloads/${t.id}/`)).toEqual([])
      }
      expect(Option.getOrThrow(yield* queue.get(recent.id)).status).toBe("cancelled")
      expect(yield* keysUnder(yield* Storage, `payloads/${recent.id}/`)).toEqual([`payloads/${recent.id}/input.json`])
      expect(Option.getOrThrow(yield* queue.get(pending.id)).status).toBe("pending")
      expect(yield* keysUnder(yield* Storage, `payloads/${pending.id}/`)).toEqual([`payloads/${pending.id}/input.json`])
    }).pipe(Effect.provide(env())), 60_000)

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
