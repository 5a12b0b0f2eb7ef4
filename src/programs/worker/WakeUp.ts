/**
 * The idle worker's side of the wake-up signal (design.md §5.4 "Idle cost"). Producers touch
 * `control/wakeup` (protocol/WakeUp.ts); an idle worker HEADs it once per `checkInterval`
 * (1.1 s) and runs a discovery pass only when:
 * - its ETag changed (new work was submitted, retried, rescheduled or released),
 * - the earliest due time the last pass saw has arrived (delayed tasks, retries after backoff),
 * - the pause switches changed while paused work was waiting (HEAD of `control/pause.json` every
 *   `pauseCheckEvery` checks, only then),
 * - or the slow safety net fires (default 20 min: tasks made claimable by tools that do not
 *   touch the signal, e.g. the reference's producers or lease recovery).
 *
 * Idle cost per hour with the defaults: 60 heartbeat PUTs plus 3 safety passes (a probe LIST each on
 * an empty bucket), and the embedded monitor's quiet-bucket cost when it is the leader (about 25);
 * 3,273 HEADs (one per 1.1 s, which leaves a standby monitor's lease polls, 120 GETs, within the
 * budget of one GET-class request per second); pickup ≈ 0.55 s + one pass.
 *
 * @module
 */
import { Duration, Effect, Option, Ref } from "effect"
import { pauseKey } from "../../domain/Pause.js"
import { wakeUpKey, watchedEtag } from "../../protocol/WakeUp.js"
import { ServerClock } from "../../services/ServerClock.js"
import { Storage } from "../../services/Storage.js"

/** Options of the wake-up watch. */
export interface WakeUpOptions {
  /** How often an idle worker HEADs `control/wakeup` (default 1.1 s). */
  readonly checkInterval?: Duration.DurationInput | undefined
  /** A full pass at least this often even without a signal (default 20 min). */
  readonly safetyNet?: Duration.DurationInput | undefined
  /** Empty passes (on the polling schedule) before the worker goes idle (default 3). */
  readonly idleAfter?: number | undefined
  /** While paused work waits, HEAD the pause switches every this many checks (default 5). */
  readonly pauseCheckEvery?: number | undefined
}

/** Why an idle wait ended. */
export type WakeReason = "signal" | "due" | "pause" | "safety-net"

/** The watch of one worker. */
export interface WakeUpWatch {
  /** Records the current ETag as seen (call before the first pass so no touch is missed). */
  readonly prime: Effect.Effect<void, never, Storage>
  /** Waits until there is a reason to run a pass. */
  readonly waitForWork: (
    nextDueAt: number,
    watchPause: boolean
  ) => Effect.Effect<WakeReason, never, Storage | ServerClock>
}

const etagOf = (key: string) =>
  Effect.flatMap(Storage, (s) => watchedEtag(s, key)).pipe(
    Effect.tapError((e) => Effect.logDebug(`wake-up check failed: ${e.message}`)),
    Effect.option
  )

/** Builds the watch. */
export const make = (options: WakeUpOptions = {}): Effect.Effect<WakeUpWatch> =>
  Effect.gen(function*() {
    const interval = Duration.decode(options.checkInterval ?? Duration.millis(1100))
    const intervalMillis = Duration.toMillis(interval)
    const safetyMillis = Duration.toMillis(options.safetyNet ?? Duration.minutes(20))
    const pauseEvery = Math.max(1, options.pauseCheckEvery ?? 5)
    const seen = yield* Ref.make(Option.none<string>())
    const seenPause = yield* Ref.make(Option.none<string>())

    const changed = (ref: Ref.Ref<Option.Option<string>>, key: string) =>
      Effect.gen(function*() {
        const etag = yield* etagOf(key)
        if (Option.isNone(etag)) return false
        const before = yield* Ref.getAndSet(ref, etag)
        return Option.isSome(before) && before.value !== etag.value
      })

    const prime = Effect.asVoid(changed(seen, wakeUpKey))

    const waitForWork = (nextDueAt: number, watchPause: boolean) =>
      Effect.gen(function*() {
        const clock = yield* ServerClock
        const start = yield* clock.currentTimeMillis
        if (watchPause) yield* changed(seenPause, pauseKey)
        for (let tick = 1; ; tick++) {
          // Sleep to the next check, or to the due time when that comes first (a retry 100 ms out
          // is picked up on time, not at the next whole check).
          const untilDue = nextDueAt - (yield* clock.currentTimeMillis)
          yield* Effect.sleep(untilDue < intervalMillis ? Duration.millis(Math.max(0, untilDue)) : interval)
          if ((yield* clock.currentTimeMillis) >= nextDueAt) return "due" as const
          if (yield* changed(seen, wakeUpKey)) return "signal" as const
          const now = yield* clock.currentTimeMillis
          if (watchPause && tick % pauseEvery === 0 && (yield* changed(seenPause, pauseKey))) return "pause" as const
          if (now - start >= safetyMillis) return "safety-net" as const
        }
      }).pipe(Effect.withSpan("Worker.idleWait"))

    return { prime, waitForWork }
  })
