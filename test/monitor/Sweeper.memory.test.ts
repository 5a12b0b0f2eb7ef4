/** The sweeper scenario (acceptance 3, scaled down) on MemoryStorage with TestClock. */
import { describe, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { sweepScenario } from "./sweepScenario.js"

describe("Sweeper (MemoryStorage + TestClock)", () => {
  it.effect("one full sweep repairs removed markers and deletes planted stale ones; a restart resumes the pass", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("1000 days")
      yield* sweepScenario({ terminal: 1000, pending: 100, running: 20 }, 8).pipe(
        Effect.provide(ServerClockLayer.layer.pipe(Layer.provideMerge(MemoryStorage.layer())))
      )
    }), 60_000)
})
