/**
 * Shard leasing on MemoryStorage with TestClock (acceptance 4 and 5): 16 shards; 3 workers own 5
 * or 6 each within two TTLs; a fourth joins → 4 each; one killed → its shards re-owned within one
 * TTL; never two owners at once (from the history of lease writes, and from the owned sets the
 * workers publish); a release never touches a lease another worker has taken over.
 */
import { describe, expect } from "@effect/vitest"
import { DateTime, Effect, Option, SubscriptionRef, TestClock } from "effect"
import { allShards } from "../../src/domain/Shard.js"
import { assignedShards } from "../../src/domain/ShardLease.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as ShardLeasing from "../../src/programs/ShardLeasing.js"
import type { StorageService } from "../../src/services/Storage.js"
import { inScope, makeHistory, overlaps, processServices, processStorage, storedLeases } from "./support.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

const shards = allShards(1)
const ttl = 30_000

interface Proc {
  readonly id: string
  readonly leasing: ShardLeasing.ShardLeasing
  readonly kill: () => void
  readonly isDead: () => boolean
}

const startWorker = (shared: StorageService, history: ReturnType<typeof makeHistory>, id: string) =>
  Effect.gen(function*() {
    const p = processStorage(shared, history)
    const { value } = yield* inScope(
      p.storage,
      ShardLeasing.make({ workerId: id, shardPrefixLen: 1, leaseTtl: "30 seconds", renewInterval: "10 seconds" })
    )
    return { id, leasing: value, kill: p.kill, isDead: p.isDead } satisfies Proc
  })

/** Owned sets of live workers; fails the test if two of them share a shard. */
const ownedSets = (procs: ReadonlyArray<Proc>) =>
  Effect.gen(function*() {
    const out = new Map<string, ReadonlyArray<string>>()
    const seen = new Map<string, string>()
    for (const p of procs) {
      if (p.isDead()) continue
      const mine = yield* SubscriptionRef.get(p.leasing.owned)
      for (const s of mine) {
        expect(seen.get(s), `shard ${s} published by ${seen.get(s)} and ${p.id}`).toBeUndefined()
        seen.set(s, p.id)
      }
      out.set(p.id, mine)
    }
    return out
  })

/** Per live worker, how many unexpired stored leases name it. */
const leaseCounts = (storage: StorageService, procs: ReadonlyArray<Proc>) =>
  Effect.gen(function*() {
    const now = yield* TestClock.currentTimeMillis
    const leases = yield* storedLeases(storage, shards)
    const counts = new Map<string, number>(procs.filter((p) => !p.isDead()).map((p) => [p.id, 0]))
    for (const lease of leases.values()) {
      if (DateTime.toEpochMillis(lease.leaseExpiresAt) <= now) continue
      if (counts.has(lease.workerId)) counts.set(lease.workerId, counts.get(lease.workerId)! + 1)
    }
    return counts
  })

/** Steps the clock 1 s at a time (checking disjointness each step) until `done` holds; returns the seconds it took. */
const stepUntil = <E>(
  procs: ReadonlyArray<Proc>,
  limitSeconds: number,
  done: Effect.Effect<boolean, E>
) =>
  Effect.gen(function*() {
    for (let s = 0; s <= limitSeconds; s++) {
      yield* ownedSets(procs)
      if (yield* done) return s
      yield* TestClock.adjust("1 second")
    }
    return Number.POSITIVE_INFINITY
  })

describe("assignedShards", () => {
  it("splits 16 shards fairly among 1–16 workers, every shard exactly once", () => {
    for (let n = 1; n <= 16; n++) {
      const members = Array.from({ length: n }, (_, i) => `w${String(i).padStart(2, "0")}`)
      const parts = members.map((m) => assignedShards(m, members, shards))
      expect(parts.flat().sort()).toEqual([...shards])
      for (const p of parts) expect([Math.floor(16 / n), Math.ceil(16 / n)]).toContain(p.length)
    }
    expect(assignedShards("x", ["a", "b"], shards)).toEqual([])
    expect(assignedShards("a", ["a"], shards, 3)).toEqual(["0", "1", "2"])
  })
})

