/**
 * `MemoryStorage`: the {@link Storage} port in memory, with S3's exact semantics (design.md §3):
 * MD5 ETags, `If-None-Match: *` / `If-Match` preconditions (412 → `PreconditionFailed`), bytewise
 * LIST order with prefix, StartAfter, continuation tokens, `maxKeys` and delimiters, idempotent
 * deletes and optional versioning. The default store of unit tests.
 *
 * Every operation runs as one synchronous step, so operations are atomic with respect to each
 * other: fibers interleave only at yield points, and there are none inside a step.
 *
 * Also home of small helpers the other storage layers share: {@link md5ETag} and
 * {@link PageBuilder} (key order is `domain/KeyOrder.ts`, `listAllFromList` is beside the port).
 *
 * @module
 */
import { createHash } from "node:crypto"
import { Clock, DateTime, Effect, Layer, Option, Stream } from "effect"
import { compareKeys } from "../domain/KeyOrder.js"
import { conditionalDeleteUnsupported, PreconditionFailed } from "../domain/StorageError.js"
import type { StorageReadError } from "../domain/StorageError.js"
import { listAllFromList, Storage } from "../services/Storage.js"
import type {
  ListOptions,
  ListPage,
  ObjectMeta,
  ObjectVersion,
  PutCondition,
  StorageCapabilities,
  StorageService,
  StoredObject
} from "../services/Storage.js"

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/**
 * The S3 ETag of a single-part object: the quoted hex MD5 of its body.
 *
 * @since 0.1.0
 * @category utils
 */
export const md5ETag = (body: Uint8Array): string => `"${createHash("md5").update(body).digest("hex")}"`

/**
 * Strips the quotes of an ETag, so quoted and unquoted `If-Match` values compare equal (as on S3).
 *
 * @since 0.1.0
 * @category utils
 */
export const normalizeETag = (etag: string): string => etag.replace(/"/g, "")

/**
 * The maximum page size of a LIST, as on S3.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_KEYS = 1000

/**
 * Clamps a requested page size to 1–1000 (S3 caps larger values at 1000).
 *
 * @since 0.1.0
 * @category utils
 */
export const clampMaxKeys = (maxKeys: number | undefined): number =>
  maxKeys === undefined || !Number.isFinite(maxKeys) ? MAX_KEYS : Math.min(MAX_KEYS, Math.max(1, Math.floor(maxKeys)))

/**
 * Encodes the position after `key` as an opaque continuation token.
 *
 * @since 0.1.0
 * @category codecs
 */
export const encodeContinuationToken = (key: string): string => Buffer.from(key, "utf8").toString("base64url")

/**
 * Decodes a continuation token made by {@link encodeContinuationToken}.
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodeContinuationToken = (token: string): string => Buffer.from(token, "base64url").toString("utf8")

/**
 * The exclusive lower bound of a LIST: the continuation token wins over `startAfter`, as on S3.
 *
 * @since 0.1.0
 * @category utils
 */
export const listStartAfter = (options: ListOptions | undefined): string | undefined =>
  options?.continuationToken !== undefined
    ? decodeContinuationToken(options.continuationToken)
    : options?.startAfter

/**
 * Builds one LIST page from keys offered in bytewise order (all under the prefix and after the
 * start). Implements S3's delimiter grouping: a common prefix counts as one entry towards
 * `maxKeys`, and a page that ends on a common prefix resumes after every key it groups.
 *
 * @internal shared by the storage layers.
 * @since 0.1.0
 * @category models
 */
export class PageBuilder<A> {
  readonly objects: Array<A> = []
  readonly commonPrefixes: Array<string> = []
  private count = 0
  private last: string | undefined = undefined
  private lastCommonPrefix: string | undefined
  /** True once an entry beyond `maxKeys` was seen. */
  truncated = false

  constructor(
    readonly prefix: string,
    readonly startAfter: string | undefined,
    readonly delimiter: string | undefined,
    readonly maxKeys: number
  ) {
    // A token that ends on a common prefix must skip the keys it grouped.
    this.lastCommonPrefix = startAfter
  }

  /** Whether every key starting with `keyPrefix` is already accounted for (skippable). */
  skips(keyPrefix: string): boolean {
    return this.lastCommonPrefix !== undefined && this.delimiter !== undefined &&
      keyPrefix.startsWith(this.lastCommonPrefix) && this.lastCommonPrefix.endsWith(this.delimiter)
  }

  /** Offers the next key; returns false once the page is complete (stop offering). */
  offer(key: string, value: A): boolean {
    if (this.truncated) return false
    if (!key.startsWith(this.prefix)) return true
    if (this.startAfter !== undefined && compareKeys(key, this.startAfter) <= 0) return true
    let commonPrefix: string | undefined
    if (this.delimiter !== undefined && this.delimiter !== "") {
      const at = key.indexOf(this.delimiter, this.prefix.length)
      if (at >= 0) commonPrefix = key.slice(0, at + this.delimiter.length)
    }
    if (commonPrefix !== undefined && commonPrefix === this.lastCommonPrefix) return true
    if (this.count >= this.maxKeys) {
      this.truncated = true
      return false
    }
    this.count++
    if (commonPrefix !== undefined) {
      this.commonPrefixes.push(commonPrefix)
      this.lastCommonPrefix = commonPrefix
      this.last = commonPrefix
    } else {
      this.objects.push(value)
      this.last = key
    }
    return true
  }

  /** The continuation token of the next page, when one follows. */
  get nextContinuationToken(): string | undefined {
    return this.truncated && this.last !== undefined ? encodeContinuationToken(this.last) : undefined
  }
}

/**
 * Reads the condition of a put as a tagged value.
 *
 * @since 0.1.0
 * @category utils
 */
export const conditionOf = (
  condition: PutCondition | undefined
): { readonly _tag: "None" } | { readonly _tag: "IfNoneMatch" } | { readonly _tag: "IfMatch"; readonly etag: string } => {
  if (condition === undefined) return { _tag: "None" }
  if ("ifNoneMatch" in condition) return { _tag: "IfNoneMatch" }
  if ("ifMatch" in condition) return { _tag: "IfMatch", etag: condition.ifMatch }
  return { _tag: "None" }
}

// ---------------------------------------------------------------------------------------------
// MemoryStorage
// ---------------------------------------------------------------------------------------------

/**
 * Options of {@link make} / {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryStorageOptions {
  /** Keep every version of every key (S3 bucket versioning "Enabled"). Default false. */
  readonly versioning?: boolean | undefined
  /**
   * Honour `If-Match` on DELETE (`deleteIfMatch`), as AWS S3 does. Default true; false behaves like
   * Ceph RGW (`capabilities.conditionalDelete` false, `deleteIfMatch` refused), so the fallback
   * paths can be tested in memory.
   */
  readonly conditionalDelete?: boolean | undefined
}

