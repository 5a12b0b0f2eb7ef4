/**
 * Configuration from flags, the environment and TOML files, through Effect `Config` and
 * `ConfigProvider` (design.md §7). Each source is validated on its own (so an error names the
 * file, variable or flag it came from), reduced to a `ConfigProvider.fromMap`, and the providers
 * are chained in precedence order:
 *
 *   flags > environment > selected profile > `--config` file > `./.buquet.toml` > user file > defaults
 *
 * Flags are only present when given, so a flag equal to its default still wins over a file (the
 * reference let the file win there).
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Config, ConfigProvider, Effect, Either, Layer, Option, Redacted } from "effect"
import { isAbsolute, join, resolve } from "node:path"
import { commandLineNaming, InvalidConfig, parseConfigFile, settingsFromEnv, settingsFromFlags } from "../domain/ConfigFile.js"
import type { FlagNaming } from "../domain/ConfigFile.js"
import type { ConfigFileContents, SettingMap } from "../domain/ConfigFile.js"
import { parseStorage, retiredSettings, settings as allSettings } from "../domain/ConfigModel.js"
import { BuquetConfig } from "../services/BuquetConfig.js"
import type {
  ConfigFileInfo,
  ResolvedConfig,
  ResolvedSetting,
  SettingSource,
  StorageSettings
} from "../services/BuquetConfig.js"

/**
 * What the configuration is resolved from, besides the environment (read through Effect `Config`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigInputs {
  /** Settings given as flags: setting path (`bucket`, `storage`, …) → text. Only flags actually given. */
  readonly flags?: ReadonlyMap<string, string> | undefined
  /** How those are named in messages (default: `--flag`; `connect()` names its options). */
  readonly flagNaming?: FlagNaming | undefined
  /** `--profile` (else `BUQUET_PROFILE`). */
  readonly profile?: string | undefined
  /** `--config FILE` (else `BUQUET_CONFIG`): read on top of the project and user files. */
  readonly configFile?: string | undefined
  /** The directory `./.buquet.toml` and `./.buquet` are relative to (default: the process's). */
  readonly cwd?: string | undefined
  /**
   * The embedded file store's folder when no store is configured at all (default `.buquet`,
   * relative to `cwd`): a program whose tasks must stay out of the project's own queue (the demo,
   * the examples) names its own. Any configured store still wins.
   */
  readonly defaultDirectory?: string | undefined
}

/**
 * The directory of the embedded file store when nothing else is configured.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultFileStore = ".buquet"

/**
 * The file names buquet looks for.
 *
 * @since 0.1.0
 * @category constants
 */
export const projectFileName = ".buquet.toml"

const optionalEnv = (name: string) => Config.option(Config.string(name))

/** The environment variables the configuration reads (through the ambient ConfigProvider). */
const readEnv = Effect.gen(function*() {
  const names = new Set<string>([
    ...allSettings.flatMap((s) => [...s.env, ...(s.negatedEnv ?? [])]),
    ...retiredSettings.flatMap((r) => r.env),
    "BUQUET_PROFILE",
    "BUQUET_CONFIG",
    "XDG_CONFIG_HOME",
    "HOME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN"
  ])
  const env: Record<string, string | undefined> = {}
  for (const name of names) env[name] = Option.getOrUndefined(yield* optionalEnv(name))
  return env
})

/**
 * Where the user config file is: `$XDG_CONFIG_HOME/buquet/config.toml`, else `~/.config/buquet/config.toml`.
 *
 * @since 0.1.0
 * @category utils
 */
export const userConfigPath = (env: Readonly<Record<string, string | undefined>>): string | undefined => {
  const xdg = env["XDG_CONFIG_HOME"]
  if (xdg !== undefined && xdg !== "") return join(xdg, "buquet", "config.toml")
  const home = env["HOME"]
  return home !== undefined && home !== "" ? join(home, ".config", "buquet", "config.toml") : undefined
}

