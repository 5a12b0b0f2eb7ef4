/**
 * Helpers for the suites that run against a real S3 server (Ceph RGW started by the global
 * set-up, or whatever `S3_ENDPOINT` names).
 *
 * ```ts
 * describeS3("S3Storage on RGW", () => {
 *   storageConformance("S3Storage", s3Layer(), { realServer: true })
 * })
 * ```
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { afterAll } from "vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import { inject } from "vitest"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as S3Storage from "../../src/layers/S3Storage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { type S3Availability, type S3Settings, settingsFromEnv } from "./s3env.js"

export type { S3Availability, S3Settings } from "./s3env.js"

// the SDK warns in every worker that Node 20 support ends; it is noise in test output
process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] = "true"

/** Whether a real S3 server is available to this test file (from the global set-up, else the env). */
export const s3Availability = (): S3Availability => {
  const provided = inject("s3") as S3Availability | undefined
  if (provided !== undefined) return provided
  const settings = settingsFromEnv(process.env)
  return settings === undefined
    ? { available: false, reason: "S3_ENDPOINT is not set and the global set-up did not start a server" }
    : { available: true, settings }
}

/** The real server's settings, or undefined when there is none. */
export const s3Settings = (): S3Settings | undefined => {
  const a = s3Availability()
  return a.available ? a.settings : undefined
}

/** Options of {@link s3Config} and {@link s3Layer}: any S3Storage setting, plus which bucket. */
export interface S3TestOptions extends Partial<S3Storage.S3StorageConfig> {
  /** Use the versioned bucket instead of the queue's unversioned one. */
  readonly versioned?: boolean
}

/** An S3Storage configuration for the real server, under a fresh random `keyPrefix`. */
export const s3Config = (options: S3TestOptions = {}): S3Storage.S3StorageConfig => {
  const settings = s3Settings()
  if (settings === undefined) throw new Error("s3Config: no real S3 server (use it inside describeS3)")
  const { versioned, ...overrides } = options
  const bucket = versioned === true ? settings.bucketVersioned : settings.bucket
  if (bucket === undefined) throw new Error("s3Config: this server has no versioned bucket (S3_BUCKET_VERSIONED)")
  return {
    bucket,
    endpoint: settings.endpoint,
    region: settings.region,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    keyPrefix: `test/${randomUUID()}/`,
    maxSockets: 16,
    ...overrides
  }
}

/**
 * An S3Storage layer on the real server under a fresh random `keyPrefix`. When the layer is
 * released, the objects left under that prefix are deleted (RGW keeps them in RAM).
 */
export const s3Layer = (options: S3TestOptions = {}): Layer.Layer<Storage> => s3StorageLayer(s3Config(options))

/** An S3Storage layer on `config` (e.g. one {@link s3Config} shared with spawned processes); the objects under its prefix are deleted on release. */
export const s3StorageLayer = (config: S3Storage.S3StorageConfig): Layer.Layer<Storage> =>
  Layer.scoped(
    Storage,
    Effect.gen(function*() {
      const storage = yield* S3Storage.make(config)
      yield* Effect.addFinalizer(() => deleteAllUnder(storage))
      return storage
    })
  )

/** {@link s3StorageLayer} with the server clock and a Queue (`queueOptions`) on top: what a test beside spawned workers uses. */
export const s3QueueLayer = (config: S3Storage.S3StorageConfig, queueOptions?: QueueLayer.QueueConfigInput) =>
  Layer.provideMerge(QueueLayer.layer(queueOptions), Layer.provideMerge(ServerClockLayer.layer, s3StorageLayer(config)))

/** Deletes every object the storage sees (under its key prefix); failures are ignored. */
const deleteAllUnder = (storage: Storage["Type"]): Effect.Effect<void> =>
  Stream.runCollect(storage.listAll("")).pipe(
    Effect.flatMap((objects) => storage.deleteMany(Chunk.toReadonlyArray(objects).map((o) => o.key))),
    Effect.ignore
  )

/**
 * Deletes every object under `keyPrefix` of `bucket` (the clean-up of suites whose spawned CLIs
 * wrote there; RGW keeps them in RAM). Failures are ignored.
 */
export const emptyKeyPrefix = (settings: S3Settings, bucket: string, keyPrefix: string): Promise<void> =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(
    S3Storage.make({
      bucket,
      endpoint: settings.endpoint,
      region: settings.region,
      credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
      keyPrefix
    }),
    deleteAllUnder
  )).pipe(Effect.ignore))

const inCI = (): boolean => process.env["CI"] === "true" || process.env["CI"] === "1"

/**
 * A `describe` block that needs the real S3 server: it runs when the server is available, is
 * skipped otherwise, and in CI (`CI=true`) a missing server is a failing test, not a skip.
 */
export const describeS3 = (name: string, fn: (settings: S3Settings) => void): void => {
  const availability = s3Availability()
  if (availability.available) {
    describe(name, () => fn(availability.settings))
  } else if (inCI()) {
    describe(name, () => {
      it("has a real S3 server (required in CI)", () => {
        expect.fail(`no real S3 server in CI: ${availability.reason}`)
      })
    })
  } else {
    describe.skip(`${name} (no real S3 server: ${availability.reason})`, () => {
      it("needs a real S3 server", () => {})
    })
  }
}

/**
 * Fresh key prefixes for a file whose spawned CLIs or connections write on the real server: call
 * once at the file's top level; each prefix the returned function hands out (in `bucket`, default
 * the queue's) is emptied once the file's tests are done.
 */
export const prefixesEmptiedAfterAll = (): (settings: S3Settings, bucket?: string) => string => {
  const written: Array<{ readonly settings: S3Settings; readonly bucket: string; readonly keyPrefix: string }> = []
  afterAll(async () => {
    for (const { bucket, keyPrefix, settings } of written.splice(0)) await emptyKeyPrefix(settings, bucket, keyPrefix)
  }, 120_000)
  return (settings, bucket = settings.bucket) => {
    const keyPrefix = `test/${randomUUID()}/`
    written.push({ settings, bucket, keyPrefix })
    return keyPrefix
  }
}

/** The storage options of `connect()` / `Buquet.layer` for `keyPrefix` of `bucket` (default the queue's) on the server. */
export const connectOptions = (s: S3Settings, keyPrefix: string, bucket: string = s.bucket) => ({
  bucket,
  endpoint: s.endpoint,
  region: s.region,
  credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
  keyPrefix
})

/** The environment a spawned `buquet` reads for `keyPrefix` of `bucket` (default the queue's) on the server. */
export const cliEnv = (s: S3Settings, keyPrefix: string, bucket: string = s.bucket): Record<string, string> => ({
  S3_ENDPOINT: s.endpoint,
  S3_BUCKET: bucket,
  AWS_REGION: s.region,
  AWS_ACCESS_KEY_ID: s.accessKeyId,
  AWS_SECRET_ACCESS_KEY: s.secretAccessKey,
  BUQUET_KEY_PREFIX: keyPrefix
})
