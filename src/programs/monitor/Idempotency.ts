/**
 * The idempotency sweep: deletes submit de-duplication records (`idempotency/{scope}/{sha}.json`)
 * whose `expires_at` has passed. Nothing else ever deletes them, and the scheduler leaves one per
 * firing (`idempotency/schedules/…`: ~86,000 a day for a 1 s schedule), so without this sweep the
 * prefix only grows.
 *
 * Bounded and resumable: each step LISTs one page (≤ `pageSize` keys) after the cursor persisted in
 * `control/sweep/idempotency.json`, so the walk goes on across restarts and leader changes, and
 * wraps to the start once it reaches the end. Per record:
 * - a record this process has already read, with the same ETag and not yet expired, costs nothing
 *   (a bounded in-memory cache keyed by ETag);
 * - otherwise one GET; a record expired by more than `grace` (plus the clock's uncertainty) is
 *   re-checked with a HEAD right before its DELETE and deleted only if its ETag is unchanged. A
 *   record taken over by a new submit in between (CAS on the ETag, Queue.ts) has a new ETag and
 *   is kept: a live record is never deleted on purpose. (S3 has no conditional DELETE; the window
 *   left is the HEAD→DELETE round trip, and `grace` keeps recently expired keys out of it.)
 * Malformed records are left alone (logged): the Queue treats them as free and takes them over.
 *
 * Cost per step: 1 GET (cursor) + 1 LIST + GETs of records not seen before + HEAD and DELETE per
 * expired record + 1 PUT (cursor).
 *
 * @module
 */
import { DateTime, Duration, Effect, Option, Schema } from "effect"
import { decodeObject, encodeObject } from "../../domain/Codec.js"
import { IdempotencyRecord } from "../../domain/Idempotency.js"
import { controlKey } from "../../domain/Keys.js"
import type { MalformedObject } from "../../domain/QueueError.js"
import type { StorageReadError } from "../../domain/StorageError.js"
import { Timestamp } from "../../domain/Task.js"
import * as CountingStorage from "../../layers/CountingStorage.js"
import type { RequestCounts } from "../../services/RequestCounter.js"
import { putPlain } from "../../protocol/TaskObjects.js"
import { ServerClock } from "../../services/ServerClock.js"
import { Storage } from "../../services/Storage.js"
import { field } from "../../domain/SnakeCase.js"

/** Where the sweep's position is kept. */
export const idempotencyCursorKey: string = controlKey("sweep/idempotency.json")

/** The prefix the sweep walks. */
export const idempotencyPrefix = "idempotency/"

/** The persisted position of the idempotency sweep. */
export class IdempotencyCursor extends Schema.Class<IdempotencyCursor>("IdempotencyCursor")({
  /** The last key handled in the current pass (absent: the pass starts from the beginning). */
  after: Schema.optionalWith(Schema.String, { exact: true }),
  passStartedAt: field(Timestamp, "pass_started_at"),
  updatedAt: field(Timestamp, "updated_at"),
  /** Records deleted by every pass so far. */
  deleted: Schema.NonNegativeInt,
  /** Passes finished so far. */
  passes: Schema.NonNegativeInt
}) {}

/** Options of the idempotency sweep. */
export interface IdempotencySweepOptions {
  /** Keys per step (one LIST page; default 1000, max 1000). */
  readonly pageSize?: number | undefined
  /** How long past `expires_at` a record must be before it is deleted (default 1 minute). */
  readonly grace?: Duration.DurationInput | undefined
  /** Record GETs in flight (default 8). */
  readonly concurrency?: number | undefined
  /** Live records remembered by ETag so later passes skip their GET (default 100,000; 0 = off). */
  readonly cacheSize?: number | undefined
}

/** What one step did, with the requests it made. */
export interface IdempotencyStepReport {
  readonly _tag: "Idempotency"
  /** Keys listed in this step. */
  readonly listed: number
  /** Records read (GET). */
  readonly read: number
  /** Expired records deleted. */
  readonly deleted: number
  /** Records still live (or changed under us, e.g. taken over by a new submit). */
  readonly live: number
  /** Records that did not decode (left alone). */
  readonly malformed: number
  /** Whether this step reached the end of `idempotency/` (the next starts a new pass). */
  readonly passFinished: boolean
  readonly requests: RequestCounts
}

/** A short human line for a step's report. */
export const describeIdempotency = (r: IdempotencyStepReport): string =>
  `idempotency sweep: ${r.listed} listed, ${r.read} read, ${r.deleted} expired deleted, ${r.live} live, ` +
  `${r.malformed} malformed${r.passFinished ? " (pass finished)" : ""}; requests LIST ${r.requests.LIST} ` +
  `GET ${r.requests.GET} HEAD ${r.requests.HEAD} DELETE ${r.requests.DELETE} PUT ${r.requests.PUT}`

