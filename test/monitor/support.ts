/**
 * Test helpers for the monitor and shard-leasing suites: a storage wrapper that records every
 * shard-lease write that landed (for the "never owned by two at once" check) and can "kill" a
 * process (every later request of that process fails, as if it had died), and per-instance
 * services on one shared store.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { DateTime, Effect, Exit, Option, Scope, Stream } from "effect"
import { decodeObject } from "../../src/domain/Codec.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import { shardOf } from "../../src/domain/Shard.js"
import * as Tr from "../../src/domain/Transitions.js"
import {
  casTask,
  createTask,
  deleteMarkers,
  readTask,
  type VersionedTask,
  writeMarker
} from "../../src/protocol/TaskObjects.js"
import { leaseMarkerOf } from "../../src/domain/Markers.js"
import { ShardLease } from "../../src/domain/ShardLease.js"
import { StorageUnavailable } from "../../src/domain/StorageError.js"
import * as LeaseManagerLayer from "../../src/layers/LeaseManager.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { LeaseManager } from "../../src/services/LeaseManager.js"
import { ServerClock, type ServerClockService } from "../../src/services/ServerClock.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"

/** One landed write of a shard lease. */
export interface LeaseWrite {
  readonly seq: number
  readonly shard: string
  readonly workerId: string
  readonly updatedAt: number
  readonly expiresAt: number
}

/** The history of shard-lease writes, shared by every process of a test. */
export interface LeaseHistory {
  readonly writes: Array<LeaseWrite>
}

/** A fresh history. */
export const makeHistory = (): LeaseHistory => ({ writes: [] })

/** A process's view of the shared store: records lease writes; `kill()` makes every later request fail. */
export const processStorage = (underlying: StorageService, history: LeaseHistory) => {
  let dead = false
  const guard = <A, E>(op: string, self: Effect.Effect<A, E>): Effect.Effect<A, E | StorageUnavailable> =>
    Effect.suspend((): Effect.Effect<A, E | StorageUnavailable> =>
      dead ? Effect.fail(new StorageUnavailable({ operation: op, message: "process killed (test)" })) : self
    )
  const storage: StorageService = {
    ...underlying,
    get: (key) => guard("get", underlying.get(key)),
    head: (key) => guard("head", underlying.head(key)),
    put: (key, body, condition) =>
      guard("put", underlying.put(key, body, condition)).pipe(
        Effect.tap(() =>
          key.startsWith("shard-leases/")
            ? decodeObject(ShardLease, key, body).pipe(
              Effect.tap((lease) =>
                Effect.sync(() =>
                  history.writes.push({
                    seq: history.writes.length,
                    shard: lease.shard,
                    workerId: lease.workerId,
                    updatedAt: DateTime.toEpochMillis(lease.updatedAt),
                    expiresAt: DateTime.toEpochMillis(lease.leaseExpiresAt)
                  })
                )
              ),
              Effect.orDie
            )
            : Effect.void
        )
      ),
    delete: (key) => guard("delete", underlying.delete(key)),
    deleteIfMatch: (key, etag) => guard("deleteIfMatch", underlying.deleteIfMatch(key, etag)),
    deleteMany: (keys) => guard("deleteMany", underlying.deleteMany(keys)),
    list: (prefix, options) => guard("list", underlying.list(prefix, options))
  }
  return { storage, kill: () => (dead = true), isDead: () => dead }
}

/**
 * Overlaps in a lease history: a write by worker B that landed while A's last lease on the same
 * shard had not yet expired (B's write time before A's expiry). Empty = never two owners at once.
 */
export const overlaps = (history: LeaseHistory): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const last = new Map<string, LeaseWrite>()
  for (const w of history.writes) {
    const prev = last.get(w.shard)
    if (prev !== undefined && prev.workerId !== w.workerId && w.updatedAt < prev.expiresAt) {
      problems.push(`shard ${w.shard}: ${w.workerId} wrote at ${w.updatedAt} while ${prev.workerId} held it until ${prev.expiresAt}`)
    }
    last.set(w.shard, w)
  }
  return problems
}

/** Services of one process on `storage`, with the server clock = the ambient (Test)Clock. */
export const processServices = (storage: StorageService, serverClock?: ServerClockService) =>
  Effect.gen(function*() {
    const clock: ServerClockService = serverClock ?? ServerClockLayer.fromLocalClock(yield* Effect.clock)
    const lm = yield* LeaseManagerLayer.make.pipe(
      Effect.provideService(Storage, storage),
      Effect.provideService(ServerClock, clock)
    )
    return { clock, lm }
  })

