/**
 * Settling a task the worker holds: complete, fail, retry, reschedule, cancel or release, each one
 * CAS with the ETag the worker holds (from its claim PUT or its last lease extension): no extra
 * GET on the happy path (design.md §5.4).
 *
 * Fencing (invariant 4): when the CAS loses, the task is re-read. If our `lease_id` still holds it
 * (someone only set `cancel_requested`), the decision is made again on the fresh task and written
 * with the fresh ETag; otherwise the lease is lost and nothing is written, ever.
 *
 * Write order (invariant 2): a transition back to `pending` writes its new ready marker BEFORE
 * the CAS; the lease marker is deleted after it, only if its minute bucket has closed (else a new
 * claim may have written the same key; lease recovery removes it once the bucket closes).
 *
 * Follow-ups (domain/FollowUps.ts): a completion that enqueues tasks writes them into the task
 * with the completing CAS and keeps the lease marker; they are created right after it, and lease
 * recovery creates them if this worker dies in between.
 *
 * Transient errors (with `retry`): a request that did not get through is tried again, and an
 * ambiguous CAS is resolved by re-reading until it is known whether it landed — a finished
 * handler's result is never dropped for one bad answer.
 *
 * @module
 */
import { Duration, Effect, Option, Random, Ref, type Schedule } from "effect"
import { readyMarkerKey } from "../../domain/ReadyIndex.js"
import { canRetry } from "../../domain/Task.js"
import type { Task } from "../../domain/Task.js"
import * as Tr from "../../domain/Transitions.js"
import { casTask, deleteMarkers, keyOfTask, readTask, writeMarker } from "../../protocol/TaskObjects.js"
import { isTransient, retryOnFailure } from "../../protocol/TransientRetry.js"
import type { VersionedTask } from "../../protocol/TaskObjects.js"
import type * as Metrics from "../../services/Metrics.js"
import { ServerClock } from "../../services/ServerClock.js"
import { closedMarkers, leaseMarkerOf, neededMarker } from "../../domain/Markers.js"
import { type FollowUp, unmaterialized } from "../../domain/FollowUps.js"
import { materialize } from "../../protocol/FollowUps.js"
import { keepFindable } from "../../protocol/NewTask.js"
import { owedNotice } from "../../domain/Flows.js"
import { notifyParent } from "../../protocol/Flows.js"

/** What to do with a task whose attempt ended. */
export type Settlement =
  /** `followUps`: tasks to create with the completion, exactly once (domain/FollowUps.ts). */
  | {
    readonly _tag: "Complete"
    readonly output: unknown
    readonly outputRef?: string | undefined
    readonly followUps?: ReadonlyArray<FollowUp> | undefined
  }
  /** `stack`: the handler error's stack trace, stored with the failed attempt. */
  | { readonly _tag: "Fail"; readonly error: string; readonly stack?: string | undefined }
  /** Retry with backoff while retries remain, else fail. `timeout`: the attempt ran out of time. */
  | { readonly _tag: "Retry"; readonly error: string; readonly timeout?: boolean | undefined; readonly stack?: string | undefined }
  /** Pending again after `delay` without consuming a retry, else (max reschedules) fail. */
  | { readonly _tag: "Reschedule"; readonly delay: Duration.Duration; readonly reason: string }
  | { readonly _tag: "Cancel"; readonly reason: string }
  /** Give the task back now without consuming a retry (shutdown). */
  | { readonly _tag: "Release"; readonly reason: string }

/** The state the task ended in, from this worker's point of view. */
export type SettleKind = "completed" | "failed" | "retried" | "rescheduled" | "cancelled" | "released"

/** Why a task failed for good (the metrics' `reason` label). */
export type FailureReason = Metrics.FailureReason

/** The result of settling (`reason` is set when `kind` is `"failed"`). */
export type SettleResult =
  | {
    readonly _tag: "Settled"
    readonly kind: SettleKind
    readonly task: Task
    /** The ETag of `task` as written (what a GET of it would answer while it is unchanged). */
    readonly etag: string
    readonly error?: string | undefined
    readonly reason?: FailureReason | undefined
  }
  | { readonly _tag: "LeaseLost"; readonly reason: string }

/** The transition for a settlement on `task` at `now` (pure; `random` in [0, 1) jitters a retry). */
export const decide = (
  task: Task,
  settlement: Settlement,
  now: Parameters<typeof Tr.claim>[1]["now"],
  random: number
): { readonly kind: SettleKind; readonly next: Task; readonly error?: string | undefined; readonly reason?: FailureReason | undefined } => {
  // A cancel requested while we worked wins over giving the task back for another run.
  if (task.cancelRequested && (settlement._tag === "Retry" || settlement._tag === "Reschedule" || settlement._tag === "Release")) {
    const reason = "cancelled: cancellation was requested while it ran"
    return { kind: "cancelled", next: Tr.cancel(task, { now, reason }) }
  }
  switch (settlement._tag) {
    case "Complete":
      return {
        kind: "completed",
        next: settlement.followUps === undefined || settlement.followUps.length === 0
          ? Tr.complete(task, { now, output: settlement.output, outputRef: settlement.outputRef })
          : Tr.completeWithFollowUps(task, { now, output: settlement.output, outputRef: settlement.outputRef, followUps: settlement.followUps })
      }
    case "Fail":
      return {
        kind: "failed",
        next: Tr.fail(task, { now, error: settlement.error, stack: settlement.stack }),
        error: settlement.error,
        reason: "permanent"
      }
    case "Retry":
      if (canRetry(task)) {
        return { kind: "retried", next: Tr.retry(task, { now, error: settlement.error, random, stack: settlement.stack }), error: settlement.error }
      }
      {
        const error = `${settlement.error} (no retries left after ${task.retryCount} retries)`
        return {
          kind: "failed",
          next: Tr.fail(task, { now, error, stack: settlement.stack }),
          error,
          reason: settlement.timeout === true ? "timeout" : "retries_exhausted"
        }
      }
    case "Reschedule":
      if (Tr.canReschedule(task)) {
        return { kind: "rescheduled", next: Tr.reschedule(task, { now, delay: settlement.delay, reason: settlement.reason }) }
      }
      {
        const error = `rescheduled more than max_reschedules (${task.maxReschedules ?? 0}) times: ${settlement.reason}`
        // its budget (of reschedules) is used up, like a retry budget
        return { kind: "failed", next: Tr.fail(task, { now, error }), error, reason: "retries_exhausted" }
      }
    case "Cancel":
      return { kind: "cancelled", next: Tr.cancel(task, { now, reason: settlement.reason }) }
    case "Release":
      return { kind: "released", next: Tr.release(task, { now, reason: settlement.reason }) }
  }
}

