/**
 * `buquet doctor`: runs the checks of `programs/Doctor.ts` and prints ✓/⚠/✗ lines; exit 1 when
 * any check failed.
 *
 * @module
 */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { layerStorage } from "../Buquet.js"
import * as Doctor from "../programs/Doctor.js"
import { globalOptions, operationalError, printJson, printLine, resolveConfig, toCliError } from "./common.js"

const mark = { ok: "✓", warn: "⚠", fail: "✗" } as const

/** `buquet doctor`. */
export const doctor = Command.make("doctor", {
  ...globalOptions,
  // the reference's flag: our doctor always writes (and removes) its conditional-write self-test
  writeTest: Options.boolean("write-test").pipe(
    Options.withDescription("accepted for the Rust/Python buquet: the conditional-write self-test always runs, in a scratch prefix it removes")
  )
}, (o) =>
  Effect.gen(function*() {
    const config = yield* resolveConfig(o)
    const report = yield* Doctor.run(config, layerStorage(config.storage))
    if (o.json) yield* printJson(report)
    else yield* printLine(report.checks.map((c) => `${mark[c.status]} ${c.name}: ${c.detail}`).join("\n"))
    if (!report.ok) {
      const first = report.checks.find((c) => c.status === "fail")!
      return yield* operationalError(`doctor found a problem (${first.name}); fix the ✗ items above and run it again`)
    }
  }).pipe(toCliError)).pipe(Command.withDescription("check that the configured store can run a queue"))
