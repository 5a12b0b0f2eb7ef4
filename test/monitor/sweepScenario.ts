/**
 * The sweeper scenario shared by the MemoryStorage and real-RGW suites (acceptance 3): a bucket
 * seeded with terminal, pending and running tasks, some markers deliberately removed and stale
 * ones planted; one full sweep must repair and clean all of it, and a restarted sweeper must
 * resume the persisted pass.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { expect } from "@effect/vitest"
import { DateTime, Effect, Option } from "effect"
import { leaseKey, readyKey } from "../../src/domain/Keys.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import { bucketOf, shardOf } from "../../src/domain/Shard.js"
import type { Task } from "../../src/domain/Task.js"
import * as Tr from "../../src/domain/Transitions.js"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import { createTask, readTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import { leaseMarkerOf } from "../../src/domain/Markers.js"
import * as Sweeper from "../../src/programs/monitor/Sweeper.js"
import { describeSweep } from "../../src/programs/Monitor.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"

const policy = new RetryPolicy({ initialIntervalMs: 1000, maxIntervalMs: 60_000, multiplier: 2, jitterPercent: 0.25 })

/** A new pending task of type "t" (1 h timeout), with `extra` fields. */
export const fresh = (now: DateTime.Utc, extra: Partial<Parameters<typeof Tr.newTask>[0]> = {}) => {
  const id = randomUUID()
  return Tr.newTask({
    id,
    shard: shardOf(id, 1),
    taskType: "t",
    input: { n: 1 },
    now,
    availableAt: now,
    timeoutSeconds: 3600,
    maxRetries: 3,
    retryPolicy: policy,
    ...extra
  })
}

/** Whether `key` exists (a HEAD). */
export const exists = (key: string) => Effect.flatMap(Storage, (s) => s.head(key)).pipe(Effect.map(Option.isSome))

