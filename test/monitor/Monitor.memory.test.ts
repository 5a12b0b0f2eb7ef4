/**
 * The monitor on MemoryStorage with TestClock.
 * - Acceptance 1: writers killed right after the claim CAS and right after a retry CAS (FaultyStorage
 *   interrupts the writer's fiber once its PUT has landed): every task completes within one monitor
 *   period + its lease (+ backoff and one poll), none lost; shard prefix lengths 1, 2 and 3.
 * - Acceptance 2: five monitor instances: exactly one scans `leases/` per period; after the active
 *   one dies, another takes over within one leader TTL.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Exit, Fiber, Option, Scope, TestClock } from "effect"
import { taskKey } from "../../src/domain/Keys.js"
import { scanReadyKey } from "../../src/domain/ReadyIndex.js"
import { bucketOf } from "../../src/domain/Shard.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import { readTask } from "../../src/layers/internal/TaskObjects.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Monitor from "../../src/programs/Monitor.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"
import { claimTask, completeTask, inScope, keysUnder, makeHistory, processStorage, retryTask, submitTask } from "./support.js"

const lease = 60 // task timeout, seconds
const period = 10 // monitor check interval, seconds

describe("Monitor: crash windows (MemoryStorage + TestClock)", () => {
  for (const prefixLen of [1, 2, 3]) {
    it.effect(`prefix length ${prefixLen}: writers killed after the claim CAS and after a retry CAS lose no task`, () =>
      Effect.gen(function*() {
        const mem = yield* MemoryStorage.make()
        const { injector, storage: faulty } = yield* FaultyStorage.make(mem)
        const clock = ServerClockLayer.fromLocalClock(yield* Effect.clock)
        const on = (s: StorageService) => <A, E>(self: Effect.Effect<A, E, Storage | ServerClock>) =>
          self.pipe(Effect.provideService(Storage, s), Effect.provideService(ServerClock, clock))
        const now = yield* clock.now
        const tasks = yield* Effect.forEach(Array.from({ length: 9 }, (_, i) => i), () =>
          on(mem)(submitTask({ prefixLen, now, timeoutSeconds: lease })))
        const killedAfterClaim = tasks.slice(0, 3).map((t) => t.id)
        const killedAfterRetry = tasks.slice(3, 6).map((t) => t.id)
        for (const t of tasks.slice(0, 3)) {
          yield* injector.addRule({ operation: "put", key: taskKey(t.shard, t.id), condition: "ifMatch", timing: "after", fault: Fault.interrupt })
        }
        for (const t of tasks.slice(3, 6)) {
          // the 1st CAS (claim) passes, the 2nd (the retry) lands and then the writer dies
          yield* injector.addRule({ operation: "put", key: taskKey(t.shard, t.id), condition: "ifMatch", timing: "after", skip: 1, fault: Fault.interrupt })
        }

        const scope = yield* Scope.make()
        yield* on(mem)(
          Monitor.make({ checkInterval: `${period} seconds`, sweepInterval: 0, leader: { holderId: "m1" } }).pipe(Scope.extend(scope))
        )

        // The simulated worker: polls ready/ every second; each task runs in its own fiber (the one a fault kills).
        const firstClaim = new Map<string, number>()
        const completedAt = new Map<string, number>()
        const process = (shard: string, id: string) =>
          on(faulty)(Effect.gen(function*() {
            const t = yield* clock.currentTimeMillis
            if (!firstClaim.has(id)) firstClaim.set(id, t)
            const held = yield* claimTask(taskKey(shard, id), "w1")
            if (Option.isNone(held)) return
            if (killedAfterRetry.includes(id) && held.value.task.attempt === 1) return yield* retryTask(held.value)
            yield* completeTask(held.value)
            completedAt.set(id, yield* clock.currentTimeMillis)
          }))
        const poll = Effect.gen(function*() {
          const nowBucket = bucketOf(yield* clock.currentTimeMillis)
          for (const key of yield* keysUnder(mem, "ready/")) {
            const step = scanReadyKey(key, nowBucket)
            if (step._tag === "Due") yield* Effect.fork(process(step.entry.shard, step.entry.taskId))
          }
        })
        const worker = yield* Effect.fork(Effect.forever(Effect.zipRight(poll, Effect.sleep("1 second"))))

        for (let s = 0; s < 200; s++) yield* TestClock.adjust("1 second")
        yield* Fiber.interrupt(worker)

        const killed = (yield* injector.injected).filter((f) => f.kind === "Interrupt")
        expect(killed.length).toBe(6)
        expect(killed.every((f) => f.landed)).toBe(true)
        for (const t of tasks) {
          const stored = Option.getOrThrow(yield* on(mem)(readTask(taskKey(t.shard, t.id))))
          expect(stored.task.status, t.id).toBe("completed")
          const took = (completedAt.get(t.id)! - firstClaim.get(t.id)!) / 1000
          // one monitor period + the lease, plus the retry backoff (≤ 1.25 s) and one poll
          if (killedAfterClaim.includes(t.id)) {
            expect(took).toBeGreaterThan(lease) // it really waited for the lease to run out
            expect(took).toBeLessThanOrEqual(lease + period + 1.25 + 1 + 1)
            expect(stored.task.attempt).toBe(2)
            expect(stored.task.retryCount).toBe(1)
          } else if (killedAfterRetry.includes(t.id)) {
            expect(took).toBeLessThanOrEqual(1.25 + 1 + 1)
          }
        }
        // No marker is left behind: the killed writers' lease markers were removed once stale.
        expect(yield* keysUnder(mem, "leases/")).toEqual([])
        yield* Scope.close(scope, Exit.void)
      }), 60_000)
  }
})

describe("Monitor: leader election (MemoryStorage + TestClock)", () => {
  it.effect("five instances: exactly one scans leases/ per period; the active one dies and another takes over within one leader TTL", () =>
    Effect.gen(function*() {
      const mem = yield* MemoryStorage.make()
      const history = makeHistory()
      const procs = yield* Effect.forEach(["m1", "m2", "m3", "m4", "m5"], (id) =>
        Effect.gen(function*() {
          const p = processStorage(mem, history)
          const counter = { lists: 0 }
          const counted: StorageService = {
            ...p.storage,
            list: (prefix, options) =>
              p.storage.list(prefix, options).pipe(Effect.tap(() => Effect.sync(() => {
                if (prefix === "leases/") counter.lists++
              })))
          }
          const m = yield* inScope(counted, Monitor.make({
            checkInterval: `${period} seconds`,
            sweepInterval: 0,
            leader: { ttl: "30 seconds", holderId: id }
          }))
          return { id, p, counter, monitor: m.value }
        }))

      const scanners = (before: ReadonlyArray<number>) => procs.filter((x, i) => x.counter.lists > before[i]!).map((x) => x.id)
      let active: string | undefined
      for (let w = 0; w < 12; w++) {
        const before = procs.map((x) => x.counter.lists)
        yield* TestClock.adjust(`${period} seconds`)
        const who = scanners(before)
        expect(who.length, `window ${w}: ${who.join(",")}`).toBe(1)
        if (active !== undefined) expect(who[0]).toBe(active)
        active = who[0]
      }

      // Crash the active instance (its requests fail from now on; nothing is released).
      const victim = procs.find((x) => x.id === active)!
      const held = Option.getOrThrow(yield* victim.monitor.leader)
      victim.p.kill()
      const killedAt = yield* Effect.clockWith((c) => c.currentTimeMillis)
      const expiresAt = DateTime.toEpochMillis(held.expiresAt)
      expect(held.holder).toBe(victim.id)
      expect(expiresAt - killedAt).toBeLessThanOrEqual(30_000)
      const before = procs.map((x) => x.counter.lists)
      let tookOver: number | undefined
      for (let s = 0; s < 60 && tookOver === undefined; s++) {
        yield* TestClock.adjust("1 second")
        if (scanners(before).length > 0) tookOver = (yield* Effect.clockWith((c) => c.currentTimeMillis)) - killedAt
      }
      expect(tookOver).toBeDefined()
      // taken over as soon as the dead leader's lease (≤ one TTL after the kill) ran out; 1 s = our sampling step
      expect(killedAt + tookOver!).toBeLessThanOrEqual(expiresAt + 1_000)
      expect(tookOver!).toBeLessThanOrEqual(31_000)
      const successor = scanners(before)
      expect(successor.length).toBe(1)
      expect(successor[0]).not.toBe(victim.id)
      for (let w = 0; w < 6; w++) {
        const b = procs.map((x) => x.counter.lists)
        yield* TestClock.adjust(`${period} seconds`)
        expect(scanners(b)).toEqual(successor)
      }
    }), 60_000)
})
