/**
 * A ready marker left beside a running task (its claimer died between the claim's CAS and the
 * marker DELETE) cannot be deleted by a worker until it is provably stale, so idle workers keep
 * finding it. Each look costs a GET of the task: it must not cost one per worker every 10 s for as
 * long as the task runs — the deterministic simulation (seed 119 of `npm run sim`, issue 15) saw 245
 * GETs of one task in 13 minutes while a quiet monitor's leader lease ran out. The wait between two
 * looks grows with how long the marker has been seen busy, as it does for a missing task.
 * Runs on the simulation's virtual runtime (virtual time, run to quiescence).
 */
import { Effect, Exit, Layer, Option } from "effect"
import { describe, expect, it } from "vitest"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { taskKey } from "../../src/domain/Keys.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { readTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"
import { runVirtual } from "../sim/VirtualRuntime.js"

const scenario = Effect.gen(function*() {
  const memory = yield* MemoryStorage.make()
  const on = (storage: StorageService) =>
    Layer.provideMerge(Layer.merge(QueueLayer.layer(), layerWorkerServices()), Layer.provideMerge(ServerClockLayer.layer, Layer.succeed(Storage, storage)))
  const services = yield* Layer.build(on(memory))
  const queue = yield* Queue.pipe(Effect.provide(services))
  const task = yield* queue.submit("job", {}, { timeoutSeconds: 3600 })
  const key = taskKey(task.shard, task.id)
  const noMonitor: Worker.WorkerOptions = { wakeUp: false, monitor: false }
  // a runs the task for an hour
  yield* Worker.make({ ...noMonitor, id: "a" }, [Worker.handler("job", () => Effect.as(Effect.sleep("1 hour"), "ok"))]).pipe(
    Effect.provide(services)
  )
  for (let i = 0; i < 100; i++) {
    const found = yield* readTask(key).pipe(Effect.provideService(Storage, memory))
    if (found._tag === "Some" && found.value.task.status === "running") break
    yield* Effect.sleep("100 millis")
  }
  // the claim's marker DELETE never happened: the marker is back beside the running task
  yield* writeMarker(readyMarkerKey(task)).pipe(Effect.provideService(Storage, memory))
  // b idles beside it for 10 minutes; every GET of the task is counted
  let reads = 0
  const counting: StorageService = {
    ...memory,
    get: (k) => Effect.zipRight(Effect.sync(() => k === key && reads++), memory.get(k))
  }
  yield* Worker.make({ ...noMonitor, id: "b" }, [Worker.handler("job", () => Effect.succeed("ok"))]).pipe(
    Effect.provide(yield* Layer.build(on(counting)))
  )
  yield* Effect.sleep("10 minutes")
  const status = Option.getOrThrow(yield* readTask(key).pipe(Effect.provideService(Storage, memory))).task.status
  return { reads, status }
}).pipe(Effect.scoped)

describe("Discovery: a ready marker beside a running task", () => {
  it("is looked at less and less often: an idle worker reads the task at most 10 times in 10 minutes", async () => {
    const exit = await runVirtual(scenario)
    const { reads, status } = Exit.getOrElse(exit, (cause) => {
      throw new Error(String(cause))
    })
    expect(status).toBe("running")
    expect(reads).toBeGreaterThan(0)
    expect(reads).toBeLessThanOrEqual(10)
  }, 60_000)
})
