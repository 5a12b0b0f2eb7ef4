/**
 * `buquet config show|validate|paths`: the resolved configuration, with where each value came
 * from. They run without touching storage.
 *
 * @module
 */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { maskUrlCredentials, settingsByPath, shownSetting as shown } from "../domain/ConfigModel.js"
import { globalOptions, printJson, printLine, resolveConfig, toCliError } from "./common.js"
import { table } from "./format.js"

const show = Command.make("show", globalOptions, (o) =>
  Effect.gen(function*() {
    const config = yield* resolveConfig(o)
    if (o.json) {
      return yield* printJson({
        profile: config.profile ?? null,
        storage: config.storage._tag === "S3"
          ? { type: "s3", bucket: config.storage.bucket, endpoint: config.storage.endpoint === undefined ? null : maskUrlCredentials(config.storage.endpoint), region: config.storage.region, key_prefix: config.storage.keyPrefix, credentials: config.storage.credentials === undefined ? "sdk-chain" : "environment" }
          : config.storage._tag === "File"
          ? { type: "file", directory: config.storage.directory, implicit: config.storage.implicit }
          : { type: "memory" },
        settings: config.settings.map((s) => ({ key: s.path, value: shown(s.path, s.value) ?? null, source: s.source, origin: s.origin ?? null }))
      })
    }
    yield* printLine(table(
      ["SETTING", "VALUE", "FROM"],
      config.settings.map((s) => [s.path, shown(s.path, s.value) ?? "(unset)", s.origin === undefined ? s.source : `${s.source}: ${s.origin}`])
    ))
    const st = config.storage
    yield* printLine(
      `\nstorage: ${st._tag === "S3" ? `s3://${st.bucket}${st.endpoint === undefined ? "" : ` at ${maskUrlCredentials(st.endpoint)}`}` : st._tag === "File" ? `file://${st.directory}${st.implicit ? " (embedded default: no bucket configured)" : ""}` : "memory"}`
    )
  }).pipe(toCliError)).pipe(Command.withDescription("show the resolved settings and where each came from"))

const validate = Command.make("validate", globalOptions, (o) =>
  Effect.gen(function*() {
    const config = yield* resolveConfig(o)
    const files = config.files.filter((f) => f.found).map((f) => f.path)
    yield* o.json
      ? printJson({ valid: true, files })
      : printLine(`✓ configuration is valid (${files.length === 0 ? "no config files" : `files: ${files.join(", ")}`})`)
  }).pipe(toCliError)).pipe(Command.withDescription("check the config files and environment"))

const paths = Command.make("paths", globalOptions, (o) =>
  Effect.gen(function*() {
    const config = yield* resolveConfig(o)
    if (o.json) return yield* printJson(config.files.map((f) => ({ path: f.path, role: f.role, found: f.found })))
    yield* printLine(config.files.map((f) => `${f.role.padEnd(8)}  ${f.found ? "found  " : "missing"}  ${f.path}`).join("\n"))
    yield* printLine("(later files override earlier ones; environment and flags override files)")
  }).pipe(toCliError)).pipe(Command.withDescription("list the config files buquet reads"))

/** `buquet config show|validate|paths`. */
export const config = Command.make("config").pipe(
  Command.withDescription(`inspect the configuration (${settingsByPath.size} settings)`),
  Command.withSubcommands([show, validate, paths])
)
