/**
 * The LeaseManager service (design.md §2, §5.4): the lease protocols that keep a fleet honest —
 * recovery of task leases that ran out (the monitor's job), and shard leases (opt-in shard
 * ownership for large fleets). Implemented in `layers/LeaseManager.ts` on Storage and ServerClock.
 *
 * @module
 */
import { Context, DateTime, Duration, Effect, Option } from "effect"
import type { MalformedObject } from "../domain/QueueError.js"
import type { InvalidArgument } from "../domain/QueueError.js"
import type { ShardLease } from "../domain/ShardLease.js"
import type { StorageReadError } from "../domain/StorageError.js"

/** Options of one lease-recovery walk. */
export interface RecoveryOptions {
  /** LIST page size of the walk of `leases/` (the reference's `max_tasks_per_scan`; default 100, max 1000). */
  readonly pageSize?: number | undefined
  /** How many task GETs / recoveries run at once (default 8). */
  readonly concurrency?: number | undefined
  /** Random source for the retry jitter, in [0, 1) (default Effect's Random). */
  readonly random?: Effect.Effect<number> | undefined
  /**
   * When a walk lists at most this many markers whose bucket is still ahead (and lists them all),
   * it reads their tasks too, to count the ones no running task needs any more in
   * `markersIdle` (default 0: future markers are skipped without a GET). The monitor's quiet mode
   * uses it: a finished task's marker, kept until its bucket is over, must not keep the leader busy.
   */
  readonly probeFuture?: number | undefined
}

/** What one walk of `leases/` did. */
export interface RecoveryReport {
  /** Server time the walk started. */
  readonly startedAt: DateTime.Utc
  /** LIST pages read. */
  readonly pages: number
  /** Markers listed (every bucket, future ones included: they are skipped without a GET). */
  readonly markersListed: number
  /** Markers in buckets that have begun to expire (past and current): the only ones whose task is read (but see `probeFuture`). */
  readonly markersChecked: number
  /**
   * Listed markers known to hold no running task: their task was read (a checked marker, or a
   * future one probed with `probeFuture`) and does not need the marker, or it is missing, or the
   * key is not a lease marker. `markersListed − markersIdle` markers may belong to running work.
   */
  readonly markersIdle: number
  /**
   * The earliest server time (epoch ms) at which an idle marker this walk had to keep (its bucket
   * not over yet) may be deleted; undefined when it kept none. The quiet monitor walks again then.
   */
  readonly idleDeletableAtMillis: number | undefined
  /** Running tasks whose lease ran out, put back to pending with backoff. */
  readonly retried: number
  /** … failed because no retries were left. */
  readonly failed: number
  /** … cancelled because cancellation had been requested. */
  readonly cancelled: number
  /** Completed tasks whose follow-ups were not all created (their worker died after completing): created now. */
  readonly followUpsCreated: number
  /** Flows whose work a crashed process left: children created, or a parent told a child ended (domain/Flows.ts). */
  readonly flowsRecovered: number
  /** Stale markers deleted (finished, missing, or moved on). */
  readonly staleDeleted: number
  /** Checked markers whose task still holds a valid lease (current bucket). */
  readonly notYetExpired: number
  /** Task objects that did not decode (left alone, logged). */
  readonly malformed: number
  /** Markers whose task could not be read or recovered (storage errors after retries): left for the next walk. */
  readonly skipped: number
}

/** The outcome of recovering one task. */
export type TaskRecoveryOutcome = "retried" | "failed" | "cancelled" | "not_expired" | "not_running" | "missing"

/** A shard lease this worker holds, with the ETag to renew or release it with. */
export interface HeldShardLease {
  readonly lease: ShardLease
  readonly etag: string
}

/** Why a shard lease could not be taken. */
export type AcquireRefusal =
  /** Another worker holds it and it has not expired. */
  | { readonly _tag: "HeldByOther"; readonly lease: ShardLease }
  /** Someone else won the race for it. */
  | { readonly _tag: "LostRace" }

/** The result of {@link LeaseManagerService.acquireShard}. */
export type AcquireResult =
  | { readonly _tag: "Acquired"; readonly held: HeldShardLease }
  | AcquireRefusal

