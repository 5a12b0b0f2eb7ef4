/**
 * A busy worker's reads of the pause switches (`control/pause.json`): at most about one per
 * second, not one per discovery pass (a busy worker runs a pass for every freed slot), while a
 * pause still stops its claiming within a second. MemoryStorage + TestClock; GETs counted.
 *
 * @module
 */
import { describe, expect } from "@effect/vitest"
import { Clock, type Duration, Effect, Layer, Ref, TestClock } from "effect"
import { pauseKey } from "../../src/domain/Pause.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, hasStatus, queueLayer } from "./support.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

/** MemoryStorage whose GETs of the pause switches are counted. */
const countingPauseReads = (reads: { n: number }) =>
  Layer.effect(Storage, Effect.map(MemoryStorage.make(), (mem) => ({
    ...mem,
    get: (key: string) =>
      Effect.zipRight(Effect.sync(() => {
        if (key === pauseKey) reads.n++
      }), mem.get(key))
  })))

/** MemoryStorage whose GETs of task objects are counted. */
const countingTaskReads = (reads: { n: number }) =>
  Layer.effect(Storage, Effect.map(MemoryStorage.make(), (mem) => ({
    ...mem,
    get: (key: string) =>
      Effect.zipRight(Effect.sync(() => {
        if (key.startsWith("tasks/")) reads.n++
      }), mem.get(key))
  })))

/** Moves TestClock forward `times` steps of `step`, letting the worker run between them. */
const advance = (step: Duration.DurationInput, times: number) => Effect.repeatN(TestClock.adjust(step), times - 1)

/** MemoryStorage whose GETs of the pause switches are counted and take 20 ms (TestClock). */
const slowPauseReads = (reads: { n: number }) =>
  Layer.effect(Storage, Effect.map(MemoryStorage.make(), (mem) => ({
    ...mem,
    get: (key: string) =>
      key === pauseKey ? Effect.zipRight(Effect.sync(() => void reads.n++), Effect.delay(mem.get(key), "20 millis")) : mem.get(key)
  })))

describe("pause switches on a busy worker", () => {
  it.scoped("the claims of one batch that find them stale share one read (each used to GET them)", () => {
    const reads = { n: 0 }
    return Effect.gen(function*() {
      const queue = yield* Queue
      const tasks = yield* Effect.forEach(Array.from({ length: 8 }, (_, i) => i), (i) => queue.submit("job", { i }))
      yield* Worker.make({ wakeUp: false, concurrency: 8 }, [Worker.handler("job", () => Effect.succeed("ok"))])
      yield* drive(Effect.map(Effect.forEach(tasks, (t) => hasStatus(t.id, "completed")), (all) => all.every(Boolean)), "10 millis")
      // eight claims in one batch, well within a second: one read
      expect(reads.n).toBe(1)
    }).pipe(Effect.provide(queueLayer(slowPauseReads(reads))))
  })

  it.scoped("are read at most about once a second, not once per discovery pass", () => {
    const reads = { n: 0 }
    return Effect.gen(function*() {
      const queue = yield* Queue
      const passes = yield* Ref.make(0)
      const tasks = yield* Effect.forEach(Array.from({ length: 60 }, (_, i) => i), (i) => queue.submit("job", { i }))
      const worker = yield* Worker.make({ wakeUp: false, concurrency: 4 }, [
        Worker.handler("job", () => Effect.as(Effect.sleep("50 millis"), "ok"))
      ])
      const start = yield* Clock.currentTimeMillis
      yield* drive(Effect.map(Effect.forEach(tasks, (t) => hasStatus(t.id, "completed")), (all) => all.every(Boolean)), "50 millis")
      const seconds = ((yield* Clock.currentTimeMillis) - start) / 1000
      yield* Ref.set(passes, (yield* worker.stats).passes)
      // many more passes than seconds: one read per pass would exceed the bound below
      expect(yield* Ref.get(passes)).toBeGreaterThan(2 * (seconds + 2))
      expect(reads.n).toBeGreaterThan(0)
      expect(reads.n).toBeLessThanOrEqual(Math.ceil(seconds) + 2)
    }).pipe(Effect.provide(queueLayer(countingPauseReads(reads))))
  })

  it.scoped("a pause still stops a busy worker's claiming within a second", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => i), (i) => queue.submit("job", { i }))
      const worker = yield* Worker.make({ wakeUp: false, concurrency: 2 }, [
        Worker.handler("job", () => Effect.as(Effect.sleep("100 millis"), "ok"))
      ])
      yield* drive(Effect.map(worker.stats, (s) => s.completed >= 10), "50 millis")
      yield* queue.pause("job")
      yield* advance("50 millis", 22) // 1.1 s
      const claimedAfterASecond = (yield* worker.stats).claimed
      yield* advance("100 millis", 50) // 5 s more
      expect((yield* worker.stats).claimed).toBe(claimedAfterASecond)
      expect(claimedAfterASecond).toBeLessThan(200)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("a paused backlog is read once, not on every discovery pass, and runs when resumed (sim seed 1140)", () => {
    const reads = { n: 0 }
    return Effect.gen(function*() {
      const queue = yield* Queue
      yield* queue.pause("job")
      const tasks = yield* Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) => queue.submit("job", { i }))
      const other = yield* queue.submit("other", {})
      const worker = yield* Worker.make({ wakeUp: false, concurrency: 4 }, [
        Worker.handler("job", () => Effect.succeed("ok")),
        Worker.handler("other", () => Effect.succeed("ok"))
      ])
      // a pause does not hold another type
      yield* drive(hasStatus(other.id, "completed"), "100 millis")
      yield* advance("1 second", 120) // two minutes paused
      expect((yield* worker.stats).passes).toBeGreaterThan(20)
      expect((yield* worker.stats).claimed).toBe(1)
      // each paused task is read about once while the pause lasts, not once per pass (a backlog of
      // N paused tasks cost N GETs per pass per worker: sim seed 1140 read one 150 times)
      expect(reads.n).toBeLessThanOrEqual(2 * tasks.length + 5)
      yield* queue.resume("job")
      yield* drive(Effect.map(Effect.forEach(tasks, (t) => hasStatus(t.id, "completed")), (all) => all.every(Boolean)), "100 millis")
    }).pipe(Effect.provide(queueLayer(countingTaskReads(reads))))
  })
})
