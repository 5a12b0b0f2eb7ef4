/**
 * A worker on a stack built by hand (`layerWorkerServices(config)`, with or without a Queue of its
 * own beside it) must poll the shards its queue writes to. It had no Queue to read the shard prefix
 * length from, so `Worker.make({})` fell back to 1 while the same config's scheduler and producers
 * wrote at 2: tasks nobody picked up, silently (found by the simulator). The worker now follows the
 * queue its services were built with, and a stack whose parts disagree on the layout is refused
 * with a typed error that says which parts and what to pass.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, Option, Ref } from "effect"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive } from "./support.js"

const job = (ran: Ref.Ref<number>) => [Worker.handler("job", () => Effect.as(Ref.update(ran, (n) => n + 1), { big: "x".repeat(300) }))]

describe("layerWorkerServices with a shard prefix length", () => {
  it.scoped("the worker on it runs tasks a producer with the same config submitted, and follows its other settings", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      const base = Layer.provideMerge(ServerClockLayer.layer, Layer.succeed(Storage, storage))
      const config = { shardPrefixLen: 2, payloadThresholdBytes: 100 }
      const q = Context.get(yield* Layer.build(QueueLayer.layer(config).pipe(Layer.provide(base))), Queue)
      const submitted = yield* q.submit("job", {})
      expect(submitted.shard).toHaveLength(2)
      const ran = yield* Ref.make(0)
      yield* Worker.make({ monitor: false }, job(ran)).pipe(
        Effect.provide(layerWorkerServices(config).pipe(Layer.provideMerge(base)))
      )
      yield* drive(Effect.map(q.get(submitted.id), (t) => Option.getOrThrow(t).status === "completed"), "100 millis", 600)
      expect(yield* Ref.get(ran)).toBe(1)
      // the 300-byte output went to payloads/, as the config's 100-byte threshold says
      expect((yield* storage.list("payloads/")).objects).toHaveLength(1)
    }))

  it.scoped("a Queue beside it at another prefix length: Worker.make refuses, naming both and what to pass", () =>
    Effect.gen(function*() {
      const stack = Layer.merge(QueueLayer.layer({ shardPrefixLen: 2 }), layerWorkerServices()).pipe(
        Layer.provideMerge(Layer.provideMerge(ServerClockLayer.layer, MemoryStorage.layer()))
      )
      const ran = yield* Ref.make(0)
      const refused = yield* Effect.either(Worker.make({ monitor: false }, job(ran)).pipe(Effect.provide(stack)))
      expect(Either.isLeft(refused)).toBe(true)
      const error = Either.getLeft(refused).pipe(Option.getOrThrow)
      expect(error).toMatchObject({ _tag: "InvalidWorkerOptions", option: "shardPrefixLen" })
      expect(error.message).toContain("the Queue in context writes at 2")
      expect(error.message).toContain("layerWorkerServices")
      expect(error.message).toContain("shardPrefixLen: 2")
    }))

  it.scoped("a shardPrefixLen option the services disagree with is refused too", () =>
    Effect.gen(function*() {
      const stack = layerWorkerServices({ shardPrefixLen: 2 }).pipe(
        Layer.provideMerge(Layer.provideMerge(ServerClockLayer.layer, MemoryStorage.layer()))
      )
      const ran = yield* Ref.make(0)
      const refused = yield* Effect.either(Worker.make({ shardPrefixLen: 1, monitor: false }, job(ran)).pipe(Effect.provide(stack)))
      const error = Either.getLeft(refused).pipe(Option.getOrThrow)
      expect(error).toMatchObject({ _tag: "InvalidWorkerOptions", option: "shardPrefixLen" })
      expect(error.message).toContain("polls at 1")
      // the same option with services that agree starts
      yield* Worker.make({ shardPrefixLen: 2, monitor: false }, job(ran)).pipe(Effect.provide(stack))
    }))
})
