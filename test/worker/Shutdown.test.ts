/**
 * Closing a worker's scope is a graceful shutdown that ends as soon as there is nothing left to
 * wait for: with no running handler it does not wait out the grace period; with one, it ends when
 * that handler ends. The scope is closed the usual way (the end of `Effect.scoped`, whose
 * finalizers run uninterruptibly); TestClock shows how long the close took.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Fiber, Option, TestClock } from "effect"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { drive, hasStatus, queueLayer } from "./support.js"

/**
 * Runs a worker in its own `Effect.scoped` until `end` completes; the fiber ends when the scope has
 * closed. A daemon, so a regression (a close stuck in its grace period) fails the test instead of
 * hanging it while the test's scope waits for the fiber.
 */
const scopedWorker = (handler: Effect.Effect<string>, end: Deferred.Deferred<void>) =>
  Effect.forkDaemon(Effect.scoped(Effect.zipRight(
    Worker.make({ wakeUp: false, shutdownGracePeriod: "30 seconds" }, [Worker.handler("job", () => handler)]),
    Deferred.await(end)
  )))

const finished = <A, E>(fiber: Fiber.Fiber<A, E>) => Effect.map(Fiber.poll(fiber), Option.isSome)

describe("Worker shutdown on scope close", () => {
  it.effect("with no running handler, closing the scope completes without advancing the clock", () =>
    Effect.gen(function*() {
      const end = yield* Deferred.make<void>()
      const fiber = yield* scopedWorker(Effect.succeed("ok"), end)
      yield* TestClock.adjust("1 second")
      const before = yield* Clock.currentTimeMillis
      yield* Deferred.succeed(end, undefined)
      // Steps of 0 ms: the close may only use the current instant.
      yield* drive(finished(fiber), "0 millis", 50)
      expect((yield* Clock.currentTimeMillis) - before).toBe(0)
    }).pipe(Effect.provide(queueLayer())))

  it.effect("with a running handler, closing the scope ends when the handler ends, not at the grace period", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const end = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const task = yield* queue.submit("job", {}, { timeoutSeconds: 600 })
      const fiber = yield* scopedWorker(Effect.as(Deferred.await(release), "ok"), end)
      yield* drive(hasStatus(task.id, "running"))
      yield* Deferred.succeed(end, undefined)
      yield* TestClock.adjust("3 seconds")
      expect(yield* finished(fiber)).toBe(false)
      const before = yield* Clock.currentTimeMillis
      yield* Deferred.succeed(release, undefined)
      yield* drive(finished(fiber), "0 millis", 50)
      expect((yield* Clock.currentTimeMillis) - before).toBe(0)
      expect(yield* hasStatus(task.id, "completed")).toBe(true)
    }).pipe(Effect.provide(queueLayer())))
})
