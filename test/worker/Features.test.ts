/**
 * The per-type rate limit, `ctx.progress` (rate-limited writes, visible through Queue.get) and
 * lifecycle hooks. MemoryStorage + TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Layer, Ref } from "effect"
import { PermanentError, RetryableError } from "../../src/domain/HandlerErrors.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, exactPolicy, getTask, hasStatus, queueLayer } from "./support.js"

const quiet: Worker.WorkerOptions = { wakeUp: false, monitor: false }

/** MemoryStorage that counts PUTs of task objects. */
const countingTaskPuts = (counter: { n: number }) =>
  Layer.effect(
    Storage,
    Effect.map(MemoryStorage.make(), (s) => ({
      ...s,
      put: (key: string, body: Uint8Array, condition?: Parameters<typeof s.put>[2]) =>
        Effect.zipRight(Effect.sync(() => {
          if (key.startsWith("tasks/")) counter.n++
        }), s.put(key, body, condition))
    }))
  )

describe("Per-type rate limit", () => {
  it.scoped("at most `limit` claims of a type per interval; other types are not held back", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const limited = yield* Effect.forEach(Array.from({ length: 6 }), () => queue.submit("limited", {}))
      const free = yield* Effect.forEach(Array.from({ length: 4 }), () => queue.submit("free", {}))
      const starts = yield* Ref.make<Array<number>>([])
      yield* Worker.make({ ...quiet, concurrency: 4 }, [
        Worker.handler("limited", () => Effect.zipRight(Effect.flatMap(Clock.currentTimeMillis, (t) => Ref.update(starts, (s) => [...s, t])), Effect.succeed("ok")), {
          rateLimit: { limit: 2, interval: "10 seconds" }
        }),
        Worker.handler("free", () => Effect.succeed("ok"))
      ])
      // the unlimited type is done at once
      yield* drive(Effect.map(Effect.forEach(free, (t) => hasStatus(t.id, "completed")), (a) => a.every(Boolean)), "100 millis", 10)
      yield* drive(Effect.map(Effect.forEach(limited, (t) => hasStatus(t.id, "completed")), (a) => a.every(Boolean)), "500 millis", 200)
      const s = (yield* Ref.get(starts)).sort((a, b) => a - b)
      expect(s.length).toBe(6)
      // any three consecutive starts span at least the interval: never 3 in 10 s
      for (let i = 0; i + 2 < s.length; i++) expect(s[i + 2]! - s[i]!).toBeGreaterThanOrEqual(10_000)
      // and the limit does not slow it further than needed: 6 tasks in about 3 windows
      expect(s[5]! - s[0]!).toBeLessThan(25_000)
    }).pipe(Effect.provide(queueLayer())))
})

describe("ctx.progress", () => {
  const counter = { n: 0 }
  it.scoped("writes the latest value at most once per progressInterval, visible through Queue.get while running", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("progressing", {}, { timeoutSeconds: 120 })
      const step = yield* Ref.make(0)
      yield* Worker.make({ ...quiet, progressInterval: "2 seconds" }, [
        Worker.handler("progressing", (_i, ctx) =>
          Effect.gen(function*() {
            yield* Ref.set(step, 1)
            // a chatty handler: 100 progress calls in a burst
            for (let i = 1; i <= 100; i++) yield* ctx.progress({ done: i, of: 100 })
            yield* Effect.sleep("10 seconds")
            yield* Ref.set(step, 2)
            yield* ctx.progress({ done: "all" })
            yield* Effect.sleep("10 seconds")
            return "ok"
          }))
      ])
      yield* drive(Effect.map(Ref.get(step), (s) => s === 1), "10 millis")
      const before = counter.n
      yield* drive(Effect.map(getTask(task.id), (t) => JSON.stringify(t.progress) === JSON.stringify({ done: 100, of: 100 })), "500 millis", 10)
      expect((yield* getTask(task.id)).status).toBe("running")
      yield* drive(Effect.map(Ref.get(step), (s) => s === 2), "500 millis", 40)
      // 100 calls cost at most 2 writes (the first value, then the latest after the interval)
      expect(counter.n - before).toBeLessThanOrEqual(2)
      yield* drive(Effect.map(getTask(task.id), (t) => JSON.stringify(t.progress) === JSON.stringify({ done: "all" })), "500 millis", 10)
      yield* drive(hasStatus(task.id, "completed"), "1 second", 20)
    }).pipe(Effect.provide(queueLayer(countingTaskPuts(counter)))))
})

describe("Lifecycle hooks", () => {
  it.scoped("hooks run for each event of their kind, in order; a failing hook is logged and the worker goes on", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const seen = yield* Ref.make<Array<string>>([])
      const note = (label: string) => Ref.update(seen, (s) => [...s, label])
      const good = yield* queue.submit("hooked", { ok: true })
      const flaky = yield* queue.submit("hooked", { ok: false }, { maxRetries: 1, retryPolicy: exactPolicy })
      const bad = yield* queue.submit("hooked_perm", {})
      yield* Worker.make({
        ...quiet,
        hooks: {
          Claimed: (e) => note(`claimed:${e.task.id}:${e.task.attempt}`),
          Completed: (e) => Effect.zipRight(note(`completed:${e.task.id}`), Effect.fail("a broken hook")).pipe(Effect.orDie),
          Retried: (e) => note(`retried:${e.task.id}`),
          Failed: (e) => note(`failed:${e.task.id}:${e.reason}`)
        }
      }, [
        Worker.handler("hooked", (input, ctx) =>
          (input as { ok: boolean }).ok || ctx.attempt > 1 ? Effect.succeed("ok") : Effect.fail(new RetryableError({ message: "once" }))),
        Worker.handler("hooked_perm", () => Effect.fail(new PermanentError({ message: "never" })))
      ])
      yield* drive(Effect.map(Effect.forEach([good, flaky, bad], (t) => hasStatus(t.id, "completed", "failed")), (a) => a.every(Boolean)))
      const log = yield* Ref.get(seen)
      const of = (id: string) => log.filter((l) => l.includes(id)).map((l) => l.replace(`:${id}`, ""))
      expect(of(good.id)).toEqual(["claimed:1", "completed"])
      expect(of(flaky.id)).toEqual(["claimed:1", "retried", "claimed:2", "completed"])
      expect(of(bad.id)).toEqual(["claimed:1", "failed:permanent"])
    }).pipe(Effect.provide(queueLayer())))
})
