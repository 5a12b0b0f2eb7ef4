/**
 * Worker OS processes on the real RGW server (acceptance 1, 2 and 7 of issue 4). Real time is
 * used, but only outcomes are asserted: which tasks completed, how often each handler ran, exit codes.
 *
 * Lease recovery after a SIGKILL is done by a minimal loop in this test (the monitor is another
 * issue's): it walks `leases/`, and applies Transitions.recoverExpiredLease to tasks whose lease ran out.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Option, Stream } from "effect"
import { parseIndexKey, taskKey, workerKey } from "../../src/domain/Keys.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import * as Tr from "../../src/domain/Transitions.js"
import { keep, updateTask, write } from "../../src/protocol/TaskObjects.js"
import { makeSignal } from "../../src/protocol/WakeUp.js"
import { Queue } from "../../src/services/Queue.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { logLines, spawnScoped, terminateEffect, waitUntil } from "../support/processes.js"
import { describeS3, s3Config, s3QueueLayer } from "../support/s3.js"
import type { S3StorageConfig } from "../../src/layers/S3Storage.js"

const fixture = join(import.meta.dirname, "fixtures", "worker.ts")

/** A worker process, stopped (SIGTERM, then SIGKILL after a grace) when the test's scope closes. */
const spawnWorker = (config: S3StorageConfig, env: Record<string, string>) => spawnScoped(fixture, { BUQUET_TEST_S3: JSON.stringify(config), ...env })

const lines = (file: string): ReadonlyArray<{ id: string; attempt: number; worker: string }> =>
  logLines(file).map(([id, attempt, worker]) => ({ id: id!, attempt: Number(attempt), worker: worker! }))

const statusOf = (id: string) =>
  Effect.flatMap(Queue, (q) => q.get(id)).pipe(Effect.map((t) => Option.getOrThrow(t)))

/** The test's stand-in for the monitor: recover running tasks whose lease ran out. */
const recoverExpiredLeases = Effect.gen(function*() {
  const storage = yield* Storage
  const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
  const markers = Chunk.toReadonlyArray(yield* Stream.runCollect(storage.listAll("leases/")))
  let recovered = 0
  for (const m of markers) {
    const parsed = parseIndexKey(m.key)
    if (parsed === undefined) continue
    yield* updateTask(taskKey(parsed.shard, parsed.taskId), (found) => {
      if (Option.isNone(found) || !Tr.canRecoverLease(found.value.task, now)) return keep(undefined)
      const next = Tr.recoverExpiredLease(found.value.task, { now, random: 0.5 })
      recovered++
      return write(next, undefined, { before: next.status === "pending" ? [readyMarkerKey(next)] : [], after: [m.key] })
    })
  }
  // like the real monitor: wake idle workers, which otherwise wait for their slow safety-net pass
  if (recovered > 0) yield* Effect.scoped(Effect.flatMap(makeSignal(storage), (signal) => signal.touch))
})

