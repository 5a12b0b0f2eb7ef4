/**
 * `buquet migrate-shards --from N --to M [--execute [--force]]`: dry run by default; with `--execute`
 * moves every task and its markers to the new shard layout, with a progress bar on stderr. It
 * refuses (exit 1) while workers or leaders look alive unless `--force`.
 *
 * @module
 */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import * as Migrate from "../programs/MigrateShards.js"
import { globalOptions, operationalError, printJson, printLine, stderrLine, toCliError, usageError, withStack } from "./common.js"

const bar = (done: number, total: number): string => {
  const width = 30
  const filled = total === 0 ? width : Math.round((done / total) * width)
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}] ${done}/${total}`
}

/** `buquet migrate-shards`. */
export const migrateShards = Command.make(
  "migrate-shards",
  {
    ...globalOptions,
    from: Options.integer("from").pipe(Options.withDescription("the current shard prefix length (1–4)")),
    to: Options.integer("to").pipe(Options.withDescription("the new shard prefix length (1–4)")),
    execute: Options.boolean("execute").pipe(Options.withDescription("really move (default: dry run)")),
    force: Options.boolean("force").pipe(
      Options.withDescription("move although workers or leaders look alive (only when you know they are dead, e.g. killed less than 3 minutes ago)")
    ),
    concurrency: Options.integer("concurrency").pipe(Options.withDescription("tasks moved at once"), Options.withDefault(16))
  },
  (o) =>
    Effect.gen(function*() {
      for (const [flag, v] of [["--from", o.from], ["--to", o.to]] as const) {
        if (!Number.isInteger(v) || v < 1 || v > 4) return yield* usageError(`${flag} must be a shard prefix length from 1 to 4, got ${v}`)
      }
      if (o.from === o.to) return yield* usageError("--from and --to must differ")
      if (o.concurrency < 1 || o.concurrency > 256) return yield* usageError(`--concurrency must be from 1 to 256, got ${o.concurrency}`)
      yield* withStack(
        o,
        Effect.gen(function*() {
          const plan = yield* Migrate.plan(o.from, o.to)
          if (!o.execute) {
            if (o.json) {
              return yield* printJson({ dry_run: true, from: o.from, to: o.to, tasks: plan.moves.length, old_markers: plan.oldMarkers.length, sample: plan.moves.slice(0, 10) })
            }
            yield* printLine(
              plan.moves.length === 0 && plan.oldMarkers.length === 0
                ? `nothing to do: no tasks or markers under shard prefix length ${o.from}`
                : [
                  `dry run: ${plan.moves.length} task(s) and ${plan.oldMarkers.length} marker(s) under prefix length ${o.from} would move to ${o.to}`,
                  ...plan.moves.slice(0, 10).map((m) => `  ${m.fromKey} → ${m.toKey}`),
                  "run again with --execute to move them (stop the workers first, then start them with the new prefix length)"
                ].join("\n")
            )
            return
          }
          if (plan.moves.length === 0 && plan.oldMarkers.length === 0) {
            return yield* o.json
              ? printJson({ dry_run: false, moved: 0, nothing_to_do: true })
              : printLine(`nothing to do: no tasks or markers under shard prefix length ${o.from}`)
          }
          const tty = process.stderr.isTTY === true
          const result = yield* Migrate.execute(plan, {
            concurrency: o.concurrency,
            force: o.force,
            onProgress: (done, total) =>
              o.json ? Effect.void : tty
              ? Effect.sync(() => void process.stderr.write(`\r${bar(done, total)}`))
              : done === total || done % 100 === 0
              ? stderrLine(bar(done, total))
              : Effect.void
          })
          if (tty && !o.json) yield* stderrLine("")
          if (o.json) yield* printJson({ dry_run: false, moved: result.moved, vanished: result.vanished, markers_deleted: result.markersDeleted, records_rewritten: result.recordsRewritten, failed: result.failed })
          else yield* printLine(`moved ${result.moved} task(s) from prefix length ${o.from} to ${o.to}; deleted ${result.markersDeleted} old marker(s); rewrote ${result.recordsRewritten} idempotency record(s)${result.vanished > 0 ? `; ${result.vanished} vanished meanwhile` : ""}`)
          if (result.failed.length > 0) {
            return yield* operationalError(`${result.failed.length} task(s) could not be moved (first: ${result.failed[0]!.message}); run the command again to finish`)
          }
        }),
        { shardPrefixLen: o.to }
      )
    }).pipe(toCliError)
).pipe(Command.withDescription("move tasks to another shard prefix length (dry run by default)"))
