/**
 * The claim protocol (design.md §5.4): one GET (body + ETag) → checks (status, availability,
 * expiry, cancellation, handler, pause, rate limit) → PUT the lease marker → CAS the task to
 * `running` (Transitions.claim: new `lease_id`, `attempt + 1`, lease until now + timeout) →
 * delete the ready marker.
 *
 * - The lease marker goes first (invariant 2): a crash right after the CAS leaves a running task
 *   the monitor can find. On a lost race (412) it is NOT deleted: the winner's marker can have the
 *   same key; a stray one is a harmless hint the monitor drops.
 * - An ambiguous CAS (OutcomeUnknown) is resolved by re-reading (TaskObjects.putConditional): our
 *   body carries our fresh `lease_id`, so "the stored body is ours" is exactly "we hold the lease".
 *   A re-read that fails transiently is repeated until the new lease's local deadline: giving up
 *   at once would leave a task we may hold running with nobody on it for a whole lease (and fail
 *   a `max_retries: 0` task that never ran).
 * - Markers are hints, the task is the truth: a marker whose task is finished is deleted only
 *   when it is provably stale (its bucket ended before the task's last change), so a marker that a
 *   concurrent retry or replay has just written for the same key is never lost.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { DateTime, type Duration, Effect, Option, type Schedule } from "effect"
import { taskKey } from "../../domain/Keys.js"
import { flowRecoverAt } from "../../domain/Flows.js"
import { bucketEndMillis, closedMarkers, leaseMarkerOf, neededMarker } from "../../domain/Markers.js"
import { notifyParent } from "../../protocol/Flows.js"
import { readyMarkerKey } from "../../domain/ReadyIndex.js"
import type { ReadyEntry } from "../../domain/ReadyIndex.js"
import { isAvailableAt } from "../../domain/Task.js"
import type { Task } from "../../domain/Task.js"
import * as Tr from "../../domain/Transitions.js"
import { casTask, deleteMarkers, readTask, writeMarker } from "../../protocol/TaskObjects.js"
import type { VersionedTask } from "../../protocol/TaskObjects.js"
import * as Metrics from "../../services/Metrics.js"
import { ServerClock } from "../../services/ServerClock.js"
import type { Storage } from "../../services/Storage.js"
import type { StorageReadError } from "../../domain/StorageError.js"
import type { ServerClockService } from "../../services/ServerClock.js"
import * as Tracing from "../../protocol/Tracing.js"
import { transientWithin } from "../../protocol/TransientRetry.js"
import { defaultSafetyMargin, localDeadline, rewriteIfLate } from "./Deadline.js"

/**
 * How long a marker whose task was found not pending (and the marker not provably stale) is
 * skipped. Such a marker is usually one a settle has just written BEFORE its CAS back to pending
 * (a retry or reschedule seen mid-flight), so it is short, it is forgotten on a wake-up signal
 * (Discovery's `forgetBusy`) and for our own tasks as soon as they are pending again
 * (`forgetTask`), and it never sets the idle worker's next due time (a marker
 * stuck beside a long-running task must not make idle workers LIST every few seconds).
 */
export const busyMemoryMillis = 10_000

/** How far a marker's bucket must lie before a task's last change to count as provably stale. */
export const staleMarkerMarginMillis = 5_000

/** What the worker needs to decide a claim. */
export interface ClaimEnv {
  readonly workerId: string
  /** Whether this worker has a handler for the type. */
  readonly handles: (taskType: string) => boolean
  /** Whether the type is paused (read once per poll by the caller). */
  readonly isPaused: (taskType: string) => Effect.Effect<boolean>
  /**
   * What to run alongside the task's GET, if anything (the caller's cached pause switches when
   * they are stale: read there while the GET is out, they are at hand when `isPaused` asks,
   * instead of a round trip after it). Nothing when they are at hand: running the GET beside it
   * costs two fibers.
   */
  readonly warmUp?: Effect.Effect<Effect.Effect<void> | undefined> | undefined
  /** Takes a rate-limit token for the type, or says when one is free again (server epoch ms). */
  readonly admit: (taskType: string) => Effect.Effect<true | number>
  /** Kept before a lease's end on top of the clock's uncertainty (default 500 ms), as in execution. */
  readonly leaseSafetyMargin?: Duration.Duration | undefined
  /**
   * Leave a won claim's ready-marker DELETE to the caller (`Claimed.readyDeleted`), to run beside
   * the handler instead of between the CAS and its start (one round trip less in every pickup).
   */
  readonly deferReadyDelete?: boolean | undefined
  /**
   * How a won claim deletes its ready markers (default: its own DELETE). A worker shares one
   * `DeleteBatcher` between its claims: the DELETEs that overlap go in one request.
   */
  readonly deleteReady?: ((keys: ReadonlyArray<string>) => Effect.Effect<void, StorageReadError>) | undefined
}

