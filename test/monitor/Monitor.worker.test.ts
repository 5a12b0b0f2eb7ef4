/**
 * The monitor with the REAL Worker, on MemoryStorage + TestClock (issue 5, acceptances 1 and 2).
 *
 * - Acceptance 1: worker processes are killed (FaultyStorage delivers a kill right after the PUT
 *   lands) after the claim CAS — before any marker work that follows it — and after a retry CAS.
 *   A supervisor restarts the worker. Every task completes; a task whose claim killed its worker
 *   completes within its lease + one monitor period (+ the retry backoff and the idle worker's
 *   wake-up check), because the monitor recovers it and touches the wake-up object. Shard prefix
 *   lengths 1, 2 and 3.
 * - Acceptance 2: five worker processes, each with a monitor instance beside it: exactly one
 *   monitor LISTs `leases/` per period; the active process is killed and another monitor takes
 *   over within one leader TTL, while the surviving workers keep running tasks.
 */
import { describe, expect } from "@effect/vitest"
import { DateTime, Effect, Option, Ref, TestClock } from "effect"
import { RetryableError } from "../../src/domain/HandlerErrors.js"
import { taskKey } from "../../src/domain/Keys.js"
import type { Task } from "../../src/domain/Task.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import { readTask } from "../../src/protocol/TaskObjects.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Monitor from "../../src/programs/Monitor.js"
import * as Worker from "../../src/programs/Worker.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { countingLeaseWalks, kill, startProcess, supervise } from "./fleet.js"
import { keysUnder } from "./support.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

const lease = 60 // task timeout, seconds
const period = 10 // monitor check interval, seconds

/** The job: tasks submitted with `failFirst` fail their first attempt (so the worker writes a retry CAS). */
const handlers = [
  Worker.handler("job", (input, ctx) =>
    (input as { readonly failFirst?: boolean }).failFirst === true && ctx.attempt === 1
      ? Effect.fail(new RetryableError({ message: "first attempt fails on purpose" }))
      : Effect.succeed({ done: ctx.attempt }))
]

const firstClaimMillis = (task: Task): number =>
  DateTime.toEpochMillis((task.events ?? []).find((e) => e.to === "running")!.at)

describe("Monitor + real Worker: crash windows (MemoryStorage + TestClock)", () => {
  for (const prefixLen of [1, 2, 3]) {
    it.scoped(`prefix length ${prefixLen}: workers killed right after the claim CAS and after a retry CAS lose no task`, () =>
      Effect.gen(function*() {
        const mem = yield* MemoryStorage.make()
        const { injector, storage: faulty } = yield* FaultyStorage.make(mem)
        const clock = ServerClockLayer.fromLocalClock(yield* Effect.clock)
        const queue = yield* QueueLayer.make({ shardPrefixLen: prefixLen }).pipe(
          Effect.provideService(Storage, mem),
          Effect.provideService(ServerClock, clock)
        )
        const plain = yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => queue.submit("job", {}, { timeoutSeconds: lease }))
        const failing = yield* Effect.forEach([1, 2, 3], () => queue.submit("job", { failFirst: true }, { timeoutSeconds: lease }))
        const killedAfterClaim = plain.slice(0, 3)
        for (const t of killedAfterClaim) {
          yield* injector.addRule({ operation: "put", key: taskKey(t.shard, t.id), condition: "ifMatch", timing: "after", fault: Fault.die(kill) })
        }
        for (const t of failing) {
          // the 1st CAS on the task (the claim) passes; the 2nd (the retry) lands and kills its worker
          yield* injector.addRule({ operation: "put", key: taskKey(t.shard, t.id), condition: "ifMatch", timing: "after", skip: 1, fault: Fault.die(kill) })
        }

        // The monitor runs as its own process (`buquet monitor`); the workers are supervised.
        yield* Monitor.make({ checkInterval: `${period} seconds`, sweepInterval: 0, leader: { holderId: "monitor" } }).pipe(
          Effect.provideService(Storage, mem),
          Effect.provideService(ServerClock, clock)
        )
        const fleet = yield* supervise(faulty, clock, {
          prefix: `w${prefixLen}`,
          worker: { shardPrefixLen: prefixLen, concurrency: 1, shutdownGracePeriod: "1 second" },
          handlers
        })

        const all = [...plain, ...failing]
        const statuses = Effect.forEach(all, (t) =>
          Effect.map(readTask(taskKey(t.shard, t.id)).pipe(Effect.provideService(Storage, mem)), (o) => Option.getOrThrow(o).task))
        for (let s = 0; s < 400; s++) {
          if ((yield* statuses).every((t) => t.status === "completed")) break
          yield* TestClock.adjust("500 millis")
        }

        const kills = (yield* injector.injected).filter((f) => f.kind === "Die")
        expect(kills.length).toBe(6)
        expect(kills.every((f) => f.landed)).toBe(true)
        // six kills → six dead workers, each replaced
        const procs = yield* fleet.processes
        expect(procs.filter((p) => p.isDead()).length).toBe(6)
        expect(procs.length).toBe(7)

        const final = yield* statuses
        for (const t of final) expect(t.status, t.id).toBe("completed")
        for (const t of final) {
          const took = (DateTime.toEpochMillis(t.completedAt!) - firstClaimMillis(t)) / 1000
          if (killedAfterClaim.some((k) => k.id === t.id)) {
            // the claim landed, its worker died: the lease had to run out, then one monitor period at most,
            // then the retry backoff (≤ 1.25 s) and the idle worker's once-a-second wake-up check
            expect(took, t.id).toBeGreaterThan(lease)
            expect(took, t.id).toBeLessThanOrEqual(lease + period + 1.25 + 2)
            expect(t.attempt).toBe(2)
            expect(t.retryCount).toBe(1)
            expect((t.events ?? []).some((e) => e.error?.includes("lease expired") === true)).toBe(true)
          } else if (failing.some((k) => k.id === t.id)) {
            // the retry landed (ready marker first), so the replacement worker finds it after its backoff
            expect(took, t.id).toBeLessThanOrEqual(1.25 + 2)
            expect(t.attempt).toBe(2)
          } else {
            expect(t.attempt).toBe(1)
          }
        }
        // the killed workers' lease markers were removed by the monitor once stale: at its next walk,
        // which comes a quiet period (10 min) later when every task has finished
        for (let s = 0; s < 72 && (yield* keysUnder(mem, "leases/")).length > 0; s++) yield* TestClock.adjust("10 seconds")
        expect(yield* keysUnder(mem, "leases/")).toEqual([])
      }), 120_000)
  }
})

