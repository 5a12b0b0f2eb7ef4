/**
 * The buquet stacks the benchmarks run on: a backend (RGW, a directory, memory), wrapped in
 * CountingStorage so every request the measured process makes is counted by kind.
 *
 * @module
 */
import { Chunk, Effect, Layer, Stream } from "effect"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import type { RequestCounter, RequestCounts } from "../../src/services/RequestCounter.js"
import * as FileStorage from "../../src/layers/FileStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as S3Storage from "../../src/layers/S3Storage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import type { Queue } from "../../src/services/Queue.js"
import type { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import type { S3Target } from "./env.js"

/** A backend, serialisable so a child process can open the same one. */
export type Backend =
  | { readonly kind: "s3"; readonly target: S3Target; readonly keyPrefix: string }
  | { readonly kind: "file"; readonly dir: string }
  | { readonly kind: "memory" }

export const backendName = (b: Backend): string => (b.kind === "s3" ? "RGW" : b.kind === "file" ? "FileStorage" : "MemoryStorage")

/** `BENCH_S3_TRANSPORT=sdk|lean` compares S3Storage's request paths; unset, the layer's default. */
export const s3Transport = (): "lean" | "sdk" | undefined => {
  const value = process.env["BENCH_S3_TRANSPORT"]
  if (value === undefined || value === "") return undefined
  if (value === "lean" || value === "sdk") return value
  throw new Error(`BENCH_S3_TRANSPORT must be "lean" or "sdk", not ${JSON.stringify(value)}`)
}

/** The raw Storage of a backend (a fresh, empty store for memory). */
export const storageLayer = (backend: Backend, maxSockets = 128): Layer.Layer<Storage> => {
  switch (backend.kind) {
    case "s3":
      return S3Storage.layer({
        bucket: backend.target.bucket,
        endpoint: backend.target.endpoint,
        region: backend.target.region,
        credentials: { accessKeyId: backend.target.accessKeyId, secretAccessKey: backend.target.secretAccessKey },
        keyPrefix: backend.keyPrefix,
        maxSockets,
        transport: s3Transport()
      })
    case "file":
      // the file store only fails to open on a bad directory: a bench bug, so a defect
      return Layer.orDie(FileStorage.layer(backend.dir))
    case "memory":
      return MemoryStorage.layer()
  }
}

/** Storage (counted) + its RequestCounter + ServerClock over `storage`. */
export const countedOn = (storage: Layer.Layer<Storage>): Layer.Layer<Storage | RequestCounter | ServerClock> => {
  const counted = CountingStorage.layer.pipe(Layer.provide(storage))
  return Layer.orDie(ServerClockLayer.layer.pipe(Layer.provideMerge(counted)))
}

/** A producer's stack: Queue on counted storage. */
export const producerOn = (storage: Layer.Layer<Storage>): Layer.Layer<Queue | Storage | RequestCounter | ServerClock> =>
  Layer.orDie(QueueLayer.layer().pipe(Layer.provideMerge(countedOn(storage))))

/** Deletes every object under the store's prefix (RGW's memstore keeps them in RAM). */
export const wipe = Effect.gen(function*() {
  const storage = yield* Storage
  const objects = yield* Stream.runCollect(storage.listAll(""))
  const keys = Chunk.toReadonlyArray(objects).map((o) => o.key)
  for (let i = 0; i < keys.length; i += 1000) yield* storage.deleteMany(keys.slice(i, i + 1000))
  return keys.length
}).pipe(Effect.catchAll((e) => Effect.as(Effect.logWarning(`wipe failed: ${e.message}`), 0)))

export const zeroCounts: RequestCounts = { PUT: 0, GET: 0, HEAD: 0, LIST: 0, "LIST-VERSIONS": 0, DELETE: 0, deletedKeys: 0, total: 0 }

export const addCounts = (a: RequestCounts, b: RequestCounts): RequestCounts => ({
  PUT: a.PUT + b.PUT,
  GET: a.GET + b.GET,
  HEAD: a.HEAD + b.HEAD,
  LIST: a.LIST + b.LIST,
  "LIST-VERSIONS": a["LIST-VERSIONS"] + b["LIST-VERSIONS"],
  DELETE: a.DELETE + b.DELETE,
  deletedKeys: a.deletedKeys + b.deletedKeys,
  total: a.total + b.total
})

/** AWS S3 Standard request prices (USD per 1,000): PUT/COPY/POST/LIST $0.005, GET/HEAD $0.0004, DELETE free. */
export const priceOf = (c: RequestCounts): number =>
  ((c.PUT + c.LIST + c["LIST-VERSIONS"]) * 0.005 + (c.GET + c.HEAD) * 0.0004) / 1000
