/**
 * The worker's side of the cancel signal (protocol/CancelSignal.ts): while tasks run, one HEAD of
 * `control/cancel/{worker_id}` per `checkInterval` (2 s); each change of its ETag is counted, and
 * every running task waits for the count to pass the one it started with, then checks itself (a
 * HEAD, and a GET only when its ETag moved). An idle worker makes no request here.
 *
 * No cancel falls between a claim and the next check: a task starts from the count read BEFORE its
 * claim was sent. A cancel of it can only be written after the claim landed, so its touch lands
 * after that too, and the HEAD that sees the touch returns after the count was read: the task's
 * count is below the new one, and it checks itself.
 *
 * @module
 */
import { Deferred, Duration, Effect, Option, Ref } from "effect"
import type { Scope } from "effect"
import { cancelSignalKey } from "../../protocol/CancelSignal.js"
import { watchedEtag } from "../../protocol/WakeUp.js"
import type { StorageService } from "../../services/Storage.js"

/** A worker's watch of its cancel signal. */
export interface CancelWatch {
  /** How many changes were seen so far: read it before claiming, and hand it to the task. */
  readonly seen: Effect.Effect<number>
  /** Completes at the first change after `seen` was read; returns the new count. */
  readonly changedAfter: (seen: number) => Effect.Effect<number>
  /** Deletes the signal if this worker ever found it (at deregistration); never fails. */
  readonly remove: Effect.Effect<void>
}

/** Settings of {@link make}. */
export interface CancelWatchSettings {
  readonly workerId: string
  readonly storage: StorageService
  /** How often the signal is HEADed while tasks run. */
  readonly checkInterval: Duration.Duration
  /** Whether tasks run now (no request while none do). */
  readonly busy: Effect.Effect<boolean>
}

/** Reads the signal once (so the first claim starts from what is there), then watches it in the current Scope. */
export const make = (settings: CancelWatchSettings): Effect.Effect<CancelWatch, never, Scope.Scope> =>
  Effect.gen(function*() {
    const key = cancelSignalKey(settings.workerId)
    // The count and the Deferred its next change completes: every running task waits on it, so a
    // wait costs a Deferred, not a Stream over a SubscriptionRef (~1,000 fiber-runtime steps per task).
    const state = yield* Ref.make({ count: 0, next: yield* Deferred.make<number>() })
    const bump = Effect.flatMap(Deferred.make<number>(), (fresh) =>
      Effect.flatMap(
        Ref.modify(state, (s) => [s, { count: s.count + 1, next: fresh }] as const),
        (old) => Deferred.succeed(old.next, old.count + 1)
      ))
    const head = watchedEtag(settings.storage, key).pipe(
      Effect.tapError((e) => Effect.logDebug(`cancel signal check failed: ${e.message}`)),
      Effect.option
    )
    // None until a HEAD succeeds: then the first success counts as a change (nothing is assumed).
    const last = yield* Ref.make(yield* head)
    const check = Effect.gen(function*() {
      if (!(yield* settings.busy)) return
      const etag = yield* head
      if (Option.isNone(etag)) return
      const before = yield* Ref.getAndSet(last, etag)
      if (Option.isNone(before) || before.value !== etag.value) yield* bump
    })
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(settings.checkInterval), check)))

    return {
      seen: Effect.map(Ref.get(state), (s) => s.count),
      changedAfter: (seen) => Effect.flatMap(Ref.get(state), (s) => (s.count > seen ? Effect.succeed(s.count) : Deferred.await(s.next))),
      remove: Effect.gen(function*() {
        const etag = yield* Ref.get(last)
        if (Option.isSome(etag) && etag.value !== "absent") {
          yield* settings.storage.delete(key).pipe(
            Effect.catchAll((e) => Effect.logDebug(`could not delete the cancel signal ${key}: ${e.message}`))
          )
        }
      })
    } satisfies CancelWatch
  })
