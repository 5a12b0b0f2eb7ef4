/**
 * Discovery's probe (Discovery.ts, design.md §5.4 "Idle cost"): a pass of an idle worker first LISTs
 * `ready/` once and then LISTs only the shards that may hold markers. MemoryStorage +
 * CountingStorage, so every LIST is counted; TestClock where time matters.
 */
import { describe, expect } from "@effect/vitest"
import { DateTime, Effect, Layer, TestClock } from "effect"
import { bucketOf, bucketStartMillis } from "../../src/domain/Shard.js"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import { RequestCounter } from "../../src/services/RequestCounter.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault, FaultInjector } from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Claim from "../../src/programs/worker/Claim.js"
import * as Discovery from "../../src/programs/worker/Discovery.js"
import * as Worker from "../../src/programs/Worker.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import type { Storage } from "../../src/services/Storage.js"
import { exactPolicy, getTask, idInShard, seedTask } from "./support.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import * as Tr from "../../src/domain/Transitions.js"
import { createTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import { layerWorkerServices } from "../../src/Buquet.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

const sixteen = [..."0123456789abcdef"]

/** Counting store (over `storage`) with its ServerClock and a Queue (to read tasks back). */
const env = <Out>(storage: Layer.Layer<Out | Storage>, shardPrefixLen = 1) =>
  Layer.provideMerge(
    Layer.merge(QueueLayer.layer({ shardPrefixLen }), layerWorkerServices({ shardPrefixLen })),
    Layer.provideMerge(ServerClockLayer.layer, Layer.provideMerge(CountingStorage.layer, storage))
  )

const claimEnv: Claim.ClaimEnv = {
  workerId: "probe-test",
  handles: (taskType) => taskType === "job",
  isPaused: () => Effect.succeed(false),
  admit: () => Effect.succeed(true)
}

/** One pass with plenty of free slots; returns the pass result and the LISTs the store counted. */
const pass = (discovery: Discovery.Discovery) =>
  Effect.gen(function*() {
    const counter = yield* RequestCounter
    yield* counter.reset
    const result = yield* discovery.pass(Effect.succeed(100), (entry) => Claim.tryClaim(entry, claimEnv), () => Effect.void)
    const counted = yield* counter.take
    // the pass's own count is the store's count
    expect(result.lists).toBe(counted.LIST)
    return result
  })

const now = Effect.flatMap(ServerClock, (c) => c.now)

/** A due task of type `type` in `shard` (the n-th of that shard, in key order). */
const due = (shard: string, n: number, type = "job") => Effect.flatMap(now, (at) => seedTask(idInShard(shard, n), type, at))

const status = (id: string) => Effect.map(getTask(id), (t) => t.status)

describe("Discovery probe", () => {
  it.effect("an idle pass over an empty 16-shard bucket costs 1 LIST (and so does the next)", () =>
    Effect.gen(function*() {
      const discovery = Discovery.make({ shards: sixteen })
      const first = yield* pass(discovery)
      expect(first).toMatchObject({ lists: 1, claimed: 0, more: false, nextDueAt: Number.POSITIVE_INFINITY })
      const second = yield* pass(discovery)
      expect(second.lists).toBe(1)
    }).pipe(Effect.provide(env(MemoryStorage.layer()))))

  it.effect("markers in 2 of 16 shards, all in the probe page: 1 LIST (no per-shard LIST), both claimed", () =>
    Effect.gen(function*() {
      const a = yield* due("3", 1)
      const b = yield* due("b", 1)
      const result = yield* pass(Discovery.make({ shards: sixteen }))
      expect(result).toMatchObject({ lists: 1, claimed: 2 })
      expect(yield* status(a.id)).toBe("running")
      expect(yield* status(b.id)).toBe("running")
    }).pipe(Effect.provide(env(MemoryStorage.layer()))))

  it.effect("a truncated probe: shards before its last key are skipped, every later shard is listed", () =>
    Effect.gen(function*() {
      const first = [yield* due("1", 1), yield* due("1", 2), yield* due("1", 3)]
      const late = [yield* due("a", 1), yield* due("f", 1)]
      const discovery = Discovery.make({ shards: sixteen, pageSize: 2 })
      const result = yield* pass(discovery)
      // the probe page holds 2 keys of shard 1: shard 0 is empty, shards 1..f are listed
      expect(result.lists).toBe(1 + 15)
      expect(result.claimed).toBe(4)
      for (const t of late) expect(yield* status(t.id)).toBe("running")
      expect(result.more).toBe(true)
      // shard 1's page of 2 left one behind: the next pass (plain: the last one claimed) takes it
      const next = yield* pass(discovery)
      expect(next).toMatchObject({ lists: 16, claimed: 1 })
      for (const t of first) expect(yield* status(t.id)).toBe("running")
    }).pipe(Effect.provide(env(MemoryStorage.layer()))))

  it.effect("a future marker seen in the probe still sets nextDueAt, and the task is claimed when due", () =>
    Effect.gen(function*() {
      const at = DateTime.addDuration(yield* now, "5 minutes")
      const later = yield* seedTask(idInShard("7", 1), "job", at)
      const discovery = Discovery.make({ shards: sixteen })
      const result = yield* pass(discovery)
      expect(result).toMatchObject({ lists: 1, claimed: 0 })
      const dueAt = bucketStartMillis(bucketOf(DateTime.toEpochMillis(at)))
      expect(result.nextDueAt).toBe(dueAt)
      yield* TestClock.setTime(DateTime.toEpochMillis(at))
      const then = yield* pass(discovery)
      expect(then).toMatchObject({ lists: 1, claimed: 1 })
      expect(yield* status(later.id)).toBe("running")
    }).pipe(Effect.provide(env(MemoryStorage.layer()))))

  it.effect("a subset of shards: other shards' markers are neither listed nor claimed", () =>
    Effect.gen(function*() {
      const before = yield* due("1", 1)
      const mine = yield* due("2", 1)
      const after = yield* due("9", 1)
      const result = yield* pass(Discovery.make({ shards: ["2", "3"] }))
      // the probe alone (it holds shard 2's marker; shard 9's marker is not ours to look at)
      expect(result).toMatchObject({ lists: 1, claimed: 1 })
      expect(yield* status(mine.id)).toBe("running")
      expect(yield* status(before.id)).toBe("pending")
      expect(yield* status(after.id)).toBe("pending")
    }).pipe(Effect.provide(env(MemoryStorage.layer()))))

  it.effect("currentShards: the probe starts at the first owned shard, so a full page of other shards' markers costs nothing", () =>
    Effect.gen(function*() {
      for (let n = 1; n <= 3; n++) yield* due("0", n)
      const mine = yield* due("c", 1)
      const discovery = Discovery.make({ shards: sixteen, currentShards: Effect.succeed(["c", "d"]), pageSize: 2 })
      const result = yield* pass(discovery)
      expect(result).toMatchObject({ lists: 1, claimed: 1 })
      expect(yield* status(mine.id)).toBe("running")
    }).pipe(Effect.provide(env(MemoryStorage.layer()))))

  it.effect("currentShards empty at first (shard leasing before its first round): the first pass over the leased shards still probes, 1 LIST not 1 per shard", () =>
    Effect.gen(function*() {
      // a leasing worker at prefix length 2 owning 156 of the 256 shards: its passes before the
      // first lease round see no shard at all, which says nothing about whether probing pays
      const all = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))
      let polled: ReadonlyArray<string> = []
      const discovery = Discovery.make({ shards: all, currentShards: Effect.sync(() => polled) })
      yield* pass(discovery)
      yield* pass(discovery)
      polled = all.slice(0, 156)
      const mine = Tr.newTask({ id: idInShard("2a", 1), shard: "2a", taskType: "job", input: {}, now: yield* now, availableAt: yield* now, timeoutSeconds: 30, maxRetries: 3, retryPolicy: exactPolicy })
      yield* writeMarker(readyMarkerKey(mine))
      yield* createTask(mine)
      const result = yield* pass(discovery)
      expect(result).toMatchObject({ lists: 1, claimed: 1 })
      expect(yield* status(mine.id)).toBe("running")
    }).pipe(Effect.provide(env(MemoryStorage.layer(), 2))))

  it.effect("every shard has markers: a complete probe page replaces the 16 per-shard LISTs, pass after pass", () =>
    Effect.gen(function*() {
      // markers of a type this worker does not handle, in every shard
      for (const shard of sixteen) yield* due(shard, 1, "other")
      const mine = yield* due("5", 2)
      const discovery = Discovery.make({ shards: sixteen })
      const first = yield* pass(discovery)
      expect(first).toMatchObject({ lists: 1, claimed: 1 })
      expect(yield* status(mine.id)).toBe("running")
      // the last probe held every marker: probing again is the cheapest pass, busy or not
      expect((yield* pass(discovery)).lists).toBe(1)
      expect((yield* pass(discovery)).lists).toBe(1)
    }).pipe(Effect.provide(env(MemoryStorage.layer()))))

  it.effect("the probe is skipped when it cannot pay: after a pass that claimed, when the last probe page was truncated", () =>
    Effect.gen(function*() {
      for (const shard of sixteen) yield* due(shard, 1, "other")
      const mine = yield* due("5", 2)
      const discovery = Discovery.make({ shards: sixteen, pageSize: 4 })
      const first = yield* pass(discovery)
      // the probe (truncated after shard 3) + shards 3..f
      expect(first).toMatchObject({ lists: 1 + 13, claimed: 1 })
      expect(yield* status(mine.id)).toBe("running")
      // claimed last time and the probe was truncated: plain passes
      expect((yield* pass(discovery)).lists).toBe(16)
    }).pipe(Effect.provide(env(MemoryStorage.layer()))))

  it("shardsCoveredByProbe: every shard when complete; when truncated, those wholly before the last key", () => {
    const covered = (shards: ReadonlyArray<string>, keys: ReadonlyArray<string>, truncated: boolean) =>
      [...Discovery.shardsCoveredByProbe(shards, keys, truncated)].sort()
    const key = (shard: string) => `ready/${shard}/0000000001/${idInShard(shard.slice(0, 1), 1)}`
    expect(covered(["1", "2"], [], false)).toEqual(["1", "2"])
    expect(covered(sixteen, [key("1"), key("3")], true)).toEqual(["0", "1", "2"])
    expect(covered(sixteen, [], true)).toEqual([])
    expect(covered(["a0", "a1"], [key("a0"), key("a1")], true)).toEqual(["a0"])
  })

  it.effect("a failing probe: logged, every shard listed, the task still claimed", () =>
    Effect.gen(function*() {
      const injector = yield* FaultInjector
      const task = yield* due("e", 1)
      yield* injector.addRule({ operation: "list", key: "ready/", fault: Fault.unavailable })
      const discovery = Discovery.make({ shards: sixteen })
      const result = yield* pass(discovery)
      expect(result).toMatchObject({ lists: 1 + 16, claimed: 1 })
      expect(yield* status(task.id)).toBe("running")
      expect((yield* injector.injected).map((f) => [f.operation, f.key])).toEqual([["list", "ready/"]])
    }).pipe(Effect.provide(env(FaultyStorage.layer().pipe(Layer.provideMerge(MemoryStorage.layer()))))))

  it.scoped("an idle worker over 4,096 shards (prefix length 3): 1 LIST per pass, 3 per hour (safety net), not 3 × 4,096", () =>
    Effect.gen(function*() {
      const counter = yield* RequestCounter
      yield* Worker.make({ monitor: false }, [Worker.handler("job", () => Effect.succeed("ok"))])
      yield* TestClock.adjust("1 minute")
      yield* counter.reset
      for (let minute = 0; minute < 60; minute++) yield* TestClock.adjust("1 minute")
      const c = yield* counter.take
      yield* Effect.sync(() => console.info(`idle worker, 4,096 shards, 1 h: ${JSON.stringify(c)}`))
      expect(c.LIST).toBe(3)
      expect(c.PUT + c.LIST).toBeLessThanOrEqual(120)
    }).pipe(Effect.provide(env(MemoryStorage.layer(), 3))))

  it("shardsLeftAfterProbe: complete, truncated, other prefix lengths", () => {
    const left = (shards: ReadonlyArray<string>, keys: ReadonlyArray<string>, truncated: boolean) =>
      [...Discovery.shardsLeftAfterProbe(shards, keys, truncated)].sort()
    const key = (shard: string) => `ready/${shard}/0000000001/${idInShard(shard.slice(0, 1), 1)}`
    expect(left(sixteen, [], false)).toEqual([])
    expect(left(sixteen, [key("3"), key("b")], false)).toEqual(["3", "b"])
    expect(left(sixteen, [key("1"), key("1")], true)).toEqual(sixteen.slice(1))
    // keys of shards of another length (a migration) neither count nor hide a shard
    expect(left(["a", "b"], [key("a0"), key("a1")], true)).toEqual(["b"])
    expect(left(["a", "b"], [key("a0")], false)).toEqual([])
    expect(left(["a0", "a1", "b0"], [key("a"), key("a0")], true)).toEqual(["a0", "a1", "b0"])
    expect(left(["a0", "a1", "b0"], [key("a0"), key("a1")], true)).toEqual(["a0", "a1", "b0"])
  })
})
