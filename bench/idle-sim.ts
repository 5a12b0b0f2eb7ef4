/**
 * An idle worker-hour, simulated exactly: the Worker on MemoryStorage with Effect's TestClock,
 * driven through 60 simulated minutes in 1 s steps, every request counted by CountingStorage.
 * It complements the real-time window on RGW, which is too short to contain the slow periodic
 * work (safety-net passes every 20 min). Two configurations: the worker alone, and the worker
 * with the Monitor beside it (defaults), which is what `buquet worker` runs unless told not to.
 *
 * @module
 */
import { Effect, Layer, Logger, LogLevel, TestClock, TestContext } from "effect"
import * as CountingStorage from "../src/layers/CountingStorage.js"
import type { RequestCounts } from "../src/layers/CountingStorage.js"
import * as MemoryStorage from "../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../src/layers/ServerClock.js"
import * as Monitor from "../src/programs/Monitor.js"
import * as Worker from "../src/programs/Worker.js"
import { Storage } from "../src/services/Storage.js"
import { round } from "./lib/env.js"

export interface IdleSimResult {
  readonly simulatedMinutes: number
  readonly counts: RequestCounts
  readonly putPlusListPerHour: number
  readonly getPlusHeadPerSec: number
  /** The same hour with the Monitor (defaults) running beside the worker. */
  readonly withMonitor: { readonly counts: RequestCounts; readonly putPlusListPerHour: number; readonly getPlusHeadPerSec: number } | { readonly error: string }
}

type SimCounts = { readonly counts: RequestCounts; readonly putPlusListPerHour: number; readonly getPlusHeadPerSec: number }

const simulate = (withMonitor: boolean, minutes: number, done: (r: SimCounts) => void) =>
  Effect.gen(function*() {
    const memory = yield* MemoryStorage.make()
    const { counter, storage } = yield* CountingStorage.make(memory)
    const layer = ServerClockLayer.layer.pipe(Layer.provideMerge(Layer.succeed(Storage, storage)), Layer.orDie)
    yield* Effect.gen(function*() {
      yield* Worker.make({ concurrency: 8 }, [Worker.handler("noop", () => Effect.void)])
      if (withMonitor) yield* Monitor.make({}).pipe(Effect.orDie)
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

const runSim = (withMonitor: boolean, minutes: number): Promise<SimCounts> =>
  new Promise((resolve, reject) => {
    const fiber = Effect.runFork(simulate(withMonitor, minutes, resolve))
    fiber.addObserver((exit) => {
      if (exit._tag === "Failure") reject(new Error(String(exit.cause)))
    })
  })

export const simulateIdleHour = async (minutes = 60): Promise<IdleSimResult> => {
  const alone = await runSim(false, minutes)
  const monitored = await runSim(true, minutes).catch((e: unknown) => ({ error: String(e) }))
  return { simulatedMinutes: minutes, ...alone, withMonitor: monitored }
}
