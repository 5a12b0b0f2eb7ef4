/**
 * `CountingStorage`: wraps the {@link Storage} in context and counts requests by kind, for cost
 * accounting in benchmarks, `doctor` and the metrics endpoint (design.md §3).
 *
 * What counts as what (one call through the port = the requests S3 would bill for it):
 * - `get`, `getVersion` → GET; `head` → HEAD; `put` → PUT; `delete`, `deleteIfMatch` → DELETE;
 * - `deleteMany(keys)` → one DELETE per batch of up to 1000 keys (S3's DeleteObjects takes 1000
 *   keys per request; an empty list sends nothing), and the keys are added to `deletedKeys`;
 * - `list` → LIST (one per page; `listAll` is counted page by page);
 * - `listVersions` → LIST-VERSIONS, kept apart from LIST (S3 bills both as LIST-class requests:
 *   add them up for cost);
 * - `capabilities` and `dateSamples` are not counted.
 * Calls are counted when they start, whether they succeed or fail (a 412 is billed too). Retries
 * inside the wrapped layer are invisible here: put CountingStorage where the requests you want to
 * count are made.
 *
 * @module
 */
import { Context, Effect, Layer } from "effect"
import type { StorageReadError } from "../domain/StorageError.js"
import { RequestCounter } from "../services/RequestCounter.js"
import type { RequestCounterService, RequestCounts, RequestKind } from "../services/RequestCounter.js"
import { listAllFromList, Storage } from "../services/Storage.js"
import type { ListOptions, PutCondition, StorageService } from "../services/Storage.js"

/** S3's DeleteObjects limit: keys per request. */
const DELETE_BATCH = 1000

/**
 * Wraps `underlying`; returns the counting store and its counter.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  underlying: StorageService
): Effect.Effect<{ readonly storage: StorageService; readonly counter: RequestCounterService }> =>
  Effect.sync(() => {
    const zero = (): Record<RequestKind, number> & { deletedKeys: number } => ({
      PUT: 0,
      GET: 0,
      HEAD: 0,
      LIST: 0,
      "LIST-VERSIONS": 0,
      DELETE: 0,
      deletedKeys: 0
    })
    let counts = zero()
    const read = (): RequestCounts => ({
      ...counts,
      total: counts.PUT + counts.GET + counts.HEAD + counts.LIST + counts["LIST-VERSIONS"] + counts.DELETE
    })
    const snapshot = Effect.sync(read)

    // one suspend per call, the count taken when the call runs: a worker's every request passes
    // here, and a generator per call cost ~0.1 ms of CPU per request (bench/requests.ts, counted)
    const counted = <Args extends ReadonlyArray<unknown>, A, E>(
      kind: RequestKind,
      call: (...args: Args) => Effect.Effect<A, E>
    ) =>
    (...args: Args): Effect.Effect<A, E> =>
      Effect.suspend(() => {
        counts[kind] += 1
        return call(...args)
      })

    const list = counted("LIST", (prefix: string, options?: ListOptions) => underlying.list(prefix, options))

    const storage: StorageService = {
      get: counted("GET", (key: string) => underlying.get(key)),
      head: counted("HEAD", (key: string) => underlying.head(key)),
      put: counted("PUT", (key: string, body: Uint8Array, condition?: PutCondition) => underlying.put(key, body, condition)),
      delete: counted("DELETE", (key: string) => underlying.delete(key)),
      deleteIfMatch: counted("DELETE", (key: string, etag: string) => underlying.deleteIfMatch(key, etag)),
      deleteMany: (keys: ReadonlyArray<string>) =>
        Effect.suspend(() => {
          counts.DELETE += Math.ceil(keys.length / DELETE_BATCH)
          counts.deletedKeys += keys.length
          return underlying.deleteMany(keys)
        }),
      list,
      listAll: listAllFromList<StorageReadError>(list),
      listVersions: counted("LIST-VERSIONS", (key: string) => underlying.listVersions(key)),
      getVersion: counted("GET", (key: string, versionId: string) => underlying.getVersion(key, versionId)),
      capabilities: underlying.capabilities,
      versioning: underlying.versioning,
      dateSamples: underlying.dateSamples,
      onDateSample: underlying.onDateSample
    }

    const counter: RequestCounterService = {
      snapshot,
      reset: Effect.sync(() => {
        counts = zero()
      }),
      take: Effect.sync(() => {
        const taken = read()
        counts = zero()
        return taken
      })
    }
    return { storage, counter }
  })

/**
 * Wraps the {@link Storage} in context with request counting, and provides the
 * {@link RequestCounter}: `CountingStorage.layer.pipe(Layer.provide(MemoryStorage.layer()))`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Storage | RequestCounter, never, Storage> = Layer.effectContext(
  Effect.gen(function*() {
    const underlying = yield* Storage
    const { counter, storage } = yield* make(underlying)
    return Context.make(Storage, storage).pipe(Context.add(RequestCounter, counter))
  })
)

/**
 * Namespace-style access: `CountingStorage.layer`, `CountingStorage.make(storage)`.
 *
 * @since 0.1.0
 * @category constants
 */
export const CountingStorage = { make, layer } as const
