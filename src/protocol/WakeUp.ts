/**
 * The wake-up signal (design.md §5.4 "Idle cost"): one small object, `control/wakeup`, that
 * producers touch when they make work claimable (submit, and workers when they retry, reschedule
 * or release a task). Idle workers HEAD it about once a second and run a discovery pass only when
 * its ETag changed, instead of LISTing every shard every few seconds.
 *
 * Why no due times in it: the ready index itself is the schedule. A touch makes idle workers LIST
 * once; the LIST stops at the first future marker of each shard, and that marker's bucket (or the
 * task's `available_at` once read) is the next time the worker looks again. So an unconditional PUT
 * is enough: two producers cannot "forget" each other's delayed tasks, because nothing but "look
 * now" is stored.
 *
 * Each process touches at most once per `minInterval` (1 s): the first change of a window is
 * signalled at once, later ones by one trailing touch at the end of the window, so bursts cost one
 * PUT per second and the last task of a burst is still signalled.
 *
 * @module
 */
import { Clock, Duration, Effect, FiberSet, Option, Ref } from "effect"
import type { Scope } from "effect"
import { utf8 } from "../domain/Codec.js"
import { controlKey } from "../domain/Keys.js"
import type { StorageReadError } from "../domain/StorageError.js"
import type { StorageService } from "../services/Storage.js"

/** The wake-up object's key. */
export const wakeUpKey: string = controlKey("wakeup")

/**
 * The current ETag of a watched object (the wake-up object, the pause switches), `"absent"` when
 * it does not exist: one HEAD. Watchers compare it with the last one seen.
 */
export const watchedEtag = (storage: StorageService, key: string): Effect.Effect<string, StorageReadError> =>
  Effect.map(storage.head(key), Option.match({ onNone: () => "absent", onSome: (m) => m.etag }))

/** A per-process toucher of the wake-up object. */
export interface WakeUpSignal {
  /** Signals "new work may be claimable". Never fails (a lost touch only delays pickup to the next poll). */
  readonly touch: Effect.Effect<void>
}

/** One write of the wake-up object (a new body, so its ETag changes); never fails. */
const putTouch = (storage: StorageService, at: number): Effect.Effect<void> =>
  storage.put(wakeUpKey, utf8(JSON.stringify({ touched_at_local_ms: at }))).pipe(
    Effect.tapError((e) => Effect.logDebug(`wake-up touch failed (pickup falls back to polling): ${e.message}`)),
    Effect.ignore
  )

/** One touch, not throttled: for a rare writer with no Scope (lease recovery creating follow-ups). */
export const touchOnce = (storage: StorageService): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (at) => putTouch(storage, at))

/** Options of {@link makeSignal}. */
export interface WakeUpSignalOptions {
  /** At most one PUT per this interval per process (default 1 s). */
  readonly minInterval?: Duration.DurationInput | undefined
}

/**
 * Builds a toucher on `storage`, in the current Scope. The trailing touch is a fiber of that scope
 * (it must outlive the submit that asked for it); it is one PUT after at most `minInterval`. When
 * the scope closes with a trailing touch pending, it is written at once rather than dropped: a
 * producer that exits right after a burst must not leave idle workers asleep.
 */
export const makeSignal = (
  storage: StorageService,
  options: WakeUpSignalOptions = {}
): Effect.Effect<WakeUpSignal, never, Scope.Scope> =>
  Effect.gen(function*() {
    const minMillis = Duration.toMillis(options.minInterval ?? Duration.seconds(1))
    interface TouchState {
      readonly lastAt: number
      readonly trailing: boolean
    }
    const state = yield* Ref.make<TouchState>({ lastAt: Number.NEGATIVE_INFINITY, trailing: false })
    const put = (at: number) => putTouch(storage, at)
    /** Writes the pending trailing touch, if there still is one (the timer and the flush race for it). */
    const trail = Effect.gen(function*() {
      const at = yield* Clock.currentTimeMillis
      const pending = yield* Ref.modify(state, (s): [boolean, TouchState] =>
        s.trailing ? [true, { lastAt: at, trailing: false }] : [false, s])
      if (pending) yield* put(at)
    })
    // Added before the fiber set, so it runs first on close: flush, then interrupt the timers.
    yield* Effect.addFinalizer(() => trail)
    const timers = yield* FiberSet.make()
    const touch = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const action = yield* Ref.modify(state, (s): ["now" | "trail" | "none", TouchState] => {
        if (now - s.lastAt >= minMillis) return ["now", { lastAt: now, trailing: s.trailing }]
        if (!s.trailing) return ["trail", { lastAt: s.lastAt, trailing: true }]
        return ["none", s]
      })
      if (action === "now") return yield* put(now)
      if (action === "none") return
      const s = yield* Ref.get(state)
      const wait = Math.max(0, s.lastAt + minMillis - now)
      // Interruptible whatever the caller's region: a fiber inherits its parent's interruptibility,
      // and a touch from a finalizer (a workflow interrupting its child submits a run) forked an
      // uninterruptible timer that the scope's close then waited out (forever on a TestClock).
      // Cutting it short loses nothing: the close's `trail` writes what is pending.
      yield* FiberSet.run(timers, Effect.interruptible(Effect.zipRight(Effect.sleep(Duration.millis(wait)), trail)))
    }).pipe(Effect.withSpan("WakeUp.touch"))
    return { touch }
  })
