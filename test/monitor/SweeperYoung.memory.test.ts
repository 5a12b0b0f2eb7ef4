/**
 * The sweeper does not read a task that changed moments ago and that the index already points at
 * (a ready or lease marker of its id in its shard): a worker or lease recovery reaches it through
 * that marker, and a backlog submitted just before a pass would otherwise cost one GET per task
 * on top of the claim's (bench/cpu.ts: GET 2.0 per task, one of them the sweeper's). It is read by
 * the first pass that finds it older than `youngAge`. A young task WITHOUT its marker (a crash
 * window) is read and repaired in the same pass, as before. MemoryStorage + TestClock.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Option, TestClock } from "effect"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import * as Tr from "../../src/domain/Transitions.js"
import { leaseMarkerOf } from "../../src/domain/Markers.js"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Sweeper from "../../src/programs/monitor/Sweeper.js"
import { createTask, readTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import { RequestCounter } from "../../src/services/RequestCounter.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { exists, fresh } from "./sweepScenario.js"

const statusOf = (t: { readonly shard: string; readonly id: string }) =>
  Effect.map(readTask(`tasks/${t.shard}/${t.id}.json`), (o) => Option.getOrThrow(o).task.status)

const layer = Layer.provideMerge(ServerClockLayer.layer, CountingStorage.layer.pipe(Layer.provideMerge(MemoryStorage.layer())))

describe("Sweeper: young indexed tasks", () => {
  it.effect("a young task with its marker is not read; one without is read and repaired; both are read once older than youngAge", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("1000 days")
      const clock = yield* ServerClock
      const counter = yield* RequestCounter
      const now = yield* clock.now
      // 40 pending tasks with their ready marker, 2 of them past expires_at; 10 running with their lease marker
      const indexed = Array.from({ length: 40 }, (_, i) => fresh(now, i < 2 ? { expiresAt: DateTime.add(now, { seconds: 1 }) } : {}))
      const running = Array.from({ length: 10 }, () => Tr.claim(fresh(now), { now, workerId: "w", leaseId: randomUUID() }))
      // 5 pending tasks whose ready marker is missing (the crash window the sweeper exists for)
      const unmarked = Array.from({ length: 5 }, () => fresh(now))
      for (const t of indexed) yield* writeMarker(readyMarkerKey(t))
      for (const t of running) yield* writeMarker(leaseMarkerOf(t)!)
      for (const t of [...indexed, ...running, ...unmarked]) yield* createTask(t)
      yield* TestClock.adjust("2 seconds") // the 2 expiring tasks are past expires_at now

      yield* counter.reset
      const sweeper = yield* Sweeper.make({ concurrency: 4 })
      const first = yield* sweeper.fullSweep
      expect(first.totals.tasks).toBe(55)
      expect(first.totals.readyMarkersWritten).toBe(5)
      for (const t of unmarked) expect(yield* exists(readyMarkerKey(t))).toBe(true)
      // GETs: the 5 unmarked tasks, their shards' finished-task checkpoints (≤ 5) and the cursor;
      // not the 50 young indexed ones (74 before: every task, the expiries' re-reads, 16 checkpoints)
      const firstGets = (yield* counter.take).GET
      expect(firstGets).toBeLessThanOrEqual(5 + 5 + 1)
      expect(first.totals.leftYoung).toBe(50)
      // nothing was judged on a task it did not read: no marker of theirs deleted or added
      expect(first.totals.staleMarkersDeleted).toBe(0)
      for (const t of indexed) expect(yield* exists(readyMarkerKey(t))).toBe(true)
      expect(first.totals.expired).toBe(0)

      // once older than youngAge (default 1 minute), the next pass reads them: the expired ones end
      yield* TestClock.adjust("61 seconds")
      const second = yield* sweeper.fullSweep
      expect(second.totals.leftYoung).toBe(0)
      expect(second.totals.expired).toBe(2)
      for (const t of indexed.slice(0, 2)) expect(yield* statusOf(t)).toBe("expired")
      for (const t of indexed.slice(2)) expect(yield* statusOf(t)).toBe("pending")
      expect((yield* counter.take).GET).toBeGreaterThanOrEqual(55)
    }).pipe(Effect.provide(layer)))

  it.effect("youngAge 0 reads every task in the first pass (the behaviour before)", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("1000 days")
      const clock = yield* ServerClock
      const now = yield* clock.now
      const indexed = Array.from({ length: 10 }, (_, i) => fresh(now, i < 3 ? { expiresAt: DateTime.add(now, { seconds: 1 }) } : {}))
      for (const t of indexed) yield* writeMarker(readyMarkerKey(t))
      for (const t of indexed) yield* createTask(t)
      yield* TestClock.adjust("2 seconds")
      const report = yield* Effect.flatMap(Sweeper.make({ youngAge: 0 }), (s) => s.fullSweep)
      expect(report.totals.leftYoung).toBe(0)
      expect(report.totals.expired).toBe(3)
    }).pipe(Effect.provide(layer)))
})
