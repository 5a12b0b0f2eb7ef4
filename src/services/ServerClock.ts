/**
 * The bucket's time (design.md §4). Every correctness decision (availability, lease expiry,
 * backoff, TTL, schedule firing, lease ownership) uses it, never the host's wall clock.
 * It is learnt for free from the `Date` header of ordinary responses, and exposed as an Effect
 * `Clock`, so `TestClock` drives it in tests.
 *
 * @module
 */
import { Clock, Context, DateTime, Duration, Effect } from "effect"

/**
 * How well the server time is known right now.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerTimeEstimate {
  /** Best estimate of server time minus local time, in milliseconds. */
  readonly offsetMillis: number
  /** Half-width of the interval the true offset lies in; lease decisions keep this as a margin. */
  readonly uncertainty: Duration.Duration
  /** How many responses contributed to the estimate (0 for stores on the local clock). */
  readonly samples: number
}

/**
 * The ServerClock service's interface.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerClockService {
  /** The server's time now, learning it from one cheap request first if nothing is known yet. */
  readonly now: Effect.Effect<DateTime.Utc>
  /** The server's time now in epoch milliseconds. */
  readonly currentTimeMillis: Effect.Effect<number>
  /** The current estimate (offset, uncertainty, sample count). */
  readonly estimate: Effect.Effect<ServerTimeEstimate>
  /** The server time as an Effect `Clock` (local monotonic time plus the learnt offset; sleeps are local). */
  readonly clock: Clock.Clock
}

/**
 * The ServerClock service: `yield* ServerClock` gives the bucket's time.
 *
 * @since 0.1.0
 * @category tags
 */
export class ServerClock extends Context.Tag("buquet/ServerClock")<ServerClock, ServerClockService>() {}
