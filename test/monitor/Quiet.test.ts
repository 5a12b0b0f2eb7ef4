/**
 * The monitor's quiet-bucket mode (monitor/Quiet.ts) on MemoryStorage + TestClock: an idle bucket
 * stretches the leader's periods and its leader-lease ttl; activity ends the quiet at once; a
 * crash nobody announced is still recovered, within the quiet period.
 */
import { randomUUID } from "node:crypto"
import { describe, expect } from "@effect/vitest"
import { DateTime, Effect, Option, PubSub, Stream, SubscriptionRef, TestClock } from "effect"
import { taskKey } from "../../src/domain/Keys.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import { shardOf } from "../../src/domain/Shard.js"
import * as Tr from "../../src/domain/Transitions.js"
import { createTask, readTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Monitor from "../../src/programs/Monitor.js"
import { leaseMarkerOf } from "../../src/domain/Markers.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

/** MemoryStorage that counts LISTs of `leases/`. */
const setup = Effect.gen(function*() {
  const mem = yield* MemoryStorage.make()
  let walks = 0
  const storage: StorageService = {
    ...mem,
    list: (prefix, options) =>
      Effect.tap(mem.list(prefix, options), () =>
        Effect.sync(() => {
          if (prefix === "leases/") walks++
        }))
  }
  const clock = ServerClockLayer.fromLocalClock(yield* Effect.clock)
  const provide = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    self.pipe(Effect.provideService(Storage, storage), Effect.provideService(ServerClock, clock))
  return { mem, storage, clock, provide, walks: () => walks }
})

/** A task a worker elsewhere claimed at `now` with a lease of `timeoutSeconds`. */
const claimedElsewhere = (now: DateTime.Utc, timeoutSeconds: number) => {
  const id = randomUUID()
  return Tr.claim(
    Tr.newTask({
      id,
      shard: shardOf(id, 1),
      taskType: "job",
      input: null,
      now,
      availableAt: now,
      timeoutSeconds,
      maxRetries: 3,
      retryPolicy: new RetryPolicy({ initialIntervalMs: 1000, maxIntervalMs: 60_000, multiplier: 2, jitterPercent: 0 })
    }),
    { now, workerId: "elsewhere", leaseId: randomUUID() }
  )
}

const keysUnder = (mem: StorageService, prefix: string) =>
  Effect.map(mem.list(prefix), (page) => page.objects.map((o) => o.key))

const minutes = (n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < n * 6; i++) yield* TestClock.adjust("10 seconds")
  })

const storedTtlMillis = (handle: Monitor.MonitorHandle) =>
  Effect.map(handle.leader, (found) => {
    const l = Option.getOrThrow(found)
    return DateTime.toEpochMillis(l.expiresAt) - DateTime.toEpochMillis(l.renewedAt)
  })