/** The result of trying one ready marker. */
export type ClaimOutcome =
  /** We hold the task: run it. `held` is the task as written, with the ETag of our CAS. */
  | {
    readonly _tag: "Claimed"
    readonly held: VersionedTask
    readonly leaseMarker: string
    /**
     * With `deferReadyDelete`: the ready markers' DELETE (then their rewrite if it was answered
     * late), not yet run. Run it beside the handler, and let it finish before the settle writes
     * anything: a retry can write its new ready marker under the same key. Run it with the
     * claim's Storage (the worker forks it from the fiber that claimed: it inherits it).
     */
    readonly readyDeleted?: Effect.Effect<void, never, Storage> | undefined
  }
  /**
   * The marker is done with (claimed by someone else, cleaned up, expired, cancelled).
   * `elsewhere`: another worker got the task first (a lost race, or the task no longer pending).
   */
  | { readonly _tag: "Consumed"; readonly reason: string; readonly elsewhere?: boolean }
  /** Not now: look again at `until` (server epoch ms; Infinity = never, e.g. a type we do not handle). */
  | {
    readonly _tag: "Skip"
    readonly until: number
    readonly reason: SkipReason
    readonly availableAt?: number
    /** The task's type, when it was skipped for being paused (not read again while it stays so). */
    readonly taskType?: string
  }
  /** The task object does not exist (yet: a submit writes its marker first). */
  | { readonly _tag: "Missing" }

/** Why a candidate was skipped. */
export type SkipReason = "unhandled" | "not_due" | "paused" | "rate_limited" | "busy_elsewhere" | "malformed"

/** Whether a marker in `bucket` is provably stale for a task last changed at `task.updatedAt`. */
export const isProvablyStale = (bucket: number, task: Task): boolean =>
  bucketEndMillis(bucket) + staleMarkerMarginMillis <= DateTime.toEpochMillis(task.updatedAt)

/**
 * Ends a pending task found expired or cancelled (CAS with the ETag read), then deletes its
 * markers. A flow's child gets the marker its parent's notice needs first, and tells its parent
 * right after (domain/Flows.ts; recovery does it if this process dies in between).
 */
const endPending = (next: Task, etag: string, endedMarkers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const flowMarker = flowRecoverAt(next) === undefined ? undefined : neededMarker(next)
    if (flowMarker !== undefined) yield* writeMarker(flowMarker)
    const written = yield* casTask(next, etag).pipe(Effect.map(Option.some), Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<string>())))
    if (Option.isNone(written)) return
    yield* deleteMarkers(endedMarkers.filter((m) => m !== flowMarker))
    if (flowMarker !== undefined) {
      yield* notifyParent({ task: next, etag: written.value }).pipe(
        Effect.catchAll((e) => Effect.logWarning(`flow parent of ${next.id} not told yet (recovery will): ${e.message}`))
      )
    }
  })

/**
 * Tries to claim the task behind one due ready marker. No span of its own (it runs in the pass's
 * `Worker.discover`; a won claim's writes in `buquet.claim`): a traced `Effect.fn` cost a span and
 * a captured stack per candidate.
 */
