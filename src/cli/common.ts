/**
 * What every command shares: the global flags, building the stack from the configuration, output
 * (human or `--json`), and turning failures into one-line sentences with exit codes
 * (0 ok, 1 operational failure, 2 bad input).
 *
 * @module
 */
import { terminalSafe } from "./format.js"
import { dirname, join } from "node:path"
import { Options } from "@effect/cli"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Console, Effect, Either, Layer, Option, Schema } from "effect"
import * as Buquet from "../Buquet.js"
import type { BuquetServices } from "../Buquet.js"
import { parseDuration } from "../domain/ConfigDuration.js"
import { maskCredentialsInText } from "../domain/ConfigModel.js"
import * as ConfigLayer from "../layers/Config.js"
import { BuquetConfig } from "../services/BuquetConfig.js"
import type { ResolvedConfig } from "../services/BuquetConfig.js"
import type { Duration } from "effect"
import { allStatuses } from "../domain/TaskStatus.js"
import type { TaskStatus } from "../domain/TaskStatus.js"

/** A command failed: the message is one sentence saying what to do; 1 = operational, 2 = bad input. */
export class CliError extends Schema.TaggedError<CliError>()("CliError", {
  message: Schema.String,
  exitCode: Schema.Literal(1, 2)
}) {}

/** A bad-input failure (exit 2). */
export const usageError = (message: string): CliError => new CliError({ message, exitCode: 2 })

/** An operational failure (exit 1). */
export const operationalError = (message: string): CliError => new CliError({ message, exitCode: 1 })

/** The flags every command takes. */
export const globalOptions = {
  bucket: Options.text("bucket").pipe(Options.withDescription("S3 bucket (env S3_BUCKET)"), Options.optional),
  endpoint: Options.text("endpoint").pipe(Options.withDescription("S3 endpoint URL (env S3_ENDPOINT)"), Options.optional),
  region: Options.text("region").pipe(Options.withDescription("S3 region (env S3_REGION / AWS_REGION)"), Options.optional),
  profile: Options.text("profile").pipe(Options.withDescription("config profile (env BUQUET_PROFILE)"), Options.optional),
  config: Options.text("config").pipe(Options.withDescription("extra config file (env BUQUET_CONFIG)"), Options.optional),
  storage: Options.text("storage").pipe(
    Options.withDescription("s3://bucket, file://dir or memory (env BUQUET_STORAGE)"),
    Options.optional
  ),
  shardPrefixLen: Options.text("shard-prefix-len").pipe(
    Options.withDescription("hex characters of a task id that name its shard, 1–4 (env BUQUET_SHARD_PREFIX_LEN)"),
    Options.optional
  ),
  json: Options.boolean("json").pipe(Options.withDescription("machine-readable JSON output"))
}

/** The parsed global flags. */
export interface Globals {
  readonly bucket: Option.Option<string>
  readonly endpoint: Option.Option<string>
  readonly region: Option.Option<string>
  readonly profile: Option.Option<string>
  readonly config: Option.Option<string>
  readonly storage: Option.Option<string>
  readonly shardPrefixLen: Option.Option<string>
  readonly json: boolean
}

/**
 * The configuration inputs the global flags give (only flags actually given), plus a command's
 * own setting flags (`worker.concurrency` → text), which take part in the same precedence.
 */
export const configInputs = (g: Globals, settingFlags: ReadonlyMap<string, string> = new Map()): ConfigLayer.ConfigInputs => {
  const flags = new Map<string, string>(settingFlags)
  for (const key of ["bucket", "endpoint", "region", "storage"] as const) {
    const v = g[key]
    if (Option.isSome(v)) flags.set(key, v.value)
  }
  if (Option.isSome(g.shardPrefixLen)) flags.set("queue.shard_prefix_len", g.shardPrefixLen.value)
  return { flags, profile: Option.getOrUndefined(g.profile), configFile: Option.getOrUndefined(g.config) }
}

/** Resolves the configuration from the global flags, the environment and the files. */
export const resolveConfig = (
  g: Globals,
  settingFlags?: ReadonlyMap<string, string>
): Effect.Effect<ResolvedConfig, CliError> =>
  ConfigLayer.resolveConfig(configInputs(g, settingFlags)).pipe(
    Effect.provide(NodeFileSystem.layer),
    Effect.mapError((e) => usageError(e.message))
  )

/** Writes one line to stderr (notices that must not mix with `--json` on stdout). */
export const stderrLine = (line: string): Effect.Effect<void> =>
  Effect.sync(() => void process.stderr.write(`${terminalSafe(maskCredentialsInText(line))}\n`))

/** Writes one line (or several) to stdout, escaped with {@link terminalSafe}: the only way commands print. */
export const printLine = (text: string): Effect.Effect<void> => Console.log(terminalSafe(text))

/**
 * Says on stderr which stored objects a listing left out because they could not be decoded (one
 * line with the count, then one per object with the reason), so a short listing is never silent.
 */
export const reportSkipped = (
  malformed: ReadonlyArray<{ readonly key: string; readonly message: string }>
): Effect.Effect<void> =>
  malformed.length === 0 ? Effect.void : stderrLine(
    [
      `buquet: skipped ${malformed.length} malformed object(s); fix or delete them:`,
      ...malformed.map((m) => `  ${m.key}: ${m.message}`)
    ].join("\n")
  )

/** The one-line notice shown when no bucket is configured anywhere. */
export const embeddedNotice = (directory: string): string =>
  `buquet: no bucket configured; using the embedded file store ${directory} (set S3_BUCKET, --bucket or --storage to use a bucket)`

/**
 * Runs `body` with the whole stack (Queue, ServerClock, Storage, BuquetConfig) built from the
 * configuration. Says in one line on stderr when the embedded file store is used.
 */
