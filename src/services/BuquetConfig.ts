/**
 * The resolved configuration (design.md §7): what every command and `Buquet.layerFromConfig` runs
 * with, after flags > environment > selected profile > `--config` file > `./.buquet.toml` > user
 * file > defaults. Built by `layers/Config.ts`.
 *
 * @module
 */
import { Context } from "effect"
import type { Redacted } from "effect"
import type { TypeCheck } from "../domain/QueueConfig.js"

/**
 * Where tasks live.
 *
 * @since 0.1.0
 * @category models
 */
export type StorageSettings =
  | {
    readonly _tag: "S3"
    readonly bucket: string
    readonly endpoint: string | undefined
    readonly region: string
    readonly keyPrefix: string
    /**
     * Static credentials from `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`
     * for temporary ones); absent: the SDK's chain.
     */
    readonly credentials: {
      readonly accessKeyId: string
      readonly secretAccessKey: Redacted.Redacted<string>
      readonly sessionToken?: Redacted.Redacted<string> | undefined
    } | undefined
  }
  | {
    readonly _tag: "File"
    readonly directory: string
    /** True when no storage or bucket was configured anywhere and the embedded default is used. */
    readonly implicit: boolean
  }
  | { readonly _tag: "Memory" }

/**
 * Where one setting's value came from.
 *
 * @since 0.1.0
 * @category models
 */
export type SettingSource = "flag" | "environment" | "profile" | "file" | "default"

/**
 * One resolved setting, for `buquet config show`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedSetting {
  readonly path: string
  readonly value: string | undefined
  readonly source: SettingSource
  /** The file, variable or flag that set it. */
  readonly origin: string | undefined
}

/**
 * A config file buquet looked for.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigFileInfo {
  readonly path: string
  readonly role: "user" | "project" | "explicit"
  readonly found: boolean
}

/**
 * `[worker.polling]`: how a worker paces its discovery passes.
 *
 * @since 0.1.0
 * @category models
 */
export interface PollingSettings {
  readonly strategy: "adaptive" | "fixed"
  readonly minIntervalMs: number
  readonly maxIntervalMs: number
  readonly backoffMultiplier: number
  /** The wait of the fixed strategy. */
  readonly intervalMs: number
}

/**
 * `[worker]` (and `[worker.polling]`): what `buquet worker` runs with.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerSettings {
  /** Absent: `worker-<8 hex>`. */
  readonly id: string | undefined
  /** Absent: every shard. */
  readonly shards: ReadonlyArray<string> | undefined
  readonly concurrency: number
  /** Keys per LIST of the ready index (the reference's `--ready-page-size`). */
  readonly readyPageSize: number
  readonly shutdownGraceSecs: number
  readonly heartbeatBusySecs: number
  readonly heartbeatIdleSecs: number
  /** Embed the leader-elected monitor. */
  readonly monitor: boolean
  /** Embed the leader-elected scheduler loop. */
  readonly scheduler: boolean
  readonly polling: PollingSettings
  readonly shardLeasing: ShardLeasingSettings
}

/**
 * `[worker.shard_leasing]`: whether and how the worker leases its shards.
 *
 * @since 0.1.0
 * @category models
 */
export interface ShardLeasingSettings {
  readonly enabled: boolean
  /** Absent: the fair share. */
  readonly shardsPerWorker: number | undefined
  readonly leaseTtlSecs: number
  readonly renewalIntervalSecs: number
}

/**
 * `[monitor]`: the standalone and the embedded monitor.
 *
 * @since 0.1.0
 * @category models
 */
export interface MonitorSettings {
  readonly checkIntervalSecs: number
  /** 0: the sweeper is off. */
  readonly sweepIntervalSecs: number
  readonly maxTasksPerScan: number
  readonly maxObjectsPerSweep: number
  /** A worker without a heartbeat for this long is reported stale. */
  readonly workerHealthThresholdSecs: number
  readonly sweepMode: "continuous" | "on_demand"
  /** The quiet-bucket lease-recovery period; 0: the monitor never goes quiet. */
  readonly quietCheckIntervalSecs: number
  /** Absent: no retention. */
  readonly retentionDays: number | undefined
  readonly retentionAction: "archive" | "delete"
}

/**
 * `[dashboard]`: `buquet dashboard`.
 *
 * @since 0.1.0
 * @category models
 */
export interface DashboardSettings {
  readonly host: string
  readonly port: number
  readonly token: Redacted.Redacted<string> | undefined
  readonly refreshSecs: number
  /** Most concurrent `/events` streams. */
  readonly maxStreams: number
}

/**
 * The resolved configuration.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedConfig {
  readonly storage: StorageSettings
  /** `[queue] shard_prefix_len` → the Queue layer. */
  readonly shardPrefixLen: number
  /** `[queue] type_check` → the Queue layer (submit's check that a worker handles the type). */
  readonly typeCheck: TypeCheck
  /** `[worker]`, `[worker.polling]` → `buquet worker` (see `workerOptions` in cli/options.ts). */
  readonly worker: WorkerSettings
  /** `[monitor]` → `buquet monitor` and the embedded monitor (`monitorOptions`). */
  readonly monitor: MonitorSettings
  /** `[dashboard]` → `buquet dashboard` (`dashboardOptions`). */
  readonly dashboard: DashboardSettings
  /** The selected profile, if any. */
  readonly profile: string | undefined
  /** Every setting with its value and origin. */
  readonly settings: ReadonlyArray<ResolvedSetting>
  /** The config files looked for, lowest priority first. */
  readonly files: ReadonlyArray<ConfigFileInfo>
}

/**
 * The resolved configuration as a service: `yield* BuquetConfig`.
 *
 * @since 0.1.0
 * @category tags
 */
export class BuquetConfig extends Context.Tag("buquet/BuquetConfig")<BuquetConfig, ResolvedConfig>() {}
