/**
 * The executable's entry: runs {@link main} on the process's arguments and exits with its code.
 * SIGINT/SIGTERM interrupt the command; the long-running commands (worker, monitor, dashboard,
 * tail, schedule run) shut down gracefully and exit 0, since a signal is how they are meant
 * to stop; any other command interrupted exits 130.
 *
 * @module
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Exit } from "effect"
import { main } from "./main.js"

// the AWS SDK warns on every start that Node 20 support ends; it is noise on a command line
process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true"

const [command, sub] = process.argv.slice(2)
const stopsOnSignal = ["worker", "monitor", "dashboard", "serve", "tail"].includes(command ?? "") ||
  (command === "schedule" && sub === "run")

NodeRuntime.runMain(main(process.argv), {
  disableErrorReporting: true,
  teardown: (exit, onExit) =>
    onExit(
      Exit.isSuccess(exit) && typeof exit.value === "number"
        ? exit.value
        : Exit.isInterrupted(exit) && stopsOnSignal
        ? 0
        : 130
    )
})
