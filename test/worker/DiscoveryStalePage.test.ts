/**
 * A probe page shared by a fleet goes stale (Discovery.ts): every worker reads the same page of
 * `ready/` and claims from it, so a worker that walks its page to the end finds most of it taken
 * by the others, paying a GET (and a DELETE) per taken marker. Once a try finds its task taken
 * elsewhere, the pass stops and the next one lists again. MemoryStorage; the other worker's claims
 * are made between our probe and our tries.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import type { ReadyEntry } from "../../src/domain/ReadyIndex.js"
import * as Claim from "../../src/programs/worker/Claim.js"
import * as Discovery from "../../src/programs/worker/Discovery.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { getTask, idInShard, jobClaimEnv, queueLayer, seedTask } from "./support.js"

const sixteen = [..."0123456789abcdef"]

const env = queueLayer()

const seed = (n: number) =>
  Effect.gen(function*() {
    const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
    const ids: Array<string> = []
    for (let i = 0; i < n; i++) ids.push((yield* seedTask(idInShard(sixteen[i % 16]!, 1 + Math.floor(i / 16)), "job", now)).id)
    return ids
  })

describe("Discovery: a shared probe page going stale", () => {
  it.effect("once a try finds its task taken by another worker, the pass stops (more: true) instead of walking the page", () =>
    Effect.gen(function*() {
      const ids = yield* seed(20)
      const ours = Discovery.make({ shards: sixteen })
      const other = Discovery.make({ shards: sixteen })
      const tried: Array<string> = []
      let othersClaimed = 0
      const attempt = (entry: ReadyEntry) =>
        Effect.gen(function*() {
          if (tried.length === 0) {
            // after our probe, the other worker claims every task but the one we try first
            const r = yield* other.pass(
              Effect.succeed(100),
              (e) =>
                e.taskId === entry.taskId
                  ? Effect.succeed<Claim.ClaimOutcome>({ _tag: "Skip", until: Number.POSITIVE_INFINITY, reason: "unhandled" })
                  : Claim.tryClaim(e, jobClaimEnv("other")),
              () => Effect.void
            )
            othersClaimed = r.claimed
          }
          tried.push(entry.taskId)
          return yield* Claim.tryClaim(entry, jobClaimEnv("ours"))
        })
      // one free slot, always free again (a no-op task settles before the next batch)
      const result = yield* ours.pass(Effect.succeed(1), attempt, () => Effect.void)
      expect(othersClaimed).toBe(19)
      expect(result.claimed).toBe(1)
      // the first try won; the second found its task taken: no third
      expect(tried.length).toBe(2)
      expect(result.more).toBe(true)
      // the next pass lists again and finds nothing left to try
      const next = yield* ours.pass(Effect.succeed(1), attempt, () => Effect.void)
      expect(next.claimed).toBe(0)
      expect(tried.length).toBe(2)
      const statuses = yield* Effect.forEach(ids, (id) => Effect.map(getTask(id), (t) => t.status))
      expect(statuses.every((s) => s === "running")).toBe(true)
    }).pipe(Effect.provide(env)))

  it.effect("a worker alone walks its whole page in one pass (no stale evidence, no extra LIST)", () =>
    Effect.gen(function*() {
      yield* seed(20)
      const ours = Discovery.make({ shards: sixteen })
      let tries = 0
      const result = yield* ours.pass(Effect.succeed(1), (entry) => {
        tries++
        return Claim.tryClaim(entry, jobClaimEnv("ours"))
      }, () => Effect.void)
      expect(result).toMatchObject({ claimed: 20, lists: 1 })
      expect(tries).toBe(20)
    }).pipe(Effect.provide(env)))

  it.effect("a won claim's handler starts at once, not when the slowest claim of its batch has answered", () =>
    Effect.gen(function*() {
      yield* seed(2)
      const ours = Discovery.make({ shards: sixteen })
      const gate = yield* Deferred.make<void>()
      const firstAnswered = yield* Deferred.make<void>()
      const startedIds: Array<string> = []
      let calls = 0
      const attempt = (entry: ReadyEntry) =>
        Effect.gen(function*() {
          // the second claim of the batch is slow: it answers only once the gate opens
          const slow = calls++ === 1
          if (slow) yield* Deferred.await(gate)
          const outcome = yield* Claim.tryClaim(entry, jobClaimEnv("ours"))
          if (!slow) yield* Deferred.succeed(firstAnswered, undefined)
          return outcome
        })
      const fiber = yield* Effect.fork(ours.pass(Effect.succeed(2), attempt, (claimed) => Effect.sync(() => void startedIds.push(claimed.held.task.id))))
      yield* Deferred.await(firstAnswered)
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      // the first claim was won while the second is still out: its handler has started
      expect(startedIds.length).toBe(1)
      yield* Deferred.succeed(gate, undefined)
      const result = yield* Fiber.join(fiber)
      expect(result.claimed).toBe(2)
      expect(startedIds.length).toBe(2)
    }).pipe(Effect.provide(env)))
})
