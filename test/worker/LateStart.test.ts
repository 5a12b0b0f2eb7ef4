/**
 * A worker that got its claim's answer only after its lease was over (a GC pause, a VM freeze, a
 * response stuck in a retrying client) must not start the handler: the lease is gone, the monitor
 * may have handed the task to another worker, and the two would run at once. Found by the
 * deterministic simulation (seed 113 of `npm run sim`, issue 15).
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Option, Ref } from "effect"
import { taskKey } from "../../src/domain/Keys.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault, FaultInjector } from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { readTask } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { drive } from "./support.js"

const env = Layer.provideMerge(
  Layer.merge(QueueLayer.layer(), layerWorkerServices()),
  Layer.provideMerge(ServerClockLayer.layer, FaultyStorage.layer().pipe(Layer.provideMerge(MemoryStorage.layer())))
)

describe("Worker: a claim answered after its lease ended", () => {
  it.scoped("does not start the handler; the task runs once, later, under a valid lease", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const injector = yield* FaultInjector
      const clock = yield* ServerClock
      const task = yield* queue.submit("job", {}, { timeoutSeconds: 5, maxRetries: 3 })
      const key = taskKey(task.shard, task.id)
      // The claim's CAS lands, and its answer arrives 30 s later: the 5 s lease is long over.
      yield* injector.addRule({ operation: "put", key, condition: "ifMatch", timing: "after", fault: Fault.delay("30 seconds") })
      const starts = yield* Ref.make<ReadonlyArray<{ readonly attempt: number; readonly late: boolean }>>([])
      yield* Worker.make({ wakeUp: false, monitor: { checkInterval: "2 seconds" } }, [
        Worker.handler("job", (_input, ctx) =>
          Effect.gen(function*() {
            const now = yield* clock.currentTimeMillis
            const end = ctx.task.leaseExpiresAt === null ? 0 : DateTime.toEpochMillis(ctx.task.leaseExpiresAt)
            yield* Ref.update(starts, (s) => [...s, { attempt: ctx.attempt, late: now >= end }])
            return "ok"
          }))
      ])
      const done = readTask(key).pipe(
        Effect.provideService(Storage, injector.underlying),
        Effect.map((found) => Option.isSome(found) && found.value.task.status === "completed")
      )
      yield* drive(done, "500 millis", 600)
      const seen = yield* Ref.get(starts)
      expect(seen.filter((s) => s.late)).toEqual([])
      expect(seen.length).toBe(1)
      expect((yield* injector.injected).filter((f) => f.source === "scripted").map((f) => f.kind)).toEqual(["Delay"])
    }).pipe(Effect.provide(env)))
})
