/**
 * The idle cost, measured (design.md §5.4 "Idle cost"): one idle worker for one simulated hour on
 * MemoryStorage + TestClock, every request counted by CountingStorage. Budget: ≤ 120 PUT+LIST and
 * ≤ 3,600 GET+HEAD (1/s) per hour, and new work still picked up within about a second.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import { RequestCounter } from "../../src/layers/CountingStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { drive, hasStatus } from "./support.js"

const counted = () => {
  const storage = Layer.provideMerge(CountingStorage.layer, MemoryStorage.layer())
  return Layer.provideMerge(QueueLayer.layer(), Layer.provideMerge(ServerClockLayer.layer, storage))
}

const idleHour = (options: Worker.WorkerOptions) =>
  Effect.gen(function*() {
    const counter = yield* RequestCounter
    yield* Worker.make(options, [Worker.handler("job", () => Effect.succeed("ok"))])
    // start-up (registration, the first passes) is not idling
    yield* TestClock.adjust("1 minute")
    yield* counter.reset
    for (let minute = 0; minute < 60; minute++) yield* TestClock.adjust("1 minute")
    return yield* counter.take
  })

describe("Idle cost of one worker, measured", () => {
  it.scoped("one idle hour: PUT+LIST ≤ 120, GET+HEAD ≤ 3600; a task submitted then is claimed within ~1 s", () =>
    Effect.gen(function*() {
      const c = yield* idleHour({ monitor: false })
      yield* Effect.sync(() => console.info(`idle worker, 1 h: ${JSON.stringify(c)}`))
      expect(c.PUT + c.LIST).toBeLessThanOrEqual(120)
      expect(c.GET + c.HEAD).toBeLessThanOrEqual(3600)
      expect(c.DELETE).toBe(0)
      // still awake: a submit during idleness is claimed within about a second of simulated time
      const queue = yield* Queue
      const task = yield* queue.submit("job", {})
      yield* drive(hasStatus(task.id, "running", "completed"), "100 millis", 12)
    }).pipe(Effect.provide(counted())))

  it.scoped("with the embedded monitor as the bucket's leader, the extra cost is the monitor's own", () =>
    Effect.gen(function*() {
      const c = yield* idleHour({})
      // reported, not budgeted: the monitor's cost is paid once per bucket, not per worker
      yield* Effect.sync(() => console.info(`idle worker + leader monitor, 1 h: ${JSON.stringify(c)}`))
      expect(c.GET + c.HEAD).toBeLessThanOrEqual(3600 + 600)
    }).pipe(Effect.provide(counted())))
})
