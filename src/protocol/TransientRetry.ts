/**
 * Retries of a monitor request that failed transiently (a 5xx, SlowDown, a lost response). The S3
 * layer retries too; this covers what is left, so one bad answer among a page of reads does not
 * cost a whole walk.
 *
 * @module
 */
import { Duration, Effect, Schedule } from "effect"

/** Up to 3 retries, 50 ms doubling, jittered. */
export const transientRetrySchedule: Schedule.Schedule<unknown> = Schedule.exponential(Duration.millis(50), 2).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(3))
)

/** Retries `self` on `StorageUnavailable` and `OutcomeUnknown` (safe only for idempotent or CAS-checked requests). */
export const retryTransient = <A, E extends { readonly _tag: string }, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(self, {
    schedule: transientRetrySchedule,
    while: (e) => e._tag === "StorageUnavailable" || e._tag === "OutcomeUnknown"
  })
