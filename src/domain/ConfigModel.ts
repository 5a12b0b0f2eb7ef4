/**
 * The configuration model (design.md §7): every setting buquet reads, where it may come from
 * (flag, environment, TOML section and key), what values it allows and its default. Pure: no files,
 * no environment; `layers/Config.ts` feeds it.
 *
 * Every setting listed here is applied by some component; a setting is added here only when the
 * component that uses it exists (the reference parsed many settings it never applied).
 *
 * @module
 */
import { Either, Schema } from "effect"
import { WorkerId } from "./Names.js"

/** What values a setting allows. */
export type SettingKind =
  | { readonly _tag: "String"; readonly nonEmpty: boolean }
  | { readonly _tag: "Int"; readonly min: number; readonly max: number }
  | { readonly _tag: "Float"; readonly minExclusive: number; readonly max: number }
  | { readonly _tag: "Enum"; readonly values: ReadonlyArray<string> }
  | { readonly _tag: "Bool" }
  | { readonly _tag: "Shards" }
  | { readonly _tag: "Storage" }
  /** A name that ends up in object keys (`worker.id` → `workers/{id}.json`): the rules of domain/Names.ts. */
  | { readonly _tag: "WorkerId" }
  | { readonly _tag: "Pattern"; readonly pattern: RegExp; readonly allowed: string }
  | { readonly _tag: "Url" }

/** One setting: its path in the resolved map (`queue.shard_prefix_len`), its sources and values. */
export interface SettingSpec {
  /** Dotted path; also the TOML section + key (`worker.polling.strategy` is `[worker.polling] strategy`). */
  readonly path: string
  /** Environment variables, first one set wins. */
  readonly env: ReadonlyArray<string>
  /** Boolean settings only: variables that mean the opposite (the reference's `BUQUET_NO_MONITOR=1` is `monitor = false`); read after `env`. */
  readonly negatedEnv?: ReadonlyArray<string> | undefined
  /** The CLI flag (without `--`), when there is one. */
  readonly flag?: string | undefined
  readonly kind: SettingKind
  /** The default, as the string form every source is reduced to (absent: no default). */
  readonly default?: string | undefined
  /** A connection setting: in files it sits under `[default]` (or at the top of `[profiles.X]`); the others sit in their sections. */
  readonly inProfile: boolean
  /** What it does and where it is applied (shown by `config show`). */
  readonly description: string
  /** A secret (the dashboard token): `config show` prints "(set)" instead of the value. */
  readonly secret?: boolean | undefined
}

const str = (nonEmpty = true): SettingKind => ({ _tag: "String", nonEmpty })
const int = (min: number, max: number): SettingKind => ({ _tag: "Int", min, max })
const bool: SettingKind = { _tag: "Bool" }
const oneOf = (...values: ReadonlyArray<string>): SettingKind => ({ _tag: "Enum", values })
const matching = (pattern: RegExp, allowed: string): SettingKind => ({ _tag: "Pattern", pattern, allowed })

// Values that end up in object keys, request URLs or headers: refused when malformed or hostile
// (`../x`), instead of failing later with a TypeError or writing somewhere unexpected.
const bucketName = matching(
  /^(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
  "an S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit"
)
const regionName = matching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "a region name such as us-east-1 (letters, digits, - and _)")
const keyPrefix = matching(
  /^(?!\/)(?!.*\.\.)(?!.*\/\/)[A-Za-z0-9_.=/-]*$/,
  "a key prefix of letters, digits and _ . = - /, such as team-a/ (no leading /, no .., no //)"
)
const token = matching(/^[\x21-\x7e]{16,}$/, "a token of at least 16 printable characters without spaces, e.g. the output of `openssl rand -hex 16`")
/** A setting of a section (not a connection setting). */
const section = (spec: Omit<SettingSpec, "inProfile">): SettingSpec => ({ ...spec, inProfile: false })

