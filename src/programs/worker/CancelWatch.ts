/**
 * The worker's side of the cancel signal (protocol/CancelSignal.ts): while tasks run, one HEAD of
 * `control/cancel/{worker_id}` per `checkInterval` (2 s); each change of its ETag is counted, and
 * every running task whose count is passed checks itself (a HEAD, and a GET only when its ETag
 * moved): the change forks the check of each registered task. An idle worker makes no request here.
 *
 * No cancel falls between a claim and the next check: a task starts from the count read BEFORE its
 * claim was sent. A cancel of it can only be written after the claim landed, so its touch lands
 * after that too, and the HEAD that sees the touch returns after the count was read: the task's
 * count is below the new one, and it checks itself.
 *
 * @module
 */
import { type Duration, Effect, Option, Ref, Scope } from "effect"
import { cancelSignalKey } from "../../protocol/CancelSignal.js"
import { watchedEtag } from "../../protocol/WakeUp.js"
import type { StorageService } from "../../services/Storage.js"

/** A worker's watch of its cancel signal. */
export interface CancelWatch {
  /** How many changes were seen so far: read it before claiming, and hand it to the task. */
  readonly seen: Effect.Effect<number>
  /**
   * Until the current Scope closes: runs `check` (forked into that Scope) at once if the signal
   * changed after `seen`, and again at each later change, one check at a time (changes during a
   * check: one more check after it). Nothing runs, and no fiber waits, while nothing changes.
   */
  readonly onChange: (seen: number, check: Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
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

/** A running task's registration: the count its last check started from, and whether one runs. */
interface Watcher {
  seen: number
  running: boolean
  readonly check: Effect.Effect<void>
  readonly scope: Scope.Scope
}

/** Reads the signal once (so the first claim starts from what is there), then watches it in the current Scope. */
export const make = (settings: CancelWatchSettings): Effect.Effect<CancelWatch, never, Scope.Scope> =>
  Effect.gen(function*() {
    const key = cancelSignalKey(settings.workerId)
    // The count of changes, and the running tasks to tell: a change forks their checks, so a task
    // costs a Set entry while nothing changes, not a fiber waiting (a Stream over a SubscriptionRef
    // cost ~1,000 fiber-runtime steps per task, a waiting fiber ~60).
    const count = yield* Ref.make(0)
    const watchers = new Set<Watcher>()
    /** Checks while the count moved past what the last check started from. */
    const checks = (w: Watcher): Effect.Effect<void> =>
      Effect.flatMap(Ref.get(count), (now) => {
        if (now <= w.seen || !watchers.has(w)) {
          w.running = false
          return Effect.void
        }
        w.seen = now
        return Effect.zipRight(w.check, Effect.suspend(() => checks(w)))
      })
    const wake = (w: Watcher): Effect.Effect<void> =>
      Effect.flatMap(Ref.get(count), (now) => {
        if (w.running || now <= w.seen) return Effect.void
        w.running = true
        return Effect.asVoid(Effect.forkIn(checks(w), w.scope))
      })
    const bump = Effect.zipRight(
      Ref.update(count, (n) => n + 1),
      Effect.suspend(() => Effect.forEach([...watchers], wake, { discard: true }))
    )
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
      seen: Ref.get(count),
      onChange: (seen, check) =>
        Effect.flatMap(Effect.scope, (scope) => {
          const w: Watcher = { seen, running: false, check, scope }
          // the finalizer first: a registration is never left behind by an interruption in between
          return Effect.zipRight(
            Scope.addFinalizer(scope, Effect.sync(() => watchers.delete(w))),
            Effect.suspend(() => {
              watchers.add(w)
              return wake(w)
            })
          )
        }),
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