describe("ShardLeasing (MemoryStorage + TestClock)", () => {
  it.effect("3 workers → 5 or 6 each within two TTLs; a 4th → 4 each; one killed → re-owned within one TTL; never two owners", () =>
    Effect.gen(function*() {
      const shared = yield* MemoryStorage.make()
      const history = makeHistory()
      const procs: Array<Proc> = []
      for (const id of ["w-a", "w-b", "w-c"]) procs.push(yield* startWorker(shared, history, id))

      const balanced = (sizes: ReadonlyArray<number>) =>
        Effect.gen(function*() {
          const sets = yield* ownedSets(procs)
          const counts = yield* leaseCounts(shared, procs)
          const live = procs.filter((p) => !p.isDead())
          return live.every((p) => sizes.includes(sets.get(p.id)!.length) && sizes.includes(counts.get(p.id)!)) &&
            [...sets.values()].reduce((a, s) => a + s.length, 0) === 16
        })

      const t1 = yield* stepUntil(procs, (2 * ttl) / 1000, balanced([5, 6]))
      expect(t1).toBeLessThanOrEqual(60)
      // stays balanced while they renew
      for (let i = 0; i < 90; i++) {
        yield* TestClock.adjust("1 second")
        expect(yield* balanced([5, 6])).toBe(true)
      }

      procs.push(yield* startWorker(shared, history, "w-d"))
      const t2 = yield* stepUntil(procs, (2 * ttl) / 1000, balanced([4]))
      expect(t2).toBeLessThanOrEqual(60)
      for (let i = 0; i < 60; i++) {
        yield* TestClock.adjust("1 second")
        expect(yield* balanced([4])).toBe(true)
      }

      // Kill w-b (a crash: no release); its shards must be owned by others within one TTL.
      const victim = procs[1]!
      const itsShards = yield* SubscriptionRef.get(victim.leasing.owned)
      expect(itsShards.length).toBe(4)
      victim.kill()
      const reowned = Effect.gen(function*() {
        const now = yield* TestClock.currentTimeMillis
        const leases = yield* storedLeases(shared, shards)
        return itsShards.every((s) => {
          const l = leases.get(s)
          return l !== undefined && l.workerId !== victim.id && DateTime.toEpochMillis(l.leaseExpiresAt) > now
        })
      })
      const t3 = yield* stepUntil(procs, ttl / 1000, reowned)
      expect(t3).toBeLessThanOrEqual(30)
      const t4 = yield* stepUntil(procs, (2 * ttl) / 1000, balanced([5, 6]))
      expect(t4).toBeLessThanOrEqual(60)

      expect(overlaps(history)).toEqual([])
      expect(history.writes.length).toBeGreaterThan(100) // the check looked at a real history
    }))

  it.effect("a graceful stop releases by conditional write (no delete) and the others take the shards at once", () =>
    Effect.gen(function*() {
      const shared = yield* MemoryStorage.make()
      const history = makeHistory()
      const procs = [yield* startWorker(shared, history, "w-a"), yield* startWorker(shared, history, "w-b")]
      yield* stepUntil(procs, 60, Effect.map(ownedSets(procs), (s) => [...s.values()].every((x) => x.length === 8)))
      yield* procs[0]!.leasing.stop
      const leases = yield* storedLeases(shared, shards)
      expect(leases.size).toBe(16) // nothing deleted
      const t = yield* stepUntil([procs[1]!], 30, Effect.map(SubscriptionRef.get(procs[1]!.leasing.owned), (s) => s.length === 16))
      expect(t).toBeLessThanOrEqual(12) // the next round of w-b (10 s), not a TTL
      expect(overlaps(history)).toEqual([])
    }))

  it.effect("a release never deletes or overwrites a lease another worker has just taken over (raced both ways)", () =>
    Effect.gen(function*() {
      const shared = yield* MemoryStorage.make()
      const { lm: a } = yield* processServices(shared)
      const { lm: b } = yield* processServices(shared)
      // 1. A holds shard 3, its lease runs out, B takes it over, then A's (late) release arrives.
      const got = yield* a.acquireShard("3", "w-a", "30 seconds")
      expect(got._tag).toBe("Acquired")
      if (got._tag !== "Acquired") return
      const early = yield* b.acquireShard("3", "w-b", "30 seconds")
      expect(early._tag).toBe("HeldByOther")
      yield* TestClock.adjust("30 seconds")
      const taken = yield* b.acquireShard("3", "w-b", "30 seconds")
      expect(taken._tag).toBe("Acquired")
      expect(yield* a.releaseShard(got.held)).toBe("taken_over")
      const after = Option.getOrThrow(yield* a.readShardLease("3"))
      expect(after.lease.workerId).toBe("w-b")
      expect(DateTime.toEpochMillis(after.lease.leaseExpiresAt)).toBe((yield* TestClock.currentTimeMillis) + 30_000)
      // A's renewal with its stale ETag fails too: it learns it lost the shard.
      expect(Option.isNone(yield* a.renewShard(got.held, "30 seconds"))).toBe(true)

      // 2. Concurrent: A releases while B takes over, many times; B's lease is never lost.
      for (let i = 0; i < 50; i++) {
        const shard = (i % 16).toString(16)
        yield* TestClock.adjust("31 seconds")
        const mine = yield* a.acquireShard(shard, "w-a", "30 seconds")
        if (mine._tag !== "Acquired") return expect.fail(`A could not take shard ${shard}`)
        if (i % 2 === 0) yield* TestClock.adjust("30 seconds") // expired: B may take it over
        const [released, theirs] = yield* Effect.all([a.releaseShard(mine.held), b.acquireShard(shard, "w-b", "30 seconds")], {
          concurrency: "unbounded"
        })
        const stored = Option.getOrThrow(yield* a.readShardLease(shard))
        if (theirs._tag === "Acquired") {
          expect(stored.lease.workerId).toBe("w-b")
          expect(stored.etag).toBe(theirs.held.etag)
          expect(DateTime.toEpochMillis(stored.lease.leaseExpiresAt)).toBeGreaterThan(yield* TestClock.currentTimeMillis)
        } else {
          expect(released).toBe("released")
        }
        expect(["released", "taken_over"]).toContain(released)
      }
    }))
})

