/**
 * The Storage port: the only thing in buquet that touches objects (design.md §3). Layers:
 * `S3Storage`, `MemoryStorage`, `FileStorage`, and the wrappers `FaultyStorage` and
 * `CountingStorage`; one conformance suite (`test/storage/`) holds them to S3's semantics.
 *
 * @module
 */
import { Chunk, Context, DateTime, Effect, Option, Stream } from "effect"
import type { Scope } from "effect"
import type { StorageReadError, StorageWriteError } from "../domain/StorageError.js"

/**
 * An object's metadata. ETags are opaque: pass them back exactly as received.
 *
 * @since 0.1.0
 * @category models
 */
export interface ObjectMeta {
  readonly key: string
  readonly etag: string
  readonly size: number
  readonly lastModified: DateTime.Utc
}

/**
 * An object's body with its metadata.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredObject extends ObjectMeta {
  readonly body: Uint8Array
}

/**
 * The precondition of a write: create-only, compare-and-swap on an ETag, or none.
 *
 * @since 0.1.0
 * @category models
 */
export type PutCondition =
  | { readonly ifNoneMatch: "*" }
  | { readonly ifMatch: string }
  | {}

/**
 * Options of one LIST request.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListOptions {
  /** Start listing after this key (exclusive), in bytewise order. */
  readonly startAfter?: string | undefined
  /** The token of the previous page (wins over `startAfter`). */
  readonly continuationToken?: string | undefined
  /** Page size, 1–1000 (default 1000). */
  readonly maxKeys?: number | undefined
  /** Group keys by this delimiter after the prefix (S3 CommonPrefixes), e.g. `"/"`. */
  readonly delimiter?: string | undefined
}

/**
 * One page of a LIST: keys in bytewise order.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListPage {
  readonly objects: ReadonlyArray<ObjectMeta>
  /** With a delimiter: the distinct prefixes up to and including it, in order. */
  readonly commonPrefixes: ReadonlyArray<string>
  /** Present when more keys follow. */
  readonly nextContinuationToken: string | undefined
}

/**
 * One stored version of a key, newest first in listings.
 *
 * @since 0.1.0
 * @category models
 */
export interface ObjectVersion {
  readonly key: string
  readonly versionId: string
  readonly etag: string | undefined
  readonly lastModified: DateTime.Utc
  readonly isLatest: boolean
  readonly isDeleteMarker: boolean
}

/**
 * What the backend can do, as detected (not guessed).
 *
 * @since 0.1.0
 * @category models
 */
export interface StorageCapabilities {
  /** Bucket versioning state. */
  readonly versioning: "enabled" | "suspended" | "off" | "unknown"
  /** Whether `If-None-Match` / `If-Match` on PUT are enforced (false in a versioned RGW bucket). */
  readonly conditionalWrites: boolean
  /** Whether DeleteObject honours `If-Match` (RGW ignores it). */
  readonly conditionalDelete: boolean
  /** How the server wants the ETag in `If-Match`: as returned (quoted) or without quotes (RGW). */
  readonly ifMatchEtag: "quoted" | "unquoted" | "not-applicable"
  /** Whether server time is the local clock (in-process and file stores) or must be learnt from `Date` headers. */
  readonly clock: "local" | "remote"
}

/**
 * A server-time sample from one response: the server's `Date` header (whole seconds) bounds the
 * server time at some local instant in [`sentAtMillis`, `receivedAtMillis`].
 *
 * @since 0.1.0
 * @category models
 */
export interface DateSample {
  readonly sentAtMillis: number
  readonly receivedAtMillis: number
  readonly serverDateMillis: number
}

/**
 * The Storage port: what every storage layer implements.
 *
 * @since 0.1.0
 * @category models
 */
