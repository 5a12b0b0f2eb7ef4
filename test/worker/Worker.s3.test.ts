/**
 * The worker in-process on the real RGW server: cancellation of a running task (acceptance 5) and
 * a host clock 10 minutes wrong (acceptance 8). Real time, outcomes asserted.
 */
import { expect, it } from "@effect/vitest"
import { Clock, Deferred, Duration, Effect, Layer, Option, Ref } from "effect"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import * as S3Storage from "../../src/layers/S3Storage.js"
import { describeS3, s3Config, s3Layer } from "../support/s3.js"
import { layerWorkerServices } from "../../src/Buquet.js"

const get = (id: string) => Effect.flatMap(Queue, (q) => q.get(id)).pipe(Effect.map(Option.getOrThrow))

describeS3("Worker on RGW", () => {
  it.live("cancelling a running task interrupts its handler within 5 s (finalizer runs) and it ends cancelled", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const started = yield* Deferred.make<void>()
      const finalized = yield* Ref.make(false)
      const task = yield* queue.submit("hang", {}, { timeoutSeconds: 120 })
      yield* Worker.make({ cancelCheckInterval: "2 seconds" }, [
        Worker.handler("hang", () =>
          Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(Effect.ensuring(Ref.set(finalized, true))))
      ])
      yield* Deferred.await(started)
      expect((yield* queue.cancel(task.id)).outcome).toBe("cancel_requested")
      // within 5 s: poll the outcome, never assert a duration more tightly than the requirement
      const deadline = (yield* Clock.currentTimeMillis) + 5000
      let status = (yield* get(task.id)).status
      while (status !== "cancelled" && (yield* Clock.currentTimeMillis) < deadline) {
        yield* Effect.sleep("200 millis")
        status = (yield* get(task.id)).status
      }
      expect(status).toBe("cancelled")
      expect(yield* Ref.get(finalized)).toBe(true)
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.provideMerge(Layer.merge(QueueLayer.layer(), layerWorkerServices()), Layer.provideMerge(ServerClockLayer.layer, s3Layer())))
    ), 60_000)

  it.live("with the host clock 10 minutes fast, a task scheduled 30 s ahead is not claimed early", () => {
    const config = s3Config()
    return Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("later", {}, { delayMs: 30_000 })
      const real = yield* Effect.clock
      const tenMinutes = Duration.toMillis(Duration.minutes(10))
      const skewed: Clock.Clock = {
        [Clock.ClockTypeId]: Clock.ClockTypeId,
        unsafeCurrentTimeMillis: () => real.unsafeCurrentTimeMillis() + tenMinutes,
        currentTimeMillis: Effect.map(real.currentTimeMillis, (t) => t + tenMinutes),
        unsafeCurrentTimeNanos: () => real.unsafeCurrentTimeNanos() + BigInt(tenMinutes) * 1_000_000n,
        currentTimeNanos: Effect.map(real.currentTimeNanos, (t) => t + BigInt(tenMinutes) * 1_000_000n),
        sleep: (d) => real.sleep(d)
      }
      // The worker's whole world runs on the wrong host clock; its ServerClock learns the offset from Date headers.
      const claims = yield* Effect.gen(function*() {
        // its own S3 client (same bucket and prefix): its requests are timed on the wrong clock
        const storage = yield* S3Storage.make(config)
        const serverClock = yield* ServerClockLayer.make().pipe(Effect.provideService(Storage, storage))
        const worker = yield* Worker.make({}, [Worker.handler("later", () => Effect.succeed("ok"))]).pipe(
          Effect.provideService(ServerClock, serverClock),
          Effect.provideService(Storage, storage)
        )
        const est = yield* serverClock.estimate
        expect(Math.abs(est.offsetMillis + tenMinutes)).toBeLessThan(5000)
        yield* Effect.sleep("8 seconds")
        return (yield* worker.stats).claimed
      }).pipe(Effect.withClock(skewed), Effect.scoped)
      expect(claims).toBe(0)
      expect((yield* get(task.id)).status).toBe("pending")
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.provideMerge(Layer.merge(QueueLayer.layer(), layerWorkerServices()), Layer.provideMerge(ServerClockLayer.layer, Layer.scoped(Storage, S3Storage.make(config)))))
    )
  }, 60_000)
})
