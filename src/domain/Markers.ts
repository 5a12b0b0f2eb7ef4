/**
 * Which index markers a task needs, and when a marker may be deleted — the rules the lease
 * recovery and the sweeper share. Pure functions.
 *
 * The deletion rule avoids the reference's sweeper race (a marker re-created for a new attempt
 * between the sweeper's read and its delete is lost). Every protocol that writes a marker writes
 * it for a bucket at or after the bucket of its own write time (claim: `now + timeout`; retry,
 * reschedule: `now + delay`; replay, release: `now`). So a marker whose bucket ended (plus a
 * clock margin) before we read its task can never be written again by anyone; if the task as
 * read does not need it, it is stale for good and deleting it is safe, whatever the task does
 * next — provided that no transition written before the read still lands after it. One that does
 * (a writer stalled between its marker and its CAS past the bucket's end) moves its task to a
 * fresh marker once the CAS landed (protocol/NewTask.ts: a late submit, a worker's late settle). A marker in the current (or a future) bucket is only deleted when its task does not exist
 * (and only once it is older than a grace period: a submit writes the ready marker before the
 * task, and a task submitted after the sweeper's LIST may already be claimed). Anything else waits for its bucket to pass.
 *
 * A ready marker whose task does not exist may still be a submit's that has not created its task
 * yet (the producer stalled between the two writes: GC, a VM pause, a slow request). It is deleted
 * only once no submit can still create its task with it: its bucket has been over for longer than
 * {@link submitWindowMillis} (every submit builds its task, so its marker's bucket, before it
 * writes it, and creates it within that window — or, later, moves the task to a fresh marker
 * itself), and the marker is older than the grace period.
 *
 * @module
 */
import { DateTime } from "effect"
import { flowRecoverAt, isWaitingParent } from "./Flows.js"
import { unmaterialized } from "./FollowUps.js"
import { leaseKey, parseIndexKey } from "./Keys.js"
import { readyMarkerKey, readyMarkerKeyFor } from "./ReadyIndex.js"
import { bucketOf, bucketSeconds, bucketStartMillis } from "./Shard.js"
import type { Task } from "./Task.js"

/** Clock margin for "this bucket is surely over" (server-time estimates of writers may differ by this much). */
export const bucketMarginMillis = 5_000

/** How old a ready marker of a missing task must be before it counts as an orphan (a submit may be in flight). */
export const orphanGraceMillis = 120_000

/**
 * How long after building its task a submit's create may land as it is. A create that lands later
 * (and after its marker's bucket is over) may find its marker deleted as an orphan, so that submit
 * moves the task to a fresh ready marker (see `Queue`).
 */
export const submitWindowMillis = 10_000

/** The lease marker key of a task with a lease (from its `lease_expires_at`). */
export const leaseMarkerOf = (task: Task): string | undefined =>
  task.leaseExpiresAt === null
    ? undefined
    : leaseKey(task.shard, bucketOf(DateTime.toEpochMillis(task.leaseExpiresAt)), task.id)

/**
 * The one marker a task needs: its ready marker when pending, its lease marker when running, the
 * lease marker of its last attempt when it completed with follow-ups not yet created (so lease
 * recovery finds it: domain/FollowUps.ts), else none.
 */
export const neededMarker = (task: Task): string | undefined => {
  if (task.status === "running") return leaseMarkerOf(task)
  // A flow's parent waiting for its children has no ready marker; while its children are not all
  // created, and a flow's child until its parent knows it ended, a lease-bucket marker at the
  // instant recovery may step in (domain/Flows.ts).
  const flowAt = flowRecoverAt(task)
  if (flowAt !== undefined && task.status !== "pending") {
    // ended: the follow-ups' marker and this one are both the ending lease's (one key)
    const outbox = unmaterialized(task)
    return leaseKey(task.shard, bucketOf(DateTime.toEpochMillis(outbox?.recoverAt ?? flowAt)), task.id)
  }
  if (flowAt !== undefined) return leaseKey(task.shard, bucketOf(DateTime.toEpochMillis(flowAt)), task.id)
  if (task.status === "pending") return isWaitingParent(task) ? undefined : readyMarkerKey(task)
  const outbox = unmaterialized(task)
  return outbox === undefined ? undefined : leaseKey(task.shard, bucketOf(DateTime.toEpochMillis(outbox.recoverAt)), task.id)
}

/** The first instant after a bucket (epoch ms). */
export const bucketEndMillis = (bucket: number): number => bucketStartMillis(bucket) + bucketSeconds * 1000

