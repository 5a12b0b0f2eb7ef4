/**
 * Issue 16 item 14: priority is global, not per shard. Fifteen priority-0 tasks in fifteen shards,
 * then one priority-100 task in the sixteenth: an idle worker with one slot runs the priority-100
 * task first (the worker id makes its shard rotation start at shard 9, not at the urgent task's
 * shard, so a per-shard order would run it last). On MemoryStorage and on the real S3 server.
 * (The pass's LIST cost is asserted in DiscoveryProbe.test.ts.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Ref } from "effect"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as Worker from "../../src/programs/Worker.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import type { Storage } from "../../src/services/Storage.js"
import { describeS3, s3Layer } from "../support/s3.js"
import { idInShard, queueLayer, seedTask } from "./support.js"

const shards = [..."0123456789abcdef"]
const urgentShard = "7"

const scenario = Effect.gen(function*() {
  const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
  const plain = yield* Effect.forEach(
    shards.filter((s) => s !== urgentShard),
    (shard) => seedTask(idInShard(shard, 1), "job", now),
    { concurrency: 4 }
  )
  const urgent = yield* seedTask(idInShard(urgentShard, 1), "job", now, {}, 100)
  const order = yield* Ref.make<ReadonlyArray<string>>([])
  const done = yield* Deferred.make<void>()
  yield* Worker.make({ id: "prio-w", concurrency: 1, monitor: false, shardPrefixLen: 1 }, [
    Worker.handler("job", (_input, ctx) =>
      Ref.updateAndGet(order, (o) => [...o, ctx.taskId]).pipe(
        Effect.tap((o) => (o.length === plain.length + 1 ? Deferred.succeed(done, undefined) : Effect.void)),
        Effect.as({})
      ))
  ])
  yield* Deferred.await(done)
  const ran = yield* Ref.get(order)
  expect(ran.indexOf(urgent.id), `order: ${ran.join(", ")}`).toBe(0)
  expect(new Set(ran)).toEqual(new Set([urgent.id, ...plain.map((t) => t.id)]))
}).pipe(Effect.scoped)

const run = (storage: Layer.Layer<Storage, unknown>) => scenario.pipe(Effect.provide(queueLayer(storage)))

describe("priority across shards", () => {
  it.live("an idle one-slot worker runs the priority-100 task before 15 earlier priority-0 tasks (memory)", () =>
    run(MemoryStorage.layer()), 30_000)
})

describeS3("priority across shards on RGW", () => {
  it.live("an idle one-slot worker runs the priority-100 task before 15 earlier priority-0 tasks (RGW)", () =>
    run(s3Layer()), 60_000)
})