interface Version {
  readonly versionId: string
  /** Undefined for a delete marker. */
  readonly body: Uint8Array | undefined
  readonly etag: string | undefined
  readonly lastModified: DateTime.Utc
}

interface Current {
  readonly body: Uint8Array
  readonly etag: string
  readonly lastModified: DateTime.Utc
  readonly versionId: string | undefined
}

/** Index of the first element of `sorted` that is > `key` (or ≥ when `inclusive`). */
const bisect = (sorted: ReadonlyArray<string>, key: string, inclusive: boolean): number => {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const c = compareKeys(sorted[mid]!, key)
    if (c < 0 || (!inclusive && c === 0)) lo = mid + 1
    else hi = mid
  }
  return lo
}

const metaOf = (key: string, current: Current): ObjectMeta => ({
  key,
  etag: current.etag,
  size: current.body.byteLength,
  lastModified: current.lastModified
})

/**
 * Creates an empty in-memory store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: MemoryStorageOptions): Effect.Effect<StorageService> =>
  Effect.sync(() => {
    const versioning = options?.versioning === true
    const current = new Map<string, Current>()
    // Keys of `current`, kept sorted bytewise so LIST is a binary search plus a scan.
    const sorted: Array<string> = []
    const versions = new Map<string, Array<Version>>() // oldest first
    let nextVersion = 0

    const now = Effect.map(Clock.currentTimeMillis, (millis) => DateTime.unsafeMake(millis))

    const newVersionId = (): string => (nextVersion++).toString(16).padStart(12, "0")

    const setCurrent = (key: string, value: Current): void => {
      if (!current.has(key)) sorted.splice(bisect(sorted, key, true), 0, key)
      current.set(key, value)
    }

    const removeCurrent = (key: string): void => {
      if (!current.delete(key)) return
      const at = bisect(sorted, key, true)
      if (sorted[at] === key) sorted.splice(at, 1)
    }

    const addVersion = (key: string, version: Version): void => {
      const list = versions.get(key)
      if (list === undefined) versions.set(key, [version])
      else list.push(version)
    }

    const deleteNow = (key: string, lastModified: DateTime.Utc): void => {
      if (versioning) {
        // Like S3, a delete in a versioned bucket adds a delete marker (even for a missing key).
        addVersion(key, { versionId: newVersionId(), body: undefined, etag: undefined, lastModified })
      }
      removeCurrent(key)
    }

    const get = Effect.fn("MemoryStorage.get")(function*(key: string) {
      const c = current.get(key)
      return c === undefined
        ? Option.none<StoredObject>()
        : Option.some<StoredObject>({ ...metaOf(key, c), body: c.body.slice() })
    })

    const head = Effect.fn("MemoryStorage.head")(function*(key: string) {
      const c = current.get(key)
      return c === undefined ? Option.none<ObjectMeta>() : Option.some(metaOf(key, c))
    })

    const put = Effect.fn("MemoryStorage.put")(function*(key: string, body: Uint8Array, condition?: PutCondition) {
      const lastModified = yield* now
      const copy = body.slice()
      const etag = md5ETag(copy)
      // From here on no yield: the check and the write are one atomic step.
      const existing = current.get(key)
      const cond = conditionOf(condition)
      if (cond._tag === "IfNoneMatch" && existing !== undefined) {
        return yield* new PreconditionFailed({ key, message: `If-None-Match: * failed: ${key} exists` })
      }
      if (cond._tag === "IfMatch") {
        if (existing === undefined) {
          return yield* new PreconditionFailed({ key, message: `If-Match failed: ${key} does not exist` })
        }
        if (normalizeETag(existing.etag) !== normalizeETag(cond.etag)) {
          return yield* new PreconditionFailed({
            key,
            message: `If-Match failed: ${key} has ETag ${existing.etag}, not ${cond.etag}`
          })
        }
      }
      const versionId = versioning ? newVersionId() : undefined
      if (versionId !== undefined) addVersion(key, { versionId, body: copy, etag, lastModified })
      setCurrent(key, { body: copy, etag, lastModified, versionId })
      return etag
    })

    const del = Effect.fn("MemoryStorage.delete")(function*(key: string) {
      const lastModified = yield* now
      deleteNow(key, lastModified)
    })

    const conditionalDelete = options?.conditionalDelete ?? true

    const deleteIfMatch = Effect.fn("MemoryStorage.deleteIfMatch")(function*(key: string, etag: string) {
      if (!conditionalDelete) return yield* conditionalDeleteUnsupported(key)
      const lastModified = yield* now
      // From here on no yield: the check and the delete are one atomic step.
      const existing = current.get(key)
      if (existing === undefined) {
        return yield* new PreconditionFailed({ key, message: `If-Match failed: ${key} does not exist` })
      }
      if (normalizeETag(existing.etag) !== normalizeETag(etag)) {
        return yield* new PreconditionFailed({ key, message: `If-Match failed: ${key} has ETag ${existing.etag}, not ${etag}` })
      }
      deleteNow(key, lastModified)
    })

    const deleteMany = Effect.fn("MemoryStorage.deleteMany")(function*(keys: ReadonlyArray<string>) {
      const lastModified = yield* now
      for (const key of keys) deleteNow(key, lastModified)
    })

    const list = Effect.fn("MemoryStorage.list")(function*(prefix: string, options?: ListOptions) {
      const startAfter = listStartAfter(options)
      const builder = new PageBuilder<ObjectMeta>(prefix, startAfter, options?.delimiter, clampMaxKeys(options?.maxKeys))
      const from = startAfter !== undefined && compareKeys(startAfter, prefix) > 0
        ? bisect(sorted, startAfter, false)
        : bisect(sorted, prefix, true)
      for (let i = from; i < sorted.length; i++) {
        const key = sorted[i]!
        if (!key.startsWith(prefix)) break
        if (!builder.offer(key, metaOf(key, current.get(key)!))) break
      }
      const page: ListPage = {
        objects: builder.objects,
        commonPrefixes: builder.commonPrefixes,
        nextContinuationToken: builder.nextContinuationToken
      }
      return page
    })

    const listVersions = Effect.fn("MemoryStorage.listVersions")(function*(key: string) {
      const list = versions.get(key) ?? []
      const out: Array<ObjectVersion> = []
      for (let i = list.length - 1; i >= 0; i--) {
        const v = list[i]!
        out.push({
          key,
          versionId: v.versionId,
          etag: v.etag,
          lastModified: v.lastModified,
          isLatest: i === list.length - 1,
          isDeleteMarker: v.body === undefined
        })
      }
      return out as ReadonlyArray<ObjectVersion>
    })

    const getVersion = Effect.fn("MemoryStorage.getVersion")(function*(key: string, versionId: string) {
      const v = versions.get(key)?.find((v) => v.versionId === versionId)
      if (v === undefined || v.body === undefined || v.etag === undefined) return Option.none<StoredObject>()
      return Option.some<StoredObject>({
        key,
        etag: v.etag,
        size: v.body.byteLength,
        lastModified: v.lastModified,
        body: v.body.slice()
      })
    })

    const capabilities: StorageCapabilities = {
      versioning: versioning ? "enabled" : "off",
      conditionalWrites: true,
      conditionalDelete,
      ifMatchEtag: "not-applicable",
      clock: "local"
    }

    const service: StorageService = {
      get,
      head,
      put,
      delete: del,
      deleteIfMatch,
      deleteMany,
      list,
      listAll: listAllFromList<StorageReadError>(list),
      listVersions,
      getVersion,
      capabilities: Effect.succeed(capabilities),
      versioning: Effect.succeed(capabilities.versioning),
      dateSamples: Stream.empty
    }
    return service
  })

/**
 * A fresh in-memory {@link Storage} (one per layer build).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: MemoryStorageOptions): Layer.Layer<Storage> => Layer.effect(Storage, make(options))

/**
 * Namespace-style access: `MemoryStorage.layer()`, `MemoryStorage.make()`.
 *
 * @since 0.1.0
 * @category constants
 */
export const MemoryStorage = { make, layer } as const
