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

/**
 * Retries while there is time left: 100 ms doubling up to 2 s between tries, jittered, and never
 * waiting past the end. `remainingMillis` is read at every decision, so an end that moves (a lease
 * extended meanwhile) is followed. For steps that must not give up at the first transient error,
 * yet must not outlive the time they serve (a worker's lease).
 */
export const transientWithin = (remainingMillis: Effect.Effect<number>): Schedule.Schedule<unknown, unknown> =>
  Schedule.exponential(Duration.millis(100), 2).pipe(
    Schedule.union(Schedule.spaced(Duration.seconds(2))),
    Schedule.jittered,
    Schedule.checkEffect(() => Effect.map(remainingMillis, (left) => left > 0)),
    Schedule.modifyDelayEffect((_, delay) =>
      Effect.map(remainingMillis, (left) => Duration.min(delay, Duration.millis(Math.max(0, left))))
    )
  )

/** Whether a storage error is worth another try: the request did not get through (and did not apply). */
export const isTransient = (e: { readonly _tag: string }): boolean => e._tag === "StorageUnavailable"
