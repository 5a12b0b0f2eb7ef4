/**
 * Worker acceptance on the real RGW server, in-process: item 4 (a handler that never returns is
 * interrupted at its timeout and retried; with `extendLease` it runs past its original timeout
 * without being duplicated) and item 6 (500 ready markers of an unhandled type at the head of a
 * shard do not starve the handled tasks behind them). Real time with short timeouts; outcomes are
 * asserted, not durations.
 */
import { expect, it } from "@effect/vitest"
import { Clock, DateTime, Effect, Layer, Option, Ref } from "effect"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { describeS3, s3Layer } from "../support/s3.js"
import { idInShard, seedTask } from "./support.js"
import { layerWorkerServices } from "../../src/Buquet.js"

const layer = () => Layer.provideMerge(Layer.merge(QueueLayer.layer(), layerWorkerServices()), Layer.provideMerge(ServerClockLayer.layer, s3Layer()))
const get = (id: string) => Effect.flatMap(Queue, (q) => q.get(id)).pipe(Effect.map(Option.getOrThrow))
const fast = new RetryPolicy({ initialIntervalMs: 200, maxIntervalMs: 1000, multiplier: 2, jitterPercent: 0 })

/** Polls (real time) until `done` holds or `withinMillis` passed; returns whether it held. */
const eventually = <E, R>(done: Effect.Effect<boolean, E, R>, withinMillis: number) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + withinMillis
    while ((yield* Clock.currentTimeMillis) < deadline) {
      if (yield* done) return true
      yield* Effect.sleep("250 millis")
    }
    return yield* done
  })

describeS3("Worker acceptance on RGW", () => {
  it.live("4a: a handler that never returns is interrupted at its timeout (finalizer runs) and the task is retried", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const invocations = yield* Ref.make<Array<number>>([])
      const finalized = yield* Ref.make(0)
      const task = yield* queue.submit("hang", {}, { timeoutSeconds: 3, maxRetries: 1, retryPolicy: fast })
      yield* Worker.make({ monitor: false }, [
        Worker.handler("hang", (_i, ctx) =>
          Effect.zipRight(Ref.update(invocations, (a) => [...a, ctx.attempt]), Effect.never).pipe(
            Effect.ensuring(Ref.update(finalized, (n) => n + 1))
          ))
      ])
      expect(yield* eventually(Effect.map(get(task.id), (t) => t.status === "failed"), 30_000)).toBe(true)
      const t = yield* get(task.id)
      // two attempts, each interrupted at its timeout: retried once, then failed for good
      expect(yield* Ref.get(invocations)).toEqual([1, 2])
      expect(yield* Ref.get(finalized)).toBe(2)
      expect(t.attempt).toBe(2)
      expect(t.retryCount).toBe(1)
      expect(t.lastError).toContain("timed out")
      // each interruption happened before that attempt's lease ran out (invariant 5)
      const runs = t.events!.filter((e) => e.from === "running")
      const claims = t.events!.filter((e) => e.to === "running")
      expect(runs.length).toBe(2)
      for (let i = 0; i < 2; i++) {
        expect(DateTime.toEpochMillis(runs[i]!.at) - DateTime.toEpochMillis(claims[i]!.at)).toBeLessThan(3000)
      }
    }).pipe(Effect.scoped, Effect.provide(layer())), 60_000)

  it.live("4b: with extendLease a handler runs past its original timeout once, without a duplicate", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const starts = yield* Ref.make(0)
      const task = yield* queue.submit("long", {}, { timeoutSeconds: 3, maxRetries: 2, retryPolicy: fast })
      // two workers, so a duplicate would have somewhere to run
      const handler = Worker.handler("long", (_i, ctx) =>
        Effect.gen(function*() {
          yield* Ref.update(starts, (n) => n + 1)
          for (let i = 0; i < 6; i++) {
            yield* ctx.extendLease("3 seconds")
            yield* Effect.sleep("1500 millis")
          }
          return "ran about 9 s on a 3 s timeout"
        }))
      yield* Worker.make({ monitor: false }, [handler])
      yield* Worker.make({ monitor: { checkInterval: "2 seconds" } }, [handler])
      expect(yield* eventually(Effect.map(get(task.id), (t) => t.status === "completed"), 40_000)).toBe(true)
      const t = yield* get(task.id)
      expect(yield* Ref.get(starts)).toBe(1)
      expect(t.attempt).toBe(1)
      expect(t.retryCount).toBe(0)
      expect(t.output).toBe("ran about 9 s on a 3 s timeout")
    }).pipe(Effect.scoped, Effect.provide(layer())), 60_000)

  it.live("6: a shard whose first 500 ready markers are of an unhandled type still gets its handled tasks done", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const now = yield* queue.now
      const earlier = DateTime.subtract(now, { minutes: 5 })
      // 500 foreign tasks first in key order of shard "a" (bounded concurrency: 1,000 PUTs)
      const foreign = yield* Effect.forEach(Array.from({ length: 500 }, (_, i) => i), (i) => seedTask(idInShard("a", i), "not_mine", earlier), {
        concurrency: 16
      })
      const mine = yield* Effect.forEach([0, 1, 2], (i) => seedTask(idInShard("a", 1000 + i), "mine", now))
      const done = yield* Ref.make(0)
      yield* Worker.make({ monitor: false, shards: ["a"], pageSize: 100, concurrency: 2 }, [
        Worker.handler("mine", () => Effect.as(Ref.update(done, (n) => n + 1), "ok"))
      ])
      const allDone = Effect.map(Effect.forEach(mine, (t) => Effect.map(get(t.id), (x) => x.status === "completed")), (a) => a.every(Boolean))
      expect(yield* eventually(allDone, 40_000)).toBe(true)
      expect(yield* Ref.get(done)).toBe(3)
      // the foreign tasks are untouched, their markers still there
      const page = yield* storage.list("ready/a/", { maxKeys: 1000 })
      expect(page.objects.length).toBe(500)
      const sample = yield* get(foreign[0]!.id)
      expect(sample.status).toBe("pending")
      expect(sample.attempt).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(layer())), 120_000)
})
