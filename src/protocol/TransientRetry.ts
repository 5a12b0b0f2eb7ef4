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

/**
 * `Effect.retry(self, { schedule, while })`, with the retry's machinery built only once `self` has
 * failed with an error `while` accepts. `Effect.retry` makes a schedule driver (three Refs) and
 * provides a service to `self` on every run, failure or not; on the worker's path, where nearly
 * every request succeeds at once, that was most of what a retry cost. After the first such
 * failure it is `Effect.retry` itself, fed that failure first (not run again), so the decisions,
 * delays and runs are exactly those of `Effect.retry`.
 */
export const retryOnFailure = <A, E, R, X>(
  self: Effect.Effect<A, E, R>,
  options: { readonly schedule: Schedule.Schedule<X, E>; readonly while: (e: E) => boolean }
): Effect.Effect<A, E, R> =>
  Effect.catchAll(self, (first) => {
    if (!options.while(first)) return Effect.fail(first)
    let replayed = false
    const again = Effect.suspend(() => {
      if (replayed) return self
      replayed = true
      return Effect.fail(first)
    })
    return Effect.retry(again, options)
  })

const isTransientOrUnknown = (e: { readonly _tag: string }): boolean => e._tag === "StorageUnavailable" || e._tag === "OutcomeUnknown"

/** Retries `self` on `StorageUnavailable` and `OutcomeUnknown` (safe only for idempotent or CAS-checked requests). */
export const retryTransient = <A, E extends { readonly _tag: string }, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  retryOnFailure(self, { schedule: transientRetrySchedule, while: isTransientOrUnknown })

/** The time-free part of {@link transientWithin}, built once (a schedule is an immutable description). */
const withinBase = Schedule.exponential(Duration.millis(100), 2).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(2))),
  Schedule.jittered
)

/**
 * Retries while there is time left: 100 ms doubling up to 2 s between tries, jittered, and never
 * waiting past the end. `remainingMillis` is read at every decision, so an end that moves (a lease
 * extended meanwhile) is followed. For steps that must not give up at the first transient error,
 * yet must not outlive the time they serve (a worker's lease).
 */
export const transientWithin = (remainingMillis: Effect.Effect<number>): Schedule.Schedule<unknown, unknown> =>
  withinBase.pipe(
    Schedule.checkEffect(() => Effect.map(remainingMillis, (left) => left > 0)),
    Schedule.modifyDelayEffect((_, delay) =>
      Effect.map(remainingMillis, (left) => Duration.min(delay, Duration.millis(Math.max(0, left))))
    )
  )

/** Whether a storage error is worth another try: the request did not get through (and did not apply). */
export const isTransient = (e: { readonly _tag: string }): boolean => e._tag === "StorageUnavailable"
