/**
 * `buquet tail`: prints task changes (from → to) as they happen; `--json` prints JSON lines.
 *
 * @module
 */
import { Command, Options } from "@effect/cli"
import { Duration, Effect, Option, Stream } from "effect"
import { allStatuses } from "../domain/TaskStatus.js"
import * as Tail from "../programs/Tail.js"
import { globalOptions, parseStatusArg, printLine, toCliError, usageError, withStack } from "./common.js"
import { time } from "./format.js"
import { untilStopRequested } from "./stop.js"

/** `buquet tail [--type T] [--status S] [--interval MS] [--limit N] [--all]`. */
export const tail = Command.make(
  "tail",
  {
    ...globalOptions,
    taskType: Options.text("type").pipe(Options.withAlias("t"), Options.withAlias("task-type"), Options.withDescription("only this task type"), Options.optional),
    status: Options.text("status").pipe(Options.withDescription(`only changes into this status (${allStatuses.join(", ")})`), Options.optional),
    interval: Options.integer("interval").pipe(Options.withDescription("milliseconds between rounds"), Options.withDefault(1000)),
    limit: Options.integer("limit").pipe(Options.withDescription("stop after this many changes"), Options.optional),
    all: Options.boolean("all").pipe(Options.withDescription("also show the tasks that exist at the start"))
  },
  (o) =>
    Effect.gen(function*() {
      if (o.interval < 50) return yield* usageError(`--interval must be at least 50 ms, got ${o.interval}`)
      if (Option.isSome(o.limit) && o.limit.value < 1) return yield* usageError(`--limit must be at least 1, got ${o.limit.value}`)
      const status = Option.isSome(o.status) ? yield* parseStatusArg("--status", o.status.value) : undefined
      const stream = Tail.changes({
        interval: Duration.millis(o.interval),
        taskType: Option.getOrUndefined(o.taskType),
        status,
        includeExisting: o.all
      })
      const limited = Option.isSome(o.limit) ? Stream.take(stream, o.limit.value) : stream
      yield* withStack(
        o,
        untilStopRequested(Stream.runForEach(limited, (c) =>
          o.json
            ? printLine(JSON.stringify({
              observed_at: time(c.observedAt),
              task_id: c.taskId,
              task_type: c.taskType,
              from: c.from,
              to: c.to,
              attempt: c.attempt,
              worker_id: c.workerId,
              error: c.error,
              progress: c.progress
            }))
            : printLine(`${time(c.observedAt)}  ${c.taskId}  ${c.taskType}  ${c.from ?? "(new)"} → ${c.to}${c.error === null || c.to !== "failed" && c.to !== "pending" ? "" : `  (${c.error})`}`)))
      )
    }).pipe(toCliError)
).pipe(Command.withDescription("stream task changes as they happen"))
