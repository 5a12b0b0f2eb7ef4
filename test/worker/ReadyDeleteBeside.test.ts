/**
 * A claim's ready-marker DELETE runs beside the handler, not between the claim's CAS and the
 * handler's start (a round trip off every pickup), and a settle waits for it before its own
 * writes: a retry can write its new ready marker under the SAME key, which the old DELETE must not
 * remove. TestClock + MemoryStorage whose ready-marker DELETEs wait on a gate.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, type Duration, Effect, Layer, Option, Ref } from "effect"
import { RetryableError } from "../../src/domain/HandlerErrors.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, getTask, hasStatus, queueLayer } from "./support.js"

const isReady = (key: string) => key.startsWith("ready/")

/** MemoryStorage whose DELETEs of ready markers wait until `gate` is open; ready-marker writes and deletes are logged when done. */
const gatedReadyDeletes = (gate: Deferred.Deferred<void>, log: Ref.Ref<ReadonlyArray<string>>) =>
  Layer.effect(
    Storage,
    Effect.map(MemoryStorage.make(), (s) => {
      const note = (...entries: ReadonlyArray<string>) => Ref.update(log, (l) => [...l, ...entries])
      return {
        ...s,
        put: (key, body, condition) =>
          isReady(key) ? Effect.tap(s.put(key, body, condition), () => note(`put ${key}`)) : s.put(key, body, condition),
        delete: (key) =>
          isReady(key) ? Effect.zipRight(Deferred.await(gate), Effect.tap(s.delete(key), () => note(`delete ${key}`))) : s.delete(key),
        deleteMany: (keys) =>
          keys.some(isReady)
            ? Effect.zipRight(Deferred.await(gate), Effect.tap(s.deleteMany(keys), () => note(...keys.filter(isReady).map((k) => `delete ${k}`))))
            : s.deleteMany(keys)
      }
    })
  )

const quick = new RetryPolicy({ initialIntervalMs: 100, maxIntervalMs: 500, multiplier: 2, jitterPercent: 0 })

describe("the claim's ready-marker DELETE runs beside the handler", () => {
  it.scoped("the handler starts before the DELETE is answered, and the task is settled only after it", () => {
    const log = Ref.unsafeMake<ReadonlyArray<string>>([])
    const gate = Deferred.unsafeMake<void>(undefined as never)
    return Effect.gen(function*() {
      // a shutdown never waits on the gate (the suite would hang instead of failing)
      yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
      const queue = yield* Queue
      const task = yield* queue.submit("job", {})
      const started = yield* Deferred.make<void>()
      yield* Worker.make({}, [Worker.handler("job", () => Effect.as(Deferred.succeed(started, undefined), "ok"))])
      yield* drive(Deferred.isDone(started), "100 millis", 50)
      // the DELETE is still held: the handler did not wait for it, and the settle does
      expect((yield* Ref.get(log)).filter((e) => e.startsWith("delete"))).toEqual([])
      yield* drive(Effect.succeed(false), "100 millis", 20).pipe(Effect.ignore, Effect.catchAllDefect(() => Effect.void))
      expect((yield* getTask(task.id)).status).toBe("running")
      yield* Deferred.succeed(gate, undefined)
      yield* drive(hasStatus(task.id, "completed"), "100 millis", 50)
      expect(yield* Ref.get(log)).toEqual([`put ${readyMarkerKey(task)}`, `delete ${readyMarkerKey(task)}`])
    }).pipe(Effect.provide(queueLayer(gatedReadyDeletes(gate, log))))
  })

  it.scoped("a retry whose new ready marker has the old key keeps it: the old DELETE finished before it was written", () => {
    const log = Ref.unsafeMake<ReadonlyArray<string>>([])
    const gate = Deferred.unsafeMake<void>(undefined as never)
    return Effect.gen(function*() {
      yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
      const queue = yield* Queue
      const task = yield* queue.submit("flaky", {}, { retryPolicy: quick, maxRetries: 3 })
      const attempts = yield* Ref.make(0)
      yield* Worker.make({}, [
        Worker.handler("flaky", (_i, ctx) =>
          Effect.zipRight(
            Ref.update(attempts, (n) => n + 1),
            ctx.attempt === 1 ? Effect.fail(new RetryableError({ message: "busy" })) : Effect.succeed("ok")
          ))
      ])
      yield* drive(Effect.map(Ref.get(attempts), (n) => n === 1), "100 millis", 50)
      yield* drive(Effect.succeed(false), "100 millis", 10).pipe(Effect.ignore, Effect.catchAllDefect(() => Effect.void))
      // the failed attempt waits for the claim's DELETE before writing the retry's marker
      expect((yield* getTask(task.id)).status).toBe("running")
      yield* Deferred.succeed(gate, undefined)
      yield* drive(hasStatus(task.id, "completed"), "100 millis", 100)
      const done = yield* getTask(task.id)
      const retried = done.events!.find((e) => e.from === "running" && e.to === "pending")
      expect(retried).toBeDefined()
      const key = readyMarkerKey(task)
      // same key for the retry's marker (same minute bucket): the case this guards
      expect(yield* Ref.get(log)).toEqual([`put ${key}`, `delete ${key}`, `put ${key}`, `delete ${key}`])
      expect(yield* Ref.get(attempts)).toBe(2)
    }).pipe(Effect.provide(queueLayer(gatedReadyDeletes(gate, log))))
  })
})

/** MemoryStorage whose ready-marker DELETEs take `latency` (TestClock), logging each request's ready keys. */
const slowReadyDeletes = (latency: Duration.DurationInput, requests: Ref.Ref<ReadonlyArray<ReadonlyArray<string>>>) =>
  Layer.effect(
    Storage,
    Effect.map(MemoryStorage.make(), (s) => {
      const slow = <E>(keys: ReadonlyArray<string>, run: Effect.Effect<void, E>) =>
        keys.some(isReady) ? Effect.zipRight(Effect.zipRight(Ref.update(requests, (r) => [...r, keys]), Effect.sleep(latency)), run) : run
      return { ...s, delete: (key) => slow([key], s.delete(key)), deleteMany: (keys) => slow(keys, s.deleteMany(keys)) }
    })
  )

describe("a worker's ready-marker DELETEs share requests (DeleteBatcher)", () => {
  it.scoped("at concurrency 8, the DELETEs asked for while one is in flight go together: fewer requests than tasks, no marker left", () => {
    const requests = Ref.unsafeMake<ReadonlyArray<ReadonlyArray<string>>>([])
    return Effect.gen(function*() {
      const queue = yield* Queue
      const tasks = yield* Effect.forEach(Array.from({ length: 24 }, (_, i) => i), (i) => queue.submit("job", { i }))
      yield* Worker.make({ concurrency: 8 }, [Worker.handler("job", () => Effect.succeed("ok"))])
      yield* drive(Effect.map(Effect.forEach(tasks, (t) => hasStatus(t.id, "completed")), (all) => all.every(Boolean)), "10 millis", 3000)
      const sent = yield* Ref.get(requests)
      const keys = sent.flat()
      expect(new Set(keys)).toEqual(new Set(tasks.map(readyMarkerKey)))
      // one request per task without the batcher; here the claims' DELETEs overlap (50 ms each)
      expect(sent.length).toBeLessThan(tasks.length / 2)
      expect(sent.some((r) => r.length > 1)).toBe(true)
      const storage = yield* Storage
      for (const t of tasks) expect(Option.isNone(yield* storage.head(readyMarkerKey(t)))).toBe(true)
    }).pipe(Effect.provide(queueLayer(slowReadyDeletes("50 millis", requests))))
  })
})
