/**
 * Seeds a big bucket quickly for the idle-cost scenarios (bench/idle-sim.ts and
 * test/worker/IdleCost.big.test.ts): finished tasks written straight into a store.
 *
 * @module
 */
import { DateTime, Effect, TestClock } from "effect"
import { encodeObject } from "../../src/domain/Codec.js"
import { taskKey } from "../../src/domain/Keys.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import { shardOf } from "../../src/domain/Shard.js"
import { Task } from "../../src/domain/Task.js"
import { TerminalCheckpoint, terminalCheckpointKey, TerminalEntry } from "../../src/domain/TerminalCheckpoint.js"
import * as Tr from "../../src/domain/Transitions.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import type { StorageService } from "../../src/services/Storage.js"

/**
 * Writes `n` completed tasks straight into the store (no markers: terminal tasks need none), and,
 * with `checkpoints`, the per-shard checkpoints an earlier leader's pass leaves (as the Sweeper
 * test proves it does).
 */
export const seedFinished = (storage: StorageService, n: number, checkpoints: boolean) =>
  Effect.gen(function*() {
    const now = DateTime.unsafeMake(yield* TestClock.currentTimeMillis)
    const template = Tr.newTask({
      id: "00000000-0000-4000-8000-000000000000",
      shard: "0",
      taskType: "job",
      input: { i: 0 },
      now,
      availableAt: now,
      timeoutSeconds: 30,
      maxRetries: 3,
      retryPolicy: RetryPolicy.default
    })
    const done = new Task({ ...template, status: "completed", output: "ok", completedAt: now })
    const json = new TextDecoder().decode(encodeObject(Task, done))
    const hex = (i: number) => i.toString(16).padStart(12, "0")
    // ids spread over every shard (the first hex digits vary fastest), written in key order (fast to insert)
    const ids = Array.from({ length: n }, (_, i) => {
      const h = hex(i).split("").reverse().join("")
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4000-8000-${hex(i)}`
    }).sort()
    const encoder = new TextEncoder()
    const byShard = new Map<string, Array<TerminalEntry>>()
    yield* Effect.forEach(ids, (id) => {
      const shard = shardOf(id, 1)
      const body = encoder.encode(json.replaceAll(template.id, id).replace(`"shard":"0"`, `"shard":"${shard}"`))
      if (checkpoints) {
        const list = byShard.get(shard) ?? []
        list.push(new TerminalEntry({ i: id, e: MemoryStorage.md5ETag(body), s: "completed", u: DateTime.toEpochMillis(now) }))
        byShard.set(shard, list)
      }
      return storage.put(taskKey(shard, id), body)
    }, { discard: true })
    for (const [shard, entries] of byShard) {
      yield* storage.put(terminalCheckpointKey(shard), encodeObject(TerminalCheckpoint, new TerminalCheckpoint({ shard, entries })))
    }
    return ids
  })

