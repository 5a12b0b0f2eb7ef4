/**
 * Issue 17 item 3: discovery's cost follows the work, not the shard count. At shard prefix length
 * 3 (4,096 shards) with 1,500 ready tasks (more than one LIST page), a pass walks `ready/` page by
 * page instead of LISTing the shards one by one: at most 20 LISTs per pass, busy or idle.
 * MemoryStorage + CountingStorage: request counts, not time.
 */
import { describe, expect, it } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import { Effect, Layer } from "effect"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { allShards } from "../../src/domain/Shard.js"
import * as Tr from "../../src/domain/Transitions.js"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import { RequestCounter } from "../../src/services/RequestCounter.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Claim from "../../src/programs/worker/Claim.js"
import * as Discovery from "../../src/programs/worker/Discovery.js"
import { createTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import { exactPolicy } from "./support.js"

const env = Layer.provideMerge(
  Layer.merge(QueueLayer.layer(), layerWorkerServices()),
  Layer.provideMerge(ServerClockLayer.layer, Layer.provideMerge(CountingStorage.layer, MemoryStorage.layer()))
)

const claimEnv: Claim.ClaimEnv = {
  workerId: "walk-test",
  handles: (taskType) => taskType === "job",
  isPaused: () => Effect.succeed(false),
  admit: () => Effect.succeed(true)
}

/** A due task in the prefix-length-3 shard its id names (marker first, like submit). */
const seedDue = Effect.gen(function*() {
  const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
  const id = randomUUID()
  const task = Tr.newTask({ id, shard: id.slice(0, 3), taskType: "job", input: {}, now, availableAt: now, timeoutSeconds: 30, maxRetries: 3, retryPolicy: exactPolicy })
  yield* writeMarker(readyMarkerKey(task))
  yield* createTask(task)
})

describe("Discovery walk at big prefix lengths", () => {
  it.effect("4,096 shards, 1,500 ready tasks: ≤ 20 LISTs per pass (idle, then busy passes), every pass claims", () =>
    Effect.gen(function*() {
      yield* Effect.forEach(Array.from({ length: 1500 }), () => seedDue, { discard: true })
      const counter = yield* RequestCounter
      const discovery = Discovery.make({ shards: allShards(3) })
      for (let i = 0; i < 3; i++) {
        yield* counter.reset
        let taken = 0
        const result = yield* discovery.pass(
          Effect.sync(() => 32 - taken),
          (entry) => Claim.tryClaim(entry, claimEnv),
          () => Effect.sync(() => void taken++)
        )
        const lists = (yield* counter.take).LIST
        expect(result.lists).toBe(lists)
        expect(lists, `pass ${i}`).toBeLessThanOrEqual(20)
        expect(result.claimed).toBeGreaterThan(0)
      }
    }).pipe(Effect.provide(env)), 60_000)
})
