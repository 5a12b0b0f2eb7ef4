/**
 * Retention where it meets other features (issue 15, fixes 1 and 2), on MemoryStorage + TestClock:
 * a replay racing the retention sweep's delete, and an idempotent resubmit after retention deleted
 * the task. Both store kinds: with a conditional DELETE (AWS S3, the in-process stores) and
 * without one (Ceph RGW ignores `If-Match` on DELETE).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, TestClock } from "effect"
import { Fault } from "../../src/layers/FaultyStorage.js"
import * as Sweeper from "../../src/programs/monitor/Sweeper.js"
import { faultyMemory } from "../support/faultyMemory.js"

const setup = (conditionalDelete: boolean) => faultyMemory({ conditionalDelete })

for (const conditionalDelete of [true, false]) {
  describe(`retention races (conditional DELETE ${conditionalDelete ? "supported" : "not supported"})`, () => {
    it.scoped("a replay landing while the sweep's delete is in flight keeps the task, pending", () =>
      Effect.gen(function*() {
        const { injector, on, queue } = yield* setup(conditionalDelete)
        const task = yield* queue.submit("job", {})
        yield* queue.cancel(task.id)
        yield* TestClock.adjust("8 days")
        // The sweep's first write to the task object (its delete, or its fence) is held up for a
        // minute (a slow request, or a GC pause of the leader between its read and its delete).
        yield* injector.addRule({
          operation: ["put", "delete", "deleteIfMatch"],
          key: /^tasks\//,
          fault: Fault.delay("1 minute")
        })
        const sweeper = yield* on(Sweeper.make({ retention: { olderThan: "7 days", action: "delete" } }))
        const sweep = yield* Effect.fork(on(sweeper.fullSweep))
        yield* TestClock.adjust("1 second")
        const replayed = yield* queue.replay(task.id)
        expect(replayed.status).toBe("pending")
        yield* TestClock.adjust("2 minutes")
        const report = yield* Fiber.join(sweep)
        expect(report.totals.retentionDeleted).toBe(0)
        const after = yield* queue.get(task.id)
        expect(Option.map(after, (t) => t.status)).toEqual(Option.some("pending"))
        // and it is still discoverable by workers
        expect((yield* queue.listReady()).map((e) => e.taskId)).toContain(task.id)
      }))

    it.scoped("a same-key resubmit after retention returns the old outcome, never a new run", () =>
      Effect.gen(function*() {
        const { on, queue } = yield* setup(conditionalDelete)
        const first = yield* queue.submit("job", { n: 1 }, { idempotencyKey: "order-7", idempotencyTtlSeconds: 30 * 86_400 })
        yield* queue.cancel(first.id)
        yield* TestClock.adjust("8 days")
        const sweeper = yield* on(Sweeper.make({ retention: { olderThan: "7 days", action: "delete" } }))
        yield* on(sweeper.fullSweep)
        const again = yield* queue.submit("job", { n: 1 }, { idempotencyKey: "order-7", idempotencyTtlSeconds: 30 * 86_400 })
        expect(again.id).toBe(first.id)
        expect(again.status).toBe("cancelled")
        expect((yield* queue.listReady()).map((e) => e.taskId)).not.toContain(first.id)
        // once the key has expired (and the margin passed), retention deletes it and the key is free again
        yield* TestClock.adjust("23 days")
        const late = yield* on(sweeper.fullSweep)
        expect(late.totals.retentionDeleted).toBe(1)
        expect(yield* queue.get(first.id)).toEqual(Option.none())
        const fresh = yield* queue.submit("job", { n: 1 }, { idempotencyKey: "order-7", idempotencyTtlSeconds: 30 * 86_400 })
        expect(fresh.id).not.toBe(first.id)
        expect(fresh.status).toBe("pending")
      }))

    it.scoped("without a race, old terminal tasks are deleted", () =>
      Effect.gen(function*() {
        const { on, queue } = yield* setup(conditionalDelete)
        const task = yield* queue.submit("job", {})
        yield* queue.cancel(task.id)
        yield* TestClock.adjust("8 days")
        const sweeper = yield* on(Sweeper.make({ retention: { olderThan: "7 days", action: "delete" } }))
        const report = yield* on(sweeper.fullSweep)
        expect(report.totals.retentionDeleted).toBe(1)
        expect(yield* queue.get(task.id)).toEqual(Option.none())
      }))
  })
}