export const tryClaim = Effect.fnUntraced(function*(entry: ReadyEntry, env: ClaimEnv) {
  const clock = yield* ServerClock
  const read = readTask(taskKey(entry.shard, entry.taskId)).pipe(
    Effect.map((o) => ({ _tag: "Read" as const, value: o })),
    Effect.catchTag("MalformedObject", (e) =>
      Effect.as(Effect.logWarning(`skipping a malformed task: ${e.message}`), { _tag: "Malformed" as const }))
  )
  const warmUp = env.warmUp === undefined ? undefined : yield* env.warmUp
  const found = warmUp === undefined ? yield* read : yield* Effect.zipLeft(read, warmUp, { concurrent: true })
  if (found._tag === "Malformed") {
    return { _tag: "Skip", until: Number.POSITIVE_INFINITY, reason: "malformed" } satisfies ClaimOutcome
  }
  if (Option.isNone(found.value)) return { _tag: "Missing" } satisfies ClaimOutcome
  const { task, etag } = found.value.value
  const now = yield* clock.now
  const nowMillis = DateTime.toEpochMillis(now)

  if (task.status !== "pending") {
    // Someone ran (or is running) it. Its marker is ours to clean only when provably stale.
    if (isProvablyStale(entry.bucket, task)) {
      yield* deleteMarkers([entry.key])
      return { _tag: "Consumed", reason: `stale marker of a ${task.status} task`, elsewhere: true } satisfies ClaimOutcome
    }
    return { _tag: "Skip", until: nowMillis + busyMemoryMillis, reason: "busy_elsewhere" } satisfies ClaimOutcome
  }
  if (!env.handles(task.taskType)) {
    return { _tag: "Skip", until: Number.POSITIVE_INFINITY, reason: "unhandled" } satisfies ClaimOutcome
  }
  // Ended for good: its own marker goes (a replay never reuses that key while the DELETE may be
  // in flight: Markers.replayDueAt); another listed key only from a closed bucket.
  const own = readyMarkerKey(task)
  const endedMarkers = entry.key === own ? [own] : [own, ...closedMarkers([entry.key], nowMillis)]
  if (Tr.canExpire(task, now)) {
    yield* endPending(Tr.expire(task, { now }), etag, endedMarkers)
    return { _tag: "Consumed", reason: "expired" } satisfies ClaimOutcome
  }
  if (task.cancelRequested) {
    yield* endPending(Tr.cancel(task, { now, reason: "cancelled: cancellation was requested before it ran" }), etag, endedMarkers)
    return { _tag: "Consumed", reason: "cancelled" } satisfies ClaimOutcome
  }
  if (!isAvailableAt(task, now)) {
    const at = DateTime.toEpochMillis(task.availableAt)
    return { _tag: "Skip", until: at, reason: "not_due", availableAt: at } satisfies ClaimOutcome
  }
  if (yield* env.isPaused(task.taskType)) {
    return { _tag: "Skip", until: nowMillis, reason: "paused", taskType: task.taskType } satisfies ClaimOutcome
  }
  const admitted = yield* env.admit(task.taskType)
  if (admitted !== true) return { _tag: "Skip", until: admitted, reason: "rate_limited" } satisfies ClaimOutcome

  const markers = [...new Set([entry.key, own])]
  const next = Tr.claim(task, { now, workerId: env.workerId, leaseId: randomUUID() })
  const deadline = yield* localDeadline(
    clock,
    DateTime.toEpochMillis(next.leaseExpiresAt ?? now),
    env.leaseSafetyMargin ?? defaultSafetyMargin
  )
  const untilDeadline = transientWithin(Effect.map(clock.currentTimeMillis, (t) => deadline - t))
  return yield* takeLease(clock, next, etag, markers, deadline, untilDeadline, env.deferReadyDelete === true, env.deleteReady).pipe(
    Tracing.taskSpan("buquet.claim", next)
  )
})

/**
 * Lease marker, CAS to running, ready markers deleted: the write half of a claim (a `buquet.claim`
 * span in the task's trace).
 *
 * The ready markers are deleted after the CAS. Until our lease ends nobody else can make the task
 * pending again, so a DELETE answered before the lease's local deadline landed before any newer
 * ready marker at the same key. Lease recovery's retry and a replay never write that key in the
 * minute we may still be deleting it (Markers.recoveryDueAt, Markers.replayDueAt); still, one
 * answered later (we were paused, S3 retried) is followed by writing them again, cheaply (a stale
 * one is a harmless hint the sweeper drops).
 */
const takeLease = (
  clock: ServerClockService,
  next: Task,
  etag: string,
  markers: ReadonlyArray<string>,
  deadline: number,
  resolveRetry: Schedule.Schedule<unknown, unknown>,
  defer: boolean,
  deleteReady: ((keys: ReadonlyArray<string>) => Effect.Effect<void, StorageReadError>) | undefined
) =>
  Effect.gen(function*() {
    const leaseMarker = leaseMarkerOf(next)!
    // Lease marker BEFORE the CAS: a running task must always be findable by the monitor.
    yield* writeMarker(leaseMarker)
    const written = yield* casTask(next, etag, { resolveRetry }).pipe(
      Effect.map(Option.some),
      Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<string>()))
    )
    if (Option.isNone(written)) {
      // Won claims are counted by the worker's Claimed event; a lost race only here.
      yield* Metrics.recordClaim("conflict")
      return { _tag: "Consumed", reason: "lost the claim race", elsewhere: true } satisfies ClaimOutcome
    }
    const readyDeleted = (deleteReady === undefined ? deleteMarkers(markers) : deleteReady(markers)).pipe(
      Effect.catchAll((e) => Effect.logDebug(`could not delete ready marker (the sweeper will): ${e.message}`)),
      Effect.zipRight(rewriteIfLate(clock, markers, deadline))
    )
    const held = { task: next, etag: written.value }
    // not provided here: a provide per claim copied the fiber's context for the Storage it already has
    if (defer) return { _tag: "Claimed", held, leaseMarker, readyDeleted } satisfies ClaimOutcome
    yield* readyDeleted
    return { _tag: "Claimed", held, leaseMarker } satisfies ClaimOutcome
  })
