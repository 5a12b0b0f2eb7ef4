/**
 * The monitor's quiet-bucket mode (design.md §5.4 "Idle cost"): when nothing runs anywhere, the
 * monitor has nothing to recover and little to repair, yet at its normal cadence it would spend
 * several hundred PUT+LIST per hour (leader renewals, `leases/` walks, sweeps) — more than the
 * whole budget of an idle worker. So:
 * - the bucket turns **quiet** when two lease walks in a row list no lease marker that a running
 *   task may need (a finished task's marker stays until its bucket is over: the walk reads the few
 *   such tasks to tell) and no activity was seen since the first began (a task submitted just
 *   before a walk is claimed, and its lease listed, by the next);
 * - **activity** ends it at once: the wake-up object changed (a submit, retry, replay, release…),
 *   the embedding worker claimed or woke for work, a walk found lease markers, a sweep repaired
 *   an index;
 * - while quiet, the periodic work waits longer ({@link QuietState.gate}) but wakes at once when
 *   the quiet ends, and the leader writes a longer leader-lease ttl.
 * What it costs: a task claimed during the quiet without any activity the monitor can see (a
 * delayed task that became due, claimed by a worker elsewhere) whose worker then crashes is
 * recovered up to one quiet period later than otherwise.
 *
 * @module
 */
import { Duration, Effect, Stream, SubscriptionRef } from "effect"

/** The quiet state of one monitor tenure. */
export interface QuietState {
  /** Whether the bucket is quiet now. */
  readonly quiet: SubscriptionRef.SubscriptionRef<boolean>
  /** Activity was seen: not quiet any more. */
  readonly activity: Effect.Effect<void>
  /** How many activities were seen so far (a walk compares it before and after). */
  readonly seq: Effect.Effect<number>
  /** Turns quiet, unless activity was seen since `sinceSeq`; whether it did. */
  readonly enter: (sinceSeq: number) => Effect.Effect<boolean>
  /** Not quiet (no activity counted: e.g. a walk found markers). */
  readonly leave: Effect.Effect<void>
  /** Completes when the bucket is not quiet (at once if it is not). */
  readonly awaitActive: Effect.Effect<void>
  /**
   * Run before a periodic job whose normal period (already waited) is `active`: while quiet,
   * waits until `quietPeriod` has passed in all, or until the quiet ends.
   */
  readonly gate: (quietPeriod: Duration.Duration, active: Duration.Duration) => Effect.Effect<void>
}

/** A fresh quiet state (not quiet). */
export const make = (quiet: SubscriptionRef.SubscriptionRef<boolean>): Effect.Effect<QuietState> =>
  Effect.gen(function*() {
    let seq = 0
    yield* SubscriptionRef.set(quiet, false)
    const awaitActive = quiet.changes.pipe(Stream.filter((q) => !q), Stream.take(1), Stream.runDrain)
    return {
      quiet,
      activity: Effect.zipRight(Effect.sync(() => {
        seq++
      }), SubscriptionRef.set(quiet, false)),
      seq: Effect.sync(() => seq),
      enter: (sinceSeq) => sinceSeq === seq ? Effect.as(SubscriptionRef.set(quiet, true), true) : Effect.succeed(false),
      leave: SubscriptionRef.set(quiet, false),
      awaitActive,
      gate: (quietPeriod, active) =>
        Effect.gen(function*() {
          if (!(yield* SubscriptionRef.get(quiet))) return
          const extra = Duration.subtract(quietPeriod, active)
          if (Duration.toMillis(extra) > 0) yield* Effect.raceFirst(Effect.sleep(extra), awaitActive)
        })
    } satisfies QuietState
  })
