/**
 * Natural batching of DELETEs: a key asked for while no request of the batcher is in flight is
 * sent at once, alone (a plain DELETE); the keys asked for while one is in flight wait for it and
 * then go together in ONE `DeleteObjects` (`Storage.deleteMany`, up to 1000 keys a request). No
 * timer: a lone caller waits no longer than with its own DELETE, and under load the requests
 * follow the round trips, not the callers (a worker's ready-marker DELETEs, one per claim, overlap
 * whenever claims come faster than a DELETE is answered).
 *
 * Each caller is answered when the request carrying its keys is: with its outcome (a failed batch
 * fails every caller in it, a DELETE of the same keys being safe to repeat). So "my DELETE was
 * answered at t" means what it means for a DELETE of one's own: the keys were gone by then, which
 * is what the claim's late-answer check (`Deadline.rewriteIfLate`) and the settle's wait rely on.
 *
 * @module
 */
import { Deferred, Effect, type Scope } from "effect"
import type { StorageReadError } from "../domain/StorageError.js"
import { Storage } from "../services/Storage.js"

/**
 * Deletes keys, sharing requests with the other callers of the same batcher.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeleteBatcher {
  /** Deletes `keys` (missing ones are fine); done when the request that carried them is answered. */
  readonly delete: (keys: ReadonlyArray<string>) => Effect.Effect<void, StorageReadError>
}

interface Waiting {
  readonly keys: ReadonlyArray<string>
  readonly done: Deferred.Deferred<void, StorageReadError>
}

/**
 * A batcher on the Storage in context. Its sending fiber runs in the current Scope (not in a
 * caller's fiber: an interrupted caller must not leave the others of its batch unanswered); when
 * the Scope closes, the callers still waiting are interrupted, and a caller after that sends its
 * own request.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<DeleteBatcher, never, Storage | Scope.Scope> = Effect.gen(function*() {
  const storage = yield* Storage
  const scope = yield* Effect.scope
  let queued: Array<Waiting> = []
  let inFlight: ReadonlyArray<Waiting> = []
  let sending = false
  // once the Scope has closed no sending fiber can run (one forked into a closed Scope is
  // interrupted before its first step): a later caller sends its own request
  let closed = false

  const send = (keys: ReadonlyArray<string>): Effect.Effect<void, StorageReadError> =>
    keys.length === 1 ? storage.delete(keys[0]!) : storage.deleteMany(keys)

  /** Sends what is queued, then what was queued meanwhile, until nothing is. */
  const drain: Effect.Effect<void> = Effect.suspend(() => {
    const batch = queued
    queued = []
    inFlight = batch
    if (batch.length === 0) {
      sending = false
      return Effect.void
    }
    return Effect.exit(send([...new Set(batch.flatMap((w) => w.keys))])).pipe(
      Effect.flatMap((exit) => Effect.forEach(batch, (w) => Deferred.done(w.done, exit), { discard: true })),
      Effect.zipRight(drain)
    )
  })

  const stopped = Effect.suspend(() => {
    const left = [...inFlight, ...queued]
    queued = []
    inFlight = []
    sending = false
    return Effect.forEach(left, (w) => Deferred.interrupt(w.done), { discard: true })
  })

  const deleteKeys = (keys: ReadonlyArray<string>): Effect.Effect<void, StorageReadError> =>
    keys.length === 0 ? Effect.void : Effect.gen(function*() {
      const done = yield* Deferred.make<void, StorageReadError>()
      if (closed) return yield* send([...new Set(keys)])
      queued.push({ keys, done })
      if (!sending) {
        sending = true
        yield* Effect.forkIn(Effect.onInterrupt(drain, () => stopped), scope)
      }
      return yield* Deferred.await(done)
    })

  yield* Effect.addFinalizer(() => Effect.zipRight(Effect.sync(() => (closed = true)), stopped))
  return { delete: deleteKeys } satisfies DeleteBatcher
})