describe("ShardLeasing.make refuses a cap it cannot work with", () => {
  // a cap of 0 would lease nothing and leave this worker polling only what no one owns; a
  // fraction or NaN has no meaning as a count of shards
  for (const shardsPerWorker of [0, -1, 1.5, Number.NaN]) {
    it.effect(`shardsPerWorker ${shardsPerWorker}`, () =>
      Effect.gen(function*() {
        const storage = yield* MemoryStorage.make()
        const error = yield* Effect.flip(inScope(storage, ShardLeasing.make({ workerId: "w-a", shardPrefixLen: 1, shardsPerWorker })))
        expect(error._tag).toBe("InvalidArgument")
        expect(error).toMatchObject({ argument: "shardsPerWorker" })
        expect(error.message).toContain(String(shardsPerWorker))
      }))
  }
})

describe("ShardLeasing.make refuses a renewal interval it cannot keep", () => {
  it.effect("renewInterval ≥ leaseTtl names both values as given, in ms", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      const error = yield* Effect.flip(
        inScope(storage, ShardLeasing.make({ workerId: "w-a", shardPrefixLen: 1, leaseTtl: "10 seconds", renewInterval: "12 seconds" }))
      )
      expect(error).toMatchObject({ _tag: "InvalidArgument", argument: "leaseTtl" })
      expect(error.message).toContain("10000 ms")
      expect(error.message).toContain("12000 ms")
    }))
})
