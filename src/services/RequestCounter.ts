/**
 * The request counter: reads and resets the counts of a storage that counts its requests by kind
 * (`CountingStorage` provides it), for cost accounting in benchmarks, `doctor` and the metrics
 * endpoint (design.md §3).
 *
 * @module
 */
import type { Effect } from "effect"
import { Context } from "effect"

/**
 * The kinds of request counted.
 *
 * @since 0.1.0
 * @category models
 */
export type RequestKind = "PUT" | "GET" | "HEAD" | "LIST" | "LIST-VERSIONS" | "DELETE"

/**
 * A snapshot of the counts.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestCounts {
  readonly PUT: number
  readonly GET: number
  readonly HEAD: number
  readonly LIST: number
  readonly "LIST-VERSIONS": number
  readonly DELETE: number
  /** Keys passed to `deleteMany` (each batch of up to 1000 counts as one DELETE request). */
  readonly deletedKeys: number
  /** All requests (the sum of the kinds). */
  readonly total: number
}

/**
 * Reads and resets the request counts of a {@link CountingStorage}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestCounterService {
  /** The counts since the last reset. */
  readonly snapshot: Effect.Effect<RequestCounts>
  /** Sets every count to zero. */
  readonly reset: Effect.Effect<void>
  /** The counts since the last reset, and resets them, in one step (for periodic reporting). */
  readonly take: Effect.Effect<RequestCounts>
}

/**
 * The request counter provided by `CountingStorage.layer`.
 *
 * @since 0.1.0
 * @category tags
 */
export class RequestCounter extends Context.Tag("buquet/RequestCounter")<RequestCounter, RequestCounterService>() {}
