/**
 * Lease recovery judges expiry by the earliest the server's time can be (its estimate minus its
 * uncertainty), as the leader and shard leases do: a monitor whose clock estimate runs ahead must
 * never take a lease a live worker still holds. MemoryStorage + TestClock, with the monitor's
 * ServerClock learning from scripted `Date` samples.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Option, Queue, Stream, TestClock } from "effect"
import { taskKey } from "../../src/domain/Keys.js"
import * as LeaseManagerLayer from "../../src/layers/LeaseManager.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { readTask } from "../../src/protocol/TaskObjects.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage, type DateSample } from "../../src/services/Storage.js"
import { claimTask, submitTask } from "./support.js"

// Half a minute past a minute boundary, so the lease's end and the instants around it share a bucket.
const base = DateTime.unsafeMake("2024-01-15T10:30:30.000Z").epochMillis

describe("lease recovery and clock uncertainty", () => {
  it.scoped("one sample and a stepped host clock: recoverExpired 700 ms before the lease ends does not recover it", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(base + 20)
      const memory = yield* MemoryStorage.make()
      // The worker's side, on the true server time (the TestClock, until the monitor's host steps).
      const truth = ServerClockLayer.fromLocalClock(yield* Effect.clock)
      const onTruth = <A, E>(self: Effect.Effect<A, E, Storage | ServerClock>) =>
        self.pipe(Effect.provideService(Storage, memory), Effect.provideService(ServerClock, truth))
      const submitted = yield* onTruth(submitTask({ prefixLen: 1, now: yield* truth.now, timeoutSeconds: 60 }))
      const key = taskKey(submitted.shard, submitted.id)
      const held = Option.getOrThrow(yield* onTruth(claimTask(key, "w1")))
      const leaseEnd = DateTime.toEpochMillis(held.task.leaseExpiresAt!)

      // The monitor learns the server's time from one response: sent at base−20, received at
      // base+20, Date: base. The offset lies in [−20, 1020]; the estimate is +500 ± 520.
      const samples = yield* Queue.unbounded<DateSample>()
      const monitorClock = yield* ServerClockLayer.makeRemote(
        { ...memory, dateSamples: Stream.fromQueue(samples) },
        yield* Effect.clock
      )
      yield* Queue.offer(samples, { sentAtMillis: base - 20, receivedAtMillis: base + 20, serverDateMillis: base })
      // The sample is folded by the clock's own fiber: let it run.
      for (let i = 0; i < 100 && (yield* monitorClock.estimate).samples === 0; i++) yield* Effect.yieldNow()
      expect((yield* monitorClock.estimate).samples).toBe(1)
      const lm = yield* LeaseManagerLayer.make.pipe(
        Effect.provideService(Storage, memory),
        Effect.provideService(ServerClock, monitorClock)
      )

      // The monitor's host clock steps 300 ms forward (no response since, so nothing contradicts
      // the learnt offset). From now on the true server time is the TestClock − 300 ms.
      yield* TestClock.adjust(Duration.millis(300))
      const trueNow = Effect.map(TestClock.currentTimeMillis, (t) => t - 300)
      yield* TestClock.adjust(Duration.millis(leaseEnd - 700 - (yield* trueNow)))
      expect(yield* trueNow).toBe(leaseEnd - 700)
      // The bare estimate is past the lease's end: without a margin this would be a takeover.
      expect(yield* monitorClock.currentTimeMillis).toBeGreaterThan(leaseEnd)

      const early = yield* lm.recoverExpired()
      expect(early.retried + early.failed + early.cancelled).toBe(0)
      expect(early.notYetExpired).toBe(1)
      const stillHeld = Option.getOrThrow(yield* readTask(key).pipe(Effect.provideService(Storage, memory)))
      expect([stillHeld.task.status, stillHeld.task.leaseId]).toEqual(["running", held.task.leaseId])

      // Once the lease has surely ended (by more than the uncertainty), it is recovered.
      yield* TestClock.adjust(Duration.millis(1200))
      const late = yield* lm.recoverExpired()
      expect(late.retried).toBe(1)
      const recovered = Option.getOrThrow(yield* readTask(key).pipe(Effect.provideService(Storage, memory)))
      expect(recovered.task.status).toBe("pending")
    }))
})
