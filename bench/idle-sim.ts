/**
 * An idle worker-hour, simulated exactly: the Worker on MemoryStorage with Effect's TestClock,
 * driven through 60 simulated minutes in 1 s steps, every request counted by CountingStorage.
 * It complements the real-time window on RGW, which is too short to contain the slow periodic
 * work (safety-net passes every 20 min, the quiet monitor's walks every 10 min). Two
 * configurations, both with the defaults `buquet worker` runs with (the monitor embedded): the
 * worker alone (so its monitor is the bucket's leader), and a worker whose monitor is a standby
 * (another worker, not counted, leads). A third hour measures a big bucket: 150,000 finished
 * tasks swept once by an earlier leader (not counted), then led by a new worker whose memory cache
 * is empty (as after any leader change): it must hold the same budget (issue 15 fix 13).
 *
 * @module
 */
import { Effect, Layer, Logger, LogLevel, TestClock, TestContext } from "effect"
import * as CountingStorage from "../src/layers/CountingStorage.js"
import type { RequestCounts } from "../src/services/RequestCounter.js"
import * as MemoryStorage from "../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../src/layers/ServerClock.js"
import * as Sweeper from "../src/programs/monitor/Sweeper.js"
import * as Worker from "../src/programs/Worker.js"
import { Storage } from "../src/services/Storage.js"
import { round } from "./lib/env.js"
import { layerWorkerServices } from "../src/Buquet.js"
import { seedFinished } from "./lib/seed.js"

export interface IdleSimResult {
  readonly simulatedMinutes: number
  readonly counts: RequestCounts
  readonly putPlusListPerHour: number
  readonly getPlusHeadPerSec: number
  /** The same hour for a worker whose embedded monitor is a standby (another worker leads). */
  readonly asStandby: { readonly counts: RequestCounts; readonly putPlusListPerHour: number; readonly getPlusHeadPerSec: number } | { readonly error: string }
  /** The same hour for a new leader over a bucket of `finishedTasks` finished tasks (absent in older results). */
  readonly bigBucket?: (SimCounts & { readonly finishedTasks: number }) | { readonly error: string } | undefined
}

type SimCounts = { readonly counts: RequestCounts; readonly putPlusListPerHour: number; readonly getPlusHeadPerSec: number }

const simulate = (asStandby: boolean, minutes: number, done: (r: SimCounts) => void, finishedTasks = 0) =>
  Effect.gen(function*() {
    const memory = yield* MemoryStorage.make()
    const { counter, storage } = yield* CountingStorage.make(memory)
    const layer = Layer.provideMerge(layerWorkerServices(), ServerClockLayer.layer.pipe(Layer.provideMerge(Layer.succeed(Storage, storage)))).pipe(Layer.orDie)
    if (finishedTasks > 0) {
      // an earlier leader's full pass over the finished tasks (not counted; it leaves the checkpoints)
      yield* seedFinished(memory, finishedTasks, false)
      yield* Effect.flatMap(Sweeper.make(), (s) => s.fullSweep).pipe(
        Effect.provide(ServerClockLayer.layer.pipe(Layer.provideMerge(Layer.succeed(Storage, memory)))),
        Effect.orDie
      )
      yield* TestClock.adjust("10 minutes")
    }
    yield* Effect.gen(function*() {
      if (asStandby) {
        // the leader: another worker on the same bucket, its requests not counted
        yield* Worker.make({ concurrency: 8, id: "leader" }, [Worker.handler("noop", () => Effect.void)]).pipe(
          Effect.provideService(Storage, memory)
        )
        for (let i = 0; i < 5; i++) yield* TestClock.adjust("1 second")
      }
      yield* Worker.make({ concurrency: 8 }, [Worker.handler("noop", () => Effect.void)])
      // settle into the idle state, then count one hour
      for (let i = 0; i < 30; i++) yield* TestClock.adjust("1 second")
      yield* counter.reset
      for (let i = 0; i < minutes * 60; i++) yield* TestClock.adjust("1 second")
      const counts = yield* counter.snapshot
      const hours = minutes / 60
      // hand the result out now: the graceful shutdown at scope close waits on simulated time
      // that nobody advances any more, and is of no interest here
      done({
        counts,
        putPlusListPerHour: round((counts.PUT + counts.LIST + counts["LIST-VERSIONS"]) / hours),
        getPlusHeadPerSec: round((counts.GET + counts.HEAD) / (minutes * 60), 3)
      })
    }).pipe(Effect.provide(layer))
  }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning), Effect.provide(TestContext.TestContext))

const runSim = (asStandby: boolean, minutes: number, finishedTasks = 0): Promise<SimCounts> =>
  new Promise((resolve, reject) => {
    const fiber = Effect.runFork(simulate(asStandby, minutes, resolve, finishedTasks))
    fiber.addObserver((exit) => {
      if (exit._tag === "Failure") reject(new Error(String(exit.cause)))
    })
  })

export const simulateIdleHour = async (minutes = 60): Promise<IdleSimResult> => {
  const alone = await runSim(false, minutes)
  const standby = await runSim(true, minutes).catch((e: unknown) => ({ error: String(e) }))
  const finishedTasks = 150_000
  const bigBucket = await runSim(false, minutes, finishedTasks).then(
    (r) => ({ ...r, finishedTasks }),
    (e: unknown) => ({ error: String(e) })
  )
  return { simulatedMinutes: minutes, ...alone, asStandby: standby, bigBucket }
}