/** Seeds, sweeps, checks, restarts. Sizes: terminal, pending, running tasks. */
export const sweepScenario = (sizes: { readonly terminal: number; readonly pending: number; readonly running: number }, concurrency: number) =>
  Effect.gen(function*() {
    const clock = yield* ServerClock
    const now = yield* clock.now
    const past = DateTime.subtract(now, { minutes: 10 })
    const terminal: Array<Task> = []
    const pending: Array<Task> = []
    const running: Array<Task> = []
    for (let i = 0; i < sizes.terminal; i++) {
      const t = fresh(now)
      const claimed = Tr.claim(t, { now, workerId: "w", leaseId: randomUUID() })
      terminal.push(i % 2 === 0 ? Tr.complete(claimed, { now, output: 1 }) : Tr.fail(claimed, { now, error: "x" }))
    }
    for (let i = 0; i < sizes.pending; i++) {
      pending.push(fresh(now, i < 5 ? { expiresAt: DateTime.subtract(now, { seconds: 1 }) } : {}))
    }
    for (let i = 0; i < sizes.running; i++) running.push(Tr.claim(fresh(now), { now, workerId: "w", leaseId: randomUUID() }))

    // Seed: every task with the markers its state needs…
    const all = [...terminal, ...pending, ...running]
    yield* Effect.forEach(all, (t) =>
      Effect.gen(function*() {
        if (t.status === "pending") yield* writeMarker(readyMarkerKey(t))
        if (t.status === "running") yield* writeMarker(leaseMarkerOf(t)!)
        yield* createTask(t)
      }), { concurrency, discard: true })
    // …minus some: pending without a ready marker (25), running without a lease marker (10) — the crash windows.
    const storage = yield* Storage
    const unmarkedPending = pending.slice(5, 30)
    const unmarkedRunning = running.slice(0, 10)
    yield* storage.deleteMany([...unmarkedPending.map(readyMarkerKey), ...unmarkedRunning.map((t) => leaseMarkerOf(t)!)])
    // …plus stale ones: ready and lease markers of finished tasks in a closed bucket, lease markers of missing tasks.
    const pastBucket = bucketOf(DateTime.toEpochMillis(past))
    const stale = [
      ...terminal.slice(0, 20).map((t) => readyKey(t.shard, pastBucket, t.id)),
      ...terminal.slice(20, 30).map((t) => leaseKey(t.shard, pastBucket, t.id)),
      ...Array.from({ length: 5 }, () => {
        const id = randomUUID()
        return leaseKey(shardOf(id, 1), pastBucket, id)
      })
    ]
    // A ready marker of a finished task in a bucket that is not over (a replay may have just written it): it must survive.
    const openBucket = bucketOf(DateTime.toEpochMillis(yield* clock.now)) + 2
    const keepMe = readyKey(terminal[40]!.shard, openBucket, terminal[40]!.id)
    yield* Effect.forEach([...stale, keepMe], writeMarker, { concurrency, discard: true })

    // One full sweep. The tasks were seeded a moment ago, but they stand for a bucket's old ones:
    // `youngAge: 0` reads them all (by default a task changed within the last minute that a marker
    // points at waits for a later pass: test/monitor/SweeperYoung.memory.test.ts).
    const options = { concurrency, youngAge: 0 }
    const sweeper = yield* Sweeper.make(options)
    const report = yield* sweeper.fullSweep
    console.log(`full sweep over ${all.length} tasks: ${describeSweep(report)}`)
    expect(report.finishedAt).toBeDefined()
    expect(report.totals.tasks).toBe(all.length)
    expect(report.totals.readyMarkersWritten).toBe(unmarkedPending.length)
    expect(report.totals.leaseMarkersWritten).toBe(unmarkedRunning.length)
    expect(report.totals.staleMarkersDeleted).toBe(stale.length)
    expect(report.totals.expired).toBe(5)
    for (const t of pending.slice(5)) expect(yield* exists(readyMarkerKey(t)), `ready marker of ${t.id}`).toBe(true)
    for (const t of running) expect(yield* exists(leaseMarkerOf(t)!), `lease marker of ${t.id}`).toBe(true)
    for (const key of stale) expect(yield* exists(key), key).toBe(false)
    expect(yield* exists(keepMe)).toBe(true)
    for (const t of pending.slice(0, 5)) {
      expect(Option.getOrThrow(yield* readTask(`tasks/${t.shard}/${t.id}.json`)).task.status).toBe("expired")
      expect(yield* exists(readyMarkerKey(t))).toBe(false)
    }
    // Its cost is bounded: one GET per task (+ the re-reads of the 5 expiries, + one look per shard
    // for its finished-task checkpoint), LISTs by pages, no GET per marker.
    const r = report.totals.requests
    expect(r["GET"]!).toBeLessThanOrEqual(all.length + 5 + 1 + 16)
    expect(r["LIST"]!).toBeLessThanOrEqual(Math.ceil(all.length / 1000) + 16 * 3 + 3)

    // A second pass in the same process skips the terminal tasks it has seen (their ETags are unchanged).
    const second = yield* sweeper.fullSweep
    expect(second.passId).not.toBe(report.passId)
    expect(second.totals.requests["GET"]!).toBeLessThanOrEqual(sizes.pending + sizes.running + 1)

    // Restart: one process sweeps part of a pass and dies; a new one resumes from the persisted cursor.
    const first = yield* Sweeper.make(options)
    const partial = yield* first.step(Math.floor(all.length / 3))
    expect(partial.finishedAt).toBeUndefined()
    const cursor = Option.getOrThrow(yield* first.cursor)
    expect(cursor.passId).toBe(partial.passId)
    expect(cursor.doneShard).toBeDefined()
    const { counter, storage: counted } = yield* CountingStorage.make(storage)
    const resumed = yield* Sweeper.make(options).pipe(
      Effect.flatMap((s) => s.fullSweep),
      Effect.provideService(Storage, counted)
    )
    console.log(`resumed sweep: ${describeSweep(resumed)}`)
    expect(resumed.resumed).toBe(true)
    expect(resumed.passId).toBe(partial.passId)
    expect(resumed.totals.tasks).toBeGreaterThanOrEqual(all.length)
    expect(resumed.totals.tasks).toBeLessThan(all.length + Math.ceil(all.length / 16) * 2) // at most one shard again
    const resumedGets = (yield* counter.snapshot).GET
    expect(resumedGets).toBeLessThan(all.length - Math.floor(all.length / 4)) // the finished shards were not read again
    return report
  })
