/**
 * Acceptance 4 on the real server (Ceph RGW): three scheduler instances — each with its own
 * S3Storage, ServerClock (learnt from Date headers), Queue, Scheduler and loop — run an
 * every-2-seconds schedule (six-field cron, seconds field "star slash 2") for 30 s of real time.
 * Each firing instant must be submitted exactly once (15 ± 1 tasks, no duplicate instants, no gaps):
 * - with leader election (only one instance fires; the others stand by), and
 * - with leader election bypassed, so all three fire every instant concurrently: the exactly-once
 *   property then rests on the per-firing idempotency key and the CAS on `last_run` alone.
 * Real time is used; the assertions are about counts, not durations. The two tests run at the same
 * time (each under its own key prefix): each is 30 s of waiting.
 */
import { expect, it } from "@effect/vitest"
import { DateTime, Effect, Fiber, Layer, Option, Ref } from "effect"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as S3Storage from "../../src/layers/S3Storage.js"
import * as SchedulerLayer from "../../src/layers/Scheduler.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as LeaderLease from "../../src/programs/LeaderLease.js"
import * as SchedulerLoop from "../../src/programs/SchedulerLoop.js"
import { Scheduler } from "../../src/services/Scheduler.js"
import { Storage } from "../../src/services/Storage.js"
import { describeS3, s3Config, s3Layer } from "../support/s3.js"
import { firingOf, tasksOf } from "./support.js"

/** A whole scheduler stack on its own S3 client (same bucket and key prefix as the others). */
const stackOn = <A, E, R>(storage: Layer.Layer<A | Storage, E, R>) =>
  SchedulerLayer.layer().pipe(
    Layer.provideMerge(QueueLayer.layer()),
    Layer.provideMerge(ServerClockLayer.layer),
    Layer.provideMerge(storage)
  )

const runFor30s = (leader: SchedulerLoop.SchedulerLoopOptions["leader"]) =>
  Effect.gen(function*() {
    const config = s3Config()
    // The admin stack creates the schedule and reads the result; its layer deletes the prefix at the end.
    const admin = stackOn(s3Layer({ keyPrefix: config.keyPrefix }))
    return yield* Effect.gen(function*() {
      const scheduler = yield* Scheduler
      yield* scheduler.create({ id: "every-2s", taskType: "tick", cron: "*/2 * * * * *" })
      const createdAt = Option.getOrThrow(yield* scheduler.get("every-2s")).createdAt

      // Per instance: how many firings its passes reported (a report counts a firing even when
      // another instance's submit had made the task: that is the concurrent case we want to see).
      const reported = yield* Effect.forEach([0, 1, 2], () => Ref.make(0))
      const fibers = yield* Effect.forEach([0, 1, 2], (i) =>
        SchedulerLoop.run({
          leader,
          onPass: (report) => Ref.update(reported[i]!, (n) => n + report.fired.length)
        }).pipe(Effect.provide(stackOn(S3Storage.layer(config))), Effect.fork))
      yield* Effect.sleep("30 seconds")
      yield* Effect.forEach(fibers, Fiber.interrupt)

      const tasks = yield* tasksOf("tick")
      const instants = tasks.map(firingOf).filter((x): x is number => x !== undefined).sort((a, b) => a - b)
      const perInstance = yield* Effect.forEach(reported, Ref.get)
      const lease = yield* Effect.flatMap(Storage, (s) => s.get(LeaderLease.leaderLeaseKey("scheduler")))
      return { createdAt, tasks: tasks.length, instants, perInstance, leaseExists: Option.isSome(lease) }
    }).pipe(Effect.provide(admin))
  })

const checkExactlyOnce = (r: Effect.Effect.Success<ReturnType<typeof runFor30s>>) => {
  // every task is a firing, and no firing instant has two tasks
  expect(r.instants.length).toBe(r.tasks)
  expect(new Set(r.instants).size).toBe(r.instants.length)
  // 30 s of a 2-second cron: 15 instants (± 1 for where the window starts and ends)
  expect(r.tasks).toBeGreaterThanOrEqual(14)
  expect(r.tasks).toBeLessThanOrEqual(16)
  // contiguous: the first instant after creation, then every 2 s without a gap
  expect(r.instants[0]).toBeGreaterThan(DateTime.toEpochMillis(r.createdAt))
  expect(r.instants[0]! - DateTime.toEpochMillis(r.createdAt)).toBeLessThanOrEqual(2000)
  r.instants.forEach((t, i) => expect(t - r.instants[0]!).toBe(i * 2000))
}

describeS3("Scheduler loop on the real S3 server", () => {
  it.live("three leader-elected instances: one fires, each 2-second instant is submitted exactly once", () =>
    Effect.gen(function*() {
      const r = yield* runFor30s({ ttl: "10 seconds" })
      checkExactlyOnce(r)
      expect(r.leaseExists).toBe(true)
      // only the leader fired
      expect(r.perInstance.filter((n) => n > 0).length).toBe(1)
      expect(r.perInstance.reduce((a, b) => a + b, 0)).toBe(r.tasks)
    }), { timeout: 120_000, concurrent: true })

  it.live("three instances with leader election bypassed: all fire concurrently, still exactly once per instant", () =>
    Effect.gen(function*() {
      const r = yield* runFor30s(false)
      checkExactlyOnce(r)
      expect(r.leaseExists).toBe(false)
      // the instances really did race: together they reported more firings than there are tasks
      expect(r.perInstance.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2)
      expect(r.perInstance.reduce((a, b) => a + b, 0)).toBeGreaterThan(r.tasks)
    }), { timeout: 120_000, concurrent: true })
})
