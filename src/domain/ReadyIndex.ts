/**
 * The ready index with priorities: which marker key makes a pending task claimable, and how a
 * scan of `ready/{shard}/` reads it.
 *
 * Why this layout. A worker does ONE LIST of `ready/{shard}/` per shard per poll, in key order, so
 * priority must be visible in key order. Default-priority (0) markers stay exactly the reference's
 * `ready/{shard}/{bucket}/{id}` (bucket = 10 digits), so a mixed fleet with the Rust/Python buquet
 * keeps working. A task with priority p > 0 gets `ready/{shard}/!{rank}/{bucket}/{id}` with
 * rank = 9999 − p (4 digits): `!` (0x21) sorts before every digit, so all prioritised markers come
 * before the time-ordered default markers, highest priority first, and oldest-due first within a
 * priority. Within one rank the buckets ascend, so the first not-yet-due marker of a rank means the
 * rest of that rank is future too: the scan jumps to the next rank with `startAfter`
 * ({@link scanReadyKey}), and future high-priority tasks never starve due ones behind them.
 * The reference's tools do not parse `!` markers; their sweeper drops them and rebuilds a plain
 * marker, which only loses the priority, never the task. Negative priorities are not offered:
 * they would have to sort after every future default marker, beyond the one LIST.
 *
 * @module
 */
import { DateTime } from "effect"
import { leaseKey, parseIndexKey, readyKey, readyShardPrefix } from "./Keys.js"
import { bucketOf, formatBucket } from "./Shard.js"
import type { Task } from "./Task.js"

/** The lowest priority (the default: a plain reference marker). */
export const minPriority = 0

/** The highest priority. */
export const maxPriority = 9999

/** The key segment that starts the priority region of a shard's ready index. */
export const priorityMarker = "!"

const rankOf = (priority: number): string => String(maxPriority - priority).padStart(4, "0")

/** Whether `priority` is an allowed priority: an integer from 0 (default) to 9999 (most urgent). */
export const isValidPriority = (priority: number): boolean =>
  Number.isInteger(priority) && priority >= minPriority && priority <= maxPriority

/**
 * The ready marker key for a task with this id, shard, priority and availability. Priority 0
 * (or none) gives the reference's `ready/{shard}/{bucket}/{id}`.
 */
export const readyMarkerKeyFor = (
  shard: string,
  taskId: string,
  availableAt: DateTime.Utc,
  priority: number | undefined
): string => {
  const bucket = bucketOf(DateTime.toEpochMillis(availableAt))
  return priority === undefined || priority <= 0
    ? readyKey(shard, bucket, taskId)
    : `${readyShardPrefix(shard)}${priorityMarker}${rankOf(Math.min(priority, maxPriority))}/${formatBucket(bucket)}/${taskId}`
}

/** The ready marker key of a pending task (from its shard, priority and `available_at`). */
export const readyMarkerKey = (task: Task): string =>
  readyMarkerKeyFor(task.shard, task.id, task.availableAt, task.priority)

/** The lease marker key of a running task (`leases/{shard}/{bucket(lease_expires_at)}/{id}`), if it holds a lease. */
export const leaseMarkerKey = (task: Task): string | undefined =>
  task.leaseExpiresAt === null ? undefined : leaseKey(task.shard, bucketOf(DateTime.toEpochMillis(task.leaseExpiresAt)), task.id)

/** A due entry of the ready index. */
export interface ReadyEntry {
  readonly key: string
  readonly shard: string
  readonly taskId: string
  readonly bucket: number
  readonly priority: number
}

/** What a scanner does with one key of `ready/{shard}/`, listed in key order. */
export type ReadyScanStep =
  /** The task is due: try to claim it. */
  | { readonly _tag: "Due"; readonly entry: ReadyEntry }
  /** A future prioritised marker: the rest of its rank is future too; continue after `startAfter`. */
  | { readonly _tag: "SkipRank"; readonly startAfter: string }
  /** The first future default marker: everything after it is future; stop this shard. */
  | { readonly _tag: "Stop" }
  /** Not a marker we understand (a stale or foreign key): skip it (the sweeper removes it). */
  | { readonly _tag: "Invalid" }

/** Classifies one listed ready key against the current bucket (`bucketOf(server now)`). */
export const scanReadyKey = (key: string, nowBucket: number): ReadyScanStep => {
  const parsed = parseIndexKey(key)
  if (parsed === undefined || parsed.kind !== "ready") return { _tag: "Invalid" }
  if (parsed.bucket <= nowBucket) {
    return {
      _tag: "Due",
      entry: { key, shard: parsed.shard, taskId: parsed.taskId, bucket: parsed.bucket, priority: parsed.priority }
    }
  }
  if (parsed.priority > 0) {
    // "~" sorts after every bucket digit, so this skips the rest of the rank.
    return { _tag: "SkipRank", startAfter: `${readyShardPrefix(parsed.shard)}${priorityMarker}${rankOf(parsed.priority)}/~` }
  }
  return { _tag: "Stop" }
}
