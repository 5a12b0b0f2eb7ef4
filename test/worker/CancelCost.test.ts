/**
 * The cost of noticing a cancel (issue 20 item 6): a running task must not cost one HEAD every
 * 2 s. A cancel touches the signal of the worker that runs the task (`control/cancel/{worker}`);
 * the worker HEADs that one object per check and HEADs its running tasks only when it changed, with
 * a slow check per task as the safety net for a signal that was never written (a crash between the
 * cancel and the touch, a failed touch, the reference's cancel). MemoryStorage + TestClock, every
 * request counted by CountingStorage.
 */
import { describe, expect } from "@effect/vitest"
import { Effect, Layer, Option, Ref, TestClock } from "effect"
import { cancelSignalKey } from "../../src/domain/Keys.js"
import * as Tr from "../../src/domain/Transitions.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault, FaultInjector } from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { casTask } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import { RequestCounter } from "../../src/services/RequestCounter.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, hasStatus, queueLayer, stored } from "./support.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

const counted = () => {
  const storage = Layer.provideMerge(CountingStorage.layer, MemoryStorage.layer())
  return Layer.provideMerge(Layer.merge(QueueLayer.layer(), layerWorkerServices()), Layer.provideMerge(ServerClockLayer.layer, storage))
}

/** Starts `n` long tasks on one worker; returns them and the set of handlers interrupted so far. */
const longTasks = (n: number, options: Worker.WorkerOptions = {}) =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const interrupted = yield* Ref.make(new Set<string>())
    const tasks = yield* Effect.forEach(Array.from({ length: n }), () => queue.submit("long", {}, { timeoutSeconds: 7200 }))
    const worker = yield* Worker.make({ concurrency: n, monitor: false, shutdownGracePeriod: "1 second", ...options }, [
      Worker.handler("long", (_, ctx) =>
        Effect.never.pipe(Effect.onInterrupt(() => Ref.update(interrupted, (s) => new Set(s).add(ctx.taskId)))))
    ])
    // The tasks still run at the end: stop on the test clock (the scope's own stop would wait for it forever).
    yield* Effect.addFinalizer(() => Effect.zipRight(Effect.fork(worker.stop), TestClock.adjust("1 minute")))
    yield* drive(Effect.map(Effect.forEach(tasks, (t) => hasStatus(t.id, "running")), (all) => all.every(Boolean)))
    return { tasks, interrupted, worker }
  })

