/**
 * A request trace for diagnosis (bench/timeline.ts): wraps a Storage and records every call with
 * its local start and end time (ms), its kind, its key (or prefix) and how it ended. Bench-only:
 * the measured rows never run it (it costs an allocation per request).
 *
 * @module
 */
import { Effect, Layer } from "effect"
import { listAllFromList, Storage } from "../../src/services/Storage.js"
import type { ListOptions, PutCondition, StorageService } from "../../src/services/Storage.js"

export interface TracedRequest {
  readonly op: string
  readonly key: string
  readonly start: number
  end: number
  /** "ok", or the error's tag. */
  outcome: string
}

export const traced = (underlying: StorageService, into: Array<TracedRequest>): StorageService => {
  const record = <A, E extends { readonly _tag: string }, R>(op: string, key: string, effect: Effect.Effect<A, E, R>) =>
    Effect.suspend(() => {
      const entry: TracedRequest = { op, key, start: performance.timeOrigin + performance.now(), end: 0, outcome: "ok" }
      into.push(entry)
      return effect.pipe(
        Effect.tapBoth({
          onFailure: (e) => Effect.sync(() => void (entry.outcome = e._tag)),
          onSuccess: () => Effect.void
        }),
        Effect.ensuring(Effect.sync(() => void (entry.end = performance.timeOrigin + performance.now())))
      )
    })
  const list = (prefix: string, options?: ListOptions) => record("LIST", prefix, underlying.list(prefix, options))
  return {
    get: (key) => record("GET", key, underlying.get(key)),
    head: (key) => record("HEAD", key, underlying.head(key)),
    put: (key: string, body: Uint8Array, condition?: PutCondition) =>
      record(condition === undefined ? "PUT" : "PUT?", key, underlying.put(key, body, condition)),
    delete: (key) => record("DELETE", key, underlying.delete(key)),
    deleteIfMatch: (key, etag) => record("DELETE?", key, underlying.deleteIfMatch(key, etag)),
    deleteMany: (keys) => record("DELETE*", keys[0] ?? "", underlying.deleteMany(keys)),
    list,
    listAll: listAllFromList(list),
    listVersions: (key) => record("LIST-VERSIONS", key, underlying.listVersions(key)),
    getVersion: (key, versionId) => record("GET", key, underlying.getVersion(key, versionId)),
    capabilities: underlying.capabilities,
    versioning: underlying.versioning,
    dateSamples: underlying.dateSamples,
    onDateSample: underlying.onDateSample
  }
}

/** The Storage in context, traced into `into`. */
export const tracedLayer = (storage: Layer.Layer<Storage>, into: Array<TracedRequest>): Layer.Layer<Storage> =>
  Layer.effect(Storage, Effect.map(Storage, (s) => traced(s, into))).pipe(Layer.provide(storage))