/** Every setting, in display order. */
export const settings: ReadonlyArray<SettingSpec> = [
  {
    path: "storage",
    env: ["BUQUET_STORAGE"],
    flag: "storage",
    kind: { _tag: "Storage" },
    inProfile: true,
    description: "where tasks live: s3://bucket, file://dir or memory (default: the bucket if one is set, else file://./.buquet)"
  },
  {
    path: "bucket",
    env: ["S3_BUCKET", "BUQUET_BUCKET"],
    flag: "bucket",
    kind: bucketName,
    inProfile: true,
    description: "the S3 bucket (S3Storage)"
  },
  {
    path: "endpoint",
    env: ["S3_ENDPOINT", "BUQUET_ENDPOINT"],
    flag: "endpoint",
    kind: { _tag: "Url" },
    inProfile: true,
    description: "a custom S3 endpoint such as http://127.0.0.1:7480 (S3Storage, path-style addressing)"
  },
  {
    path: "region",
    env: ["S3_REGION", "AWS_REGION", "BUQUET_REGION"],
    flag: "region",
    kind: regionName,
    default: "us-east-1",
    inProfile: true,
    description: "the S3 region (S3Storage)"
  },
  {
    path: "key_prefix",
    env: ["BUQUET_KEY_PREFIX", "S3_KEY_PREFIX"],
    kind: keyPrefix,
    default: "",
    inProfile: true,
    description: "every key is stored under this prefix, so several queues can share a bucket (S3Storage)"
  },
  {
    path: "queue.shard_prefix_len",
    env: ["BUQUET_SHARD_PREFIX_LEN"],
    flag: "shard-prefix-len",
    kind: int(1, 4),
    default: "1",
    inProfile: false,
    description: "hex characters of the task id that name its shard: 1–4 = 16…65,536 shards (Queue)"
  },
  {
    path: "queue.type_check",
    env: ["BUQUET_TYPE_CHECK"],
    flag: "type-check",
    kind: oneOf("warn", "strict", "off"),
    default: "warn",
    inProfile: false,
    description: "submit of a task type no worker ever registered (control/types/): warn, strict (refuse) or off (no HEAD) (Queue)"
  },
  // [worker]: `buquet worker` (cli/options.ts workerOptions → Worker.run)
  section({
    path: "worker.id",
    env: ["BUQUET_WORKER_ID"],
    flag: "id",
    kind: { _tag: "WorkerId" },
    description: "the worker's id, naming workers/{id}.json (default: worker-<8 hex>) (Worker, embedded monitor)"
  }),
  section({
    path: "worker.shards",
    env: ["BUQUET_SHARDS"],
    flag: "shards",
    kind: { _tag: "Shards" },
    description: "the shards the worker polls (default: all) (Worker)"
  }),
  section({
    path: "worker.concurrency",
    env: ["BUQUET_CONCURRENCY"],
    flag: "concurrency",
    kind: int(1, 10_000),
    default: "1",
    description: "tasks one worker runs at once (Worker)"
  }),
  section({
    path: "worker.shutdown_grace_secs",
    env: ["BUQUET_SHUTDOWN_GRACE_SECS"],
    flag: "grace",
    kind: int(0, 86_400),
    default: "30",
    description: "after SIGINT/SIGTERM, how long running handlers may finish before their tasks are given back (Worker)"
  }),
  section({
    path: "worker.heartbeat_busy_secs",
    env: ["BUQUET_HEARTBEAT_BUSY_SECS"],
    kind: int(1, 3_600),
    default: "10",
    description: "heartbeat interval while tasks run (Worker)"
  }),
  section({
    path: "worker.heartbeat_idle_secs",
    env: ["BUQUET_HEARTBEAT_IDLE_SECS"],
    kind: int(1, 3_600),
    default: "60",
    description: "heartbeat interval while idle (Worker)"
  }),
  section({
    path: "worker.ready_page_size",
    env: ["BUQUET_READY_PAGE_SIZE"],
    flag: "ready-page-size",
    kind: int(1, 1_000),
    default: "1000",
    description: "keys per LIST of the ready index when looking for work (a LIST costs the same whatever it returns) (Worker discovery)"
  }),
  section({
    path: "worker.monitor",
    env: ["BUQUET_WORKER_MONITOR"],
    negatedEnv: ["BUQUET_NO_MONITOR"],
    kind: bool,
    default: "true",
    description: "embed the (leader-elected) monitor in the worker; --no-monitor turns it off (Monitor)"
  }),
  section({
    path: "worker.scheduler",
    env: ["BUQUET_WORKER_SCHEDULER"],
    flag: "scheduler",
    kind: bool,
    default: "false",
    description: "embed the (leader-elected) cron scheduler loop in the worker (SchedulerLoop)"
  }),
  // [worker.shard_leasing]
  section({
    path: "worker.shard_leasing.enabled",
    env: ["BUQUET_SHARD_LEASING"],
    flag: "shard-leasing",
    kind: bool,
    default: "false",
    description: "poll only the shards this worker leases, so a fleet splits them (Worker shardLeasing)"
  }),
  section({
    path: "worker.shard_leasing.shards_per_worker",
    env: ["BUQUET_SHARD_LEASING_SHARDS_PER_WORKER"],
    kind: int(1, 65_536),
    description: "most shards one worker leases (default: its fair share) (ShardLeasing)"
  }),
  section({
    path: "worker.shard_leasing.lease_ttl_secs",
    env: ["BUQUET_SHARD_LEASING_TTL_SECS"],
    kind: int(2, 3_600),
    default: "30",
    description: "shard lease lifetime without renewal: a crashed worker's shards are re-owned after it (ShardLeasing)"
  }),
  section({
    path: "worker.shard_leasing.renewal_interval_secs",
    env: ["BUQUET_SHARD_LEASING_RENEWAL_SECS"],
    kind: int(1, 3_600),
    default: "10",
    description: "how often shard leases are renewed and the split recomputed; below lease_ttl_secs (ShardLeasing)"
  }),
  // [worker.polling]
  section({
    path: "worker.polling.strategy",
    env: ["BUQUET_POLLING_STRATEGY"],
    flag: "poll-strategy",
    kind: oneOf("adaptive", "fixed"),
    default: "adaptive",
    description: "adaptive: back off from min to max while idle; fixed: every interval_ms (Worker polling)"
  }),
  section({
    path: "worker.polling.min_interval_ms",
    env: ["BUQUET_POLLING_MIN_INTERVAL_MS"],
    flag: "poll-min-ms",
    kind: int(1, 3_600_000),
    default: "100",
    description: "adaptive polling: the first wait after an empty pass (Worker polling)"
  }),
  section({
    path: "worker.polling.max_interval_ms",
    env: ["BUQUET_POLLING_MAX_INTERVAL_MS"],
    flag: "poll-max-ms",
    kind: int(1, 3_600_000),
    default: "5000",
    description: "adaptive polling: the longest wait (Worker polling)"
  }),
  section({
    path: "worker.polling.backoff_multiplier",
    env: ["BUQUET_POLLING_BACKOFF_MULTIPLIER"],
    flag: "poll-multiplier",
    kind: { _tag: "Float", minExclusive: 1, max: 100 },
    default: "2",
    description: "adaptive polling: growth of the wait per empty pass (Worker polling)"
  }),
  section({
    path: "worker.polling.interval_ms",
    env: ["BUQUET_POLLING_INTERVAL_MS"],
    flag: "poll-interval-ms",
    kind: int(1, 3_600_000),
    default: "1000",
    description: "fixed polling: the wait between passes (Worker polling)"
  }),
  // [monitor]: `buquet monitor` and the monitor embedded in workers (cli/options.ts monitorOptions)
  section({
    path: "monitor.check_interval_secs",
    env: ["BUQUET_MONITOR_CHECK_INTERVAL"],
    flag: "check-interval",
    kind: int(1, 86_400),
    default: "30",
    description: "lease-recovery period; also the continuous sweeper's step period (Monitor)"
  }),
  section({
    path: "monitor.sweep_interval_secs",
    env: ["BUQUET_MONITOR_SWEEP_INTERVAL"],
    flag: "sweep-interval",
    kind: int(0, 604_800),
    default: "300",
    description: "time between the starts of two full sweep passes; 0 turns the sweeper off (Monitor)"
  }),
  section({
    path: "monitor.max_tasks_per_scan",
    env: ["BUQUET_MONITOR_MAX_TASKS_PER_SCAN"],
    kind: int(1, 1_000),
    default: "100",
    description: "LIST page size of the leases/ walk (Monitor lease recovery)"
  }),
  section({
    path: "monitor.max_objects_per_sweep",
    env: ["BUQUET_MONITOR_MAX_OBJECTS_PER_SWEEP", "BUQUET_MONITOR_SWEEP_PAGE_SIZE"],
    flag: "sweep-page-size",
    kind: int(1, 1_000),
    default: "1000",
    description: "sweeper LIST page size and task objects per continuous step (Monitor sweeper)"
  }),
  section({
    path: "monitor.sweep_mode",
    env: ["BUQUET_MONITOR_SWEEP_MODE"],
    kind: oneOf("continuous", "on_demand"),
    default: "continuous",
    description: "continuous: a bounded step per check interval; on_demand: a whole pass per sweep interval (Monitor sweeper)"
  }),
  section({
    path: "monitor.worker_health_threshold_secs",
    env: ["BUQUET_MONITOR_WORKER_HEALTH_THRESHOLD"],
    flag: "worker-health-threshold",
    kind: int(1, 86_399),
    default: "180",
    description: "a worker without a heartbeat for this long is reported stale; keep it above 2 × heartbeat_idle_secs (Monitor worker health)"
  }),
  section({
    path: "monitor.quiet_check_interval_secs",
    env: ["BUQUET_MONITOR_QUIET_CHECK_INTERVAL"],
    kind: int(0, 86_400),
    default: "600",
    description: "quiet bucket (nothing running): lease-recovery period, leader lease ttl ×1.5, maintenance ×6; 0 = never quiet (Monitor)"
  }),
  section({
    path: "monitor.retention_days",
    env: ["BUQUET_MONITOR_RETENTION_DAYS"],
    kind: int(1, 36_500),
    description: "opt-in: terminal tasks unchanged for this many days are deleted or archived (Monitor retention)"
  }),
  section({
    path: "monitor.retention_action",
    env: ["BUQUET_MONITOR_RETENTION_ACTION"],
    kind: oneOf("archive", "delete"),
    default: "archive",
    description: "what retention does with old terminal tasks (Monitor retention)"
  }),
  // [dashboard]: `buquet dashboard` (cli/options.ts dashboardOptions)
  section({
    path: "dashboard.host",
    env: ["BUQUET_DASHBOARD_HOST"],
    flag: "host",
    kind: str(),
    default: "127.0.0.1",
    description: "interface the dashboard binds; anything but loopback requires a token (Dashboard)"
  }),
  section({
    path: "dashboard.port",
    env: ["BUQUET_DASHBOARD_PORT"],
    flag: "port",
    kind: int(0, 65_535),
    default: "3000",
    description: "the dashboard's TCP port (0 picks a free one) (Dashboard)"
  }),
  section({
    path: "dashboard.token",
    env: ["BUQUET_DASHBOARD_TOKEN"],
    flag: "token",
    kind: token,
    secret: true,
    description: "access token, at least 16 characters (Dashboard)"
  }),
  section({
    path: "dashboard.refresh_secs",
    env: ["BUQUET_DASHBOARD_REFRESH"],
    flag: "refresh",
    kind: int(1, 3_600),
    default: "5",
    description: "how often an open dashboard re-reads the bucket (Dashboard)"
  }),
  section({
    path: "dashboard.max_streams",
    env: ["BUQUET_DASHBOARD_MAX_STREAMS"],
    flag: "max-streams",
    kind: int(1, 100_000),
    default: "200",
    description: "most concurrent live-update (/events) streams; past it /events answers 503 (Dashboard)"
  })
]


