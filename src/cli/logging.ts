/**
 * The CLI's loggers. Every line is {@link terminalSafe}: a log line can carry stored data (a
 * handler's error message built from the task's input), and the log is a terminal's too.
 *
 * @since 0.1.0
 */
import { Logger, LogLevel } from "effect"
import { terminalSafe } from "./format.js"

/**
 * Effect's default logger, terminal-safe, written to stderr: stdout is the command's output, and
 * with `--json` it must be one JSON document. What every command logs through.
 *
 * @since 0.1.0
 * @category loggers
 */
export const safeLogger: Logger.Logger<unknown, void> = Logger.withConsoleError(Logger.map(Logger.stringLogger, terminalSafe))

/**
 * A logger for commands whose stdout is their result (`submit --json`): warnings and errors go to
 * stderr as `buquet: warning: …` lines, the rest is dropped. Use it in place of
 * {@link safeLogger} (`Logger.replace(safeLogger, warningsToStderr)`), never beside it, or each
 * warning prints twice, once on stdout.
 *
 * @since 0.1.0
 * @category loggers
 */
export const warningsToStderr: Logger.Logger<unknown, void> = Logger.make(({ logLevel, message }) => {
  if (!LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) return
  const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
  process.stderr.write(`buquet: ${logLevel._tag === "Warning" ? "warning" : "error"}: ${terminalSafe(text)}\n`)
})
