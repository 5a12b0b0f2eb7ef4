/**
 * The public layer constructors (design.md §7): each builds the whole stack a producer, operator
 * or worker needs — `Storage`, `ServerClock`, `Queue`, `Scheduler` and `LeaseManager` — on one
 * backend. This is the composition root: programs declare the services they need in `R`, and
 * these layers provide them.
 *
 * ```ts
 * const program = Effect.gen(function*() {
 *   const queue = yield* Queue
 *   yield* queue.submit("send_email", { to: "a@example.com" })
 * })
 * program.pipe(Effect.provide(Buquet.layer({ bucket: "jobs", endpoint: "http://127.0.0.1:7480" })))
 * ```
 *
 * @module
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Context, Effect, Layer, Redacted } from "effect"
import type { InvalidConfig } from "./domain/ConfigFile.js"
import type { InvalidArgument } from "./domain/QueueError.js"
import type { AccessDenied, StorageReadError, StorageUnavailable, UnusableBucket } from "./domain/StorageError.js"
import { refuseUnusableBucket } from "./protocol/BucketCheck.js"
import * as ConfigLayer from "./layers/Config.js"
import type { ConfigInputs } from "./layers/Config.js"
import * as FileStorage from "./layers/FileStorage.js"
import * as LeaseManagerLayer from "./layers/LeaseManager.js"
import * as MemoryStorage from "./layers/MemoryStorage.js"
import * as MetricsLayer from "./layers/Metrics.js"
import * as QueueLayer from "./layers/Queue.js"
import type { QueueConfigInput } from "./layers/Queue.js"
import * as S3Storage from "./layers/S3Storage.js"
import * as SchedulerLayer from "./layers/Scheduler.js"
import type { S3Credentials } from "./layers/S3Storage.js"
import type { StorageSettings } from "./services/BuquetConfig.js"
import { BuquetConfig } from "./services/BuquetConfig.js"
import type { LeaseManager } from "./services/LeaseManager.js"
import type { Queue } from "./services/Queue.js"
import type { Scheduler } from "./services/Scheduler.js"
import type { ServerClock } from "./services/ServerClock.js"
import { Storage } from "./services/Storage.js"

/**
 * What every `Buquet.layer*` constructor provides.
 *
 * @since 0.1.0
 * @category models
 */
export type BuquetServices = Queue | Scheduler | LeaseManager | ServerClock | Storage

/**
 * Why building the stack can fail: a bad queue setting, a store that cannot be reached, or a bucket that cannot hold a queue.
 *
 * @since 0.1.0
 * @category errors
 */
export type BuquetLayerError = InvalidArgument | StorageReadError | UnusableBucket

/** An S3 Storage that refuses, when it opens, a bucket that cannot hold a queue (see protocol/BucketCheck.ts). */
const checkedS3 = (config: S3Storage.S3StorageConfig): Layer.Layer<Storage, StorageReadError | UnusableBucket> =>
  Layer.tap(S3Storage.layer(config), (context) => refuseUnusableBucket(Context.get(context, Storage), config.bucket))

/**
 * Settings of {@link layer}: an S3 bucket and how to reach it.
 *
 * @since 0.1.0
 * @category models
 */
export interface BuquetS3Options {
  /** The bucket. */
  readonly bucket: string
  /** A custom endpoint (MinIO, Ceph RGW, R2, …); path-style addressing is used with one. */
  readonly endpoint?: string | undefined
  /** The region (default: the SDK's chain; `us-east-1` with an endpoint). */
  readonly region?: string | undefined
  /** Hex characters of the task id that name its shard, 1–4 (default 1 = 16 shards). */
  readonly shardPrefixLen?: number | undefined
  /** Store every key under this prefix, so several queues can share a bucket. */
  readonly keyPrefix?: string | undefined
  /** Static credentials (default: the AWS SDK's chain: environment, profile, instance role, …). */
  readonly credentials?: S3Credentials | undefined
  /** Any further Queue settings (payload threshold, submit defaults, …). */
  readonly queue?: Omit<QueueConfigInput, "shardPrefixLen"> | undefined
}

/**
 * Options of {@link layerMemory} and {@link layerFile}.
 *
 * @since 0.1.0
 * @category models
 */
export interface BuquetLocalOptions {
  /** Hex characters of the task id that name its shard, 1–4 (default 1). */
  readonly shardPrefixLen?: number | undefined
  /** Any further Queue settings. */
  readonly queue?: Omit<QueueConfigInput, "shardPrefixLen"> | undefined
}

/** Queue + ServerClock + Storage on `storage`, with the Scheduler and the LeaseManager on top. */
const stackOn = <E>(storage: Layer.Layer<Storage, E>, config: QueueConfigInput) =>
  Layer.merge(SchedulerLayer.layer(), LeaseManagerLayer.layer).pipe(Layer.provideMerge(QueueLayer.layerOn(storage, config)))

const queueConfig = (options: { readonly shardPrefixLen?: number | undefined; readonly queue?: Omit<QueueConfigInput, "shardPrefixLen"> | undefined }): QueueConfigInput => ({
  ...options.queue,
  ...(options.shardPrefixLen === undefined ? {} : { shardPrefixLen: options.shardPrefixLen })
})