/** Whether nobody can write a marker in `bucket` any more, judged at `atMillis` (server time). */
export const isBucketClosed = (bucket: number, atMillis: number): boolean =>
  bucketEndMillis(bucket) + bucketMarginMillis <= atMillis

/**
 * Of the markers a transition no longer needs, those it may delete right away, judged at
 * `atMillis` (server time, no later than the transition's CAS landed): only markers in closed
 * buckets. A marker in an open bucket may be written again at the same key by a newer claim or a
 * replay in the same minute, and a late DELETE would remove that one; lease recovery and the
 * sweeper delete it once its bucket has closed.
 */
export const closedMarkers = (keys: ReadonlyArray<string>, atMillis: number): ReadonlyArray<string> =>
  keys.filter((key) => {
    const parsed = parseIndexKey(key)
    return parsed !== undefined && isBucketClosed(parsed.bucket, atMillis)
  })

/**
 * When a task made pending again by a replay at `now` becomes due. Within one minute bucket a
 * task's ready marker has one key, and a cancel or an expiry of a pending task, or the claim of a
 * task that then failed, deletes that version's marker after its CAS: a DELETE that lands late (S3
 * retries, a paused process) would remove a replay's marker written at the same key, leaving a
 * pending task no worker finds. So a replay whose marker would have that key is due at the start
 * of the next bucket instead (at most a minute later, only in the minute the task was last due);
 * otherwise it is due at `now`. A failed task too: lease recovery fails a task whose claimer may be
 * paused inside its DELETE, and if it dies before its re-write (Claim's `rewriteIfLate`) nothing
 * else brings the marker back.
 *
 * @since 0.1.0
 * @category rules
 */
export const replayDueAt = (task: Task, now: DateTime.Utc): DateTime.Utc => {
  const nowMillis = DateTime.toEpochMillis(now)
  return readyMarkerKeyFor(task.shard, task.id, now, task.priority) === readyMarkerKey(task)
    ? DateTime.unsafeMake(bucketEndMillis(bucketOf(nowMillis)))
    : now
}

/**
 * When a task that lease recovery retries at `now` becomes due at the earliest. After its CAS a
 * claim deletes the task's ready markers, all in buckets up to the one it claimed in; a DELETE that
 * lands late (S3 retries, a paused process) — after the lease ran out and recovery wrote the
 * retried task's marker at the same key — would remove it, and if the claimer died before writing
 * it again (Claim's `rewriteIfLate`) the pending task had no marker until a sweep. So the retried
 * task is due no earlier than the end of the bucket of the running task's last change (at or
 * after its claim): its marker's key is never one the claim deletes. At most a minute later, and
 * only for a lease that ended in the minute it was taken or extended.
 *
 * @since 0.1.0
 * @category rules
 */
export const recoveryDueAt = (running: Task, due: DateTime.Utc): DateTime.Utc => {
  const earliest = bucketEndMillis(bucketOf(DateTime.toEpochMillis(running.updatedAt)))
  return DateTime.toEpochMillis(due) >= earliest ? due : DateTime.unsafeMake(earliest)
}

/** A listed marker. */
export interface ListedMarker {
  readonly key: string
  readonly lastModifiedMillis: number
}

/** What is known of a marker's task: it does not exist, or it needs (at most) this one marker. */
export type MarkerOwner = { readonly exists: false } | { readonly exists: true; readonly needed: string | undefined }

/** The {@link MarkerOwner} of a task as read (`undefined` = missing). */
export const ownerOf = (task: Task | undefined): MarkerOwner =>
  task === undefined ? { exists: false } : { exists: true, needed: neededMarker(task) }

/**
 * Whether a listed marker may be deleted, given its task as read at `readAtMillis` (server time).
 * Unparseable keys under `ready/` or `leases/` are deleted (nothing can use them).
 */
export const isDeletable = (marker: ListedMarker, owner: MarkerOwner, readAtMillis: number): boolean => {
  const parsed = parseIndexKey(marker.key)
  if (parsed === undefined) return true
  // A task missing from a LIST may have been submitted (and even claimed) after that LIST: its
  // markers are orphans once older than the grace period, or, for a lease marker, once its bucket
  // is over (a claim made after the LIST writes a lease marker in a bucket still to come).
  if (!owner.exists) {
    const old = marker.lastModifiedMillis + orphanGraceMillis <= readAtMillis
    return parsed.kind === "leases"
      ? old || isBucketClosed(parsed.bucket, readAtMillis)
      // A submit may still create its task: only once its bucket is over by more than the submit window.
      : old && isBucketClosed(parsed.bucket, readAtMillis - submitWindowMillis)
  }
  if (owner.needed === marker.key) return false
  return isBucketClosed(parsed.bucket, readAtMillis)
}