interface ReadFile {
  readonly info: ConfigFileInfo
  readonly contents: ConfigFileContents | undefined
}

const readFile = (path: string, role: ConfigFileInfo["role"]): Effect.Effect<ReadFile, InvalidConfig, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const exists = yield* fs.exists(path).pipe(Effect.orElseSucceed(() => false))
    if (!exists) {
      if (role === "explicit") {
        return yield* new InvalidConfig({
          source: path,
          key: "--config",
          message: `config file ${path} does not exist; check the path given to --config or BUQUET_CONFIG`
        })
      }
      return { info: { path, role, found: false }, contents: undefined }
    }
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) =>
        new InvalidConfig({ source: path, key: "(file)", message: `${path}: cannot be read (${e.message}); check its permissions` })
      )
    )
    const contents = yield* Either.match(parseConfigFile(path, text), { onLeft: Effect.fail, onRight: Effect.succeed })
    return { info: { path, role, found: true }, contents }
  })

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s.trim() === "" ? undefined : s)

const fromEither = <A>(e: Either.Either<A, InvalidConfig>) => Either.match(e, { onLeft: Effect.fail, onRight: Effect.succeed })

/** The layers of the precedence chain, highest first, each with where its values came from. */
interface SourceLayer {
  readonly source: SettingSource
  readonly origin: (path: string) => string
  readonly map: SettingMap
}

/** The resolved settings as Effect `Config` (read from the chained provider). */
const resolvedConfig = Config.all({
  storage: Config.option(Config.string("storage")),
  bucket: Config.option(Config.string("bucket")),
  endpoint: Config.option(Config.string("endpoint")),
  region: Config.string("region").pipe(Config.withDefault("us-east-1")),
  keyPrefix: Config.string("key_prefix").pipe(Config.withDefault("")),
  shardPrefixLen: Config.integer("shard_prefix_len").pipe(Config.nested("queue"), Config.withDefault(1)),
  typeCheck: Config.literal("warn", "strict", "off")("type_check").pipe(Config.nested("queue"), Config.withDefault("warn" as const)),
  worker: Config.all({
    id: Config.option(Config.string("id")),
    shards: Config.option(Config.string("shards")),
    concurrency: Config.integer("concurrency").pipe(Config.withDefault(1)),
    readyPageSize: Config.integer("ready_page_size").pipe(Config.withDefault(1000)),
    shutdownGraceSecs: Config.integer("shutdown_grace_secs").pipe(Config.withDefault(30)),
    heartbeatBusySecs: Config.integer("heartbeat_busy_secs").pipe(Config.withDefault(10)),
    heartbeatIdleSecs: Config.integer("heartbeat_idle_secs").pipe(Config.withDefault(60)),
    monitor: Config.boolean("monitor").pipe(Config.withDefault(true)),
    scheduler: Config.boolean("scheduler").pipe(Config.withDefault(false)),
    polling: Config.all({
      strategy: Config.literal("adaptive", "fixed")("strategy").pipe(Config.withDefault("adaptive" as const)),
      minIntervalMs: Config.integer("min_interval_ms").pipe(Config.withDefault(100)),
      maxIntervalMs: Config.integer("max_interval_ms").pipe(Config.withDefault(5000)),
      backoffMultiplier: Config.number("backoff_multiplier").pipe(Config.withDefault(2)),
      intervalMs: Config.integer("interval_ms").pipe(Config.withDefault(1000))
    }).pipe(Config.nested("polling")),
    shardLeasing: Config.all({
      enabled: Config.boolean("enabled").pipe(Config.withDefault(false)),
      shardsPerWorker: Config.option(Config.integer("shards_per_worker")),
      leaseTtlSecs: Config.integer("lease_ttl_secs").pipe(Config.withDefault(30)),
      renewalIntervalSecs: Config.integer("renewal_interval_secs").pipe(Config.withDefault(10))
    }).pipe(Config.nested("shard_leasing"))
  }).pipe(Config.nested("worker")),
  monitor: Config.all({
    checkIntervalSecs: Config.integer("check_interval_secs").pipe(Config.withDefault(30)),
    sweepIntervalSecs: Config.integer("sweep_interval_secs").pipe(Config.withDefault(300)),
    maxTasksPerScan: Config.integer("max_tasks_per_scan").pipe(Config.withDefault(100)),
    maxObjectsPerSweep: Config.integer("max_objects_per_sweep").pipe(Config.withDefault(1000)),
    workerHealthThresholdSecs: Config.integer("worker_health_threshold_secs").pipe(Config.withDefault(180)),
    sweepMode: Config.literal("continuous", "on_demand")("sweep_mode").pipe(Config.withDefault("continuous" as const)),
    quietCheckIntervalSecs: Config.integer("quiet_check_interval_secs").pipe(Config.withDefault(600)),
    retentionDays: Config.option(Config.integer("retention_days")),
    retentionAction: Config.literal("archive", "delete")("retention_action").pipe(Config.withDefault("archive" as const))
  }).pipe(Config.nested("monitor")),
  dashboard: Config.all({
    host: Config.string("host").pipe(Config.withDefault("127.0.0.1")),
    port: Config.integer("port").pipe(Config.withDefault(3000)),
    token: Config.option(Config.redacted("token")),
    refreshSecs: Config.integer("refresh_secs").pipe(Config.withDefault(5)),
    maxStreams: Config.integer("max_streams").pipe(Config.withDefault(200))
  }).pipe(Config.nested("dashboard"))
})