export interface StorageService {
  /** Reads an object: body and metadata, or none if it does not exist. */
  readonly get: (key: string) => Effect.Effect<Option.Option<StoredObject>, StorageReadError>
  /** Reads an object's metadata, or none. */
  readonly head: (key: string) => Effect.Effect<Option.Option<ObjectMeta>, StorageReadError>
  /**
   * Writes an object, optionally under a precondition, and returns its new ETag.
   * A lost precondition fails with `PreconditionFailed`; an ambiguous answer with `OutcomeUnknown`.
   */
  readonly put: (key: string, body: Uint8Array, condition?: PutCondition) => Effect.Effect<string, StorageWriteError>
  /** Deletes an object; deleting a missing key succeeds. */
  readonly delete: (key: string) => Effect.Effect<void, StorageReadError>
  /**
   * Deletes an object only while it still carries this ETag (`DeleteObject` with `If-Match`): a
   * changed or missing object fails with `PreconditionFailed`, an ambiguous answer with
   * `OutcomeUnknown` (re-read and decide). Only where `capabilities.conditionalDelete` is true: a
   * store that would ignore the header (Ceph RGW) refuses with `InvalidResponse` and sends nothing,
   * so it can never turn into an unconditional delete.
   */
  readonly deleteIfMatch: (key: string, etag: string) => Effect.Effect<void, StorageWriteError>
  /** Deletes many objects (missing keys are fine). */
  readonly deleteMany: (keys: ReadonlyArray<string>) => Effect.Effect<void, StorageReadError>
  /** One LIST page under a prefix. */
  readonly list: (prefix: string, options?: ListOptions) => Effect.Effect<ListPage, StorageReadError>
  /** Every object under a prefix, page by page, in key order. */
  readonly listAll: (
    prefix: string,
    options?: Omit<ListOptions, "continuationToken" | "delimiter">
  ) => Stream.Stream<ObjectMeta, StorageReadError>
  /** The stored versions of a key, newest first; empty where the bucket keeps none. */
  readonly listVersions: (key: string) => Effect.Effect<ReadonlyArray<ObjectVersion>, StorageReadError>
  /** Reads one version of a key, or none. */
  readonly getVersion: (key: string, versionId: string) => Effect.Effect<Option.Option<StoredObject>, StorageReadError>
  /** The bucket's versioning state: one request (S3 GetBucketVersioning), cached by the layer. */
  readonly versioning: Effect.Effect<StorageCapabilities["versioning"], StorageReadError>
  /** The backend's capabilities, detected once and cached by the layer (a probe of several writes on S3). */
  readonly capabilities: Effect.Effect<StorageCapabilities, StorageReadError>
  /** Server-time samples from ordinary responses (empty for stores whose clock is the local one). */
  readonly dateSamples: Stream.Stream<DateSample>
  /**
   * The same samples to a listener called synchronously as each response arrives, while the
   * current Scope is open (optional; the ServerClock folds `dateSamples` without it). A Stream
   * wakes its consumer's fiber for every response: ~60 fiber-runtime steps per sample, about
   * 6 samples per task on S3. A listener must not throw.
   */
  readonly onDateSample?: ((listener: (sample: DateSample) => void) => Effect.Effect<void, never, Scope.Scope>) | undefined
}

/**
 * The Storage service: `yield* Storage` gives the port.
 *
 * @since 0.1.0
 * @category tags
 */
export class Storage extends Context.Tag("buquet/Storage")<Storage, StorageService>() {}

/**
 * `listAll` in terms of `list`: follows continuation tokens page by page. Wrappers use it so
 * that each page goes through their own `list` (and is counted / faulted as one request).
 *
 * @since 0.1.0
 * @category utils
 */
export const listAllFromList = <E>(
  list: (prefix: string, options?: ListOptions) => Effect.Effect<ListPage, E>
) =>
(
  prefix: string,
  options?: Omit<ListOptions, "continuationToken" | "delimiter">
): Stream.Stream<ObjectMeta, E> =>
  Stream.paginateChunkEffect(
    undefined as string | undefined,
    (token) =>
      list(prefix, {
        maxKeys: options?.maxKeys,
        ...(token === undefined ? { startAfter: options?.startAfter } : { continuationToken: token })
      }).pipe(
        Effect.map((page): [Chunk.Chunk<ObjectMeta>, Option.Option<string | undefined>] => [
          Chunk.fromIterable(page.objects),
          page.nextContinuationToken === undefined ? Option.none() : Option.some(page.nextContinuationToken)
        ])
      )
  )