describeS3("Worker processes on RGW", () => {
  it.live("4 worker processes × concurrency 8 run 2,000 tasks: all completed, one invocation per attempt, no double claim", () => {
    const config = s3Config()
    const log = join(mkdtempSync(join(tmpdir(), "buquet-w-")), "handlers.log")
    return Effect.gen(function*() {
      const queue = yield* Queue
      const results = yield* queue.submitMany(Array.from({ length: 2000 }, (_, i) => ({ taskType: "job", input: { i } })), { concurrency: 24 })
      const ids = results.map((r) => (r._tag === "Submitted" ? r.task.id : "failed"))
      expect(ids.filter((id) => id === "failed")).toEqual([])
      const workers = yield* Effect.forEach([0, 1, 2, 3], (i) => spawnWorker(config, { WORKER_ID: `load-${i}`, CONCURRENCY: "8", HANDLER_LOG: log }))
      yield* waitUntil("2,000 handler runs are logged", Effect.sync(() => lines(log).length >= 2000), 240_000, 1000)
      yield* waitUntil("every task is completed", Effect.gen(function*() {
        const all = yield* Effect.forEach(ids, statusOf, { concurrency: 32 })
        return all.every((t) => t.status === "completed")
      }), 120_000, 3000)
      const codes = yield* Effect.forEach(workers, (w) => terminateEffect(w), { concurrency: "unbounded" })
      expect(codes.map((c) => c.code)).toEqual([0, 0, 0, 0])
      const tasks = yield* Effect.forEach(ids, statusOf, { concurrency: 32 })
      expect(tasks.filter((t) => t.status !== "completed").map((t) => `${t.id} ${t.status}`)).toEqual([])
      const runs = lines(log)
      const perAttempt = new Map<string, number>()
      for (const r of runs) perAttempt.set(`${r.id}#${r.attempt}`, (perAttempt.get(`${r.id}#${r.attempt}`) ?? 0) + 1)
      // zero double claims: no (task, attempt) ran twice
      expect([...perAttempt.entries()].filter(([, n]) => n > 1)).toEqual([])
      // each task's handler ran exactly once per attempt it recorded
      for (const t of tasks) {
        for (let a = 1; a <= t.attempt; a++) expect(perAttempt.get(`${t.id}#${a}`), `${t.id} attempt ${a}`).toBe(1)
      }
      expect(new Set(runs.map((r) => r.worker)).size).toBeGreaterThan(1)
    }).pipe(Effect.scoped, Effect.provide(s3QueueLayer(config)))
  }, 400_000)

  it.live("a worker killed with SIGKILL while 8 handlers run loses nothing: another worker completes all 8 after their leases expire", () => {
    const config = s3Config()
    const log = join(mkdtempSync(join(tmpdir(), "buquet-w-")), "handlers.log")
    return Effect.gen(function*() {
      const queue = yield* Queue
      const tasks = yield* Effect.forEach(Array.from({ length: 8 }, (_, i) => i), (i) =>
        queue.submit("job", { i, sleepFirstAttemptMs: 600_000 }, { timeoutSeconds: 4 }))
      const a = yield* spawnWorker(config, { WORKER_ID: "doomed", CONCURRENCY: "8", HANDLER_LOG: log })
      yield* waitUntil("8 handlers run", Effect.sync(() => lines(log).length >= 8), 60_000, 200)
      a.child.kill("SIGKILL")
      yield* Effect.promise(() => a.exit)
      const b = yield* spawnWorker(config, { WORKER_ID: "survivor", CONCURRENCY: "8", HANDLER_LOG: log })
      yield* waitUntil("all 8 completed", Effect.gen(function*() {
        yield* recoverExpiredLeases
        const all = yield* Effect.forEach(tasks, (t) => statusOf(t.id))
        return all.every((t) => t.status === "completed")
      }), 90_000, 1000)
      expect((yield* terminateEffect(b)).code).toBe(0)
      const runs = lines(log)
      for (const t of tasks) {
        const mine = runs.filter((r) => r.id === t.id)
        expect(mine.map((r) => `${r.attempt} ${r.worker}`)).toEqual(["1 doomed", "2 survivor"])
        const final = yield* statusOf(t.id)
        expect(final.attempt).toBe(2)
      }
    }).pipe(Effect.scoped, Effect.provide(s3QueueLayer(config)))
  }, 200_000)

  it.live("SIGTERM with a running 3 s handler: it finishes, the worker deregisters, exit code 0", () => {
    const config = s3Config()
    const log = join(mkdtempSync(join(tmpdir(), "buquet-w-")), "handlers.log")
    return Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("job", { sleepMs: 3000 })
      const w = yield* spawnWorker(config, { WORKER_ID: "term-short", CONCURRENCY: "2", HANDLER_LOG: log })
      yield* waitUntil("the handler runs", Effect.sync(() => lines(log).length >= 1), 60_000, 100)
      expect(Option.isSome(yield* Effect.flatMap(Storage, (s) => s.head(workerKey("term-short"))))).toBe(true)
      expect((yield* terminateEffect(w)).code).toBe(0)
      expect((yield* statusOf(task.id)).status).toBe("completed")
      expect(Option.isNone(yield* Effect.flatMap(Storage, (s) => s.head(workerKey("term-short"))))).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(s3QueueLayer(config)))
  }, 120_000)

  it.live("SIGTERM with a 60 s handler and a 2 s grace: the task goes back to pending with retry_count unchanged, exit code 0", () => {
    const config = s3Config()
    const log = join(mkdtempSync(join(tmpdir(), "buquet-w-")), "handlers.log")
    return Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("job", { sleepMs: 60_000 }, { timeoutSeconds: 300 })
      const w = yield* spawnWorker(config, { WORKER_ID: "term-long", CONCURRENCY: "2", GRACE_MS: "2000", HANDLER_LOG: log })
      yield* waitUntil("the handler runs", Effect.sync(() => lines(log).length >= 1), 60_000, 100)
      expect((yield* terminateEffect(w)).code).toBe(0)
      const after = yield* statusOf(task.id)
      expect(after.status).toBe("pending")
      expect(after.retryCount).toBe(0)
      expect(after.leaseId).toBeNull()
      expect(Option.isSome(yield* Effect.flatMap(Storage, (s) => s.head(readyMarkerKey(after))))).toBe(true)
      expect(Option.isNone(yield* Effect.flatMap(Storage, (s) => s.head(workerKey("term-long"))))).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(s3QueueLayer(config)))
  }, 120_000)
})
