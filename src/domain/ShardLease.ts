/**
 * Shard leases (design.md §5.4 "Shard leasing"): which worker owns which shard, stored at
 * `shard-leases/{shard}.json` in the reference's format (`shard`, `worker_id`, `lease_expires_at`,
 * `updated_at`), plus the pure arithmetic of a fair assignment of shards to live workers.
 *
 * @module
 */
import { DateTime, Schema } from "effect"
import { WorkerId } from "./Names.js"
import { Timestamp } from "./Task.js"
import { field } from "./SnakeCase.js"

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

/** A worker id usable in keys: the rule of domain/Names.ts (`WorkerId`). */
export const isValidWorkerId: (workerId: string) => boolean = Schema.is(WorkerId)

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

/** A live member as the split sees it: its id and the task types it handles (undefined: not announced). */
export interface ShardGroupMember {
  readonly workerId: string
  readonly taskTypes: ReadonlyArray<string> | undefined
}

/**
 * The designated owner of every shard under {@link assignedShards} (shards beyond the caps are absent).
 *
 * @since 0.1.0
 * @category shard leasing
 */
export const designatedOwners = (
  members: ReadonlyArray<string>,
  shards: ReadonlyArray<string>,
  cap = Number.POSITIVE_INFINITY
): ReadonlyMap<string, string> => {
  const sorted = [...new Set(members)].sort()
  const owners = new Map<string, string>()
  for (const id of sorted) for (const s of assignedShards(id, sorted, shards, cap)) owners.set(s, id)
  return owners
}

/**
 * The shards `workerId` polls besides the ones it leases, so that no task is stranded: for each
 * task type it handles, the shards whose designated owner does not handle that type (or that have
 * no owner: the `shards_per_worker` caps are too small) are split, by the same contiguous rule,
 * among the members that do handle it. Polling is not exclusive (claims are CAS), so these need no
 * lease. A member that has not announced its types counts as handling none of them (its shards are
 * covered by the others rather than risk stranding a type). Sorted; excludes the worker's own shards.
 *
 * @since 0.1.0
 * @category shard leasing
 */
export const extraShards = (
  workerId: string,
  members: ReadonlyArray<ShardGroupMember>,
  shards: ReadonlyArray<string>,
  cap = Number.POSITIVE_INFINITY
): ReadonlyArray<string> => {
  const typesOf = new Map(members.map((m) => [m.workerId, new Set(m.taskTypes ?? [])]))
  const mine = typesOf.get(workerId)
  if (mine === undefined) return []
  const ids = [...typesOf.keys()].sort()
  const owners = designatedOwners(ids, shards, cap)
  const extra = new Set<string>()
  for (const type of mine) {
    const uncovered = shards.filter((s) => {
      const owner = owners.get(s)
      return owner === undefined || !typesOf.get(owner)!.has(type)
    })
    if (uncovered.length === 0) continue
    const handlers = ids.filter((id) => typesOf.get(id)!.has(type))
    for (const s of assignedShards(workerId, handlers, uncovered)) extra.add(s)
  }
  return [...extra].filter((s) => owners.get(s) !== workerId).sort()
}
