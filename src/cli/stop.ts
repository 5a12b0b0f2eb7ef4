/**
 * Stop requests from SIGINT/SIGTERM for the long-running commands (worker, monitor, dashboard,
 * tail, schedule run). The executable's entry (run.ts) owns the signal handlers for the whole run:
 * the first signal ends the body of a command wrapped in {@link untilStopRequested} normally, so
 * its scope closes gracefully (a worker lets its running handlers finish within the grace period)
 * and it exits 0; a second signal interrupts the command (a worker then gives its running tasks
 * back at once, without consuming a retry). Any other command is interrupted by the first signal.
 *
 * @module
 */
import { Effect } from "effect"

const waiting = new Set<(signal: NodeJS.Signals) => void>()
let requested: NodeJS.Signals | undefined

/**
 * Delivers a signal to the command waiting for it. Returns false when nothing waits (no
 * long-running command, or a stop was already requested): the caller then interrupts the command.
 */
export const request = (signal: NodeJS.Signals): boolean => {
  if (requested !== undefined || waiting.size === 0) return false
  requested = signal
  for (const resume of waiting) resume(signal)
  return true
}

/** Whether a graceful stop was already requested (a further signal forces the stop). */
export const stopRequested = (): NodeJS.Signals | undefined => requested

/** Completes with the signal that requests a graceful stop. */
export const awaitStopRequest: Effect.Effect<NodeJS.Signals> = Effect.async<NodeJS.Signals>((resume) => {
  const waiter = (signal: NodeJS.Signals) => resume(Effect.succeed(signal))
  waiting.add(waiter)
  return Effect.sync(() => void waiting.delete(waiter))
})

/**
 * Runs `body` until it completes or a stop is requested; on a request, `onRequest` runs (a notice)
 * and `body` is interrupted, which runs its finalizers (a worker's graceful shutdown).
 */
export const untilStopRequested = <A, E, R>(
  body: Effect.Effect<A, E, R>,
  onRequest: (signal: NodeJS.Signals) => Effect.Effect<void> = () => Effect.void
): Effect.Effect<A | void, E, R> => Effect.raceFirst(body, Effect.flatMap(awaitStopRequest, onRequest))
