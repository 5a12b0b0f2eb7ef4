/**
 * The polling cadence as an Effect `Schedule`: adaptive by default (100 ms, doubling to a 5 s cap,
 * jittered), fixed on request. The worker resets it whenever a pass finds work, so a busy worker
 * polls fast and an idle one backs off; with the wake-up signal on, an idle worker stops polling
 * altogether after a few empty passes (see WakeUp.ts).
 *
 * @module
 */
import { Duration, Schedule } from "effect"

/** How the worker paces its discovery passes. */
export type PollingOptions =
  | {
    readonly _tag: "Adaptive"
    /** First delay after an empty pass (default 100 ms). */
    readonly min?: Duration.DurationInput | undefined
    /** Cap (default 5 s). */
    readonly max?: Duration.DurationInput | undefined
    /** Growth per empty pass (default 2). */
    readonly factor?: number | undefined
    /** Randomise each delay by ±20 % (default true), so a fleet does not poll in lock-step. */
    readonly jitter?: boolean | undefined
  }
  | { readonly _tag: "Fixed"; readonly interval: Duration.DurationInput }

/** The default: adaptive 100 ms → 5 s × 2 with jitter. */
export const defaultPolling: PollingOptions = { _tag: "Adaptive" }

/** The Schedule for a polling option (it never ends; its delays are the waits between passes). */
export const schedule = (options: PollingOptions = defaultPolling): Schedule.Schedule<unknown> => {
  if (options._tag === "Fixed") return Schedule.spaced(options.interval)
  const min = options.min ?? Duration.millis(100)
  const max = options.max ?? Duration.seconds(5)
  const growing = Schedule.exponential(min, options.factor ?? 2)
  const jittered = options.jitter === false ? growing : Schedule.jittered(growing)
  // union keeps the shorter delay: the cap.
  return Schedule.union(jittered, Schedule.spaced(max))
}
