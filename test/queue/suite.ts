/**
 * The Queue behaviour suite: one body, run over every backend (MemoryStorage with TestClock, and
 * the real RGW server). Each test gets a fresh store.
 *
 * @module
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Deferred, Duration, Effect, Either, Exit, Fiber, Option, Schema, Stream } from "effect"
import { payloadKey } from "../../src/domain/Keys.js"
import { isPaused } from "../../src/domain/Pause.js"
import { leaseMarkerKey, readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import type { Task } from "../../src/domain/Task.js"
import { TaskJsonSchemas } from "../../src/domain/TaskSchemas.js"
import { TaskType } from "../../src/domain/TaskType.js"
import * as Tr from "../../src/domain/Transitions.js"
import { casTask, keep, keyOfTask, readTask, updateTask, write } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import type { TaskPage } from "../../src/services/Queue.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import type { QueueBackend } from "./support/harness.js"
import { TestControl, withQueue } from "./support/harness.js"

const keysUnder = (prefix: string) =>
  Effect.flatMap(Storage, (s) => Stream.runCollect(s.listAll(prefix))).pipe(Effect.map((c) => [...c].map((m) => m.key)))

const exists = (key: string) => Effect.flatMap(Storage, (s) => s.head(key)).pipe(Effect.map(Option.isSome))

/** What a worker does to claim: read with ETag, check, lease marker, CAS (Transitions + TaskObjects). */
const claim = (task: Task, workerId: string) =>
  Effect.gen(function*() {
    // The server time estimate may still narrow by a few ms on a real server: claim a moment later.
    yield* Effect.flatMap(TestControl, (c) => c.advance(Duration.seconds(1)))
    const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
    const { result, current } = yield* updateTask<boolean>(keyOfTask(task), (found) => {
      if (Option.isNone(found) || !Tr.canClaim(found.value.task, now)) return keep(false)
      const next = Tr.claim(found.value.task, { now, workerId, leaseId: crypto.randomUUID() })
      return write(next, true, { before: [leaseMarkerKey(next)!], after: [readyMarkerKey(found.value.task)] })
    })
    expect(result).toBe(true)
    return Option.getOrThrow(current)
  })

/** Settles a running task with a transition (retry / complete) by CAS, as the worker would. */
const settle = (task: Task, f: (task: Task, now: DateTime.Utc) => Task) =>
  Effect.gen(function*() {
    const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
    const { current } = yield* updateTask<boolean>(keyOfTask(task), (found) => {
      if (Option.isNone(found)) return keep(false)
      const next = f(found.value.task, now)
      return write(next, true, { before: next.status === "pending" ? [readyMarkerKey(next)] : [] })
    })
    return Option.getOrThrow(current).task
  })

