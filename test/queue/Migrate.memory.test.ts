/**
 * migrate-shards against a live fleet (issue 15, fix 4), on MemoryStorage + TestClock:
 * - with a live worker (a fresh worker record) or a held leader lease, `execute` refuses and moves
 *   nothing, because a worker settling a task between the tool's re-read and its DELETE would be
 *   undone (RGW ignores a conditional DELETE, so that window cannot be closed by the tool alone);
 * - a task submitted at the old layout after the plan was made is moved too;
 * - idempotency records are rewritten to the new task key, so a same-key resubmit after the
 *   migration returns the moved task instead of creating a hidden second copy at the old shard.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, DateTime, Effect, Layer, Stream, TestClock } from "effect"
import { encodeObject } from "../../src/domain/Codec.js"
import { workerKey } from "../../src/domain/Keys.js"
import { WorkerRecord } from "../../src/domain/WorkerRecord.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { leaderLeaseKey, LeaderLeaseRecord } from "../../src/programs/LeaderLease.js"
import * as Migrate from "../../src/programs/MigrateShards.js"
import { Queue } from "../../src/services/Queue.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"

const base = Layer.provideMerge(ServerClockLayer.layer, MemoryStorage.layer())
const atPrefix = (shardPrefixLen: number) => <A, E>(self: Effect.Effect<A, E, Queue>) =>
  Effect.provide(self, QueueLayer.layer({ shardPrefixLen }))

const allKeys = Effect.flatMap(Storage, (s) => Stream.runCollect(s.listAll(""))).pipe(
  Effect.map((c) => Chunk.toReadonlyArray(c).map((m) => m.key))
)

const writeWorkerRecord = (workerId: string) =>
  Effect.gen(function*() {
    const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
    const record = new WorkerRecord({
      workerId,
      startedAt: now,
      lastHeartbeat: now,
      shards: [],
      currentTask: null,
      tasksCompleted: 0,
      tasksFailed: 0
    })
    yield* Effect.flatMap(Storage, (s) => s.put(workerKey(workerId), encodeObject(WorkerRecord, record)))
  })

const refusal = <A, E extends { readonly _tag: string }, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.flip(self), (e) =>
    e instanceof Migrate.FleetRunning ? Effect.succeed(e) : Effect.dieMessage(`expected FleetRunning, got ${e._tag}`))

describe("migrate-shards with a live fleet", () => {
  it.scoped("refuses while a worker's record is fresh, moves nothing; runs once it is stale or with force", () =>
    Effect.gen(function*() {
      const tasks = yield* atPrefix(1)(Effect.flatMap(Queue, (q) => Effect.forEach([1, 2, 3], (i) => q.submit("job", { i }))))
      yield* writeWorkerRecord("w-live")
      const plan = yield* Migrate.plan(1, 2)
      const refused = yield* refusal(Migrate.execute(plan))
      expect(refused.workers).toEqual(["w-live"])
      expect(refused.message).toContain("w-live")
      expect(refused.message).toContain("--force")
      // nothing moved
      expect((yield* allKeys).filter((k) => k.startsWith("tasks/")).every((k) => /^tasks\/[0-9a-f]\//.test(k))).toBe(true)
      // a record that has not been rewritten for longer than the health window is a dead worker
      yield* TestClock.adjust("4 minutes")
      const result = yield* Migrate.execute(yield* Migrate.plan(1, 2))
      expect(result.moved).toBe(tasks.length)
    }).pipe(Effect.provide(base)))

  it.scoped("refuses while a leader lease (monitor, scheduler) is held; force runs anyway", () =>
    Effect.gen(function*() {
      yield* atPrefix(1)(Effect.flatMap(Queue, (q) => q.submit("job", {})))
      const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
      const lease = new LeaderLeaseRecord({
        name: "monitor",
        holder: "host-1",
        leaseId: "l1",
        acquiredAt: now,
        renewedAt: now,
        expiresAt: DateTime.add(now, { seconds: 30 }),
        released: false
      })
      yield* Effect.flatMap(Storage, (s) => s.put(leaderLeaseKey("monitor"), encodeObject(LeaderLeaseRecord, lease)))
      const refused = yield* refusal(Migrate.execute(yield* Migrate.plan(1, 2)))
      expect(refused.leaders).toEqual(["monitor"])
      const forced = yield* Migrate.execute(yield* Migrate.plan(1, 2), { force: true })
      expect(forced.moved).toBe(1)
    }).pipe(Effect.provide(base)))

  it.scoped("a task submitted at the old layout after the plan is moved too", () =>
    Effect.gen(function*() {
      yield* atPrefix(1)(Effect.flatMap(Queue, (q) => q.submit("job", { early: true })))
      const plan = yield* Migrate.plan(1, 2)
      const late = yield* atPrefix(1)(Effect.flatMap(Queue, (q) => q.submit("job", { late: true })))
      const result = yield* Migrate.execute(plan)
      expect(result.moved).toBe(2)
      const keys = yield* allKeys
      expect(keys.filter((k) => /^(tasks|ready|leases)\/[0-9a-f]\//.test(k))).toEqual([])
      const found = yield* atPrefix(2)(Effect.flatMap(Queue, (q) => q.get(late.id)))
      expect(found._tag).toBe("Some")
    }).pipe(Effect.provide(base)))

  it.scoped("a same-key resubmit after the migration returns the moved task, no second copy", () =>
    Effect.gen(function*() {
      const first = yield* atPrefix(1)(Effect.flatMap(Queue, (q) => q.submit("job", { n: 1 }, { idempotencyKey: "order-7" })))
      const result = yield* Migrate.execute(yield* Migrate.plan(1, 2))
      expect(result.recordsRewritten).toBe(1)
      const again = yield* atPrefix(2)(Effect.flatMap(Queue, (q) => q.submit("job", { n: 1 }, { idempotencyKey: "order-7" })))
      expect(again.id).toBe(first.id)
      expect(again.shard).toBe(first.id.slice(0, 2))
      const copies = (yield* allKeys).filter((k) => k.startsWith("tasks/") && k.endsWith(`${first.id}.json`))
      expect(copies).toEqual([`tasks/${first.id.slice(0, 2)}/${first.id}.json`])
    }).pipe(Effect.provide(base)))

  it.scoped("a record left at the old layout (migrated by an older tool) still resolves to the moved task", () =>
    Effect.gen(function*() {
      const first = yield* atPrefix(1)(Effect.flatMap(Queue, (q) => q.submit("job", { n: 2 }, { idempotencyKey: "order-8" })))
      // move the task by hand, leaving the record naming tasks/{1 char}/…
      const storage = yield* Storage
      const got = yield* storage.get(`tasks/${first.id.slice(0, 1)}/${first.id}.json`)
      if (got._tag === "None") return yield* Effect.dieMessage("task missing")
      const moved = JSON.parse(new TextDecoder().decode(got.value.body))
      moved.shard = first.id.slice(0, 2)
      yield* storage.put(`tasks/${first.id.slice(0, 2)}/${first.id}.json`, new TextEncoder().encode(JSON.stringify(moved)))
      yield* storage.delete(`tasks/${first.id.slice(0, 1)}/${first.id}.json`)
      const again = yield* atPrefix(2)(Effect.flatMap(Queue, (q) => q.submit("job", { n: 2 }, { idempotencyKey: "order-8" })))
      expect(again.id).toBe(first.id)
      const copies = (yield* allKeys).filter((k) => k.startsWith("tasks/") && k.endsWith(`${first.id}.json`))
      expect(copies).toEqual([`tasks/${first.id.slice(0, 2)}/${first.id}.json`])
    }).pipe(Effect.provide(base)))
})
