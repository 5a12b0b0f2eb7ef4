/**
 * Shared set-up of the worker suites: a fresh store (MemoryStorage by default) with its
 * ServerClock and Queue, helpers to seed tasks into a chosen shard, and `drive`, which moves
 * TestClock forward in small steps until a condition holds (no sleeping).
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { DateTime, Deferred, Duration, Effect, Layer, Option, Random, TestClock } from "effect"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import type { Task } from "../../src/domain/Task.js"
import * as Tr from "../../src/domain/Transitions.js"
import { createTask, keyOfTask, readTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { Queue } from "../../src/services/Queue.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import * as Claim from "../../src/programs/worker/Claim.js"
import type * as Discovery from "../../src/programs/worker/Discovery.js"
import type { ReadyEntry } from "../../src/domain/ReadyIndex.js"

/** Storage + ServerClock + Queue, and the LeaseManager and Scheduler a worker needs, on a given storage layer. */
export const queueLayer = (storage: Layer.Layer<Storage, unknown> = MemoryStorage.layer()) => {
  const base = Layer.provideMerge(ServerClockLayer.layer, storage)
  return Layer.provideMerge(Layer.merge(QueueLayer.layer(), layerWorkerServices()), base)
}

/** A claim environment for `workerId` that handles type "job", never paused, always admitted. */
export const jobClaimEnv = (workerId: string): Claim.ClaimEnv => ({
  workerId,
  handles: (taskType) => taskType === "job",
  isPaused: () => Effect.succeed(false),
  admit: () => Effect.succeed(true)
})

/** A policy without jitter, so backoff delays are exact. */
export const exactPolicy = new RetryPolicy({ initialIntervalMs: 1000, maxIntervalMs: 60_000, multiplier: 2, jitterPercent: 0 })

/** Moves TestClock forward by `step` until `done` is true (at most `limit` steps); `what` names the condition in the failure. */
export const drive = <E, R>(done: Effect.Effect<boolean, E, R>, step: Duration.DurationInput = "100 millis", limit = 2000, what = "condition") =>
  Effect.gen(function*() {
    for (let i = 0; i < limit; i++) {
      if (yield* done) return
      yield* TestClock.adjust(step)
    }
    return yield* Effect.dieMessage(`drive: ${what} not reached after ${limit} steps of ${Duration.format(step)}`)
  })

/** Reads a task by id (dies if missing). */
export const getTask = (id: string) =>
  Effect.flatMap(Queue, (q) => q.get(id)).pipe(Effect.map(Option.getOrThrow))

/** Whether the task has this status now. */
export const hasStatus = (id: string, ...statuses: ReadonlyArray<Task["status"]>) =>
  Effect.map(getTask(id), (t) => statuses.includes(t.status))

/** A task id in `shard` (1 hex digit), sorted after ids made earlier with the same counter. */
export const idInShard = (shard: string, n: number): string => {
  const hex = (shard + n.toString(16).padStart(11, "0")).padEnd(12, "0")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4000-8000-${randomUUID().slice(-12)}`
}

/** Writes a pending task with a chosen id and availability (marker first, like submit). */
export const seedTask = (id: string, taskType: string, availableAt: DateTime.Utc, input: unknown = {}, priority?: number) =>
  Effect.gen(function*() {
    const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
    const task = Tr.newTask({
      id,
      shard: id.slice(0, 1),
      taskType,
      input,
      now,
      availableAt,
      timeoutSeconds: 30,
      maxRetries: 3,
      retryPolicy: exactPolicy,
      priority
    })
    yield* writeMarker(readyMarkerKey(task))
    yield* createTask(task)
    return task
  })

/** The stored task (with ETag). */
export const stored = (task: Task) => Effect.map(readTask(keyOfTask(task)), Option.getOrThrow)

/** Milliseconds between two instants. */
export const millisBetween = (a: DateTime.Utc, b: DateTime.Utc): number => DateTime.toEpochMillis(b) - DateTime.toEpochMillis(a)

/** One second. */
export const second = Duration.seconds(1)

/** Free slots: `n` until `n` tries have started (one batch per pass). */
export const oneBatch = (n: number, tried: ReadonlyArray<string>) => Effect.sync(() => n - tried.length)

/**
 * Two workers' first batches of 8 over the same listing: the other's whole pass runs between our
 * read of the page and our tries (as when both listed it at once). Seeded randoms: 1 ours, 2 theirs.
 */
export const interleavedFirstBatches = (ours: Discovery.Discovery, other: Discovery.Discovery) =>
  Effect.gen(function*() {
    const theirs: Array<string> = []
    const mine: Array<string> = []
    let othersClaimed = 0
    const gate = yield* Deferred.make<void>()
    let first = true
    const attempt = (entry: ReadyEntry) =>
      Effect.gen(function*() {
        mine.push(entry.taskId)
        if (first) {
          first = false
          const r = yield* other.pass(oneBatch(8, theirs), (e) => {
            theirs.push(e.taskId)
            return Claim.tryClaim(e, jobClaimEnv("other"))
          }, () => Effect.void).pipe(Effect.withRandom(Random.make(2)))
          othersClaimed = r.claimed
          yield* Deferred.succeed(gate, undefined)
        } else yield* Deferred.await(gate)
        return yield* Claim.tryClaim(entry, jobClaimEnv("ours"))
      })
    const result = yield* ours.pass(oneBatch(8, mine), attempt, () => Effect.void).pipe(Effect.withRandom(Random.make(1)))
    return { mine, theirs, result, othersClaimed }
  })
