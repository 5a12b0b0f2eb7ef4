/**
 * Tasks moved by the reference's `migrate-shards` keep their old `shard` field (the reference's
 * tool copies the object to the new key without rewriting the body, reference §1 and §2.2): a
 * body whose `id` is the one its key names and whose `shard` is a shard of that id at another
 * prefix length is the task at its key, with the key's shard (issue 15). A shard that is no
 * shard of the id is still refused (test/trust/StoredTask.memory.test.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import { Effect, Layer, Option, Stream } from "effect"
import { utf8 } from "../../src/domain/Codec.js"
import { readyKey, taskKey } from "../../src/domain/Keys.js"
import { bucketOf } from "../../src/domain/Shard.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, hasStatus } from "../worker/support.js"

/** A store at shard prefix length 2, as after `migrate-shards --from 1 --to 2`. */
const layer = Layer.provideMerge(
  Layer.merge(QueueLayer.layer({ shardPrefixLen: 2 }), layerWorkerServices({ shardPrefixLen: 2 })),
  Layer.provideMerge(ServerClockLayer.layer, MemoryStorage.layer())
)

/** A pending task's JSON exactly as the reference writes it (§2.2: every field, snake_case, nulls present). */
const referenceBody = (id: string, shard: string, at: string) => ({
  id,
  shard,
  task_type: "job",
  input: { n: 1 },
  output: null,
  timeout_seconds: 300,
  max_retries: 3,
  retry_count: 0,
  retry_policy: { initial_interval_ms: 1000, max_interval_ms: 60000, multiplier: 2.0, jitter_percent: 0.25 },
  status: "pending",
  created_at: at,
  updated_at: at,
  available_at: at,
  lease_expires_at: null,
  lease_id: null,
  attempt: 0,
  completed_at: null,
  worker_id: null,
  last_error: null,
  reschedule_count: 0,
  cancel_requested: false
})

/** Stores a reference task at its prefix-2 key whose body still says the prefix-1 shard, with its ready marker. */
const plantMigrated = Effect.gen(function*() {
  const storage = yield* Storage
  const now = yield* Effect.flatMap(ServerClock, (c) => c.currentTimeMillis)
  const id = randomUUID()
  const newShard = id.slice(0, 2)
  const key = taskKey(newShard, id)
  yield* storage.put(key, utf8(JSON.stringify(referenceBody(id, id.slice(0, 1), new Date(now).toISOString()))))
  yield* storage.put(readyKey(newShard, bucketOf(now), id), new Uint8Array(0))
  return { id, key, newShard }
})

describe("a task migrated by the reference's migrate-shards", () => {
  it.effect("reads as the task at its key, with the key's shard; list counts it, not as malformed", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const { id, newShard } = yield* plantMigrated
      const task = Option.getOrThrow(yield* queue.get(id))
      expect(task.id).toBe(id)
      expect(task.shard).toBe(newShard)
      const page = yield* queue.list({})
      expect(page.malformed).toEqual([])
      expect(page.tasks.map((t) => t.id)).toEqual([id])
    }).pipe(Effect.provide(layer)))

  it.scoped("a worker runs it, and the body it writes back carries the key's shard", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const { id, key, newShard } = yield* plantMigrated
      yield* Worker.make({ wakeUp: false }, [Worker.handler("job", (input) => Effect.succeed({ got: input }))])
      yield* drive(hasStatus(id, "completed"))
      const stored = JSON.parse(new TextDecoder().decode(Option.getOrThrow(yield* storage.get(key)).body))
      expect(stored.shard).toBe(newShard)
      expect(stored.output).toEqual({ got: { n: 1 } })
      // nothing was written under the old shard
      const keys = yield* Stream.runCollect(storage.listAll(""))
      expect([...keys].map((m) => m.key).filter((k) => k.startsWith(`tasks/${id.slice(0, 1)}/`))).toEqual([])
    }).pipe(Effect.provide(layer)))

  it.effect("a shard that is no shard of its id is still malformed", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const id = randomUUID()
      const other = id[0] === "a" ? "b" : "a"
      const key = taskKey(id.slice(0, 2), id)
      yield* storage.put(key, utf8(JSON.stringify(referenceBody(id, other, new Date().toISOString()))))
      const error = yield* Effect.flip(queue.get(id))
      expect(error._tag).toBe("MalformedObject")
      expect(error.message).toContain(key)
    }).pipe(Effect.provide(layer)))
})
