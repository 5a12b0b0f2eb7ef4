/**
 * The executable's entry: runs {@link main} on the process's arguments and exits with its code.
 * It owns SIGINT/SIGTERM for the whole run (see ./stop.ts): the first signal stops a long-running
 * command (worker, monitor, dashboard, tail, schedule run) gracefully, which then exits 0; a
 * second signal forces the stop and says so; any other command interrupted exits 130.
 *
 * @module
 */
import { Effect, Exit } from "effect"
import { main } from "./main.js"
import * as Stop from "./stop.js"

// the AWS SDK warns on every start that Node 20 support ends; it is noise on a command line
process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true"

const fiber = Effect.runFork(main(process.argv))
// the fiber alone does not keep Node's event loop alive while it waits
const keepAlive = setInterval(() => {}, 2 ** 31 - 1)
let signalled = false

const onSignal = (signal: NodeJS.Signals) => {
  signalled = true
  if (Stop.request(signal)) return
  const graceful = Stop.stopRequested()
  if (graceful !== undefined) process.stderr.write(`buquet: ${signal} after ${graceful}: forcing the stop\n`)
  fiber.unsafeInterruptAsFork(fiber.id())
}
process.on("SIGINT", onSignal)
process.on("SIGTERM", onSignal)

fiber.addObserver((exit) => {
  clearInterval(keepAlive)
  const code = Exit.isSuccess(exit) ? exit.value : 130
  // after a signal, or on a failure, do not wait for lingering handles (keep-alive sockets)
  if (signalled || code !== 0) process.exit(code)
  process.removeListener("SIGINT", onSignal)
  process.removeListener("SIGTERM", onSignal)
})
