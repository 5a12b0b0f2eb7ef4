/**
 * `buquet stats [--max-tasks N] [--json]`: the per-type overview of the dashboard's first page
 * (pending, running, failed in the last hour, completed per minute, oldest pending, p50 / p95 run
 * time, workers), read once (`programs/TypeStats.ts`), with the requests it cost.
 *
 * @module
 */
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { failedWindowMinutes, formatMillis, rateWindowMinutes, runTimeSampleSize } from "../domain/TypeStats.js"
import * as TypeStats from "../programs/TypeStats.js"
import { Queue } from "../services/Queue.js"
import { globalOptions, operationalError, printJson, printLine, reportSkipped, stderrLine, toCliError, usageError, withStack } from "./common.js"
import { table } from "./format.js"

const maxMaxTasks = 1_000_000

const costLine = (c: { readonly LIST: number; readonly GET: number; readonly total: number }) =>
  `LIST ${c.LIST} · GET ${c.GET} (${c.total} requests)`

/** `buquet stats`. */
export const stats = Command.make(
  "stats",
  {
    ...globalOptions,
    maxTasks: Options.integer("max-tasks").pipe(
      Options.withDescription(`most tasks to read, one GET each (default ${TypeStats.defaultMaxTasks}); beyond it the overview is partial`),
      Options.withDefault(TypeStats.defaultMaxTasks)
    )
  },
  (o) =>
    Effect.gen(function*() {
      if (o.maxTasks < 1 || o.maxTasks > maxMaxTasks) return yield* usageError(`--max-tasks must be from 1 to ${maxMaxTasks}, got ${o.maxTasks}`)
      yield* withStack(
        o,
        Effect.gen(function*() {
          const queue = yield* Queue
          const s = yield* TypeStats.read({ maxTasks: o.maxTasks, shardPrefixLen: queue.config.shardPrefixLen })
          if (Option.isSome(s.error)) return yield* operationalError(`could not read the bucket: ${s.error.value}`)
          yield* reportSkipped(s.malformed)
          if (!s.complete) {
            yield* stderrLine(`buquet: the bucket holds more than ${o.maxTasks} tasks; these numbers cover the first ${s.tasks.length} (raise --max-tasks to read more)`)
          }
          if (o.json) return yield* printJson(TypeStats.statsDocument(s))
          yield* printLine(s.types.length === 0 ? "no tasks and no workers" : table(
            ["TYPE", "PENDING", "RUNNING", `FAILED/${failedWindowMinutes}M`, "DONE/MIN", "OLDEST PENDING", "P50 RUN", "P95 RUN", "WORKERS"],
            s.types.map((t) => [
              t.taskType,
              String(t.pending),
              String(t.running),
              String(t.failedLastHour),
              String(Math.round(t.completedPerMinute * 100) / 100),
              formatMillis(t.oldestPendingMillis, "-"),
              formatMillis(t.runTimeP50Millis, "-"),
              formatMillis(t.runTimeP95Millis, "-"),
              t.workers.length === 0 ? "none" : t.workers.join(",")
            ])
          ))
          yield* printLine(
            `done/min over the last ${rateWindowMinutes} min; run times over the last ${runTimeSampleSize} completions of each type; ` +
              `read ${s.tasks.length} task(s) and ${s.workers.length} worker record(s) with ${costLine(s.lastCost)}`
          )
        })
      )
    }).pipe(toCliError)
).pipe(Command.withDescription("per task type: pending, running, failed, throughput, oldest wait, run times, workers"))
