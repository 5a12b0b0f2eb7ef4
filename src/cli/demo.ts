/**
 * `buquet demo`: a thin shell over the Demo program — live progress (one redrawn line on a TTY,
 * a plain line per second otherwise) and a summary table at the end.
 *
 * @module
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import * as Demo from "../programs/Demo.js"
import type { DemoProgress } from "../programs/Demo.js"
import type { TaskStatus } from "../domain/TaskStatus.js"
import { BuquetConfig } from "../services/BuquetConfig.js"
import { globalOptions, printJson, toCliError, usageError, withStack } from "./common.js"
import { table } from "./format.js"

const shown: ReadonlyArray<TaskStatus> = ["pending", "running", "completed", "failed", "cancelled"]

const statusLine = (byStatus: Readonly<Partial<Record<TaskStatus, number>>>): string =>
  shown.map((s) => `${s} ${byStatus[s] ?? 0}`).join(" · ")

const progressLine = (p: DemoProgress): string =>
  `${(p.elapsedMillis / 1000).toFixed(0).padStart(3)}s  ${statusLine(p.byStatus)} · attempts ${p.attempts}`

/** The demo's embedded store when none is configured: its tasks stay out of the project's ./.buquet. */
const demoDirectory = ".buquet-demo"

/** `buquet demo [--workers N] [--concurrency N]`. */
export const demo = Command.make(
  "demo",
  {
    ...globalOptions,
    workers: Options.integer("workers").pipe(Options.withDescription("workers to run in this process (default 3)"), Options.withDefault(3)),
    concurrency: Options.integer("concurrency").pipe(Options.withDescription("tasks per worker at once (default 2)"), Options.withDefault(2))
  },
  (o) =>
    Effect.gen(function*() {
      if (o.workers < 1 || o.workers > 16) return yield* usageError(`--workers must be from 1 to 16, got ${o.workers}`)
      if (o.concurrency < 1 || o.concurrency > 64) return yield* usageError(`--concurrency must be from 1 to 64, got ${o.concurrency}`)
      const tty = process.stdout.isTTY === true && !o.json
      yield* withStack(
        o,
        Effect.gen(function*() {
          const config = yield* BuquetConfig
          const where = config.storage._tag === "S3"
            ? `s3://${config.storage.bucket}`
            : config.storage._tag === "File"
            ? config.storage.directory
            : "memory"
          if (!o.json) yield* Console.log(`buquet demo on ${where}: 18 tasks, ${o.workers} workers × ${o.concurrency}\n`)
          const summary = yield* Demo.run({
            workers: o.workers,
            concurrency: o.concurrency,
            onProgress: (p) =>
              o.json
                ? Effect.void
                : tty
                ? Effect.sync(() => void process.stdout.write(`\r\u001b[K${progressLine(p)}`))
                : Console.log(progressLine(p))
          })
          if (tty) yield* Effect.sync(() => void process.stdout.write("\n"))
          if (o.json) {
            return yield* printJson({
              total: summary.total,
              by_status: summary.byStatus,
              attempts: summary.attempts,
              elapsed_ms: summary.elapsedMillis,
              workers: summary.workers,
              rows: summary.rows.map((r) => ({
                task_type: r.taskType,
                what: r.what,
                tasks: r.tasks,
                by_status: r.byStatus,
                attempts: r.attempts,
                mean_ms: r.meanMillis
              }))
            })
          }
          yield* Console.log(`\nSummary\n`)
          yield* Console.log(table(
            ["TYPE", "WHAT IT SHOWS", "TASKS", "STATUS", "ATTEMPTS", "MEAN TIME"],
            [
              ...summary.rows.map((r) => [
                r.taskType,
                r.what,
                String(r.tasks),
                Object.entries(r.byStatus).map(([s, n]) => `${s} ${n}`).join(", "),
                String(r.attempts),
                `${(r.meanMillis / 1000).toFixed(1)}s`
              ]),
              ["total", "", String(summary.total), Object.entries(summary.byStatus).map(([s, n]) => `${s} ${n}`).join(", "), String(summary.attempts), ""]
            ]
          ))
          const storage = config.storage._tag === "File" && config.storage.implicit ? ` --storage file://${demoDirectory}` : ""
          yield* Console.log(
            `\nAll ${summary.total} tasks finished in ${(summary.elapsedMillis / 1000).toFixed(1)}s. ` +
              `Look around with \`buquet list${storage}\`, \`buquet history${storage} ID\` or \`buquet dashboard${storage}\`.`
          )
        }),
        { ownDirectory: demoDirectory }
      )
    }).pipe(toCliError)
).pipe(Command.withDescription(`run a short end-to-end demo on the configured store (default ./${demoDirectory})`))
