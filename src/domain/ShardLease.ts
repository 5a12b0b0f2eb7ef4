/**
 * Shard leases (design.md §5.4 "Shard leasing"): which worker owns which shard, stored at
 * `shard-leases/{shard}.json` in the reference's format (`shard`, `worker_id`, `lease_expires_at`,
 * `updated_at`), plus the pure arithmetic of a fair assignment of shards to live workers.
 *
 * @module
 */
import { DateTime, Schema } from "effect"
import { Timestamp } from "./Task.js"

const field = <S extends Schema.Schema.Any>(schema: S, key: string) =>
  Schema.propertySignature(schema).pipe(Schema.fromKey(key))

/** A shard lease as stored (snake_case JSON, readable by the reference). */
export class ShardLease extends Schema.Class<ShardLease>("ShardLease")({
  shard: Schema.String,
  workerId: field(Schema.String, "worker_id"),
  /** Server time after which (inclusive) anyone may take the shard over. */
  leaseExpiresAt: field(Timestamp, "lease_expires_at"),
  updatedAt: field(Timestamp, "updated_at")
}) {}

/**
 * Whether the lease is free at `now`: `lease_expires_at <= now` (the reference's rule). Pass the
 * server clock's uncertainty as `marginMillis` so that a takeover is never early.
 */
export const isShardLeaseExpired = (lease: ShardLease, now: DateTime.Utc, marginMillis = 0): boolean =>
  DateTime.toEpochMillis(lease.leaseExpiresAt) <= DateTime.toEpochMillis(now) - marginMillis

/** A worker id usable in keys: letters, digits and `_ . : @ -`, 1–200 characters. */
export const isValidWorkerId = (workerId: string): boolean =>
  /^[A-Za-z0-9_.:@-]{1,200}$/.test(workerId) && !workerId.includes("..")

/**
 * The shards `workerId` should own when `members` (every live worker, in any order) share
 * `shards` (in key order): members are sorted, and member k of N gets the contiguous range
 * `[floor(k·S/N), floor((k+1)·S/N))`, so every worker gets ⌊S/N⌋ or ⌈S/N⌉ shards and every shard
 * has exactly one designated owner. `cap` (the `shards_per_worker` setting) keeps only the first
 * `cap` shards of the range (shards beyond the caps stay unowned). Empty if `workerId` is not a member.
 */
export const assignedShards = (
  workerId: string,
  members: ReadonlyArray<string>,
  shards: ReadonlyArray<string>,
  cap = Number.POSITIVE_INFINITY
): ReadonlyArray<string> => {
  const sorted = [...new Set(members)].sort()
  const k = sorted.indexOf(workerId)
  if (k < 0) return []
  const n = sorted.length
  const from = Math.floor((k * shards.length) / n)
  const to = Math.floor(((k + 1) * shards.length) / n)
  return shards.slice(from, Math.min(to, from + Math.max(0, Math.floor(cap))))
}
