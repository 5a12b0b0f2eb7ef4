/**
 * A marker DELETE that lands late (S3 retries, a paused process) never removes a marker a newer
 * transition wrote at the same key (issue 15 fix 6 for cancel and expiry; the claim's ready
 * marker and the lease extension's old marker). Within one minute bucket a task's ready marker
 * has one key, so a transition that makes the task pending again in that minute writes the key
 * an earlier transition is still deleting. Each test holds one DELETE back with a scripted delay
 * and checks the newer state is still findable without a sweep.
 * MemoryStorage + TestClock (time starts at 0: bucket 0 is the first minute).
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Fiber, Option, Ref, TestClock } from "effect"
import { payloadKey } from "../../src/domain/Keys.js"
import { leaseMarkerOf } from "../../src/domain/Markers.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import { bucketOf } from "../../src/domain/Shard.js"
import * as Tr from "../../src/domain/Transitions.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import { tryClaim } from "../../src/programs/worker/Claim.js"
import { settle } from "../../src/programs/worker/Settle.js"
import { faultyMemory } from "../support/faultyMemory.js"

const setup = Effect.gen(function*() {
  const store = yield* faultyMemory()
  const { injector, queue } = store
  /** The ids `listReady` reports as due now. */
  const due = Effect.map(queue.listReady({ limit: 100 }), (entries) => entries.map((e) => e.taskId))
  /** Holds the next DELETE of `key` back for `delay`. */
  const holdDelete = (key: string, delay: Duration.DurationInput) =>
    injector.addRule({ operation: ["delete", "deleteMany"], key, fault: Fault.delay(delay), times: 1 })
  return { ...store, due, holdDelete }
})

describe("a late ready-marker DELETE of cancel or expiry, and a replay in the same minute", () => {
  it.scoped("cancel: the replayed task is still found by discovery once its marker is due", () =>
    Effect.gen(function*() {
      const { due, holdDelete, mem, queue } = yield* setup
      const task = yield* queue.submit("job", {})
      yield* holdDelete(readyMarkerKey(task), "10 seconds")
      const cancelling = yield* Effect.fork(queue.cancel(task.id))
      yield* TestClock.adjust("1 second")
      // the cancel's CAS has landed; its DELETE is still on the way
      expect(Option.getOrThrow(yield* queue.get(task.id)).status).toBe("cancelled")
      const replayed = yield* queue.replay(task.id)
      yield* TestClock.adjust("10 seconds")
      expect((yield* Fiber.join(cancelling)).outcome).toBe("cancelled")
      // the replayed task has its marker, and workers find it when it is due
      expect(Option.isSome(yield* mem.head(readyMarkerKey(replayed)))).toBe(true)
      yield* TestClock.adjust("1 minute")
      expect(yield* due).toEqual([task.id])
    }))

  it.scoped("markExpired: the same, for a task that expired in the minute it became due", () =>
    Effect.gen(function*() {
      const { due, holdDelete, mem, queue } = yield* setup
      const task = yield* queue.submit("job", {}, { ttlSeconds: 5 })
      yield* TestClock.adjust("6 seconds")
      yield* holdDelete(readyMarkerKey(task), "10 seconds")
      const expiring = yield* Effect.fork(queue.markExpired(task.id))
      yield* TestClock.adjust("1 second")
      expect(Option.getOrThrow(yield* queue.get(task.id)).status).toBe("expired")
      const replayed = yield* queue.replay(task.id)
      yield* TestClock.adjust("10 seconds")
      expect((yield* Fiber.join(expiring)).outcome).toBe("expired")
      expect(Option.isSome(yield* mem.head(readyMarkerKey(replayed)))).toBe(true)
      yield* TestClock.adjust("1 minute")
      expect(yield* due).toEqual([task.id])
    }))

  it.scoped("a replay that names a different key than the old marker is due at once", () =>
    Effect.gen(function*() {
      const { due, queue } = yield* setup
      const task = yield* queue.submit("job", {})
      yield* queue.cancel(task.id)
      yield* TestClock.adjust("2 minutes")
      const replayed = yield* queue.replay(task.id)
      expect(DateTime.toEpochMillis(replayed.availableAt)).toBe(120_000)
      expect(yield* due).toEqual([task.id])
    }))
})