/** The idempotency sweep of one bucket. */
export interface IdempotencySweep {
  /** Handles the next page of `idempotency/` and saves the cursor. */
  readonly step: Effect.Effect<IdempotencyStepReport, StorageReadError | MalformedObject>
  /** The persisted cursor, if any. */
  readonly cursor: Effect.Effect<Option.Option<IdempotencyCursor>, StorageReadError | MalformedObject>
}

/** Makes the sweep on the Storage and ServerClock in context (it counts its own requests). */
export const make = Effect.fn("IdempotencySweep.make")(function*(options: IdempotencySweepOptions = {}) {
  const underlying = yield* Storage
  const clock = yield* ServerClock
  const { counter, storage } = yield* CountingStorage.make(underlying)
  const pageSize = Math.max(1, Math.min(1000, Math.floor(options.pageSize ?? 1000)))
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 8))
  const graceMillis = Duration.toMillis(Duration.decode(options.grace ?? Duration.minutes(1)))
  const cacheSize = Math.max(0, Math.floor(options.cacheSize ?? 100_000))
  const live = new Map<string, { readonly etag: string; readonly expiresAt: number }>()

  const readCursor = Effect.gen(function*() {
    const found = yield* storage.get(idempotencyCursorKey)
    if (Option.isNone(found)) return Option.none<IdempotencyCursor>()
    return Option.some(yield* decodeObject(IdempotencyCursor, idempotencyCursorKey, found.value.body))
  })

  const remember = (key: string, etag: string, expiresAt: number) => {
    if (cacheSize === 0) return
    live.delete(key)
    if (live.size >= cacheSize) {
      const oldest = live.keys().next()
      if (oldest.done !== true) live.delete(oldest.value)
    }
    live.set(key, { etag, expiresAt })
  }

  const step = Effect.gen(function*() {
    yield* counter.take
    const stored = yield* readCursor.pipe(
      // an unreadable cursor only costs a restart of the walk
      Effect.catchTag("MalformedObject", (e) =>
        Effect.as(Effect.logWarning(`idempotency sweep: starting over: ${e.message}`), Option.none<IdempotencyCursor>()))
    )
    const startedAt = yield* clock.now
    const after = Option.flatMap(stored, (c) => Option.fromNullable(c.after))
    const page = yield* storage.list(idempotencyPrefix, {
      ...(Option.isSome(after) ? { startAfter: after.value } : {}),
      maxKeys: pageSize
    })
    const counts = { read: 0, deleted: 0, live: 0, malformed: 0 }
    const margin = Duration.toMillis((yield* clock.estimate).uncertainty) + graceMillis
    yield* Effect.forEach(page.objects, (meta) =>
      Effect.gen(function*() {
        const now = yield* clock.currentTimeMillis
        const known = live.get(meta.key)
        if (known !== undefined && known.etag === meta.etag && known.expiresAt + margin > now) {
          counts.live++
          return
        }
        const found = yield* storage.get(meta.key)
        counts.read++
        if (Option.isNone(found)) return // deleted since the LIST
        const record = yield* decodeObject(IdempotencyRecord, meta.key, found.value.body).pipe(Effect.option)
        if (Option.isNone(record)) {
          counts.malformed++
          return yield* Effect.logWarning(`idempotency sweep: leaving an unreadable record alone: ${meta.key}`)
        }
        const expiresAt = DateTime.toEpochMillis(record.value.expiresAt)
        if (expiresAt + margin > (yield* clock.currentTimeMillis)) {
          counts.live++
          return remember(meta.key, found.value.etag, expiresAt)
        }
        // Re-read right before the delete: a submit may have taken the expired key over (new ETag).
        const again = yield* storage.head(meta.key)
        if (Option.isNone(again)) return
        if (again.value.etag !== found.value.etag) {
          counts.live++
          return
        }
        yield* storage.delete(meta.key)
        live.delete(meta.key)
        counts.deleted++
      }), { concurrency, discard: true })

    const last = page.objects.at(-1)?.key
    const passFinished = page.nextContinuationToken === undefined
    const base = Option.getOrUndefined(stored)
    const next = new IdempotencyCursor({
      ...(passFinished || last === undefined ? {} : { after: last }),
      passStartedAt: base === undefined || base.after === undefined ? startedAt : base.passStartedAt,
      updatedAt: yield* clock.now,
      deleted: (base?.deleted ?? 0) + counts.deleted,
      passes: (base?.passes ?? 0) + (passFinished ? 1 : 0)
    })
    yield* putPlain(idempotencyCursorKey, encodeObject(IdempotencyCursor, next)).pipe(Effect.provideService(Storage, storage))
    const requests = yield* counter.take
    return { _tag: "Idempotency", listed: page.objects.length, ...counts, passFinished, requests } satisfies IdempotencyStepReport
  }).pipe(Effect.withSpan("IdempotencySweep.step"))

  return { step, cursor: readCursor } satisfies IdempotencySweep
})