/**
 * Settings of the Rust/Python buquet that have no counterpart here, each with what to do instead.
 * Given anywhere (a TOML key, an environment variable, a flag), they are refused with that pointer
 * rather than ignored, so nobody believes a setting is in force when it is not.
 */
export interface RetiredSetting {
  /** The TOML path (`worker.index_mode` is `[worker] index_mode`), when the reference had one. */
  readonly path?: string | undefined
  readonly env: ReadonlyArray<string>
  /** The reference's flag (without `--`) and the command that took it. */
  readonly flag?: { readonly name: string; readonly command: string } | undefined
  /** Why it is not needed and what to use instead. */
  readonly instead: string
}

/** The reference's settings we refuse (see {@link RetiredSetting}). */
export const retiredSettings: ReadonlyArray<RetiredSetting> = [
  {
    path: "worker.index_mode",
    env: ["BUQUET_INDEX_MODE"],
    flag: { name: "index-mode", command: "worker" },
    instead: "is not needed: workers always claim through the ready index, and the monitor's sweeper re-creates missing " +
      "markers (what the hybrid and log-scan modes were for); remove it"
  },
  {
    env: ["BUQUET_LOG_SCAN_PAGE_SIZE"],
    flag: { name: "log-scan-page-size", command: "worker" },
    instead: "is not needed: there is no log scan (the monitor's sweeper repairs the ready index); remove it, " +
      "and use --ready-page-size / BUQUET_READY_PAGE_SIZE for the LIST page size"
  },
  {
    path: "worker.poll_interval_ms",
    env: ["BUQUET_POLL_INTERVAL_MS"],
    instead: "is not read: for a fixed poll interval use [worker.polling] strategy = \"fixed\" and interval_ms = N " +
      "(BUQUET_POLLING_STRATEGY=fixed, BUQUET_POLLING_INTERVAL_MS=N)"
  }
]

