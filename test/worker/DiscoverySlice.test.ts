/**
 * The fleet's preferred slices (Discovery.ts `slice`): a worker that knows it is worker `index` of
 * `count` live workers tries the due candidates of its own slice (hash of the task id mod count)
 * before the others of the same priority and due minute, so workers reading the same page start on
 * disjoint tasks instead of racing for chance collisions (4 × 32 on RGW: 0.2 lost claim CAS per
 * task, two wasted PUTs each). Nothing starves: a worker whose slice is done, or whose slice's
 * owner is gone, still takes the other slices' tasks, and priority still comes first.
 * MemoryStorage.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect } from "effect"
import * as Claim from "../../src/programs/worker/Claim.js"
import * as Discovery from "../../src/programs/worker/Discovery.js"
import * as Fleet from "../../src/programs/worker/Fleet.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { idInShard, interleavedFirstBatches, jobClaimEnv, queueLayer, seedTask } from "./support.js"

const env = queueLayer()

/** `n` due tasks in each of `shards`. */
const seed = (n: number, shards: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
    const ids: Array<string> = []
    for (const shard of shards) for (let i = 0; i < n; i++) ids.push((yield* seedTask(idInShard(shard, 1 + i), "job", now)).id)
    return ids
  })

/**
 * `n` due tasks in shard 3 with fixed ids (idInShard's tail is random) that `keep` accepts: the
 * order of the slices, a hash of the ids, is then the same on every run.
 */
const seedFixed = (n: number, keep: (id: string) => boolean) =>
  Effect.gen(function*() {
    const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
    for (let i = 1, seeded = 0; seeded < n; i++) {
      const id = `30000000-${i.toString(16).padStart(4, "0")}-4000-8000-${(i * 7919).toString(16).padStart(12, "0")}`
      if (keep(id)) {
        yield* seedTask(id, "job", now)
        seeded++
      }
    }
  })

/** Two workers' first batches, the other's run between our read of the page and our tries. */
const firstBatches = (shards: ReadonlyArray<string>) =>
  interleavedFirstBatches(
    Discovery.make({ shards, slice: Effect.succeed({ index: 0, count: 2 }) }),
    Discovery.make({ shards, slice: Effect.succeed({ index: 1, count: 2 }) })
  )

describe("Discovery: each worker of a fleet starts on its own slice", () => {
  it.effect("two workers listing the same shard take disjoint slices first", () =>
    Effect.gen(function*() {
      yield* seed(64, ["3"])
      const { mine, result, theirs } = yield* firstBatches(["3"])
      expect(mine.length).toBe(8)
      expect(theirs.length).toBe(8)
      expect(mine.every((id) => Discovery.inSlice(id, { index: 0, count: 2 }))).toBe(true)
      expect(theirs.every((id) => Discovery.inSlice(id, { index: 1, count: 2 }))).toBe(true)
      expect(mine.filter((id) => theirs.includes(id))).toEqual([])
      expect(result.claimed).toBe(8)
    }).pipe(Effect.provide(env)))

  it.effect("two workers reading the same probe page take disjoint slices first", () =>
    Effect.gen(function*() {
      yield* seed(32, ["3", "5"])
      const { mine, result, theirs } = yield* firstBatches(["3", "5"])
      expect(mine.every((id) => Discovery.inSlice(id, { index: 0, count: 2 }))).toBe(true)
      expect(theirs.every((id) => Discovery.inSlice(id, { index: 1, count: 2 }))).toBe(true)
      expect(result.claimed).toBe(8)
    }).pipe(Effect.provide(env)))

  it.effect("a worker helping with another's slice starts at its far end, not where its owner is", () =>
    Effect.gen(function*() {
      // 16 due tasks, all in worker 1's slice of 2: worker 0 has none of its own
      const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
      for (let i = 0, n = 0; n < 16; i++) {
        const id = idInShard("3", 1 + i)
        if (Discovery.inSlice(id, { index: 1, count: 2 })) {
          yield* seedTask(id, "job", now)
          n++
        }
      }
      // `firstBatches`: we are worker 0 (the helper), the other is the owner, both one batch of 8
      const { mine, result, theirs } = yield* firstBatches(["3"])
      expect(theirs.length).toBe(8)
      expect(mine.filter((id) => theirs.includes(id))).toEqual([])
      expect(result.claimed).toBe(8)
    }).pipe(Effect.provide(env)))

  it.effect("workers whose lists disagree (2 live workers against 4) do not walk their shared candidates in one order", () =>
    Effect.gen(function*() {
      // Worker 1 of 2 owns every id worker 3 of 4 owns; had the rank in a slice ignored the count,
      // both would try those in the same order and lose every race to each other (a fleet started
      // together reads workers/ while some have not registered: ClaimRace lost 0.06 -> 0.3 per task).
      yield* seedFixed(64, () => true)
      const { mine, result, theirs } = yield* interleavedFirstBatches(
        Discovery.make({ shards: ["3"], slice: Effect.succeed({ index: 3, count: 4 }) }),
        Discovery.make({ shards: ["3"], slice: Effect.succeed({ index: 1, count: 2 }) })
      )
      // with one order for both: 6 of the 8 shared and 2 claimed
      expect(theirs.length).toBe(8)
      expect(mine.filter((id) => theirs.includes(id)).length).toBeLessThanOrEqual(2)
      expect(result.claimed).toBeGreaterThanOrEqual(6)
    }).pipe(Effect.provide(env)))

  it.effect("two workers helping with one slice (its owner busy or gone) start at different places in it", () =>
    Effect.gen(function*() {
      // 64 due tasks, all in worker 0's slice of 4; worker 3 is its first helper, worker 2 its second
      yield* seedFixed(64, (id) => Discovery.inSlice(id, { index: 0, count: 4 }))
      const { mine, result, theirs } = yield* interleavedFirstBatches(
        Discovery.make({ shards: ["3"], slice: Effect.succeed({ index: 2, count: 4 }) }),
        Discovery.make({ shards: ["3"], slice: Effect.succeed({ index: 3, count: 4 }) })
      )
      // both from the slice's far end, the two batches were the same 8 tasks
      expect(theirs.length).toBe(8)
      expect(mine.filter((id) => theirs.includes(id))).toEqual([])
      expect(result.claimed).toBe(8)
    }).pipe(Effect.provide(env)))

  it.effect("a worker whose slice is done takes the other slices' tasks in the same pass (their owner gone)", () =>
    Effect.gen(function*() {
      const ids = yield* seed(20, ["3"])
      const ours = Discovery.make({ shards: ["3"], slice: Effect.succeed({ index: 1, count: 3 }) })
      const order: Array<string> = []
      const result = yield* ours.pass(Effect.succeed(1), (entry) => {
        order.push(entry.taskId)
        return Claim.tryClaim(entry, jobClaimEnv("ours"))
      }, () => Effect.void)
      expect(result.claimed).toBe(20)
      expect([...order].sort()).toEqual([...ids].sort())
      const own = ids.filter((id) => Discovery.inSlice(id, { index: 1, count: 3 })).length
      expect(own).toBeGreaterThan(0)
      expect(order.slice(0, own).every((id) => Discovery.inSlice(id, { index: 1, count: 3 }))).toBe(true)
    }).pipe(Effect.provide(env)))

  it.effect("priority still comes before the slice", () =>
    Effect.gen(function*() {
      const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
      yield* seed(12, ["3"])
      let urgentId = ""
      for (let i = 0; urgentId === ""; i++) {
        const id = idInShard("3", 500 + i)
        if (!Discovery.inSlice(id, { index: 0, count: 2 })) urgentId = (yield* seedTask(id, "job", now, {}, 5)).id
      }
      const ours = Discovery.make({ shards: ["3"], slice: Effect.succeed({ index: 0, count: 2 }) })
      const order: Array<string> = []
      yield* ours.pass(Effect.succeed(1), (entry) => {
        order.push(entry.taskId)
        return Claim.tryClaim(entry, jobClaimEnv("ours"))
      }, () => Effect.void)
      expect(order[0]).toBe(urgentId)
      expect(order.length).toBe(13)
    }).pipe(Effect.provide(env)))

  it("inSlice splits ids among the workers, each id in exactly one slice", () => {
    const ids = Array.from({ length: 400 }, (_, i) => idInShard("a", i))
    const sizes = [0, 1, 2, 3].map((index) => ids.filter((id) => Discovery.inSlice(id, { index, count: 4 })).length)
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(400)
    for (const size of sizes) expect(size).toBeGreaterThan(60)
  })
})

