/**
 * A slow producer's task is never left without a ready marker (issue 15 fix 7). A submit writes
 * its ready marker, then creates the task; a worker that sees the marker without its task must
 * not delete the marker while the task can still be created, and a producer whose create came
 * late enough that its marker may have been judged an orphan moves the task to a fresh marker.
 * MemoryStorage (behind FaultyStorage for the stalled create) on TestClock; no monitor, so only
 * the ready index can lead the worker to the task.
 */
import { describe, expect } from "@effect/vitest"
import { DateTime, Effect, Fiber, Layer, Option, TestClock } from "effect"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import * as Tr from "../../src/domain/Transitions.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault, FaultInjector } from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { createTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, exactPolicy, hasStatus, idInShard } from "./support.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

const env = Layer.provideMerge(
  Layer.merge(QueueLayer.layer(), layerWorkerServices()),
  Layer.provideMerge(ServerClockLayer.layer, FaultyStorage.layer().pipe(Layer.provideMerge(MemoryStorage.layer())))
)

/** Only discovery through the ready index: no monitor (whose sweep would repair a lost marker). */
const options: Worker.WorkerOptions = { wakeUp: false, monitor: false }

describe("a slow producer", () => {
  it.scoped("a marker whose task appears 40 s later is still there, and the worker runs the task", () =>
    Effect.gen(function*() {
      const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
      const task = Tr.newTask({
        id: idInShard("3", 1),
        shard: "3",
        taskType: "slow",
        input: {},
        now,
        availableAt: now,
        timeoutSeconds: 30,
        maxRetries: 3,
        retryPolicy: exactPolicy
      })
      // The producer writes its marker, then stalls.
      yield* writeMarker(readyMarkerKey(task))
      yield* Worker.make(options, [Worker.handler("slow", () => Effect.succeed("ran"))])
      // Past the old 30 s "missing" grace, with the worker polling all along.
      for (let i = 0; i < 400; i++) yield* TestClock.adjust("100 millis")
      const storage = yield* Storage
      expect(Option.isSome(yield* storage.head(readyMarkerKey(task)))).toBe(true)
      yield* createTask(task)
      // Looked at again within 30 s (a marker missing its task for long is looked at less often).
      yield* drive(hasStatus(task.id, "completed"), "100 millis", 400)
    }).pipe(Effect.provide(env)))

  it.scoped("a create that lands minutes after its marker: the task is moved to a fresh marker and runs", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const injector = yield* FaultInjector
      yield* Worker.make(options, [Worker.handler("slow", () => Effect.succeed("ran"))])
      // The create-only PUT of the task stalls for 4 minutes (a GC or VM pause, a slow request);
      // meanwhile the worker sees the marker without its task for long enough to call it an orphan.
      yield* injector.addRule({ operation: "put", key: /^tasks\//, condition: "ifNoneMatch", fault: Fault.delay("4 minutes") })
      const submit = yield* Effect.fork(queue.submit("slow", {}))
      yield* drive(Effect.map(Fiber.poll(submit), Option.isSome), "1 second", 400)
      const task = yield* Fiber.join(submit)
      yield* drive(hasStatus(task.id, "completed"), "100 millis", 600)
      const done = Option.getOrThrow(yield* queue.get(task.id))
      expect(done.attempt).toBe(1)
      // It became due when its create landed, under a fresh marker.
      expect(DateTime.distance(done.createdAt, done.availableAt)).toBeGreaterThanOrEqual(4 * 60_000)
    }).pipe(Effect.provide(env)))

  it.scoped("a same-key resubmit racing a late create does not delete the marker the late create moved its task to", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const injector = yield* FaultInjector
      const tasks = /^tasks\//
      // P1's create stalls 250 s; a client retry (P2, same idempotency key) starts at 245 s and its
      // create takes 10 s, so it loses to P1's; P1's move to a fresh marker takes 10 s to land.
      yield* injector.addRule({ operation: "put", key: tasks, condition: "ifNoneMatch", fault: Fault.delay("250 seconds") })
      yield* injector.addRule({ operation: "put", key: tasks, condition: "ifNoneMatch", fault: Fault.delay("10 seconds") })
      yield* injector.addRule({ operation: "put", key: tasks, condition: "ifMatch", fault: Fault.delay("10 seconds") })
      const p1 = yield* Effect.fork(queue.submit("slow", {}, { idempotencyKey: "k1" }))
      yield* TestClock.adjust("245 seconds")
      const p2 = yield* Effect.fork(queue.submit("slow", {}, { idempotencyKey: "k1" }))
      yield* drive(Effect.map(Effect.all([Fiber.poll(p1), Fiber.poll(p2)]), ([a, b]) => Option.isSome(a) && Option.isSome(b)), "1 second", 60)
      const task = yield* Fiber.join(p1)
      expect((yield* Fiber.join(p2)).id).toBe(task.id)
      // A worker started now finds the task through its ready index alone.
      yield* Worker.make(options, [Worker.handler("slow", () => Effect.succeed("ran"))])
      yield* drive(hasStatus(task.id, "completed"), "100 millis", 600)
    }).pipe(Effect.provide(env)))
})