describe("Monitor quiet-bucket mode (MemoryStorage + TestClock)", () => {
  it.scoped("an idle bucket turns quiet: walks every quiet period, a long leader ttl; activity ends it at once", () =>
    Effect.gen(function*() {
      const env = yield* setup
      const activity = yield* PubSub.unbounded<void>()
      const handle = yield* env.provide(Monitor.make({ checkInterval: "30 seconds" }, { activity: Stream.fromPubSub(activity) }))
      yield* TestClock.adjust("1 second")
      expect(yield* SubscriptionRef.get(handle.isLeader)).toBe(true)
      yield* TestClock.adjust("30 seconds")
      expect(yield* SubscriptionRef.get(handle.quiet)).toBe(true) // two walks found nothing running
      const before = env.walks()
      yield* minutes(60)
      const quietWalks = env.walks() - before
      expect(quietWalks).toBeGreaterThanOrEqual(5) // every 10 min…
      expect(quietWalks).toBeLessThanOrEqual(7) // …not every 30 s (120)
      expect(yield* storedTtlMillis(handle)).toBe(15 * 60_000)

      // Activity: the quiet ends, the normal ttl is written at once, walks are back to every 30 s.
      yield* PubSub.publish(activity, undefined)
      yield* TestClock.adjust("1 second")
      expect(yield* SubscriptionRef.get(handle.quiet)).toBe(false)
      expect(yield* storedTtlMillis(handle)).toBe(30_000)
      const atActivity = env.walks()
      yield* TestClock.adjust("30 seconds")
      expect(env.walks()).toBeGreaterThan(atActivity)
    }))

  it.scoped("a monitor running alone notices a submit through the wake-up object within one check interval", () =>
    Effect.gen(function*() {
      const env = yield* setup
      const handle = yield* env.provide(Monitor.make({ checkInterval: "30 seconds" }))
      yield* minutes(2)
      expect(yield* SubscriptionRef.get(handle.quiet)).toBe(true)
      const queue = yield* env.provide(QueueLayer.make({}))
      yield* queue.submit("job", {})
      yield* TestClock.adjust("31 seconds")
      expect(yield* SubscriptionRef.get(handle.quiet)).toBe(false)
    }))

  it.scoped("a task claimed during the quiet without any visible activity, whose worker died, is recovered within the quiet period + its lease", () =>
    Effect.gen(function*() {
      const env = yield* setup
      const handle = yield* env.provide(Monitor.make({ checkInterval: "30 seconds" }, { activity: Stream.never }))
      yield* minutes(2)
      expect(yield* SubscriptionRef.get(handle.quiet)).toBe(true)
      // A worker elsewhere claims a task (a 60 s lease) and dies: no wake-up touch, no claim here.
      const now = yield* env.clock.now
      const task = claimedElsewhere(now, 60)
      yield* env.provide(Effect.zipRight(writeMarker(leaseMarkerOf(task)!), createTask(task)))
      const status = env.provide(Effect.map(readTask(taskKey(task.shard, task.id)), (t) => Option.getOrThrow(t).task.status))
      let recoveredAfter: number | undefined
      for (let s = 1; s <= 13 * 6 && recoveredAfter === undefined; s++) {
        yield* TestClock.adjust("10 seconds")
        if ((yield* status) === "pending") recoveredAfter = s * 10
      }
      expect(recoveredAfter).toBeDefined()
      expect(recoveredAfter!).toBeLessThanOrEqual(10 * 60 + 60 + 10) // quiet check + lease + one step
      expect(yield* SubscriptionRef.get(handle.quiet)).toBe(false) // the walk found a lease: no longer quiet
    }))

  it.scoped("the lease marker a finished task leaves behind (its bucket not yet over) does not keep the bucket out of the quiet", () =>
    Effect.gen(function*() {
      const env = yield* setup
      // A worker claimed a task with a 5-minute lease and completed it a second later; its lease
      // marker stays until the bucket is over (a claim right after may write the same key).
      const now = yield* env.clock.now
      const claimed = claimedElsewhere(now, 300)
      const done = Tr.complete(claimed, { now, output: null })
      yield* env.provide(Effect.zipRight(writeMarker(leaseMarkerOf(claimed)!), createTask(done)))
      const handle = yield* env.provide(Monitor.make({ checkInterval: "30 seconds" }, { activity: Stream.never }))
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("30 seconds")
      // two walks: the marker's task is finished, so nothing runs anywhere
      expect(yield* SubscriptionRef.get(handle.quiet)).toBe(true)
      yield* TestClock.adjust("10 seconds") // the next renewal writes the quiet ttl
      expect(yield* storedTtlMillis(handle)).toBe(15 * 60_000)
      // still quiet, the leftover marker goes soon after its bucket is over (an operator listing
      // leases/ must not see it for a whole quiet period), not at the next 10-minute walk
      const marker = leaseMarkerOf(claimed)!
      yield* minutes(7)
      expect(yield* keysUnder(env.mem, "leases/")).not.toContain(marker)
      expect(yield* SubscriptionRef.get(handle.quiet)).toBe(true)
    }))

  it.scoped("a running task's lease marker whose bucket is not over keeps the bucket active", () =>
    Effect.gen(function*() {
      const env = yield* setup
      const now = yield* env.clock.now
      const running = claimedElsewhere(now, 300)
      yield* env.provide(Effect.zipRight(writeMarker(leaseMarkerOf(running)!), createTask(running)))
      const handle = yield* env.provide(Monitor.make({ checkInterval: "30 seconds" }, { activity: Stream.never }))
      yield* minutes(3)
      expect(yield* SubscriptionRef.get(handle.quiet)).toBe(false)
    }))

  it.scoped("quiet: false keeps the normal cadence on an idle bucket", () =>
    Effect.gen(function*() {
      const env = yield* setup
      const handle = yield* env.provide(Monitor.make({ checkInterval: "30 seconds", quiet: false }))
      yield* TestClock.adjust("1 second")
      const before = env.walks()
      yield* minutes(10)
      expect(yield* SubscriptionRef.get(handle.quiet)).toBe(false)
      expect(env.walks() - before).toBeGreaterThanOrEqual(19)
      expect(yield* storedTtlMillis(handle)).toBe(30_000)
    }))
})