describe("a failed task replayed in the minute it was due", () => {
  // The claim's DELETE of the ready marker is held up past its lease; the monitor fails the task
  // (no retries left) in the same minute and an operator replays it at once: the replay's marker
  // would have the key the claim is still deleting. The claimer dies before its re-write.
  it.scoped("the replayed task keeps its marker though the claimer dies between its late DELETE and its re-write", () =>
    Effect.gen(function*() {
      const { due, holdDelete, injector, lm, mem, on, queue } = yield* setup
      const task = yield* queue.submit("job", {}, { timeoutSeconds: 5, maxRetries: 0 })
      const marker = readyMarkerKey(task)
      yield* holdDelete(marker, "20 seconds")
      const env = {
        workerId: "w1",
        handles: () => true,
        isPaused: () => Effect.succeed(false),
        admit: () => Effect.succeed(true as const)
      }
      const entry = { key: marker, shard: task.shard, taskId: task.id, bucket: bucketOf(0), priority: 0 }
      const claiming = yield* Effect.fork(on(tryClaim(entry, env)))
      yield* TestClock.adjust("10 seconds")
      expect((yield* on(lm.recoverExpired())).failed).toBe(1)
      const replayed = yield* queue.replay(task.id)
      expect(replayed.status).toBe("pending")
      // W1's DELETE lands at 20 s; the process dies before the re-write of the marker
      yield* injector.addRule({ operation: "put", key: marker, fault: Fault.interrupt, times: 1 })
      yield* TestClock.adjust("20 seconds")
      yield* Fiber.await(claiming)
      expect(Option.getOrThrow(yield* queue.get(task.id)).status).toBe("pending")
      expect(Option.isSome(yield* mem.head(readyMarkerKey(replayed)))).toBe(true)
      yield* TestClock.adjust("1 minute")
      expect(yield* due).toEqual([task.id])
    }))

  it.scoped("a replay in the minute the failed run's marker was in is due at the next minute", () =>
    Effect.gen(function*() {
      const { due, on, queue } = yield* setup
      const task = yield* queue.submit("job", {}, { maxRetries: 0 })
      const env = {
        workerId: "w1",
        handles: () => true,
        isPaused: () => Effect.succeed(false),
        admit: () => Effect.succeed(true as const)
      }
      const entry = { key: readyMarkerKey(task), shard: task.shard, taskId: task.id, bucket: bucketOf(0), priority: 0 }
      const claimed = yield* on(tryClaim(entry, env))
      expect(claimed._tag).toBe("Claimed")
      if (claimed._tag !== "Claimed") return
      const held = yield* Ref.make(claimed.held)
      yield* TestClock.adjust("1 second")
      yield* on(settle(held, claimed.held.task.leaseId!, { _tag: "Fail", error: "boom" }))
      expect(Option.getOrThrow(yield* queue.get(task.id)).status).toBe("failed")
      const replayed = yield* queue.replay(task.id)
      expect(DateTime.toEpochMillis(replayed.availableAt)).toBe(60_000)
      expect(yield* due).toEqual([])
      yield* TestClock.adjust("1 minute")
      expect(yield* due).toEqual([task.id])
    }))
})

describe("a claim whose ready-marker DELETE lands after its lease ran out", () => {
  const env = {
    workerId: "w1",
    handles: () => true,
    isPaused: () => Effect.succeed(false),
    admit: () => Effect.succeed(true as const)
  }

  // W1 claims at 0 s; its DELETE of the ready marker is held up (a GC pause, S3 retries) for 20 s.
  // Its lease (5 s) runs out and the monitor retries the task at 10 s, 1 s backoff: the same minute.
  const claimLateAndRecover = Effect.gen(function*() {
    const { due, holdDelete, injector, lm, mem, on, queue } = yield* setup
    const task = yield* queue.submit("job", {}, { timeoutSeconds: 5, retryPolicy: { initialIntervalMs: 1000, jitterPercent: 0 } })
    const marker = readyMarkerKey(task)
    yield* holdDelete(marker, "20 seconds")
    const entry = { key: marker, shard: task.shard, taskId: task.id, bucket: bucketOf(0), priority: 0 }
    const claiming = yield* Effect.fork(on(tryClaim(entry, env)))
    yield* TestClock.adjust("1 second")
    expect(Option.getOrThrow(yield* queue.get(task.id)).status).toBe("running")
    yield* TestClock.adjust("9 seconds")
    expect((yield* on(lm.recoverExpired())).retried).toBe(1)
    const retried = Option.getOrThrow(yield* queue.get(task.id))
    return { due, injector, mem, marker, claiming, queue, retried, task }
  })

  it.scoped("lease recovery retries the task at a key the claim is not deleting: the next minute", () =>
    Effect.gen(function*() {
      const { claiming, due, marker, mem, retried, task } = yield* claimLateAndRecover
      expect(retried.status).toBe("pending")
      expect(readyMarkerKey(retried)).not.toBe(marker)
      expect(DateTime.toEpochMillis(retried.availableAt)).toBe(60_000)
      yield* TestClock.adjust("20 seconds")
      yield* Fiber.join(claiming)
      expect(Option.isSome(yield* mem.head(readyMarkerKey(retried)))).toBe(true)
      yield* TestClock.adjust("1 minute")
      // the claim also wrote its old key again (a harmless stale hint): both name the task
      expect([...new Set(yield* due)]).toEqual([task.id])
    }))

  // Simulation seed 1517 (at 5005455): the late DELETE removed the marker lease recovery had just
  // written at the same key, and only the claimer's re-write brought it back, 7 s later. Had the
  // claimer died in between, the pending task would have had no marker until a sweep.
  it.scoped("the retried task keeps its marker though the claimer dies between its late DELETE and its re-write", () =>
    Effect.gen(function*() {
      const { claiming, due, injector, marker, mem, queue, retried, task } = yield* claimLateAndRecover
      // W1's DELETE lands at 20 s; the process dies before the re-write of the marker
      yield* injector.addRule({ operation: "put", key: marker, fault: Fault.interrupt, times: 1 })
      yield* TestClock.adjust("20 seconds")
      yield* Fiber.await(claiming)
      expect(Option.isNone(yield* mem.head(marker))).toBe(true)
      expect(Option.getOrThrow(yield* queue.get(task.id)).status).toBe("pending")
      expect(Option.isSome(yield* mem.head(readyMarkerKey(retried)))).toBe(true)
      yield* TestClock.adjust("1 minute")
      expect(yield* due).toEqual([task.id])
    }))
})