/** The result of a release: ours marked free, or someone else's left alone. */
export type ReleaseOutcome = "released" | "taken_over" | "gone"

/** A live member of the shard-leasing group (from the LIST of `control/shard-members/`). */
export interface ShardMember {
  readonly workerId: string
  /** Server time its announcement lapses unless renewed. */
  readonly expiresAt: DateTime.Utc
  /** The task types it handles, as announced (undefined: not announced). */
  readonly taskTypes: ReadonlyArray<string> | undefined
}

/** Failures of the shard-lease protocol. */
export type ShardLeaseError = StorageReadError | MalformedObject | InvalidArgument

/** The LeaseManager's interface. */
export interface LeaseManagerService {
  /**
   * One walk of `leases/` covering every shard of every prefix length: markers in future buckets
   * are skipped (and the rest of their shard jumped over) without reading their task; markers in
   * buckets that have begun to expire are checked against their task. A `running` task whose lease
   * has surely ended (by server time minus the clock's uncertainty, so never early) goes back to
   * `pending` with backoff (ready marker written BEFORE the CAS), or to `failed`
   * once its retries are spent (worker fields cleared, a clear `last_error`); stale markers are
   * deleted.
   */
  readonly recoverExpired: (options?: RecoveryOptions) => Effect.Effect<RecoveryReport, StorageReadError>
  /**
   * Recovers one task if (and only if) it is running with a lease that ran out by server time
   * minus the clock's uncertainty.
   * Re-reads the task and CASes; a concurrent change is re-decided, never overwritten.
   */
  readonly recoverTask: (
    taskKey: string,
    options?: { readonly random?: Effect.Effect<number> | undefined }
  ) => Effect.Effect<TaskRecoveryOutcome, StorageReadError | MalformedObject>

  /** Reads a shard lease (none if the shard was never leased). */
  readonly readShardLease: (shard: string) => Effect.Effect<Option.Option<HeldShardLease>, StorageReadError | MalformedObject>
  /**
   * Takes a shard for `workerId` for `ttl`: create-only when there is no lease; `If-Match`
   * takeover of an expired one (by server time minus its uncertainty), or of one already in our
   * name (which refreshes its expiry). Never touches a live lease of another worker.
   */
  readonly acquireShard: (
    shard: string,
    workerId: string,
    ttl: Duration.DurationInput
  ) => Effect.Effect<AcquireResult, ShardLeaseError>
  /** Renews a held lease for `ttl` from now (`If-Match`); none if it was lost (taken over or gone). */
  readonly renewShard: (
    held: HeldShardLease,
    ttl: Duration.DurationInput
  ) => Effect.Effect<Option.Option<HeldShardLease>, StorageReadError>
  /**
   * Releases a held lease with a conditional write (`If-Match` on the ETag we hold) that marks it
   * expired (a minute in the past, so clock uncertainty does not delay the taker), so another
   * worker may take it at once. Never a delete: a lease another worker
   * has taken over in the meantime makes the write fail (412) and stays theirs (`taken_over`).
   */
  readonly releaseShard: (held: HeldShardLease) => Effect.Effect<ReleaseOutcome, StorageReadError>
  /** Announces `workerId` (and the task types it handles) as a live member of the shard-leasing group for `ttl` (one plain PUT). */
  readonly announce: (
    workerId: string,
    ttl: Duration.DurationInput,
    taskTypes?: ReadonlyArray<string>
  ) => Effect.Effect<void, ShardLeaseError>
  /** Withdraws an announcement (graceful stop). */
  readonly withdraw: (workerId: string) => Effect.Effect<void, StorageReadError>
  /** The live members (one LIST: liveness comes from each announcement's Last-Modified + ttl; a GET only for an announcement whose ETag changed). */
  readonly members: (ttl: Duration.DurationInput) => Effect.Effect<ReadonlyArray<ShardMember>, StorageReadError>
}

/** The LeaseManager service: `yield* LeaseManager`. */
export class LeaseManager extends Context.Tag("buquet/LeaseManager")<LeaseManager, LeaseManagerService>() {}