/**
 * Resolves the configuration. Fails with {@link InvalidConfig} naming the file / variable / flag,
 * the key and what is allowed.
 *
 * @since 0.1.0
 * @category utils
 */
export const resolve_ = Effect.fn("Config.resolve")(function*(inputs: ConfigInputs = {}) {
  const env = yield* readEnv.pipe(
    Effect.mapError((e) => new InvalidConfig({ source: "environment", key: "(environment)", message: `the environment cannot be read: ${String(e)}` }))
  )
  const cwd = inputs.cwd ?? process.cwd()
  const flagNaming = inputs.flagNaming ?? commandLineNaming
  const flags = yield* fromEither(settingsFromFlags(inputs.flags ?? new Map(), flagNaming))
  const envSettings = yield* fromEither(settingsFromEnv(env))

  // files, lowest priority first; --config (or BUQUET_CONFIG) on top
  const userPath = userConfigPath(env)
  // an empty BUQUET_CONFIG / BUQUET_PROFILE means "not set" (as `export BUQUET_CONFIG=` intends)
  const explicit = nonEmpty(inputs.configFile) ?? nonEmpty(env["BUQUET_CONFIG"])
  const wanted: Array<{ path: string; role: ConfigFileInfo["role"] }> = [
    ...(userPath === undefined ? [] : [{ path: userPath, role: "user" as const }]),
    { path: join(cwd, projectFileName), role: "project" },
    ...(explicit === undefined ? [] : [{ path: isAbsolute(explicit) ? explicit : resolve(cwd, explicit), role: "explicit" as const }])
  ]
  const read = yield* Effect.forEach(wanted, ({ path, role }) => readFile(path, role))
  const files = read.flatMap((r) => (r.contents === undefined ? [] : [{ info: r.info, contents: r.contents }]))

  // profiles are replaced by name: the highest-priority file defining one wins
  const profileName = nonEmpty(inputs.profile) ?? nonEmpty(env["BUQUET_PROFILE"])
  let profile: { map: SettingMap; path: string } | undefined
  if (profileName !== undefined) {
    for (const f of files) {
      const p = f.contents.profiles.get(profileName)
      if (p !== undefined) profile = { map: p, path: f.info.path }
    }
    if (profile === undefined) {
      const looked = read.map((r) => r.info.path).join(", ")
      return yield* new InvalidConfig({
        source: "command line",
        key: "--profile",
        message: `profile "${profileName}" is not defined in any config file (looked in ${looked}); add a [profiles.${profileName}] section or choose another profile`
      })
    }
  }

  const layers: Array<SourceLayer> = [
    { source: "flag", origin: flagNaming.name, map: flags },
    {
      source: "environment",
      origin: (p) => {
        const spec = allSettings.find((s) => s.path === p)
        return [...(spec?.env ?? []), ...(spec?.negatedEnv ?? [])].find((n) => env[n] !== undefined && env[n] !== "") ?? "environment"
      },
      map: envSettings
    },
    ...(profile === undefined ? [] : [{ source: "profile" as const, origin: () => `${profile.path} [profiles.${profileName}]`, map: profile.map }]),
    ...[...files].reverse().map((f) => ({ source: "file" as const, origin: () => f.info.path, map: f.contents.base }))
  ]

  const provider = layers
    .map((l) => ConfigProvider.fromMap(new Map(l.map), { pathDelim: "." }))
    .reduce((acc, next) => ConfigProvider.orElse(acc, () => next))
  const values = yield* resolvedConfig.pipe(
    Effect.withConfigProvider(provider),
    Effect.mapError((e) => new InvalidConfig({ source: "configuration", key: "(resolve)", message: `invalid configuration: ${String(e)}` }))
  )

  const resolvedSettings: Array<ResolvedSetting> = allSettings.map((spec) => {
    const layer = layers.find((l) => l.map.has(spec.path))
    return layer === undefined
      ? { path: spec.path, value: spec.default, source: "default", origin: undefined }
      : { path: spec.path, value: layer.map.get(spec.path), source: layer.source, origin: layer.origin(spec.path) }
  })

  const accessKeyId = env["AWS_ACCESS_KEY_ID"]
  const secret = env["AWS_SECRET_ACCESS_KEY"]
  const sessionToken = env["AWS_SESSION_TOKEN"]
  // temporary credentials are three values: without its token the key pair is refused
  const credentials = accessKeyId !== undefined && accessKeyId !== "" && secret !== undefined && secret !== ""
    ? {
      accessKeyId,
      secretAccessKey: Redacted.make(secret),
      ...(sessionToken !== undefined && sessionToken !== "" ? { sessionToken: Redacted.make(sessionToken) } : {})
    }
    : undefined
  const s3 = (bucket: string): StorageSettings => ({
    _tag: "S3",
    bucket,
    endpoint: Option.getOrUndefined(values.endpoint),
    region: values.region,
    keyPrefix: values.keyPrefix,
    credentials
  })
  const target = Option.flatMap(values.storage, (s) => Option.fromNullable(parseStorage(s)))
  // The embedded store only when no S3 setting exists at all: half an S3 configuration (an
  // endpoint but no bucket) would otherwise write tasks to a local directory, lost with a container.
  // AWS_REGION and AWS credentials alone do not count: AWS environments and shells set them for
  // other tools.
  if (Option.isNone(target) && Option.isNone(values.bucket)) {
    const s3Only = resolvedSettings.filter((r) =>
      (r.path === "endpoint" || r.path === "region" || r.path === "key_prefix") && r.source !== "default" && r.origin !== "AWS_REGION"
    )
    if (s3Only.length > 0) {
      const named = s3Only.map((r) => `${r.origin ?? r.path} (${r.path})`).join(", ")
      return yield* new InvalidConfig({
        source: s3Only[0]!.origin ?? "configuration",
        key: "bucket",
        message: `${named} ${s3Only.length === 1 ? "is an S3 setting" : "are S3 settings"}, but no bucket is configured: ` +
          "set S3_BUCKET (or --bucket, bucket = \"…\" in a config file, --storage s3://BUCKET); " +
          "to use the embedded file store instead, remove the S3 settings or pass --storage file://.buquet"
      })
    }
  }
  const storage: StorageSettings = Option.isSome(target)
    ? target.value._tag === "S3"
      ? s3(target.value.bucket)
      : target.value._tag === "File"
      ? { _tag: "File", directory: resolve(cwd, target.value.directory), implicit: false }
      : { _tag: "Memory" }
    : Option.isSome(values.bucket)
    ? s3(values.bucket.value)
    : { _tag: "File", directory: resolve(cwd, inputs.defaultDirectory ?? defaultFileStore), implicit: true }

  const shards = Option.getOrUndefined(values.worker.shards)?.split(",")
  const wrongShard = shards?.find((s) => s.length !== values.shardPrefixLen)
  if (wrongShard !== undefined) {
    const origin = resolvedSettings.find((s) => s.path === "worker.shards")?.origin ?? "worker.shards"
    return yield* new InvalidConfig({
      source: origin,
      key: "worker.shards",
      message: `${origin}: shard "${wrongShard}" does not fit the shard prefix length ${values.shardPrefixLen}: ` +
        `use shards of exactly ${values.shardPrefixLen} hex digit(s), or change [queue] shard_prefix_len`
    })
  }
  const { polling, shardLeasing } = values.worker
  if (shardLeasing.renewalIntervalSecs >= shardLeasing.leaseTtlSecs) {
    return yield* new InvalidConfig({
      source: "configuration",
      key: "worker.shard_leasing.renewal_interval_secs",
      message: `[worker.shard_leasing] renewal_interval_secs (${shardLeasing.renewalIntervalSecs}) must be below lease_ttl_secs ` +
        `(${shardLeasing.leaseTtlSecs}); renew a few times per lease lifetime`
    })
  }
  if (polling.strategy === "adaptive" && polling.minIntervalMs > polling.maxIntervalMs) {
    return yield* new InvalidConfig({
      source: "configuration",
      key: "worker.polling.min_interval_ms",
      message: `[worker.polling] min_interval_ms (${polling.minIntervalMs}) is above max_interval_ms (${polling.maxIntervalMs}); ` +
        "make min_interval_ms at most max_interval_ms"
    })
  }

  return {
    storage,
    shardPrefixLen: values.shardPrefixLen,
    typeCheck: values.typeCheck,
    worker: {
      ...values.worker,
      id: Option.getOrUndefined(values.worker.id),
      shards,
      shardLeasing: { ...shardLeasing, shardsPerWorker: Option.getOrUndefined(shardLeasing.shardsPerWorker) }
    },
    monitor: { ...values.monitor, retentionDays: Option.getOrUndefined(values.monitor.retentionDays) },
    dashboard: { ...values.dashboard, token: Option.getOrUndefined(values.dashboard.token) },
    profile: profileName,
    settings: resolvedSettings,
    files: read.map((r) => r.info)
  } satisfies ResolvedConfig
})

/**
 * Resolves the configuration, reading the config files through the `FileSystem` in context (the
 * composition roots — `Buquet.layerFromConfig`, the CLI, the Promise facade — provide Node's).
 *
 * @since 0.1.0
 * @category utils
 */
export const resolveConfig = (
  inputs: ConfigInputs = {}
): Effect.Effect<ResolvedConfig, InvalidConfig, FileSystem.FileSystem> => resolve_(inputs)

/**
 * The {@link BuquetConfig} service, resolved from `inputs`, the environment and the config files.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (inputs: ConfigInputs = {}): Layer.Layer<BuquetConfig, InvalidConfig, FileSystem.FileSystem> =>
  Layer.effect(BuquetConfig, resolveConfig(inputs))

/**
 * A fixed configuration (tests, embedding).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerValue = (config: ResolvedConfig): Layer.Layer<BuquetConfig> => Layer.succeed(BuquetConfig, config)

export { InvalidConfig }
