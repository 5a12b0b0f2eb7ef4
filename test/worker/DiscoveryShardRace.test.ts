/**
 * Workers listing the same shard at once (Discovery.ts, the per-shard LIST of a busy pass): they
 * must not walk its page in the same order, each losing the race for the markers another reached
 * first (4 × 8 on MemoryStorage: 0.64 lost claim CAS per task, nearly all on this path), and a
 * worker that finds a shard being worked through by another leaves it the rest for this pass.
 * MemoryStorage; the other worker's pass runs between our LIST and our tries.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { ReadyEntry } from "../../src/domain/ReadyIndex.js"
import * as Claim from "../../src/programs/worker/Claim.js"
import * as Discovery from "../../src/programs/worker/Discovery.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { idInShard, interleavedFirstBatches, jobClaimEnv, queueLayer, seedTask } from "./support.js"

const env = queueLayer()

/** `n` due tasks, all in shard 3 (one shard polled: no probe, the per-shard LIST). */
const seed = (n: number) =>
  Effect.gen(function*() {
    const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
    const ids: Array<string> = []
    for (let i = 0; i < n; i++) ids.push((yield* seedTask(idInShard("3", 1 + i), "job", now)).id)
    return ids
  })

/** Free slots: `n` until `n` tries have started (one batch per pass). */

describe("Discovery: workers listing the same shard at once", () => {
  it.effect("try different markers, not the page's first ones in key order", () =>
    Effect.gen(function*() {
      yield* seed(64)
      // the other worker listed the shard when we did: its batch runs before ours
      const { mine, othersClaimed, result, theirs } = yield* interleavedFirstBatches(
        Discovery.make({ shards: ["3"] }),
        Discovery.make({ shards: ["3"] })
      )
      expect(othersClaimed).toBe(8)
      expect(mine.length).toBe(8)
      // in key order both batches were the same 8 markers: 8 lost races
      const both = mine.filter((id) => theirs.includes(id)).length
      expect(both).toBeLessThanOrEqual(2)
      expect(result.claimed).toBe(8 - both)
    }).pipe(Effect.provide(env)))

  it.effect("a worker finding a quarter of a batch taken elsewhere leaves the shard (more: true) instead of trying the rest", () =>
    Effect.gen(function*() {
      yield* seed(32)
      const ours = Discovery.make({ shards: ["3"] })
      const other = Discovery.make({ shards: ["3"] })
      let tries = 0
      const attempt = (entry: ReadyEntry) =>
        Effect.gen(function*() {
          if (tries++ === 0) {
            // after our LIST, the other worker claims all but the task we try first
            yield* other.pass(
              Effect.succeed(100),
              (e) =>
                e.taskId === entry.taskId
                  ? Effect.succeed<Claim.ClaimOutcome>({ _tag: "Skip", until: Number.POSITIVE_INFINITY, reason: "unhandled" })
                  : Claim.tryClaim(e, jobClaimEnv("other")),
              () => Effect.void
            )
          }
          return yield* Claim.tryClaim(entry, jobClaimEnv("ours"))
        })
      // one slot, always free again (a no-op task settles before the next batch)
      const result = yield* ours.pass(Effect.succeed(1), attempt, () => Effect.void)
      expect(result.claimed).toBe(1)
      // the first try won, the second found its task taken: not the other 30 markers of the page
      expect(tries).toBe(2)
      expect(result.more).toBe(true)
    }).pipe(Effect.provide(env)))

  it.effect("a worker alone still takes the whole shard in one pass, highest priority first", () =>
    Effect.gen(function*() {
      const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
      yield* seed(20)
      const urgent = yield* seedTask(idInShard("3", 999), "job", now, {}, 5)
      const ours = Discovery.make({ shards: ["3"] })
      const order: Array<string> = []
      const result = yield* ours.pass(Effect.succeed(1), (entry) => {
        order.push(entry.taskId)
        return Claim.tryClaim(entry, jobClaimEnv("ours"))
      }, () => Effect.void)
      expect(result).toMatchObject({ claimed: 21, lists: 1 })
      expect(order[0]).toBe(urgent.id)
      const again = yield* ours.pass(Effect.succeed(1), (entry) => Claim.tryClaim(entry, jobClaimEnv("ours")), () => Effect.void)
      expect(again.claimed).toBe(0)
    }).pipe(Effect.provide(env)))
})
