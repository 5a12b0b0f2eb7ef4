/**
 * The idle cost, measured (design.md §5.4 "Idle cost"): one idle worker for one simulated hour on
 * MemoryStorage + TestClock, every request counted by CountingStorage. Budget: ≤ 120 PUT+LIST and
 * ≤ 3,600 GET+HEAD (1/s) per hour, and new work still picked up within about a second — with the
 * embedded monitor (on by default) as the bucket's leader or as a standby.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import { RequestCounter } from "../../src/services/RequestCounter.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, hasStatus } from "./support.js"
import { immediateYields } from "../support/immediateYields.js"
import { layerWorkerServices } from "../../src/Buquet.js"

const counted = () => {
  const storage = Layer.provideMerge(CountingStorage.layer, MemoryStorage.layer())
  return Layer.provideMerge(Layer.merge(QueueLayer.layer(), layerWorkerServices()), Layer.provideMerge(ServerClockLayer.layer, storage))
}

const idleHour = (options: Worker.WorkerOptions) =>
  Effect.gen(function*() {
    yield* immediateYields
    const counter = yield* RequestCounter
    yield* Worker.make(options, [Worker.handler("job", () => Effect.succeed("ok"))])
    // start-up (registration, the first passes) is not idling
    yield* TestClock.adjust("1 minute")
    yield* counter.reset
    for (let minute = 0; minute < 60; minute++) yield* TestClock.adjust("1 minute")
    return yield* counter.take
  })

describe("Idle cost of one worker, measured", () => {
  /** One idle hour of a worker with `options` stays within the budget, and the worker still picks up work. */
  const withinBudget = (name: string, options: Worker.WorkerOptions) =>
    Effect.gen(function*() {
      const c = yield* idleHour(options)
      yield* Effect.sync(() => console.info(`${name}, 1 h: ${JSON.stringify(c)}`))
      expect(c.PUT + c.LIST).toBeLessThanOrEqual(120)
      expect(c.GET + c.HEAD).toBeLessThanOrEqual(3600)
      expect(c.DELETE).toBe(0)
      // still awake: a submit during idleness is claimed within about a second of simulated time
      const queue = yield* Queue
      const task = yield* queue.submit("job", {})
      yield* drive(hasStatus(task.id, "running", "completed"), "100 millis", 12)
    }).pipe(Effect.provide(counted()))

  it.scoped("one idle hour: PUT+LIST ≤ 120, GET+HEAD ≤ 3600; a task submitted then is claimed within ~1 s", () =>
    withinBudget("idle worker", { monitor: false }))

  it.scoped("with the embedded monitor (the default) as the bucket's leader: still PUT+LIST ≤ 120 and GET+HEAD ≤ 3600", () =>
    withinBudget("idle worker + leader monitor", {}))

  it.scoped("two idle workers (a leader and a standby monitor): each within the budget", () =>
    Effect.gen(function*() {
      yield* immediateYields
      const memory = yield* MemoryStorage.make()
      const a = yield* CountingStorage.make(memory)
      const b = yield* CountingStorage.make(memory)
      const on = (storage: typeof a.storage) =>
        Layer.provideMerge(layerWorkerServices(), Layer.provideMerge(ServerClockLayer.layer, Layer.succeed(Storage, storage)))
      yield* Worker.make({ id: "leader" }, [Worker.handler("job", () => Effect.succeed("ok"))]).pipe(Effect.provide(on(a.storage)))
      yield* TestClock.adjust("5 seconds")
      yield* Worker.make({ id: "standby" }, [Worker.handler("job", () => Effect.succeed("ok"))]).pipe(Effect.provide(on(b.storage)))
      yield* TestClock.adjust("1 minute")
      yield* a.counter.reset
      yield* b.counter.reset
      for (let minute = 0; minute < 60; minute++) yield* TestClock.adjust("1 minute")
      for (const [name, counter] of [["leader", a.counter], ["standby", b.counter]] as const) {
        const c = yield* counter.take
        yield* Effect.sync(() => console.info(`idle ${name}, 1 h: ${JSON.stringify(c)}`))
        expect(c.PUT + c.LIST, name).toBeLessThanOrEqual(120)
        expect(c.GET + c.HEAD, name).toBeLessThanOrEqual(3600)
      }
    }))
})