/** Runs `make` in a fresh Scope with a process's services; returns its value and a way to close the scope. */
export const inScope = <A, E>(
  storage: StorageService,
  make: Effect.Effect<A, E, Storage | ServerClock | LeaseManager | Scope.Scope>,
  serverClock?: ServerClockService
) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const { clock, lm } = yield* processServices(storage, serverClock)
    const value = yield* make.pipe(
      Effect.provideService(Storage, storage),
      Effect.provideService(ServerClock, clock),
      Effect.provideService(LeaseManager, lm),
      Scope.extend(scope)
    )
    return { value, close: Scope.close(scope, Exit.void) }
  })

/** Reads the stored shard leases: shard → lease. */
export const storedLeases = (storage: StorageService, shards: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const out = new Map<string, ShardLease>()
    for (const shard of shards) {
      const key = `shard-leases/${shard}.json`
      const found = yield* storage.get(key)
      if (Option.isSome(found)) out.set(shard, yield* decodeObject(ShardLease, key, found.value.body))
    }
    return out
  })

// ---------------------------------------------------------------------------------------------
// Simulated producer and worker, exactly as the protocols write (Transitions + TaskObjects):
// submit = ready marker, then create-only PUT; claim = lease marker BEFORE the claim CAS, then
// delete the ready marker; retry = ready marker BEFORE the CAS, then delete the lease marker;
// complete = CAS, then delete the lease marker.
// ---------------------------------------------------------------------------------------------

/** Submits a task the way Queue.submit does. */
export const submitTask = (p: {
  readonly id?: string
  readonly prefixLen: number
  readonly now: DateTime.Utc
  readonly timeoutSeconds?: number
  readonly maxRetries?: number
  readonly availableAt?: DateTime.Utc
  readonly expiresAt?: DateTime.Utc
}) =>
  Effect.gen(function*() {
    const id = p.id ?? randomUUID()
    const task = Tr.newTask({
      id,
      shard: shardOf(id, p.prefixLen),
      taskType: "t",
      input: { n: 1 },
      now: p.now,
      availableAt: p.availableAt ?? p.now,
      timeoutSeconds: p.timeoutSeconds ?? 60,
      maxRetries: p.maxRetries ?? 3,
      retryPolicy: new RetryPolicy({ initialIntervalMs: 1000, maxIntervalMs: 60_000, multiplier: 2, jitterPercent: 0.25 }),
      expiresAt: p.expiresAt
    })
    yield* writeMarker(readyMarkerKey(task))
    yield* createTask(task)
    return task
  })

/** Claims a task as the worker does; none if it is not claimable. */
export const claimTask = (key: string, workerId: string) =>
  Effect.gen(function*() {
    const clock = yield* ServerClock
    const found = yield* readTask(key)
    if (Option.isNone(found)) return Option.none<VersionedTask>()
    const now = yield* clock.now
    if (!Tr.canClaim(found.value.task, now)) return Option.none<VersionedTask>()
    const next = Tr.claim(found.value.task, { now, workerId, leaseId: randomUUID() })
    yield* writeMarker(leaseMarkerOf(next)!)
    const etag = yield* casTask(next, found.value.etag).pipe(
      Effect.map(Option.some),
      Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<string>()))
    )
    if (Option.isNone(etag)) return Option.none<VersionedTask>()
    yield* deleteMarkers([readyMarkerKey(found.value.task)])
    return Option.some<VersionedTask>({ task: next, etag: etag.value })
  })

/** Retries a held task as the worker does (ready marker before the CAS). */
export const retryTask = (held: VersionedTask) =>
  Effect.gen(function*() {
    const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
    const next = Tr.retry(held.task, { now, error: "boom", random: 0.5 })
    yield* writeMarker(readyMarkerKey(next))
    yield* casTask(next, held.etag)
    yield* deleteMarkers([leaseMarkerOf(held.task)!])
  })

/** Completes a held task as the worker does. */
export const completeTask = (held: VersionedTask) =>
  Effect.gen(function*() {
    const now = yield* Effect.flatMap(ServerClock, (c) => c.now)
    yield* casTask(Tr.complete(held.task, { now, output: { ok: true } }), held.etag)
    yield* deleteMarkers([leaseMarkerOf(held.task)!])
  })

/** Every key under a prefix. */
export const keysUnder = (storage: StorageService, prefix: string) =>
  Effect.map(Stream.runCollect(storage.listAll(prefix)), (c) => [...c].map((o) => o.key))