/** The settings by path. */
export const settingsByPath: ReadonlyMap<string, SettingSpec> = new Map(settings.map((s) => [s.path, s]))

/**
 * A URL with the credentials of its userinfo masked: `http://user:secret@host:7480` →
 * `http://user:***@host:7480` (a userinfo without `:` may itself be a token: it becomes `***`).
 */
export const maskUrlCredentials = (url: string): string =>
  url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)@/, (_, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":")
    return `${scheme}${colon === -1 ? "***" : `${userinfo.slice(0, colon)}:***`}@`
  })

/**
 * A text with the credentials of every URL in it masked as {@link maskUrlCredentials} does: for
 * lines that echo what the user typed (an endpoint URL given where a command or a value was
 * expected must not reach a terminal, a log or CI output with its password).
 */
export const maskCredentialsInText = (text: string): string =>
  text.replace(/\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#\s"'`]*@/g, (url) => maskUrlCredentials(url))

/**
 * A setting's value as printed (`config show`, `doctor`): a secret only says that it is set, a URL
 * has its credentials masked ({@link maskUrlCredentials}).
 */
export const shownSetting = (path: string, value: string | undefined): string | undefined => {
  const spec = settingsByPath.get(path)
  if (value === undefined || spec === undefined) return value
  if (spec.secret === true) return "(set)"
  return spec.kind._tag === "Url" ? maskUrlCredentials(value) : value
}

/** The connection settings: the keys of `[default]` and of the top of `[profiles.X]`. */
export const profileKeys: ReadonlyArray<string> = settings.filter((s) => s.inProfile).map((s) => s.path)

/** Sections a config file may have besides `[default]` and `[profiles.*]`, with their keys. */
export const fileSections = (): ReadonlyMap<string, ReadonlyArray<string>> => {
  const sections = new Map<string, Array<string>>()
  for (const s of settings) {
    if (s.inProfile) continue
    const dot = s.path.lastIndexOf(".")
    const section = s.path.slice(0, dot)
    const keys = sections.get(section) ?? []
    keys.push(s.path.slice(dot + 1))
    sections.set(section, keys)
    // ancestors (e.g. [worker] of [worker.polling]) exist even without keys of their own
    for (let i = section.indexOf("."); i > 0; i = section.indexOf(".", i + 1)) {
      if (!sections.has(section.slice(0, i))) sections.set(section.slice(0, i), [])
    }
  }
  return sections
}

/** In words, what a setting allows (used in every error message). */
export const allowedValues = (kind: SettingKind): string => {
  switch (kind._tag) {
    case "String":
      return kind.nonEmpty ? "a non-empty string" : "a string"
    case "Int":
      return `an integer from ${kind.min} to ${kind.max}`
    case "Float":
      return `a number greater than ${kind.minExclusive} and at most ${kind.max}`
    case "Enum":
      return `one of ${kind.values.map((v) => `"${v}"`).join(", ")}`
    case "Bool":
      return "true or false"
    case "Shards":
      return "a list of hex shard names such as [\"0\", \"a\"] (each as long as the shard prefix length)"
    case "Storage":
      return "\"s3://BUCKET\", \"file://DIR\" or \"memory\""
    case "WorkerId":
      return "1–200 letters, digits and _ . : @ - (not starting with . : @ or -, no \"..\")"
    case "Pattern":
      return kind.allowed
    case "Url":
      return "an http:// or https:// URL such as http://127.0.0.1:7480"
  }
}

/** A raw value from TOML (typed) or from a flag / the environment (text). */
export type RawValue = string | number | boolean | ReadonlyArray<unknown> | object

/** The refused value as an error shows it: a secret is never echoed (its length is), a URL's credentials are masked. */
const describeRaw = (spec: SettingSpec, raw: RawValue): string =>
  spec.secret === true
    ? `a value of ${typeof raw === "string" ? `${raw.length} characters` : typeof raw}`
    : typeof raw === "string"
    ? JSON.stringify(spec.kind._tag === "Url" ? maskUrlCredentials(raw) : raw)
    : JSON.stringify(raw) ?? String(raw)

/**
 * Checks one value against its setting and reduces it to the string form every source shares
 * (`ConfigProvider.fromMap` reads strings). `text` says whether the value came as text (flag,
 * environment), where numbers and booleans are spelled out; TOML values must have the right type.
 * Left: what is allowed, to be prefixed with where the value came from.
 */
export const normalizeValue = (spec: SettingSpec, raw: RawValue, text: boolean): Either.Either<string, string> => {
  const bad = () => Either.left(`${describeRaw(spec, raw)} is not allowed: use ${allowedValues(spec.kind)}`)
  const kind = spec.kind
  switch (kind._tag) {
    case "String":
      if (typeof raw !== "string" || (kind.nonEmpty && raw.trim() === "")) return bad()
      return Either.right(raw)
    case "Int": {
      const n = typeof raw === "number" ? raw : text && typeof raw === "string" && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN
      return Number.isInteger(n) && n >= kind.min && n <= kind.max ? Either.right(String(n)) : bad()
    }
    case "Float": {
      const n = typeof raw === "number" ? raw : text && typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN
      return Number.isFinite(n) && n > kind.minExclusive && n <= kind.max ? Either.right(String(n)) : bad()
    }
    case "Enum":
      return typeof raw === "string" && kind.values.includes(raw) ? Either.right(raw) : bad()
    case "Bool":
      if (typeof raw === "boolean") return Either.right(String(raw))
      if (text && typeof raw === "string" && /^(true|false|1|0|yes|no)$/i.test(raw.trim())) {
        return Either.right(String(/^(true|1|yes)$/i.test(raw.trim())))
      }
      return bad()
    case "Shards": {
      const list = Array.isArray(raw)
        ? raw
        : text && typeof raw === "string"
        ? raw.split(",").map((s) => s.trim()).filter((s) => s !== "")
        : undefined
      if (list === undefined || list.length === 0) return bad()
      if (!list.every((s) => typeof s === "string" && /^[0-9a-f]{1,4}$/.test(s))) return bad()
      return Either.right(list.join(","))
    }
    case "Storage":
      return typeof raw === "string" && parseStorage(raw) !== undefined ? Either.right(raw) : bad()
    case "WorkerId":
      return typeof raw === "string" && Schema.is(WorkerId)(raw) ? Either.right(raw) : bad()
    case "Pattern":
      return typeof raw === "string" && kind.pattern.test(raw) ? Either.right(raw) : bad()
    case "Url":
      return typeof raw === "string" && isHttpUrl(raw) ? Either.right(raw) : bad()
  }
}

const isHttpUrl = (text: string): boolean => {
  try {
    const url = new URL(text)
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== ""
  } catch {
    return false
  }
}

/** Where tasks live, as a `storage` setting names it. */
export type StorageTarget =
  | { readonly _tag: "S3"; readonly bucket: string }
  | { readonly _tag: "File"; readonly directory: string }
  | { readonly _tag: "Memory" }

/** Parses `s3://bucket`, `file://dir` or `memory` (also `memory:`); undefined when it is none of them. */
export const parseStorage = (text: string): StorageTarget | undefined => {
  const t = text.trim()
  if (t === "memory" || t === "memory:" || t === "memory://") return { _tag: "Memory" }
  const s3 = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/?$/.exec(t)
  if (s3 !== null) return { _tag: "S3", bucket: s3[1]! }
  const file = /^file:\/\/(.+)$/.exec(t)
  if (file !== null) return { _tag: "File", directory: file[1]! }
  return undefined
}
