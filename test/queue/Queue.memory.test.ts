import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, TestClock } from "effect"
import * as QueueLayer from "../../src/layers/Queue.js"
import { Queue } from "../../src/services/Queue.js"
import { withQueue } from "./support/harness.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import { queueSuite } from "./suite.js"

queueSuite({ name: "MemoryStorage + TestClock", realServer: false, storage: () => MemoryStorage.layer() })

describe("Queue: history on a versioned bucket", () => {
  it.effect("lists the stored versions too, newest first, decoded", () =>
    withQueue({ name: "versioned", realServer: false, storage: () => MemoryStorage.layer({ versioning: true }) })(
      Effect.gen(function*() {
        const queue = yield* Queue
        const task = yield* queue.submit("t", 1)
        yield* queue.cancel(task.id)
        yield* queue.archive(task.id)
        const h = yield* queue.history(task.id)
        expect(h.events.map((e) => e.to)).toEqual(["pending", "cancelled", "archived"])
        expect(h.versions.map((v) => v.task?.status)).toEqual(["archived", "cancelled", "pending"])
        expect(h.versions[0]!.isLatest).toBe(true)
      })
    ))
})

describe("Queue.layerOn", () => {
  it.effect("builds Queue + ServerClock on a storage layer; time is TestClock's", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      yield* TestClock.adjust("90 seconds")
      const task = yield* queue.submit("t", { ok: true })
      expect(DateTime.toEpochMillis(task.createdAt)).toBe(90_000)
      expect(queue.config.shardPrefixLen).toBe(2)
      expect(task.shard.length).toBe(2)
    }).pipe(Effect.provide(QueueLayer.layerOn(MemoryStorage.layer(), { shardPrefixLen: 2 }))))

  it.effect("refuses a bad configuration with a clear error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.provide(Queue, QueueLayer.layerOn(MemoryStorage.layer(), { shardPrefixLen: 5 })))
      expect(error._tag).toBe("InvalidArgument")
      expect(error.message).toContain("shardPrefixLen must be an integer from 1 to 4")
    }))
})