/** Options of {@link settle}. */
export interface SettleOptions {
  /** Retries of transient errors (and of the re-read resolving an ambiguous CAS); default none. */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  /** Run once a completion's follow-ups exist (the worker touches the wake-up signal). */
  readonly onFollowUps?: Effect.Effect<void> | undefined
}

/**
 * Settles the held task (CAS with the held ETag; re-read and re-decide only when that loses).
 * `held` is updated with what was written. `onPending` runs after a transition back to pending
 * (the worker touches the wake-up signal there). No span of its own: the worker runs it inside the
 * task's `buquet.complete`.
 */
export const settle = Effect.fnUntraced(function*(
  held: Ref.Ref<VersionedTask>,
  leaseId: string,
  settlement: Settlement,
  onPending: (task: Task) => Effect.Effect<void> = () => Effect.void,
  options?: SettleOptions
) {
  const clock = yield* ServerClock
  const retry = options?.retry

  /** One CAS round: settled, lease lost, or a fresher version of our task to decide on again. */
  const round = (current: VersionedTask) =>
    Effect.gen(function*() {
      const now = yield* clock.now
      const random = yield* Random.next
      const { kind, next, error, reason } = decide(current.task, settlement, now, random)
      if (next.status === "pending") yield* writeMarker(readyMarkerKey(next))
      const written = yield* casTask(next, current.etag, { resolveRetry: retry }).pipe(
        Effect.map(Option.some),
        Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<string>()))
      )
      if (Option.isSome(written)) {
        yield* Ref.set(held, { task: next, etag: written.value })
        // Kept while it is still needed: a completion whose follow-ups are not created yet.
        const lease = neededMarker(next) === undefined ? leaseMarkerOf(current.task) : undefined
        // Only from a closed bucket: a claim right after ours may have written this very key.
        const landedAt = yield* clock.currentTimeMillis
        yield* deleteMarkers(closedMarkers(lease === undefined ? [] : [lease], landedAt)).pipe(
          Effect.catchAll((e) => Effect.logDebug(`could not delete lease marker (the monitor will): ${e.message}`))
        )
        // A CAS that landed after its ready marker's minute was over: a sweeper may be deleting that marker.
        const settled = yield* keepFindable({ task: next, etag: written.value })
        yield* Ref.set(held, settled)
        if (next.status === "pending") yield* onPending(settled.task)
        return { _tag: "Settled", kind, task: settled.task, etag: settled.etag, error, reason } satisfies SettleResult
      }
      // Lost the CAS: fence by lease_id on a fresh read.
      const fresh = yield* readTask(keyOfTask(current.task))
      if (Option.isNone(fresh)) return { _tag: "LeaseLost", reason: "the task was deleted" } satisfies SettleResult
      if (!Tr.holdsLease(fresh.value.task, leaseId)) {
        return {
          _tag: "LeaseLost",
          reason: `the task is ${fresh.value.task.status} under another lease (ours expired or it was recovered)`
        } satisfies SettleResult
      }
      return fresh.value
    })

  let current = yield* Ref.get(held)
  for (let attempt = 0; attempt < 20; attempt++) {
    const outcome = yield* (retry === undefined ? round(current) : retryOnFailure(round(current), { schedule: retry, while: isTransient }))
    if (!("_tag" in outcome)) {
      current = outcome
      yield* Ref.set(held, current)
      continue
    }
    if (outcome._tag === "Settled" && (unmaterialized(outcome.task) !== undefined || owedNotice(outcome.task) !== undefined)) {
      // The completion is written: its follow-ups are created now, and a flow's parent told that
      // this child ended (domain/Flows.ts) — or by recovery, through the kept lease marker, if this fails.
      const written = yield* Ref.get(held)
      const effects = Effect.flatMap(materialize(written, options?.onFollowUps), (v) => notifyParent(v, options?.onFollowUps))
      const stored = yield* (retry === undefined ? effects : retryOnFailure(effects, { schedule: retry, while: isTransient })).pipe(
        Effect.catchAll((e) =>
          Effect.as(Effect.logWarning(`task ${written.task.id}: follow-ups or flow parent not done yet (lease recovery will): ${e.message}`), written)
        )
      )
      yield* Ref.set(held, stored)
      return { ...outcome, task: stored.task } satisfies SettleResult
    }
    return outcome
  }
  return { _tag: "LeaseLost", reason: "the task kept changing under us" } satisfies SettleResult
})

/** The retry delay a settlement would use, for callers that report it. */
export const retryDelayOf = (task: Task, random: number): Duration.Duration => Tr.retryDelay(task, random)
