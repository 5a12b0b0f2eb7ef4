/**
 * Issue 20 item 1 on MemoryStorage + TestClock: workers register the task types they handle
 * (`control/types/{type}.json`, one create-only PUT per type ever), and submit's type check reads
 * them with one HEAD per type (cached): `warn` logs once per type, `strict` refuses with
 * `UnhandledTaskType`, `off` costs nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Logger, Option, Ref, TestClock } from "effect"
import { taskTypeMarkerKey } from "../../src/domain/Keys.js"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { RequestCounter } from "../../src/services/RequestCounter.js"
import { Storage } from "../../src/services/Storage.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import type { QueueConfigInput } from "../../src/layers/Queue.js"

const counted = (config: QueueConfigInput = {}, slowHead = false) => {
  const memory = MemoryStorage.layer()
  // a HEAD that answers 1 ms later (TestClock): concurrent submits then all ask before one answer
  const slow = Layer.effect(Storage, Effect.map(Storage, (s) => ({ ...s, head: (key: string) => Effect.delay(s.head(key), "1 millis") })))
  const storage = Layer.provideMerge(CountingStorage.layer, slowHead ? Layer.provide(slow, memory) : memory)
  return Layer.provideMerge(Layer.merge(QueueLayer.layer(config), layerWorkerServices()), Layer.provideMerge(ServerClockLayer.layer, storage))
}

/** Runs `self` with the warnings it logs collected. */
const warningsOf = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<Array<string>>([])
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") Effect.runSync(Ref.update(seen, (xs) => [...xs, String(Array.isArray(message) ? message.join(" ") : message)]))
    })
    const a = yield* self.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return [a, yield* Ref.get(seen)] as const
  })

const noWake: Worker.WorkerOptions = { wakeUp: false, monitor: false }

describe("submit's type check", () => {
  it.scoped("warn (the default): a type no worker registered is submitted with one warning, once per type, for one HEAD", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const counter = yield* RequestCounter
      yield* counter.reset
      const [task, warnings] = yield* warningsOf(Effect.zipRight(queue.submit("sned_email", {}), queue.submit("sned_email", {})))
      expect(task.status).toBe("pending")
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("no worker has ever registered a handler for task type \"sned_email\"")
      expect((yield* counter.snapshot).HEAD).toBe(1)
    }).pipe(Effect.provide(counted())))

  it.scoped("warn: concurrent submits of one unregistered type (submitMany) still cost one HEAD and one warning", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const counter = yield* RequestCounter
      yield* counter.reset
      const items = Array.from({ length: 40 }, (_, i) => ({ taskType: "sned_email", input: { i } }))
      const fiber = yield* Effect.fork(warningsOf(queue.submitMany(items, { concurrency: 16 })))
      yield* TestClock.adjust("1 second")
      const [results, warnings] = yield* Fiber.join(fiber)
      expect(results.filter((r) => r._tag === "Failed")).toEqual([])
      expect(warnings).toHaveLength(1)
      expect((yield* counter.snapshot).HEAD).toBe(1)
    }).pipe(Effect.provide(counted({}, true))))

  it.scoped("strict: concurrent submits of one unregistered type are all refused, for one HEAD", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const counter = yield* RequestCounter
      yield* counter.reset
      const fiber = yield* Effect.fork(Effect.forEach(Array.from({ length: 16 }, () => queue.submit("send_email", {})), Effect.flip, { concurrency: 16 }))
      yield* TestClock.adjust("1 second")
      const refused = yield* Fiber.join(fiber)
      expect(refused.every((e) => e._tag === "UnhandledTaskType")).toBe(true)
      expect((yield* counter.snapshot).HEAD).toBe(1)
    }).pipe(Effect.provide(counted({ typeCheck: "strict" }, true))))

  it.scoped("a submit waiting for another's HEAD asks itself when that submit is interrupted", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const first = yield* Effect.fork(queue.submit("send_email", {}))
      yield* TestClock.adjust("0 millis")
      const second = yield* Effect.fork(Effect.flip(queue.submit("send_email", {})))
      yield* TestClock.adjust("0 millis")
      yield* Fiber.interrupt(first)
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(second))._tag).toBe("UnhandledTaskType")
    }).pipe(Effect.provide(counted({ typeCheck: "strict" }, true))))

  it.scoped("strict: refused with UnhandledTaskType until a worker registers the type; then accepted", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const refused = yield* Effect.flip(queue.submit("send_email", {}))
      expect(refused._tag).toBe("UnhandledTaskType")
      expect(refused.message).toContain("send_email")
      yield* Worker.make({ ...noWake, id: "w-mail" }, [Worker.handler("send_email", () => Effect.succeed("sent"))])
      const storage = yield* Storage
      yield* TestClock.adjust("1 second")
      expect(Option.isSome(yield* storage.head(taskTypeMarkerKey("send_email")))).toBe(true)
      // (a worker of this process also tells its queue at once: see the next test)
      yield* TestClock.adjust("10 seconds")
      const task = yield* queue.submit("send_email", {})
      expect(task.taskType).toBe("send_email")
      // a strict submit can be relaxed per call, and a bad mode is a typed error
      expect((yield* queue.submit("other", {}, { typeCheck: "off" })).taskType).toBe("other")
      const bad = yield* Effect.flip(queue.submit("other", {}, { typeCheck: "loud" as never }))
      expect(bad._tag).toBe("InvalidArgument")
    }).pipe(Effect.provide(counted({ typeCheck: "strict" }))))

  it.scoped("a submit right after a worker of this process starts neither asks the bucket nor warns (its registration may not have landed)", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const counter = yield* RequestCounter
      yield* Worker.make({ ...noWake, id: "w-local" }, [Worker.handler("resize", () => Effect.succeed("ok"))])
      yield* counter.reset
      const [, warnings] = yield* warningsOf(queue.submit("resize", {}, { typeCheck: "strict" }))
      expect(warnings).toEqual([])
      expect((yield* counter.snapshot).HEAD).toBe(0)
    }).pipe(Effect.provide(counted())))

  it.scoped("off: no request, no warning", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const counter = yield* RequestCounter
      yield* counter.reset
      const [, warnings] = yield* warningsOf(queue.submit("whatever", {}))
      expect(warnings).toEqual([])
      expect((yield* counter.snapshot).HEAD).toBe(0)
    }).pipe(Effect.provide(counted({ typeCheck: "off" }))))

  it.scoped("a type is registered with one PUT ever: a second worker of the same types leaves the markers alone", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const handlers = [Worker.handler("a", () => Effect.succeed(1)), Worker.handler("b", () => Effect.succeed(2))]
      yield* Worker.make({ ...noWake, id: "w-1" }, handlers)
      yield* TestClock.adjust("1 second")
      const body = Option.getOrThrow(yield* storage.get(taskTypeMarkerKey("a"))).body
      expect(JSON.parse(new TextDecoder().decode(body))).toMatchObject({ task_type: "a", first_worker_id: "w-1" })
      // the second worker's registration sees both markers in its one LIST
      const before = (yield* storage.head(taskTypeMarkerKey("a"))).pipe(Option.getOrThrow).etag
      yield* Worker.make({ ...noWake, id: "w-2" }, handlers)
      yield* TestClock.adjust("1 second")
      expect((yield* storage.head(taskTypeMarkerKey("a"))).pipe(Option.getOrThrow).etag).toBe(before)
      expect(JSON.parse(new TextDecoder().decode(Option.getOrThrow(yield* storage.get(taskTypeMarkerKey("b"))).body))).toMatchObject({ first_worker_id: "w-1" })
    }).pipe(Effect.provide(counted())))
})