/** Registers the suite for one backend. */
export const queueSuite = (backend: QueueBackend): void => {
  const test = backend.realServer ? it.live : it.effect
  const run = withQueue.bind(null, backend)

  describe(`Queue: ${backend.name}`, () => {
    // ---------------------------------------------------------------------------------------
    // 1. Idempotency
    // ---------------------------------------------------------------------------------------
    test("20 concurrent submits with one idempotency key make exactly one task, and all get its id", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        // Several keys, so that many interleavings of "record written, task not yet" are exercised.
        for (const key of ["order-1", "order-2", "order-3", "order-4", "order-5"]) {
          const tasks = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            () => queue.submit("send_email", { to: "a@b.c" }, { idempotencyKey: key }),
            { concurrency: "unbounded" }
          )
          const ids = new Set(tasks.map((t) => t.id))
          expect(ids.size).toBe(1)
          expect(yield* exists(keyOfTask(tasks[0]!))).toBe(true)
        }
        expect((yield* keysUnder("tasks/")).length).toBe(5)
        expect((yield* keysUnder("idempotency/")).length).toBe(5)
      })))

    test("same key with a different input (or type, under queue scope) is an IdempotencyConflict", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const first = yield* queue.submit("send_email", { to: "a" }, { idempotencyKey: "k" })
        const conflict = yield* Effect.flip(queue.submit("send_email", { to: "b" }, { idempotencyKey: "k" }))
        expect(conflict._tag).toBe("IdempotencyConflict")
        if (conflict._tag === "IdempotencyConflict") {
          expect(conflict.existingTaskId).toBe(first.id)
          expect(conflict.message).toContain("use a new key")
        }
        // Key order does not matter: the input hash is canonical.
        const again = yield* queue.submit("send_email", { to: "a" }, { idempotencyKey: "k" })
        expect(again.id).toBe(first.id)
        // Per-type scope: another type with the same key is another task.
        const other = yield* queue.submit("send_sms", { to: "a" }, { idempotencyKey: "k" })
        expect(other.id).not.toBe(first.id)
        // Queue scope: the type is part of the hash.
        yield* queue.submit("send_email", { to: "a" }, { idempotencyKey: "q", idempotencyScope: "queue" })
        const crossType = yield* Effect.flip(
          queue.submit("send_sms", { to: "a" }, { idempotencyKey: "q", idempotencyScope: "queue" })
        )
        expect(crossType._tag).toBe("IdempotencyConflict")
        // A task type named "queue" does not share records with the queue scope.
        const named = yield* queue.submit("queue", { to: "a" }, { idempotencyKey: "q" })
        expect(named.taskType).toBe("queue")
      })))

    test("after the TTL the key makes a new task, and only one even under concurrency", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const control = yield* TestControl
        const first = yield* queue.submit("t", 1, { idempotencyKey: "k", idempotencyTtlSeconds: 60 })
        yield* control.advance(Duration.seconds(30))
        expect((yield* queue.submit("t", 1, { idempotencyKey: "k", idempotencyTtlSeconds: 60 })).id).toBe(first.id)
        yield* control.advance(Duration.seconds(31))
        const later = yield* Effect.forEach(
          Array.from({ length: 10 }, (_, i) => i),
          () => queue.submit("t", 1, { idempotencyKey: "k", idempotencyTtlSeconds: 60 }),
          { concurrency: "unbounded" }
        )
        expect(new Set(later.map((t) => t.id)).size).toBe(1)
        expect(later[0]!.id).not.toBe(first.id)
        expect((yield* keysUnder("tasks/")).length).toBe(2)
        // After expiry a different input is fine too.
        yield* control.advance(Duration.seconds(61))
        const changed = yield* queue.submit("t", 2, { idempotencyKey: "k", idempotencyTtlSeconds: 60 })
        expect(changed.input).toBe(2)
      })))

    test("a submit killed between its writes never blocks the key: the next submit creates the recorded task", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const control = yield* TestControl
        // The record lands, then the task PUT fails (the process "dies" there).
        yield* control.failPuts({ match: (k) => k.startsWith("tasks/"), times: 1 })
        const killed = yield* Effect.exit(queue.submit("t", { n: 1 }, { idempotencyKey: "crash" }))
        expect(Exit.isFailure(killed)).toBe(true)
        expect(yield* keysUnder("tasks/")).toEqual([])
        const records = yield* keysUnder("idempotency/")
        expect(records.length).toBe(1)
        const recorded = JSON.parse(new TextDecoder().decode(
          Option.getOrThrow(yield* Effect.flatMap(Storage, (s) => s.get(records[0]!))).body
        )) as { task_id: string }
        // The next submitter finishes the job: exactly that task id, exactly one task.
        const [a, b] = yield* Effect.all([
          queue.submit("t", { n: 1 }, { idempotencyKey: "crash" }),
          queue.submit("t", { n: 1 }, { idempotencyKey: "crash" })
        ], { concurrency: 2 })
        expect(a.id).toBe(recorded.task_id)
        expect(b.id).toBe(recorded.task_id)
        expect((yield* keysUnder("tasks/")).length).toBe(1)
        expect(yield* exists(readyMarkerKey(a))).toBe(true)
      })))

    test("a submit interrupted between its record write and its task write never blocks the key", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const control = yield* TestControl
        // The task PUT hangs; the submit fiber is interrupted while it waits there.
        const reached = yield* control.hangPuts((k) => k.startsWith("tasks/"))
        const fiber = yield* Effect.fork(queue.submit("t", "x", { idempotencyKey: "int" }))
        yield* Deferred.await(reached)
        yield* Fiber.interrupt(fiber)
        expect(yield* keysUnder("tasks/")).toEqual([])
        const task = yield* queue.submit("t", "x", { idempotencyKey: "int" })
        expect(yield* keysUnder("tasks/")).toEqual([keyOfTask(task)])
      })))

    // ---------------------------------------------------------------------------------------
    // 2. list
    // ---------------------------------------------------------------------------------------
    for (const shardPrefixLen of [1, 2, 3]) {
      test(`list filters by status and type before the limit and pages across shards (prefix length ${shardPrefixLen})`, () =>
        run({ shardPrefixLen })(Effect.gen(function*() {
          const queue = yield* Queue
          const bulk = yield* queue.submitMany(Array.from({ length: 40 }, (_, i) => ({ taskType: "bulk", input: i })))
          expect(bulk.every((r) => r._tag === "Submitted")).toBe(true)
          const rare = yield* Effect.forEach([1, 2, 3], (i) => queue.submit("rare", i))
          for (const t of rare) expect(t.shard.length).toBe(shardPrefixLen)
          yield* queue.cancel(rare[1]!.id)

          const seen: Array<string> = []
          let cursor: string | undefined = undefined
          let pages = 0
          do {
            const page: TaskPage = yield* queue.list({ taskType: "rare", limit: 2, cursor })
            expect(page.tasks.length).toBeLessThanOrEqual(2)
            for (const t of page.tasks) {
              expect(t.taskType).toBe("rare")
              seen.push(t.id)
            }
            cursor = page.cursor
            pages++
          } while (cursor !== undefined && pages < 10)
          expect(seen.sort()).toEqual(rare.map((t) => t.id).sort())

          const cancelled = yield* queue.list({ status: "cancelled", limit: 1 })
          expect(cancelled.tasks.map((t) => t.id)).toEqual([rare[1]!.id])
          const pendingRare = yield* queue.list({ status: "pending", taskType: "rare" })
          expect(pendingRare.tasks.map((t) => t.id).sort()).toEqual([rare[0]!.id, rare[2]!.id].sort())
          expect(pendingRare.cursor).toBeUndefined()
          const all = yield* queue.list({ limit: 1000 })
          expect(all.tasks.length).toBe(43)
          // One shard only.
          const shard = rare[0]!.shard
          const inShard = yield* queue.list({ shard, limit: 1000 })
          expect(inShard.tasks.every((t) => t.shard === shard)).toBe(true)
          expect(inShard.tasks.map((t) => t.id)).toContain(rare[0]!.id)
          // Ready index: every pending task is listed as due, in any shard layout.
          const ready = yield* queue.listReady({ limit: 1000 })
          expect(ready.length).toBe(42)
        })))
    }

    // ---------------------------------------------------------------------------------------
    // 3. cancel
    // ---------------------------------------------------------------------------------------
    test("cancelling a pending task twice gives cancelled, then already_terminal; a missing one not_found", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const task = yield* queue.submit("t", null)
        const first = yield* queue.cancel(task.id, { reason: "not needed", cancelledBy: "ops" })
        expect(first.outcome).toBe("cancelled")
        expect(first.task?.status).toBe("cancelled")
        expect(first.task?.cancelledBy).toBe("ops")
        expect(yield* exists(readyMarkerKey(task))).toBe(false)
        const second = yield* queue.cancel(task.id)
        expect(second.outcome).toBe("already_terminal")
        const missing = yield* queue.cancel(crypto.randomUUID())
        expect(missing.outcome).toBe("not_found")
        const many = yield* queue.cancelMany([task.id, "../x"])
        expect(many.map((r) => r._tag === "Done" ? r.outcome : r.error._tag)).toEqual(["already_terminal", "InvalidArgument"])
      })))

    test("a running task gets cancel_requested (idempotently); cancelByType covers pending and running", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const a = yield* queue.submit("job", 1)
        const b = yield* queue.submit("job", 2)
        const other = yield* queue.submit("other", 3)
        yield* claim(a, "w1")
        const r1 = yield* queue.cancel(a.id)
        expect(r1.outcome).toBe("cancel_requested")
        expect(r1.task?.status).toBe("running")
        expect(r1.task?.cancelRequested).toBe(true)
        expect((yield* queue.cancel(a.id)).outcome).toBe("cancel_requested")
        const byType = yield* queue.cancelByType("job")
        const outcomes = Object.fromEntries(byType.map((r) => [r.taskId, r._tag === "Done" ? r.outcome : "error"]))
        expect(outcomes).toEqual({ [a.id]: "cancel_requested", [b.id]: "cancelled" })
        expect(Option.getOrThrow(yield* queue.get(other.id)).status).toBe("pending")
      })))

    test("a cancel racing a claim has a defined outcome either way, never a lost update", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const clock = yield* ServerClock
        // Interleaving 1: the claim read the task, the cancel lands, the claim's CAS must lose.
        const t1 = yield* queue.submit("t", 1)
        const read1 = Option.getOrThrow(yield* readTask(keyOfTask(t1)))
        expect((yield* queue.cancel(t1.id)).outcome).toBe("cancelled")
        const now = yield* clock.now
        const lost = yield* Effect.either(casTask(Tr.claim(read1.task, { now, workerId: "w", leaseId: "l" }), read1.etag))
        expect(Either.isLeft(lost) && lost.left._tag).toBe("PreconditionFailed")
        expect(Option.getOrThrow(yield* queue.get(t1.id)).status).toBe("cancelled")
        // Interleaving 2: the cancel read the task, the claim lands; the cancel re-reads and requests.
        const t2 = yield* queue.submit("t", 2)
        yield* claim(t2, "w")
        const r2 = yield* queue.cancel(t2.id)
        expect(r2.outcome).toBe("cancel_requested")
        const after = Option.getOrThrow(yield* queue.get(t2.id))
        expect([after.status, after.cancelRequested, after.workerId]).toEqual(["running", true, "w"])
        // Truly concurrent: many pairs; each ends consistent with its outcomes.
        const tasks = yield* Effect.forEach(Array.from({ length: 8 }, (_, i) => i), (i) => queue.submit("race", i))
        const results = yield* Effect.forEach(tasks, (t) =>
          Effect.all([
            queue.cancel(t.id),
            Effect.gen(function*() {
              const read = Option.getOrThrow(yield* readTask(keyOfTask(t)))
              if (read.task.status !== "pending") return false
              const n = yield* clock.now
              return yield* casTask(Tr.claim(read.task, { now: n, workerId: "w", leaseId: "l" }), read.etag).pipe(
                Effect.as(true),
                Effect.catchTag("PreconditionFailed", () => Effect.succeed(false))
              )
            })
          ], { concurrency: 2 }), { concurrency: 8 })
        for (let i = 0; i < tasks.length; i++) {
          const [cancelResult, claimed] = results[i]!
          const final = Option.getOrThrow(yield* queue.get(tasks[i]!.id))
          if (claimed) {
            // The claim won: the cancel either came first and lost its CAS (impossible: then claim would lose)
            // or came after and requested cancellation.
            expect(cancelResult.outcome).toBe("cancel_requested")
            expect([final.status, final.cancelRequested]).toEqual(["running", true])
          } else {
            expect(cancelResult.outcome).toBe("cancelled")
            expect(final.status).toBe("cancelled")
          }
        }
      })))

    // ---------------------------------------------------------------------------------------
    // 4. history
    // ---------------------------------------------------------------------------------------
    test("history lists pending → running → pending (retry) → running → completed in order", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const control = yield* TestControl
        const task = yield* queue.submit("t", "in", { retryPolicy: { jitterPercent: 0 } })
        yield* claim(task, "w1")
        const retried = yield* settle(task, (t, now) => Tr.retry(t, { now, error: "flaky", random: 0.5 }))
        expect(retried.status).toBe("pending")
        expect(yield* exists(readyMarkerKey(retried))).toBe(true)
        yield* control.advance(Duration.seconds(2))
        yield* claim(retried, "w2")
        yield* settle(task, (t, now) => Tr.complete(t, { now, output: "out" }))
        const h = yield* queue.history(task.id)
        expect(h.events.map((e) => `${e.from ?? "new"}→${e.to}`)).toEqual([
          "new→pending", "pending→running", "running→pending", "pending→running", "running→completed"
        ])
        expect(h.events.map((e) => e.attempt)).toEqual([0, 1, 1, 2, 2])
        expect(h.events[2]!.error).toBe("flaky")
        expect(h.events[3]!.workerId).toBe("w2")
        const times = h.events.map((e) => DateTime.toEpochMillis(e.at))
        expect([...times].sort((x, y) => x - y)).toEqual(times)
        const missing = yield* Effect.flip(queue.history(crypto.randomUUID()))
        expect(missing._tag).toBe("TaskNotFound")
      })))

    // ---------------------------------------------------------------------------------------
    // 5. payloads
    // ---------------------------------------------------------------------------------------
    test("a 1 MiB input round-trips through a payload reference; delete removes task, markers and payloads", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const big = { blob: "x".repeat(1024 * 1024), n: 1 }
        const task = yield* queue.submit("big", big)
        expect(task.input).toBeNull()
        expect(task.inputRef).toBe(payloadKey(task.id, "input"))
        const stored = Option.getOrThrow(yield* queue.get(task.id))
        expect(yield* queue.loadInput(stored)).toEqual(big)
        const small = yield* queue.submit("small", { n: 2 })
        expect(small.inputRef).toBeUndefined()
        expect(yield* queue.loadInput(small)).toEqual({ n: 2 })
        expect(yield* exists(payloadKey(task.id, "input"))).toBe(true)
        expect(yield* queue.delete(task.id)).toBe(true)
        expect(yield* exists(payloadKey(task.id, "input"))).toBe(false)
        expect(yield* exists(keyOfTask(task))).toBe(false)
        expect(yield* exists(readyMarkerKey(task))).toBe(false)
        expect(yield* keysUnder("payloads/")).toEqual([])
        expect(yield* queue.delete(task.id)).toBe(false)
      })))

    test("the payload threshold is configurable", () =>
      run({ payloadThresholdBytes: 16 })(Effect.gen(function*() {
        const queue = yield* Queue
        const task = yield* queue.submit("t", { text: "longer than sixteen bytes" })
        expect(task.inputRef).toBeDefined()
        expect(yield* queue.loadInput(task)).toEqual({ text: "longer than sixteen bytes" })
      })))

    // ---------------------------------------------------------------------------------------
    // 6. hostile names
    // ---------------------------------------------------------------------------------------
    test("hostile task types, ids and scopes are rejected with a clear error before any write", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const control = yield* TestControl
        const hostile = ["../x", "a/b", "a\u0000b", "tab\there", "x".repeat(2048), "", ".hidden"]
        for (const name of hostile) {
          const e = yield* Effect.flip(queue.submit(name, {}))
          expect(e._tag).toBe("InvalidArgument")
          expect(e.message).toMatch(/task type/)
          for (const op of [queue.get(name), queue.cancel(name), queue.replay(name), queue.delete(name), queue.history(name)]) {
            const err = yield* Effect.flip(op as Effect.Effect<unknown, { readonly _tag: string; readonly message: string }>)
            expect(err._tag).toBe("InvalidArgument")
            expect(err.message).toMatch(/task id/)
          }
          expect((yield* Effect.flip(queue.pause(name)))._tag).toBe("InvalidArgument")
          expect((yield* Effect.flip(queue.publishSchema(name, new TaskJsonSchemas({}))))._tag).toBe("InvalidArgument")
          if (name !== "") {
            const scoped = yield* Effect.flip(queue.submit("ok", {}, { idempotencyKey: "k", idempotencyScope: name }))
            expect(scoped._tag).toBe("InvalidArgument")
          }
        }
        const typed = TaskType.make("../evil", { input: Schema.String })
        expect((yield* Effect.flip(queue.submit(typed, "x")))._tag).toBe("InvalidArgument")
        const badOption = yield* Effect.flip(queue.submit("ok", {}, { priority: 1.5 }))
        expect(badOption.message).toContain("priority")
        expect(yield* control.writes).toEqual([])
      })))

    // ---------------------------------------------------------------------------------------
    // 7. typed task types
    // ---------------------------------------------------------------------------------------
    test("a typed TaskType encodes its input with the Schema and rejects an invalid one with the Schema's message", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const control = yield* TestControl
        const SendEmail = TaskType.make("send_email", {
          input: Schema.Struct({
            to: Schema.String.pipe(Schema.pattern(/@/, { message: () => "to must be an e-mail address" })),
            at: Schema.DateFromString
          }),
          output: Schema.Struct({ sent: Schema.Boolean })
        })
        const bad = yield* Effect.flip(queue.submit(SendEmail, { to: "nobody", at: new Date(0) }))
        expect(bad._tag).toBe("SchemaValidationFailed")
        expect(bad.message).toContain("to must be an e-mail address")
        expect(yield* control.writes).toEqual([])
        const ok = yield* queue.submit(SendEmail, { to: "a@b.c", at: new Date(0) })
        expect(ok.input).toEqual({ to: "a@b.c", at: "1970-01-01T00:00:00.000Z" })
        // Bulk: one result per item; a bad one does not hide the good ones.
        const many = yield* queue.submitMany(SendEmail, [
          { to: "x@y", at: new Date(0) },
          { to: "broken", at: new Date(0) }
        ])
        expect(many.map((r) => r._tag)).toEqual(["Submitted", "Failed"])
        expect(many[1]!._tag === "Failed" && many[1]!.error._tag).toBe("SchemaValidationFailed")
      })))

    // ---------------------------------------------------------------------------------------
    // More of the issue: options, priority, expiry, replay, archive, pause, JSON Schemas
    // ---------------------------------------------------------------------------------------
    test("submit options are applied from server time", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const now = yield* queue.now
        const t = yield* queue.submit("t", 1, {
          timeoutSeconds: 60,
          maxRetries: 7,
          maxReschedules: 2,
          delayMs: 90_000,
          ttlSeconds: 3600,
          priority: 5,
          tags: ["a", "b"],
          retryPolicy: { initialIntervalMs: 10, multiplier: 3 }
        })
        expect([t.timeoutSeconds, t.maxRetries, t.maxReschedules, t.priority, t.tags]).toEqual([60, 7, 2, 5, ["a", "b"]])
        expect(t.retryPolicy.initialIntervalMs).toBe(10)
        expect(t.retryPolicy.multiplier).toBe(3)
        expect(t.retryPolicy.maxIntervalMs).toBe(60_000)
        const avail = DateTime.toEpochMillis(t.availableAt) - DateTime.toEpochMillis(now)
        expect(avail).toBeGreaterThanOrEqual(90_000)
        expect(avail).toBeLessThan(100_000)
        expect(DateTime.toEpochMillis(t.expiresAt!) - DateTime.toEpochMillis(t.createdAt)).toBe(3_600_000)
        const at = DateTime.add(now, { hours: 2 })
        const s = yield* queue.submit("t", 2, { scheduleAt: DateTime.toDateUtc(at) })
        expect(DateTime.toEpochMillis(s.availableAt)).toBe(DateTime.toEpochMillis(at))
        const both = yield* Effect.flip(queue.submit("t", 3, { ttlSeconds: 1, expiresAt: new Date(0) }))
        expect(both.message).toContain("only one of")
        expect((yield* queue.listReady()).map((e) => e.taskId)).toEqual([])
      })))

    test("contradictory submits are refused before anything is stored: an expiry not after the first run, a start given twice", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const now = yield* queue.now
        const inTwoHours = DateTime.toDateUtc(DateTime.add(now, { hours: 2 }))
        const refused = [
          { ttlSeconds: 0 },
          { scheduleAt: inTwoHours, ttlSeconds: 3600 },
          { scheduleAt: inTwoHours, expiresAt: inTwoHours },
          { delayMs: 60_000, ttlSeconds: 60 },
          { expiresAt: DateTime.toDateUtc(DateTime.subtract(now, { seconds: 1 })) }
        ]
        for (const options of refused) {
          const e = yield* Effect.flip(queue.submit("t", 1, options))
          expect(e._tag).toBe("InvalidArgument")
          expect(e.message).toContain("could never run")
        }
        const twice = yield* Effect.flip(queue.submit("t", 1, { scheduleAt: inTwoHours, delayMs: 1000 }))
        expect(twice.message).toContain("only one of scheduleAt, delay and delayMs")
        expect((yield* queue.list()).tasks).toEqual([])
        // an expiry after the first run is fine
        const ok = yield* queue.submit("t", 1, { scheduleAt: inTwoHours, expiresAt: DateTime.toDateUtc(DateTime.add(now, { hours: 3 })) })
        expect(DateTime.toEpochMillis(ok.expiresAt!) - DateTime.toEpochMillis(ok.availableAt)).toBe(3_600_000)
      })))

    test("in a shard, higher-priority due tasks come first in the ready index; future ones never block", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const control = yield* TestControl
        const priorities = [0, 0, 10, 500, 9999]
        const submitted = yield* Effect.forEach(Array.from({ length: 60 }, (_, i) => i), (i) =>
          queue.submit("t", i, { priority: priorities[i % 5]!, ...(i % 7 === 0 ? { delayMs: 3_600_000 } : {}) }))
        yield* control.advance(Duration.seconds(61))
        const now = DateTime.toEpochMillis(yield* queue.now)
        const due = submitted.filter((t) => DateTime.toEpochMillis(t.availableAt) <= now)
        expect(due.length).toBeLessThan(submitted.length)
        const ready = yield* queue.listReady({ limit: 1000 })
        expect(ready.map((e) => e.taskId).sort()).toEqual(due.map((t) => t.id).sort())
        const byShard = new Map<string, Array<number>>()
        for (const e of ready) byShard.set(e.shard, [...(byShard.get(e.shard) ?? []), e.priority])
        for (const ps of byShard.values()) expect(ps).toEqual([...ps].sort((a, b) => b - a))
        // Default-priority markers keep the reference's exact key.
        const plain = submitted.find((t) => t.priority === undefined)!
        expect(readyMarkerKey(plain)).toMatch(/^ready\/[0-9a-f]\/\d{10}\/[0-9a-f-]{36}$/)
        expect(yield* exists(readyMarkerKey(plain))).toBe(true)
      })))

    test("markExpired expires a pending task after its TTL; an expired task is never claimable; replay gives a fresh budget", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const control = yield* TestControl
        const t = yield* queue.submit("t", 1, { ttlSeconds: 60 })
        expect((yield* queue.markExpired(t.id)).outcome).toBe("not_due")
        yield* control.advance(Duration.seconds(60))
        const now = yield* queue.now
        expect(Tr.canClaim(Option.getOrThrow(yield* queue.get(t.id)), now)).toBe(false)
        const r = yield* queue.markExpired(t.id)
        expect(r.outcome).toBe("expired")
        expect(r.task?.status).toBe("expired")
        expect(yield* exists(readyMarkerKey(t))).toBe(false)
        expect((yield* queue.markExpired(t.id)).outcome).toBe("not_pending")
        const replayed = yield* queue.replay(t.id)
        expect([replayed.status, replayed.retryCount, replayed.attempt, replayed.rescheduleCount]).toEqual(["pending", 0, 0, 0])
        expect(replayed.expiresAt).toBeUndefined()
        expect(yield* exists(readyMarkerKey(replayed))).toBe(true)
        const notAgain = yield* Effect.flip(queue.replay(t.id))
        expect(notAgain._tag).toBe("IllegalTransition")
        expect(notAgain.message).toContain("replay needs failed, cancelled, expired")
      })))

    test("archive moves terminal tasks only, idempotently", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        const t = yield* queue.submit("t", 1)
        expect((yield* Effect.flip(queue.archive(t.id)))._tag).toBe("IllegalTransition")
        yield* queue.cancel(t.id)
        expect((yield* queue.archive(t.id)).status).toBe("archived")
        expect((yield* queue.archive(t.id)).status).toBe("archived")
        expect((yield* Effect.flip(queue.archive(crypto.randomUUID())))._tag).toBe("TaskNotFound")
      })))

    test("pause and resume, globally and per task type, in one control object", () =>
      run()(Effect.gen(function*() {
        const queue = yield* Queue
        expect(isPaused(yield* queue.pauseState, "a")).toBe(false)
        yield* Effect.all([queue.pause("a"), queue.pause("b")], { concurrency: 2 })
        const s1 = yield* queue.pauseState
        expect([isPaused(s1, "a"), isPaused(s1, "b"), isPaused(s1, "c")]).toEqual([true, true, false])
        yield* queue.pause()
        expect(isPaused(yield* queue.pauseState, "c")).toBe(true)
        yield* queue.resume()
        yield* queue.resume("a")
        const s2 = yield* queue.pauseState
        expect([isPaused(s2, "a"), isPaused(s2, "b"), isPaused(s2, "c")]).toEqual([false, true, false])
        expect(yield* keysUnder("control/pause")).toEqual(["control/pause.json"])
      })))

    test("published JSON Schemas are listed, validate inputs on submit, and can be deleted", () =>
      run({ schemaCacheSeconds: 0 })(Effect.gen(function*() {
        const queue = yield* Queue
        const schema = new TaskJsonSchemas({
          input: { type: "object", properties: { to: { type: "string", format: "email" } }, required: ["to"] }
        })
        yield* queue.publishSchema("mail", schema)
        expect(yield* queue.listSchemas).toEqual(["mail"])
        expect(Option.getOrThrow(yield* queue.getSchema("mail")).input).toEqual(schema.input)
        const bad = yield* Effect.flip(queue.submit("mail", { to: "not-an-email" }))
        expect(bad._tag).toBe("SchemaValidationFailed")
        expect(bad.message).toContain("/to")
        yield* queue.submit("mail", { to: "a@example.com" })
        const invalidSchema = yield* Effect.flip(queue.publishSchema("x", new TaskJsonSchemas({ input: { type: "no-such-type" } })))
        expect(invalidSchema._tag).toBe("InvalidArgument")
        yield* queue.deleteSchema("mail")
        expect(yield* queue.listSchemas).toEqual([])
        yield* queue.submit("mail", { to: "not-an-email" })
      })))
  })
}