describe("Monitor + real Worker: leader election (MemoryStorage + TestClock)", () => {
  it.scoped("five workers with a monitor each: one scans leases/ per period; kill it, another takes over within one leader TTL", () =>
    Effect.gen(function*() {
      const mem = yield* MemoryStorage.make()
      const clock = ServerClockLayer.fromLocalClock(yield* Effect.clock)
      const queue = yield* QueueLayer.make({}).pipe(Effect.provideService(Storage, mem), Effect.provideService(ServerClock, clock))
      const ttl = 30_000
      const lists = new Map<string, number>()
      const counting = countingLeaseWalks(lists)
      const done = yield* Ref.make(0)
      const counted = [Worker.handler("job", () => Ref.updateAndGet(done, (n) => n + 1))]
      const procs = yield* Effect.forEach(["p1", "p2", "p3", "p4", "p5"], (id) =>
        startProcess(mem, clock, {
          id,
          worker: { concurrency: 2, shutdownGracePeriod: "1 second" },
          handlers: counted,
          monitor: { checkInterval: `${period} seconds`, sweepInterval: 0, quiet: false, leader: { ttl: `${ttl} millis`, holderId: id } },
          wrap: counting(id)
        }))
      const snapshot = () => procs.map((p) => lists.get(p.id) ?? 0)
      const scanners = (before: ReadonlyArray<number>) => procs.filter((p, i) => (lists.get(p.id) ?? 0) > before[i]!).map((p) => p.id)

      let active: string | undefined
      for (let w = 0; w < 9; w++) {
        const before = snapshot()
        yield* TestClock.adjust(`${period} seconds`)
        const who = scanners(before)
        expect(who.length, `window ${w}: ${who.join(",")}`).toBe(1)
        if (active !== undefined) expect(who[0]).toBe(active)
        active = who[0]
      }
      // the fleet works meanwhile
      yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], () => queue.submit("job", {}))
      for (let s = 0; s < 100 && (yield* Ref.get(done)) < 8; s++) yield* TestClock.adjust("500 millis")
      expect(yield* Ref.get(done)).toBe(8)

      // Kill the active process (worker and monitor): nothing is released.
      const victim = procs.find((p) => p.id === active)!
      const held = Option.getOrThrow(yield* victim.monitor!.leader)
      expect(held.holder).toBe(victim.id)
      yield* victim.die
      const killedAt = yield* clock.currentTimeMillis
      const expiresAt = DateTime.toEpochMillis(held.expiresAt)
      expect(expiresAt - killedAt).toBeLessThanOrEqual(ttl)
      const before = snapshot()
      let tookOver: number | undefined
      for (let s = 0; s < 60 && tookOver === undefined; s++) {
        yield* TestClock.adjust("1 second")
        if (scanners(before).length > 0) tookOver = (yield* clock.currentTimeMillis) - killedAt
      }
      expect(tookOver).toBeDefined()
      expect(tookOver!).toBeLessThanOrEqual(ttl + 1_000) // 1 s = the sampling step
      expect(killedAt + tookOver!).toBeLessThanOrEqual(expiresAt + 1_000)
      const successor = scanners(before)
      expect(successor.length).toBe(1)
      expect(successor[0]).not.toBe(victim.id)
      for (let w = 0; w < 6; w++) {
        const b = snapshot()
        yield* TestClock.adjust(`${period} seconds`)
        expect(scanners(b)).toEqual(successor)
      }
      // and the four survivors still run work
      yield* Effect.forEach([1, 2, 3, 4], () => queue.submit("job", {}))
      for (let s = 0; s < 100 && (yield* Ref.get(done)) < 12; s++) yield* TestClock.adjust("500 millis")
      expect(yield* Ref.get(done)).toBe(12)
    }), 120_000)
})