describe("Cancellation checks cost one request per check, not one per running task", () => {
  it.scoped("one hour of 100 running long tasks: at most 1 HEAD/GET per second in all; a cancel still interrupts its handler within 5 s", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const counter = yield* RequestCounter
      const { interrupted, tasks } = yield* longTasks(100)
      yield* counter.reset
      // All slots are full (no discovery) and the monitor is off: every GET and HEAD is a
      // cancellation check. At most one per second, counted at the end of every minute.
      for (let minute = 1; minute <= 60; minute++) {
        yield* TestClock.adjust("1 minute")
        const c = yield* counter.snapshot
        expect(c.GET + c.HEAD, `after ${minute} min`).toBeLessThanOrEqual(minute * 60)
      }
      yield* Effect.sync(() => console.info(`100 running tasks, 1 h: ${JSON.stringify(Effect.runSync(counter.snapshot))}`))
      expect(yield* Ref.get(interrupted)).toEqual(new Set())

      const victim = tasks[37]!
      expect((yield* queue.cancel(victim.id, { reason: "not needed" })).outcome).toBe("cancel_requested")
      yield* TestClock.adjust("5 seconds")
      expect(yield* Ref.get(interrupted)).toEqual(new Set([victim.id]))
      yield* drive(hasStatus(victim.id, "cancelled"), "10 millis", 10)
      // the others run on
      expect(yield* hasStatus(tasks[0]!.id, "running")).toBe(true)
    }).pipe(Effect.provide(counted())), { timeout: 120_000 })

  it.scoped("a cancel whose signal write failed is still recorded; repeating the cancel signals again and interrupts within 5 s", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const injector = yield* FaultInjector
      const { interrupted, tasks } = yield* longTasks(3)
      yield* injector.addRule({ operation: "put", key: /^control\/cancel\//, fault: Fault.unavailable })
      expect((yield* queue.cancel(tasks[1]!.id)).outcome).toBe("cancel_requested")
      expect((yield* injector.injected).map((f) => f.kind)).toEqual(["Unavailable"])
      yield* TestClock.adjust("10 seconds")
      // the signal was lost: nothing told the worker yet
      expect(yield* Ref.get(interrupted)).toEqual(new Set())
      expect((yield* queue.cancel(tasks[1]!.id)).outcome).toBe("cancel_requested")
      yield* TestClock.adjust("5 seconds")
      expect(yield* Ref.get(interrupted)).toEqual(new Set([tasks[1]!.id]))
      yield* drive(hasStatus(tasks[1]!.id, "cancelled"), "10 millis", 10)
    }).pipe(Effect.provide(Layer.provideMerge(
      Layer.merge(QueueLayer.layer(), layerWorkerServices()),
      Layer.provideMerge(ServerClockLayer.layer, FaultyStorage.layer().pipe(Layer.provideMerge(MemoryStorage.layer())))
    ))))

  it.scoped("a cancel that never touches the signal (a crash before it, the reference's cancel) is noticed by the slow check of each task", () =>
    Effect.gen(function*() {
      const { interrupted, tasks } = yield* longTasks(3, { cancelFallbackInterval: "1 minute" })
      // what the reference's request_cancellation writes: the flag, by CAS, and nothing else
      const current = yield* stored(tasks[2]!)
      const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
      yield* casTask(Tr.requestCancel(current.task, { now }), current.etag)
      yield* TestClock.adjust("30 seconds")
      expect(yield* Ref.get(interrupted)).toEqual(new Set())
      yield* TestClock.adjust("31 seconds")
      expect(yield* Ref.get(interrupted)).toEqual(new Set([tasks[2]!.id]))
      yield* drive(hasStatus(tasks[2]!.id, "cancelled"), "10 millis", 10)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("a cancel signals only the worker that runs the task; the worker deletes its signal when it stops", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStorage.make()
      const a = yield* CountingStorage.make(memory)
      const b = yield* CountingStorage.make(memory)
      const on = (storage: typeof a.storage) =>
        Layer.provideMerge(Layer.merge(QueueLayer.layer(), layerWorkerServices()), Layer.provideMerge(ServerClockLayer.layer, Layer.succeed(Storage, storage)))
      const onA = yield* Layer.build(on(a.storage))
      const onB = yield* Layer.build(on(b.storage))
      const first = yield* longTasks(4, { id: "worker-a", wakeUp: false }).pipe(Effect.provide(onA))
      const second = yield* longTasks(4, { id: "worker-b" }).pipe(Effect.provide(onB))
      yield* TestClock.adjust("10 seconds")
      yield* a.counter.reset
      yield* b.counter.reset
      const queue = yield* Effect.provide(Queue, onA)
      expect((yield* queue.cancel(first.tasks[0]!.id)).outcome).toBe("cancel_requested")
      yield* TestClock.adjust("10 seconds")
      expect(yield* Ref.get(first.interrupted)).toEqual(new Set([first.tasks[0]!.id]))
      const countA = yield* a.counter.take
      const countB = yield* b.counter.take
      // B: one HEAD of its signal per 2 s and nothing else; A: the same plus its 4 tasks, once (the
      // freed slot makes it poll, by LIST: no wake-up HEADs)
      expect(countB.HEAD + countB.GET).toBe(5)
      expect(countA.HEAD).toBeGreaterThanOrEqual(5 + 4)
      expect(countA.HEAD).toBeLessThanOrEqual(6 + 4)
      expect(yield* Ref.get(second.interrupted)).toEqual(new Set())

      yield* Effect.fork(first.worker.stop)
      yield* TestClock.adjust("1 minute")
      expect(Option.isNone(yield* memory.head(cancelSignalKey("worker-a")))).toBe(true)
    }))
})