describe("two replays of one task, one of them paused", () => {
  it.scoped("the paused replay's late DELETE of output.json never removes the output of the run the other one started", () =>
    Effect.gen(function*() {
      const { holdDelete, mem, queue } = yield* setup
      const task = yield* queue.submit("job", {})
      yield* queue.cancel(task.id)
      yield* TestClock.adjust("2 minutes")
      const output = payloadKey(task.id, "output")
      yield* mem.put(output, new TextEncoder().encode(JSON.stringify({ run: 1 })))
      // R1 reads the cancelled task; any DELETE of the old output it sends is held up 30 s
      yield* holdDelete(output, "30 seconds")
      const first = yield* Effect.fork(Effect.either(queue.replay(task.id)))
      yield* TestClock.adjust("1 second")
      // R2 replays meanwhile; a worker runs the replayed task and offloads its output at the same key
      const second = yield* Effect.either(queue.replay(task.id))
      expect(Option.getOrThrow(yield* queue.get(task.id)).status).toBe("pending")
      yield* mem.put(output, new TextEncoder().encode(JSON.stringify({ run: 2 })))
      yield* TestClock.adjust("30 seconds")
      const r1 = yield* Fiber.join(first)
      // one replay made it pending, the other was refused…
      expect([r1._tag, second._tag].sort()).toEqual(["Left", "Right"])
      // …and the new run's output is still there
      const stored = yield* mem.get(output)
      expect(Option.map(stored, (o) => JSON.parse(new TextDecoder().decode(o.body)))).toEqual(Option.some({ run: 2 }))
    }))
})

describe("a lease extension whose DELETE of its old lease marker lands late", () => {
  it("is harmless: no later claim can write that key (an extension only moves the lease later)", () => {
    // The extension deletes its old marker only when the new one has another key, i.e. a later
    // bucket. The next claim by anyone comes after the extended lease ran out, so its lease
    // marker lies in that later bucket or after: the old key is never written again, however
    // late its DELETE lands (so the extension needs no re-write, unlike the claim above).
    let compared = 0
    for (const timeoutSeconds of [1, 5, 30, 59, 60, 61, 300]) {
      for (let claimedAt = 0; claimedAt < 60_000; claimedAt += 7_000) {
        const seed = Tr.newTask({
          id: "0a1b2c3d-0000-4000-8000-000000000001",
          shard: "0",
          taskType: "job",
          input: null,
          now: DateTime.unsafeMake(0),
          availableAt: DateTime.unsafeMake(0),
          timeoutSeconds,
          maxRetries: 3,
          retryPolicy: new RetryPolicy({ initialIntervalMs: 1000, maxIntervalMs: 60_000, multiplier: 2, jitterPercent: 0 })
        })
        const held = Tr.claim(seed, { now: DateTime.unsafeMake(claimedAt), workerId: "w1", leaseId: "l1" })
        for (const after of [500, timeoutSeconds * 500]) {
          for (const by of [1_000, timeoutSeconds * 1000, 120_000]) {
            const extended = Tr.extendLease(held, { now: DateTime.unsafeMake(claimedAt + after), by: Duration.millis(by) })
            const oldMarker = leaseMarkerOf(held)!
            if (leaseMarkerOf(extended) === oldMarker) continue // nothing is deleted
            const end = DateTime.toEpochMillis(extended.leaseExpiresAt!)
            for (const later of [end, end + 1, end + 30_000]) {
              const next = Tr.claim(Tr.recoverExpiredLease(extended, { now: DateTime.unsafeMake(later), random: 0 }), {
                now: DateTime.unsafeMake(later),
                workerId: "w2",
                leaseId: "l2"
              })
              expect(leaseMarkerOf(next)).not.toBe(oldMarker)
              compared++
            }
          }
        }
      }
    }
    expect(compared).toBeGreaterThan(100)
  })
})
