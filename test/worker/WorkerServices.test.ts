/**
 * `layerWorkerServices(config)` for a stack built by hand: the worker on it must poll the shards the
 * config's queue writes to. It gave the worker no Queue, so `Worker.make` fell back to prefix length
 * 1 while its scheduler (and any producer with the same config) wrote at 2: tasks nobody picked up.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Ref } from "effect"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive } from "./support.js"

describe("layerWorkerServices with a shard prefix length", () => {
  it.scoped("the worker on it runs tasks a producer with the same config submitted", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      const base = Layer.provideMerge(ServerClockLayer.layer, Layer.succeed(Storage, storage))
      const q = Context.get(yield* Layer.build(QueueLayer.layer({ shardPrefixLen: 2 }).pipe(Layer.provide(base))), Queue)
      const submitted = yield* q.submit("job", {})
      expect(submitted.shard).toHaveLength(2)
      const ran = yield* Ref.make(0)
      yield* Worker.make({}, [Worker.handler("job", () => Ref.update(ran, (n) => n + 1))]).pipe(
        Effect.provide(layerWorkerServices({ shardPrefixLen: 2 }).pipe(Layer.provideMerge(base)))
      )
      yield* drive(Effect.map(q.get(submitted.id), (t) => Option.getOrThrow(t).status === "completed"), "100 millis", 600)
      expect(yield* Ref.get(ran)).toBe(1)
    }))
})
