/**
 * The idle budget with a big bucket (issue 15, fix 13; review finding 13): 150,000 finished tasks
 * (retention off, the default), swept once by an earlier leader. A worker with its embedded
 * monitor then leads the bucket for an idle hour on MemoryStorage + TestClock, its memory cache
 * empty as after any leader change. Budget as for the empty bucket: PUT+LIST ≤ 120 per hour and
 * GET+HEAD ≤ 3,600 (1/s). Before the fix, quiet mode still ran a sweep step every 30 s (~240
 * PUT+LIST per hour) and each step re-read its 1,000 tasks (~33 GET/s).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, TestClock } from "effect"
import { seedFinished } from "../../bench/lib/seed.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Sweeper from "../../src/programs/monitor/Sweeper.js"
import * as Worker from "../../src/programs/Worker.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"
import { immediateYields } from "../support/immediateYields.js"

describe("Idle cost with 150,000 finished tasks", () => {
  it.scoped("a new leader's idle hour: PUT+LIST ≤ 120, GET+HEAD ≤ 3600", () =>
    Effect.gen(function*() {
      yield* immediateYields
      const memory = yield* MemoryStorage.make()
      const { counter, storage } = yield* CountingStorage.make(memory)
      // what an earlier leader leaves: the tasks and its checkpoints (its memory is gone with it)
      yield* seedFinished(memory, 150_000, true)
      const on = (s: StorageService) => Layer.provideMerge(ServerClockLayer.layer, Layer.succeed(Storage, s))
      yield* Worker.make({ id: "new-leader" }, [Worker.handler("job", () => Effect.succeed("ok"))]).pipe(
        Effect.provide(Layer.provideMerge(layerWorkerServices(), on(storage)))
      )
      yield* TestClock.adjust("1 minute")
      yield* counter.reset
      for (let minute = 0; minute < 60; minute++) yield* TestClock.adjust("1 minute")
      const c = yield* counter.take
      yield* Effect.sync(() => console.info(`new leader over 150k finished tasks, 1 h: ${JSON.stringify(c)}`))
      expect(c.PUT + c.LIST).toBeLessThanOrEqual(120)
      expect(c.GET + c.HEAD).toBeLessThanOrEqual(3600)
      // it did sweep meanwhile (steps paced, not skipped)
      const cursor = yield* Effect.flatMap(Sweeper.make(), (s) => s.cursor).pipe(Effect.provide(on(memory)))
      expect(Option.getOrThrow(cursor).totals.tasks).toBeGreaterThan(1000)
    }), 300_000)

  it.scoped("the sweeper checkpoints finished tasks per shard: a new sweeper reads one object per shard, not each task", () =>
    Effect.gen(function*() {
      yield* immediateYields
      const memory = yield* MemoryStorage.make()
      const on = (s: StorageService) => Layer.provideMerge(ServerClockLayer.layer, Layer.succeed(Storage, s))
      yield* seedFinished(memory, 3000, false)
      const first = yield* Effect.flatMap(Sweeper.make(), (s) =>
        Effect.zip(s.fullSweep, Effect.zipRight(TestClock.adjust("1 minute"), s.fullSweep))).pipe(Effect.provide(on(memory)))
      expect(first[0].totals.requests["GET"]).toBeGreaterThanOrEqual(3000)
      // an unchanged bucket: no checkpoint written again
      expect(first[1].totals.requests["PUT"] ?? 0).toBeLessThanOrEqual(4) // cursor saves only
      // a new leader: one checkpoint GET per shard (and the cursor), no task GET
      const fresh = yield* Effect.flatMap(Sweeper.make(), (s) => s.fullSweep).pipe(Effect.provide(on(memory)))
      expect(fresh.totals.tasks).toBe(3000)
      expect(fresh.totals.requests["GET"]).toBeLessThanOrEqual(16 + 2)
      expect(fresh.totals.requests["PUT"] ?? 0).toBeLessThanOrEqual(4)
    }), 120_000)
})
