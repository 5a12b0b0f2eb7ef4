/**
 * Process signals for graceful shutdown: an Effect that completes with the first of the given
 * signals. While it waits, the signals do not kill the process (the worker stops gracefully
 * instead); the handlers are removed when it completes or is interrupted.
 *
 * @module
 */
import { Effect } from "effect"

/** The signals a worker stops on by default. */
export const defaultSignals: ReadonlyArray<NodeJS.Signals> = ["SIGINT", "SIGTERM"]

/** Completes with the first of `signals` the process receives. */
export const awaitSignal = (signals: ReadonlyArray<NodeJS.Signals> = defaultSignals): Effect.Effect<NodeJS.Signals> =>
  Effect.async<NodeJS.Signals>((resume) => {
    const handlers: Array<readonly [NodeJS.Signals, () => void]> = []
    const removeAll = () => {
      for (const [signal, handler] of handlers) process.removeListener(signal, handler)
    }
    for (const signal of signals) {
      const handler = () => {
        removeAll()
        resume(Effect.succeed(signal))
      }
      process.on(signal, handler)
      handlers.push([signal, handler])
    }
    return Effect.sync(removeAll)
  })
