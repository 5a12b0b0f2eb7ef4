/**
 * Test helpers for the monitor and shard-leasing suites: a storage wrapper that records every
 * shard-lease write that landed (for the "never owned by two at once" check) and can "kill" a
 * process (every later request of that process fails, as if it had died), and per-instance
 * services on one shared store.
 *
 * @module
 */
import { DateTime, Effect, Exit, Option, Scope } from "effect"
import { decodeObject } from "../../src/domain/Codec.js"
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
    Effect.suspend(() =>
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
export const processServices = (storage: StorageService) =>
  Effect.gen(function*() {
    const clock: ServerClockService = ServerClockLayer.fromLocalClock(yield* Effect.clock)
    const lm = yield* LeaseManagerLayer.make.pipe(
      Effect.provideService(Storage, storage),
      Effect.provideService(ServerClock, clock)
    )
    return { clock, lm }
  })

/** Runs `make` in a fresh Scope with a process's services; returns its value and a way to close the scope. */
export const inScope = <A, E>(
  storage: StorageService,
  make: Effect.Effect<A, E, Storage | ServerClock | LeaseManager | Scope.Scope>
) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const { clock, lm } = yield* processServices(storage)
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
