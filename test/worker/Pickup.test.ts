/**
 * Pickup latency of a worker for work that comes back (a retry or a reschedule with a short
 * backoff) and for work that other tools make claimable (resume, replay, cancel, recovery):
 * TestClock + MemoryStorage, so every latency here is simulated time.
 */
import { describe, expect } from "@effect/vitest"
import { Duration, Effect, Layer, Ref, TestClock } from "effect"
import { PermanentError, RescheduleError, RetryableError } from "../../src/domain/HandlerErrors.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import * as Tr from "../../src/domain/Transitions.js"
import { createTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import { makeSignal } from "../../src/protocol/WakeUp.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, getTask, hasStatus, idInShard, millisBetween, queueLayer } from "./support.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

/** MemoryStorage whose task-object CAS writes take `delay` (simulated): a settle's CAS is slow, as on a real store under load. */
const slowTaskWrites = (delay: Duration.DurationInput) =>
  Layer.effect(
    Storage,
    Effect.map(MemoryStorage.make(), (s) => ({
      ...s,
      put: (key, body, condition) =>
        key.startsWith("tasks/") && condition !== undefined && "ifMatch" in condition ? Effect.zipRight(Effect.sleep(delay), s.put(key, body, condition)) : s.put(key, body, condition)
    }))
  )

const fast = new RetryPolicy({ initialIntervalMs: 100, maxIntervalMs: 500, multiplier: 2, jitterPercent: 0 })

describe("Worker pickup of work that comes back", () => {
  it.scoped("a task retried with a 100 ms backoff is claimed again within ~1 s, even when a pass saw it mid-settle", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("flaky", {}, { retryPolicy: fast, maxRetries: 3 })
      const attempts = yield* Ref.make(0)
      // concurrency 2: discovery passes run while the first attempt settles (its ready marker
      // is written before the slow CAS back to pending, so a pass can read the task as running).
      yield* Worker.make({ concurrency: 2 }, [
        Worker.handler("flaky", (_i, ctx) =>
          Effect.zipRight(
            Ref.update(attempts, (n) => n + 1),
            ctx.attempt === 1 ? Effect.fail(new RetryableError({ message: "busy" })) : Effect.succeed("ok")
          ))
      ])
      yield* drive(hasStatus(task.id, "completed"), "100 millis", 1200)
      const done = yield* getTask(task.id)
      const retried = done.events!.find((e) => e.from === "running" && e.to === "pending")!
      const reclaimed = done.events!.filter((e) => e.to === "running")[1]!
      // available again 100 ms after the retry; claimed within about a second of that
      expect(millisBetween(retried.at, reclaimed.at)).toBeLessThanOrEqual(1600)
      expect(yield* Ref.get(attempts)).toBe(2)
    }).pipe(Effect.provide(queueLayer(slowTaskWrites("1 second")))))

  it.scoped("a task rescheduled by 100 ms is claimed again within ~1 s of being due", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("later", {}, { maxReschedules: 3 })
      yield* Worker.make({ concurrency: 2 }, [
        Worker.handler("later", (_i, ctx) =>
          ctx.task.rescheduleCount === 0 ? Effect.fail(RescheduleError.after("100 millis", "come back soon")) : Effect.succeed("ok"))
      ])
      yield* drive(hasStatus(task.id, "completed"), "100 millis", 1200)
      const done = yield* getTask(task.id)
      const rescheduled = done.events!.find((e) => e.from === "running" && e.to === "pending")!
      const reclaimed = done.events!.filter((e) => e.to === "running")[1]!
      expect(millisBetween(rescheduled.at, reclaimed.at)).toBeLessThanOrEqual(1600)
    }).pipe(Effect.provide(queueLayer(slowTaskWrites("1 second")))))
})

describe("Idle workers notice what other tools make claimable within about a second", () => {
  /** A worker that has gone idle (wake-up watch on), with a task of `type` it can do. */
  const idleWorker = (type: string) =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const worker = yield* Worker.make({}, [Worker.handler(type, () => Effect.as(Ref.update(runs, (n) => n + 1), "ok"))])
      return { worker, runs }
    })

  it.scoped("resume: a paused type's waiting task is claimed within ~1 s of the resume", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      yield* queue.pause("report")
      const task = yield* queue.submit("report", {})
      // the pause switches are re-read only every 1000 checks here: only the resume's touch can wake it
      const worker = yield* Worker.make({ wakeUp: { pauseCheckEvery: 1000 } }, [Worker.handler("report", () => Effect.succeed("ok"))])
      // long enough to be idle and to have read the pause switches many times
      yield* TestClock.adjust("2 minutes")
      expect((yield* worker.stats).claimed).toBe(0)
      const passes = (yield* worker.stats).passes
      yield* TestClock.adjust("30 seconds")
      expect((yield* worker.stats).passes).toBe(passes) // idle: no LIST while paused
      yield* queue.resume("report")
      yield* drive(hasStatus(task.id, "running", "completed"), "100 millis", 12)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("replay: a failed task replayed while the worker idles is claimed within ~1 s", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("fragile", {})
      const attempts = yield* Ref.make(0)
      const worker = yield* Worker.make({}, [
        Worker.handler("fragile", () =>
          Effect.flatMap(Ref.updateAndGet(attempts, (n) => n + 1), (n) =>
            n === 1 ? Effect.fail(new PermanentError({ message: "bad input" })) : Effect.succeed("ok")))
      ])
      yield* drive(hasStatus(task.id, "failed"))
      yield* TestClock.adjust("5 minutes")
      const passes = (yield* worker.stats).passes
      yield* queue.replay(task.id)
      yield* drive(hasStatus(task.id, "running", "completed"), "100 millis", 12)
      // the pass the signal started claims it; a claim is followed by a pass at once and, busy
      // again, by one 80–120 ms later, which lands in the same 100 ms step of `drive` when the
      // claim came early in it (whether it runs before the step ends also depends on how long the
      // passes take in real time: the probe made them shorter). Not a poll storm.
      expect((yield* worker.stats).passes - passes).toBeLessThanOrEqual(3)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("a task whose marker a pass saw before its object landed is claimed at the submit's wake-up, not 30 s later", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const { runs } = yield* idleWorker("job")
      yield* TestClock.adjust("1 minute")
      // the first half of a submit: the marker, not yet the task
      const now = yield* queue.now
      const t = Tr.newTask({ id: idInShard("3", 1), shard: "3", taskType: "job", input: {}, now, availableAt: now, timeoutSeconds: 30, maxRetries: 0, retryPolicy: fast })
      yield* writeMarker(readyMarkerKey(t))
      const { touch } = yield* makeSignal(storage)
      yield* touch
      yield* TestClock.adjust("2 seconds") // the worker looks, finds no task
      expect(yield* Ref.get(runs)).toBe(0)
      // the second half: the task lands, and the producer touches the wake-up object
      yield* createTask(t)
      yield* touch
      yield* drive(Effect.map(Ref.get(runs), (n) => n === 1), "100 millis", 15)
    }).pipe(Effect.provide(queueLayer())))
})