export const withStack = <A, E, R>(
  g: Globals,
  body: Effect.Effect<A, E, R>,
  options: {
    readonly shardPrefixLen?: number | undefined
    /** The command's own setting flags (path → text), resolved with the global ones. */
    readonly settingFlags?: ReadonlyMap<string, string> | undefined
    /** Count storage requests for the metrics endpoint. */
    readonly meterStorage?: boolean | undefined
    /**
     * The embedded store's folder (beside ./.buquet) when no store is configured at all, for a
     * command whose tasks must stay out of the project's own queue (the demo).
     */
    readonly ownDirectory?: string | undefined
  } = {}
): Effect.Effect<A, E | CliError, Exclude<R, BuquetServices | BuquetConfig>> =>
  Effect.gen(function*() {
    const resolved = yield* resolveConfig(g, options.settingFlags)
    const config: ResolvedConfig = resolved.storage._tag === "File" && resolved.storage.implicit && options.ownDirectory !== undefined
      ? { ...resolved, storage: { ...resolved.storage, directory: join(dirname(resolved.storage.directory), options.ownDirectory) } }
      : resolved
    if (config.storage._tag === "File" && config.storage.implicit) yield* stderrLine(embeddedNotice(config.storage.directory))
    const stack = Buquet.layerFromSettings(config.storage, {
      shardPrefixLen: options.shardPrefixLen ?? config.shardPrefixLen,
      queue: { typeCheck: config.typeCheck },
      meterStorage: options.meterStorage
    }).pipe(
      Layer.merge(Layer.succeed(BuquetConfig, config)),
      Layer.mapError((e) => operationalError(describeError(e)))
    )
    return yield* Effect.provide(body, stack)
  }) as Effect.Effect<A, E | CliError, Exclude<R, BuquetServices | BuquetConfig>>

/** Prints a value as JSON on stdout. */
export const printJson = (value: unknown): Effect.Effect<void> => printLine(JSON.stringify(value, null, 2))

/** Collects the setting flags a command was given: `[path, value]` pairs whose value is present. */
export const settingFlags = (
  pairs: ReadonlyArray<readonly [path: string, value: Option.Option<string | number | boolean>]>
): ReadonlyMap<string, string> => {
  const out = new Map<string, string>()
  for (const [path, value] of pairs) if (Option.isSome(value)) out.set(path, String(value.value))
  return out
}

/** Parses a `--status` value; an unknown one is a usage error naming the flag and the statuses. */
export const parseStatusArg = (flag: string, text: string): Effect.Effect<TaskStatus, CliError> =>
  (allStatuses as ReadonlyArray<string>).includes(text)
    ? Effect.succeed(text as TaskStatus)
    : Effect.fail(usageError(`${flag}: "${text}" is not a task status; use one of ${allStatuses.join(", ")}`))

/** Parses a JSON argument; bad JSON is a usage error naming the flag. */
export const parseJsonArg = (flag: string, text: string): Effect.Effect<unknown, CliError> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (e) =>
      usageError(`${flag} is not valid JSON (${e instanceof Error ? e.message : String(e)}); quote it for the shell, e.g. ${flag} '{"to":"a@example.com"}'`)
  })

/** Parses a duration argument (`--delay 1h`). */
export const parseDurationArg = (flag: string, text: string): Effect.Effect<Duration.Duration, CliError> =>
  Either.match(parseDuration(text), {
    onLeft: (msg) => Effect.fail(usageError(`${flag}: ${msg}`)),
    onRight: Effect.succeed
  })

/** An RFC 3339 timestamp with a time zone, as `--at` and `--expires-at` take. */
const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

/** Parses an RFC 3339 argument into a Date. */
export const parseInstantArg = (flag: string, text: string): Effect.Effect<Date, CliError> => {
  const d = new Date(text)
  return rfc3339.test(text.trim()) && !Number.isNaN(d.getTime())
    ? Effect.succeed(d)
    : Effect.fail(usageError(`${flag}: "${text}" is not an RFC 3339 time; use e.g. 2030-01-31T09:00:00Z`))
}

const tagOf = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "_tag" in e && typeof e._tag === "string" ? e._tag : undefined

const messageOf = (e: unknown): string =>
  typeof e === "object" && e !== null && "message" in e && typeof e.message === "string" && e.message !== ""
    ? e.message
    : String(e)

/** A failure as one sentence that says what to do. */
export const describeError = (e: unknown): string => {
  const msg = messageOf(e).replace(/\s*\n\s*/g, " ")
  switch (tagOf(e)) {
    case "StorageUnavailable":
      return `the storage could not be reached (${msg}); check the endpoint and that the server is up, then retry`
    case "AccessDenied":
      return `access denied (${msg}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy`
    case "NoSuchBucket":
      return `${msg}; check the bucket name (--bucket / S3_BUCKET) and the endpoint`
    default:
      return msg
  }
}

/** The exit code of a failure: 2 for bad input, 1 for everything else. */
export const exitCodeOf = (e: unknown): 1 | 2 => {
  switch (tagOf(e)) {
    case "CliError":
      return (e as CliError).exitCode
    case "InvalidArgument":
    case "InvalidConfig":
    case "SchemaValidationFailed":
    case "InvalidCron":
    case "UnknownTimezone":
    case "DashboardRefused":
    case "UnhandledTaskType":
      return 2
    default:
      return 1
  }
}

/** Maps every failure of a command body to a {@link CliError}. */
export const toCliError = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, CliError, R> =>
  Effect.mapError(self, (e) => (e instanceof CliError ? e : new CliError({ message: describeError(e), exitCode: exitCodeOf(e) })))