/**
 * What a worker needs besides `Storage` and `ServerClock` — the `LeaseManager` and the `Scheduler`
 * (with a Queue of its own to submit cron firings) — on the Storage and ServerClock in context: for
 * stacks built by hand (tests, embedding) rather than with {@link layer}. A worker on it follows
 * `config` (its shard prefix length above all) when no `Queue` is in context; beside a Queue of the
 * stack's own, give both the same config: a worker whose parts disagree on the shard prefix length
 * is refused (`InvalidWorkerOptions`) rather than left polling shards nobody writes to.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWorkerServices = (
  config: QueueConfigInput = {}
): Layer.Layer<LeaseManager | Scheduler, InvalidArgument, Storage | ServerClock> =>
  Layer.merge(SchedulerLayer.layer().pipe(Layer.provide(QueueLayer.layer(config))), LeaseManagerLayer.layer)

/**
 * The stack on an S3 bucket.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: BuquetS3Options): Layer.Layer<BuquetServices, BuquetLayerError> =>
  stackOn(
    checkedS3({
      bucket: options.bucket,
      endpoint: options.endpoint,
      region: options.region,
      keyPrefix: options.keyPrefix,
      credentials: options.credentials
    }),
    queueConfig(options)
  )

/**
 * The stack in memory, with S3's exact semantics (tests, demos). Each build is a fresh, empty store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (
  options: BuquetLocalOptions & { readonly versioning?: boolean | undefined } = {}
): Layer.Layer<BuquetServices, BuquetLayerError> =>
  stackOn(MemoryStorage.layer({ versioning: options.versioning }), queueConfig(options))

/**
 * The stack on a local directory (the embedded store; safe for several processes on one machine).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (
  directory: string,
  options: BuquetLocalOptions = {}
): Layer.Layer<BuquetServices, BuquetLayerError | StorageUnavailable | AccessDenied> =>
  stackOn(FileStorage.layer(directory), queueConfig(options))

const s3ConfigOf = (storage: Extract<StorageSettings, { readonly _tag: "S3" }>): S3Storage.S3StorageConfig => ({
  bucket: storage.bucket,
  endpoint: storage.endpoint,
  region: storage.region,
  keyPrefix: storage.keyPrefix,
  credentials: storage.credentials === undefined
    ? undefined
    : {
      accessKeyId: storage.credentials.accessKeyId,
      secretAccessKey: Redacted.value(storage.credentials.secretAccessKey),
      sessionToken: storage.credentials.sessionToken === undefined ? undefined : Redacted.value(storage.credentials.sessionToken)
    }
})

/**
 * Only the Storage of resolved settings (tools such as `doctor` that wrap it before use). Unlike
 * the stacks, it does not refuse a bucket that cannot hold a queue: `doctor` reports on it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStorage = (
  storage: StorageSettings
): Layer.Layer<Storage, StorageUnavailable | AccessDenied> => {
  switch (storage._tag) {
    case "S3":
      return S3Storage.layer(s3ConfigOf(storage))
    case "File":
      return FileStorage.layer(storage.directory)
    case "Memory":
      return MemoryStorage.layer()
  }
}

const checkedStorage = (storage: StorageSettings): Layer.Layer<Storage, BuquetLayerError | StorageUnavailable | AccessDenied> =>
  storage._tag === "S3" ? checkedS3(s3ConfigOf(storage)) : layerStorage(storage)

/**
 * The stack on resolved storage settings (what {@link layerFromConfig} and the CLI use). With
 * `meterStorage`, every storage request is counted in `buquet_s3_requests_total` (for a
 * `/metrics` endpoint such as `buquet worker --metrics-port`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromSettings = (
  storage: StorageSettings,
  options: BuquetLocalOptions & { readonly meterStorage?: boolean | undefined } = {}
): Layer.Layer<BuquetServices, BuquetLayerError> =>
  stackOn(
    options.meterStorage === true ? MetricsLayer.layerStorage.pipe(Layer.provide(checkedStorage(storage))) : checkedStorage(storage),
    queueConfig(options)
  )

/**
 * The stack as the configuration says (design.md §7): the environment (`S3_BUCKET`, `S3_ENDPOINT`,
 * `S3_REGION`/`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `BUQUET_*`), the selected
 * profile, `./.buquet.toml` and the user config file; with no bucket anywhere, the embedded file
 * store `./.buquet`. Also provides the resolved {@link BuquetConfig}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromConfig = (
  inputs: ConfigInputs = {}
): Layer.Layer<BuquetServices | BuquetConfig, BuquetLayerError | InvalidConfig> =>
  Layer.unwrapEffect(
    Effect.map(ConfigLayer.resolveConfig(inputs).pipe(Effect.provide(NodeFileSystem.layer)), (config) =>
      Layer.merge(
        layerFromSettings(config.storage, { shardPrefixLen: config.shardPrefixLen, queue: { typeCheck: config.typeCheck } }),
        Layer.succeed(BuquetConfig, config)
      ))
  )