describe("Fleet.sliceOf: this worker's index among the live workers", () => {
  const meta = (id: string, ageMillis: number, now: number) => ({
    key: `workers/${id}.json`,
    etag: "e",
    size: 1,
    lastModified: DateTime.unsafeMake(now - ageMillis)
  })
  const now = 1_000_000_000

  it("counts the records with a recent heartbeat, in id order", () => {
    const records = [meta("w-c", 5_000, now), meta("w-a", 1_000, now), meta("w-b", 20_000, now)]
    expect(Fleet.sliceOf("w-b", records, now)).toEqual({ index: 1, count: 3 })
    expect(Fleet.sliceOf("w-c", records, now)).toEqual({ index: 2, count: 3 })
  })

  it("leaves out a worker whose heartbeat is stale (its slice is shared out again)", () => {
    const records = [meta("w-a", 1_000, now), meta("w-b", Fleet.liveWithinMillis + 1, now), meta("w-c", 1_000, now)]
    expect(Fleet.sliceOf("w-c", records, now)).toEqual({ index: 1, count: 2 })
  })

  it("no slice when this worker is alone or not registered", () => {
    expect(Fleet.sliceOf("w-a", [meta("w-a", 0, now)], now)).toBeUndefined()
    expect(Fleet.sliceOf("w-z", [meta("w-a", 0, now), meta("w-b", 0, now)], now)).toBeUndefined()
  })
})

describe("Fleet.make: the cached slice", () => {
  it.effect("lists workers/ only when older than its refresh (sooner at first), and sees a worker that registered late", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const serverNow = yield* Effect.flatMap(ServerClock, (c) => c.currentTimeMillis)
      let lists = 0
      let now = serverNow
      const slice = Fleet.make({
        workerId: "w-b",
        storage: { ...storage, list: (prefix, options) => Effect.suspend(() => (lists++, storage.list(prefix, options))) },
        now: Effect.sync(() => now)
      })
      const body = new TextEncoder().encode("{}")
      yield* storage.put("workers/w-b.json", body)
      yield* storage.put("workers/w-c.json", body)
      expect(yield* slice).toEqual({ index: 0, count: 2 })
      yield* storage.put("workers/w-a.json", body)
      now += 500
      expect(yield* slice).toEqual({ index: 0, count: 2 })
      expect(lists).toBe(1)
      now += 600
      expect(yield* slice).toEqual({ index: 1, count: 3 })
      expect(lists).toBe(2)
      // then at most every refreshEveryMillis
      for (let i = 0; i < 40; i++) {
        now += 1_000
        yield* slice
      }
      expect(lists).toBeLessThanOrEqual(2 + 3 + 40_000 / Fleet.refreshEveryMillis)
    }).pipe(Effect.provide(env)))
})
