/**
 * Every state change of a task, as pure functions `(task, params) → task`.
 *
 * Protocols (Queue, worker, monitor) read a task with its ETag, check the matching guard
 * (`canClaim`, `canRetry`, …), apply one transition here, and CAS the result with `If-Match`.
 * Keeping the changes here means every path (claim, retry, lease recovery, replay, …) sets the same
 * fields the same way and appends the same bounded {@link TaskEvent} to the task's `events` log,
 * which is the history that works on buckets without versioning.
 *
 * Transitions do not check their preconditions (guards do): they are total, so a caller that
 * re-reads after a lost CAS can decide again with fresh data. All times come from the caller
 * (server time), never from the host clock.
 *
 * @module
 */
import { DateTime, Duration } from "effect"
import { Flow, FlowChild, type FlowNode, noticeAfter, ParentWaits, waitingAvailableAt, creationWindowMillis } from "./Flows.js"
import { FollowUps, type FollowUp } from "./FollowUps.js"
import { delayMs, RetryPolicy } from "./RetryPolicy.js"
import { shardOf } from "./Shard.js"
import { isAvailableAt, isExpiredAt, isLeaseExpiredAt, maxTaskEvents, Task, TaskEvent } from "./Task.js"
import type { TaskStatus } from "./TaskStatus.js"
import { isTerminal } from "./TaskStatus.js"
import { uncheckedMaker } from "./Unchecked.js"

/** Longest error text kept in a task's `last_error` and in one event (longer text is cut, with a marker). */
export const maxErrorLength = 4000

/** Longest error text kept in one history event (the log is bounded in size as well as length). */
export const maxEventErrorLength = 500

/** The longest stack trace kept with a failed attempt (the top frames matter; a task keeps ≤ 50 events). */
export const maxEventStackLength = 2000

const truncate = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 14)}… [truncated]`

/** Appends a transition to a log, keeping only the newest {@link maxTaskEvents} entries. */
export const appendEvent = (
  events: ReadonlyArray<TaskEvent> | undefined,
  event: TaskEvent
): ReadonlyArray<TaskEvent> => {
  const all = [...(events ?? []), event]
  return all.length > maxTaskEvents ? all.slice(all.length - maxTaskEvents) : all
}

interface EventInfo {
  readonly workerId?: string | null | undefined
  readonly error?: string | null | undefined
  readonly stack?: string | undefined
}

/**
 * A task built from an already validated one (every field comes from it, from server time or from
 * a checked parameter): the constructor's re-validation (~30 µs a task) is skipped. Nothing is
 * trusted blindly: every body read from the bucket is decoded (Task.decodeTask), and every task
 * written is encoded as its Schema encodes it (TaskObjects.encodeTask, domain/TaskJson.ts), which
 * checks every field again.
 */
const rebuilt: (fields: ConstructorParameters<typeof Task>[0]) => Task = uncheckedMaker(Task)

/** A transition's log entry, from checked parts (`new TaskEvent(…, true)` without its constructor's walk). */
const newEvent: (fields: ConstructorParameters<typeof TaskEvent>[0]) => TaskEvent = uncheckedMaker(TaskEvent)

/** Builds the next task from `task` with `changes`, stamping `updated_at` and logging `from → to`. */
const step = (
  task: Task,
  now: DateTime.Utc,
  changes: Partial<ConstructorParameters<typeof Task>[0]>,
  info: EventInfo = {}
): Task => {
  // A flow's child that ends (or is replayed) records when its parent must hear of it (domain/Flows.ts).
  const parentWaits = noticeAfter(task, changes.status ?? task.status, now)
  const next = { ...task, ...changes, updatedAt: now, ...(parentWaits !== undefined ? { parentWaits } : {}) }
  const event = newEvent({
    at: now,
    from: task.status,
    to: next.status,
    attempt: next.attempt,
    ...(info.workerId != null ? { workerId: info.workerId } : {}),
    ...(info.error != null ? { error: truncate(info.error, maxEventErrorLength) } : {}),
    ...(info.stack !== undefined ? { stack: truncate(info.stack, maxEventStackLength) } : {})
  })
  return rebuilt({ ...next, events: appendEvent(task.events, event) })
}

/** The fields that clear a lease: a task that is not running holds no lease and no worker. */
const noLease = { leaseExpiresAt: null, leaseId: null, workerId: null } as const

const plus = (now: DateTime.Utc, duration: Duration.DurationInput): DateTime.Utc =>
  DateTime.addDuration(now, Duration.decode(duration))

// ---------------------------------------------------------------------------------------------
// Submit
// ---------------------------------------------------------------------------------------------

/** Everything needed to build a new pending task (options already resolved against server time). */
export interface NewTaskParams {
  readonly id: string
  readonly shard: string
  readonly taskType: string
  /** The JSON input, or `null` when it was offloaded to `inputRef`. */
  readonly input: unknown
  readonly inputRef?: string | undefined
  readonly now: DateTime.Utc
  readonly availableAt: DateTime.Utc
  readonly timeoutSeconds: number
  readonly maxRetries: number
  readonly retryPolicy: RetryPolicy
  readonly maxReschedules?: number | undefined
  readonly expiresAt?: DateTime.Utc | undefined
  readonly priority?: number | undefined
  readonly tags?: ReadonlyArray<string> | undefined
  readonly traceparent?: string | undefined
  /** The expiry of the idempotency record that fixes this task's id (idempotent submits only). */
  readonly idempotencyExpiresAt?: DateTime.Utc | undefined
}

/** Submit: a new `pending` task, created at `now`, whose log starts with `∅ → pending`. */
export const newTask = (p: NewTaskParams): Task =>
  new Task({
    id: p.id,
    shard: p.shard,
    taskType: p.taskType,
    input: p.input,
    output: null,
    ...(p.inputRef !== undefined ? { inputRef: p.inputRef } : {}),
    timeoutSeconds: p.timeoutSeconds,
    maxRetries: p.maxRetries,
    retryCount: 0,
    retryPolicy: p.retryPolicy,
    status: "pending",
    createdAt: p.now,
    updatedAt: p.now,
    availableAt: p.availableAt,
    leaseExpiresAt: null,
    leaseId: null,
    attempt: 0,
    completedAt: null,
    workerId: null,
    lastError: null,
    rescheduleCount: 0,
    ...(p.maxReschedules !== undefined ? { maxReschedules: p.maxReschedules } : {}),
    cancelRequested: false,
    ...(p.expiresAt !== undefined ? { expiresAt: p.expiresAt } : {}),
    ...(p.priority !== undefined && p.priority !== 0 ? { priority: p.priority } : {}),
    ...(p.tags !== undefined && p.tags.length > 0 ? { tags: p.tags } : {}),
    ...(p.traceparent !== undefined ? { traceparent: p.traceparent } : {}),
    ...(p.idempotencyExpiresAt !== undefined ? { idempotencyExpiresAt: p.idempotencyExpiresAt } : {}),
    events: [new TaskEvent({ at: p.now, from: null, to: "pending", attempt: 0 })]
  })

/** The task with its input offloaded to `inputRef` (the input becomes `null`); no event. */
export const withInputRef = (task: Task, inputRef: string): Task => rebuilt({ ...task, input: null, inputRef })

// ---------------------------------------------------------------------------------------------
// Guards
// ---------------------------------------------------------------------------------------------

/**
 * Claim guard: pending, available at `now`, not expired, and no cancellation requested (a pending
 * task with `cancel_requested`, e.g. a retry that raced a cancel request, should be cancelled with
 * {@link cancel} by whoever finds it, like an expired one is expired).
 */
export const canClaim = (task: Task, now: DateTime.Utc): boolean =>
  task.status === "pending" && !task.cancelRequested && isAvailableAt(task, now) && !isExpiredAt(task, now)

/** Expire guard: a pending task whose TTL has passed (running tasks are not expired; they finish or time out). */
export const canExpire = (task: Task, now: DateTime.Utc): boolean => task.status === "pending" && isExpiredAt(task, now)

/** Whether `workerId`'s lease (`leaseId`) still owns this running task: the fencing check. */
export const holdsLease = (task: Task, leaseId: string): boolean => task.status === "running" && task.leaseId === leaseId

/** Reschedule guard: `reschedule_count < max_reschedules` (unlimited when unset). */
export const canReschedule = (task: Task): boolean =>
  task.maxReschedules === undefined || task.rescheduleCount < task.maxReschedules

/** Lease-recovery guard: running with a lease that ran out at `now`. */
export const canRecoverLease = (task: Task, now: DateTime.Utc): boolean =>
  task.status === "running" && isLeaseExpiredAt(task, now)

/** Replay guard: failed, cancelled or expired (completed work is archived, not replayed). */
export const canReplay = (task: Task): boolean =>
  task.status === "failed" || task.status === "cancelled" || task.status === "expired"

/** Archive guard: any terminal status except `archived` itself. */
export const canArchive = (task: Task): boolean => isTerminal(task.status) && task.status !== "archived"

// ---------------------------------------------------------------------------------------------
// Worker transitions
// ---------------------------------------------------------------------------------------------

/** Claim: `pending → running` with a fresh fencing token, `attempt + 1`, lease until `now + timeout`. */
export const claim = (
  task: Task,
  p: { readonly now: DateTime.Utc; readonly workerId: string; readonly leaseId: string }
): Task =>
  step(
    task,
    p.now,
    {
      status: "running",
      workerId: p.workerId,
      leaseId: p.leaseId,
      attempt: task.attempt + 1,
      leaseExpiresAt: plus(p.now, Duration.seconds(task.timeoutSeconds))
    },
    { workerId: p.workerId }
  )

/**
 * Lease extension: the lease runs until `max(lease_expires_at, now) + by`. The status does not
 * change, so no event is logged (extensions would flood the bounded log).
 */
export const extendLease = (task: Task, p: { readonly now: DateTime.Utc; readonly by: Duration.DurationInput }): Task => {
  const base = task.leaseExpiresAt === null ? p.now : DateTime.max(task.leaseExpiresAt, p.now)
  return rebuilt({ ...task, leaseExpiresAt: plus(base, p.by), updatedAt: p.now })
}

/** Progress: stores the handler's progress value (no event: progress is not a transition). */
export const setProgress = (task: Task, p: { readonly now: DateTime.Utc; readonly progress: unknown }): Task =>
  rebuilt({ ...task, progress: p.progress, updatedAt: p.now })

/**
 * `task` with `outputRef` as its only output reference. Without one before or after, that is the
 * task itself: a rest copy (`{ outputRef, ...rest }`) of a class instance's 38 fields cost more
 * than the rest of the transition.
 */
const withOutputRef = (task: Task, outputRef: string | undefined): Task => {
  if (outputRef === undefined && !Object.hasOwn(task, "outputRef")) return task
  const { outputRef: _drop, ...rest } = task
  return rebuilt({ ...rest, ...(outputRef !== undefined ? { outputRef } : {}) })
}

/** Complete: `running → completed` with the output (or its payload reference) and `completed_at`. */
export const complete = (
  task: Task,
  p: { readonly now: DateTime.Utc; readonly output: unknown; readonly outputRef?: string | undefined }
): Task =>
  step(
    withOutputRef(task, p.outputRef),
    p.now,
    { status: "completed", output: p.outputRef !== undefined ? null : p.output, completedAt: p.now, lastError: null, ...noLease },
    { workerId: task.workerId }
  )

/** Fail: `→ failed` for good (permanent error, retries or reschedules exhausted), with the error kept. */
export const fail = (task: Task, p: { readonly now: DateTime.Utc; readonly error: string; readonly stack?: string | undefined }): Task =>
  step(
    task,
    p.now,
    { status: "failed", lastError: truncate(p.error, maxErrorLength), completedAt: p.now, ...noLease },
    { workerId: task.workerId, error: p.error, stack: p.stack }
  )

/** The backoff before the next retry of `task`, from its RetryPolicy and `retry_count`; `random` in [0, 1). */
export const retryDelay = (task: Task, random: number): Duration.Duration =>
  Duration.millis(delayMs(task.retryPolicy, task.retryCount, random))

/**
 * Retry: `running → pending` after the RetryPolicy backoff (exponential, capped, jittered by
 * `random` in [0, 1)), `retry_count + 1`, lease cleared. Caller checks `canRetry` first.
 */
export const retry = (
  task: Task,
  p: { readonly now: DateTime.Utc; readonly error: string; readonly random: number; readonly stack?: string | undefined }
): Task =>
  step(
    task,
    p.now,
    {
      status: "pending",
      retryCount: task.retryCount + 1,
      availableAt: plus(p.now, retryDelay(task, p.random)),
      lastError: truncate(p.error, maxErrorLength),
      ...noLease
    },
    { workerId: task.workerId, error: p.error, stack: p.stack }
  )

/**
 * Reschedule (durable sleep / rate limit): `running → pending` after `delay`, without consuming a
 * retry; `reschedule_count + 1`. Caller checks `canReschedule` first (else `fail`).
 */
export const reschedule = (
  task: Task,
  p: { readonly now: DateTime.Utc; readonly delay: Duration.DurationInput; readonly reason?: string | undefined }
): Task =>
  step(
    task,
    p.now,
    {
      status: "pending",
      rescheduleCount: task.rescheduleCount + 1,
      availableAt: plus(p.now, p.delay),
      ...noLease
    },
    { workerId: task.workerId, error: p.reason }
  )

/**
 * Release: `running → pending`, available now, without consuming a retry (graceful shutdown gives
 * unfinished tasks back). The attempt counter keeps counting claims.
 */
export const release = (task: Task, p: { readonly now: DateTime.Utc; readonly reason?: string | undefined }): Task =>
  step(task, p.now, { status: "pending", availableAt: p.now, ...noLease }, { workerId: task.workerId, error: p.reason })

/**
 * A pending task that was due before `now`, due at `now` instead: its ready marker moves to the
 * current bucket. For a submit whose create landed so late that its first marker may have been
 * deleted as an orphan (Markers.submitWindowMillis). Nothing else changes; no event is logged.
 */
export const dueNow = (task: Task, p: { readonly now: DateTime.Utc }): Task =>
  rebuilt({ ...task, availableAt: p.now, updatedAt: p.now })

/**
 * Complete with follow-ups: as {@link complete}, with the outbox of the follow-ups to create
 * (domain/FollowUps.ts). `recoverAt` is the end of the completing attempt's lease.
 */
export const completeWithFollowUps = (
  task: Task,
  p: {
    readonly now: DateTime.Utc
    readonly output: unknown
    readonly outputRef?: string | undefined
    readonly followUps: ReadonlyArray<FollowUp>
  }
): Task => {
  const done = complete(task, p)
  if (p.followUps.length === 0) return done
  return rebuilt({ ...done, followUps: new FollowUps({ tasks: p.followUps, recoverAt: task.leaseExpiresAt ?? p.now }) })
}

/** The follow-ups of a completed task all exist: stamp `materialized_at` (no event, no status change). */
export const followUpsCreated = (task: Task, p: { readonly now: DateTime.Utc }): Task =>
  task.followUps === undefined || task.followUps.materializedAt !== undefined
    ? task
    : rebuilt({ ...task, followUps: new FollowUps({ ...task.followUps, materializedAt: p.now }) })

/** A follow-up of `parent`, as a new pending task created at `now` (in the parent's shard layout). */
export const followUpTask = (parent: Task, f: FollowUp, now: DateTime.Utc): Task => {
  const availableAt = f.delayMs === undefined ? now : DateTime.add(now, { millis: f.delayMs })
  const base = newTask({
    id: f.id,
    shard: shardOf(f.id, parent.shard.length),
    taskType: f.taskType,
    input: f.input,
    now,
    availableAt,
    timeoutSeconds: f.timeoutSeconds,
    maxRetries: f.maxRetries,
    retryPolicy: f.retryPolicy,
    maxReschedules: f.maxReschedules,
    expiresAt: f.ttlMs === undefined ? undefined : DateTime.add(now, { millis: f.ttlMs }),
    priority: f.priority,
    tags: f.tags,
    traceparent: f.traceparent
  })
  return new Task({ ...base, parentId: parent.id })
}

/**
 * A flow's node as a new pending task created at `now` under `parent` (or as the root when
 * `parent` is undefined: `base` is then the root task as a submit builds it): a parent waits
 * ({@link Flows.waitingAvailableAt}, no ready marker) with its children's specifications in its
 * outbox; a child records that its parent waits for it.
 */
export const flowTask = (
  base: Task,
  node: { readonly failParent?: boolean | undefined; readonly children?: ReadonlyArray<FlowNode> | undefined },
  p: { readonly now: DateTime.Utc; readonly child: boolean }
): Task => {
  const children = node.children ?? []
  return new Task({
    ...base,
    ...(p.child ? { parentWaits: new ParentWaits({}) } : {}),
    ...(children.length === 0 ? {} : {
      availableAt: waitingAvailableAt,
      flow: new Flow({
        children: children.map((c) => new FlowChild({ id: c.task.id, taskType: c.task.taskType, ...(c.failParent === true ? { failParent: true } : {}) })),
        outbox: children,
        recoverAt: DateTime.add(p.now, { millis: creationWindowMillis })
      })
    })
  })
}

/** A waiting parent with `flow` as its new flow state (children recorded, outbox dropped); no event. */
export const withFlow = (task: Task, p: { readonly now: DateTime.Utc; readonly flow: Flow }): Task =>
  new Task({ ...task, flow: p.flow, updatedAt: p.now })

/** A waiting parent whose children have all ended: due now, `released_at` stamped (its ready marker is written first). */
export const releaseParent = (task: Task, p: { readonly now: DateTime.Utc; readonly flow: Flow }): Task =>
  new Task({ ...task, flow: new Flow({ ...p.flow, releasedAt: p.now }), availableAt: p.now, updatedAt: p.now })

/** A waiting parent failed by a child added with `failParentOnFailure` (it never runs). */
export const failParent = (task: Task, p: { readonly now: DateTime.Utc; readonly flow: Flow; readonly error: string }): Task =>
  fail(new Task({ ...task, flow: new Flow({ ...p.flow, releasedAt: p.now }), availableAt: p.now }), { now: p.now, error: p.error })

/** A child whose parent has been told it ended: stamp `parent_waits.notified_at` (no event). */
export const parentNotified = (task: Task, p: { readonly now: DateTime.Utc }): Task =>
  task.parentWaits === undefined ? task : new Task({ ...task, parentWaits: new ParentWaits({ ...task.parentWaits, notifiedAt: p.now }) })

/** The error recorded when a lease ran out. */
export const leaseExpiredError = "lease expired: the worker did not finish or extend its lease in time"

/**
 * Lease recovery (monitor): a running task whose lease ran out is retried with backoff while it may
 * (`retry_count < max_retries`), else failed; one whose cancellation was requested is cancelled
 * (its worker is gone, so nobody else will). The lease and worker are cleared either way.
 */
export const recoverExpiredLease = (task: Task, p: { readonly now: DateTime.Utc; readonly random: number }): Task =>
  task.cancelRequested
    ? cancel(task, { now: p.now, reason: "cancelled: cancellation was requested and the lease ran out" })
    : task.retryCount < task.maxRetries
    ? retry(task, { now: p.now, error: leaseExpiredError, random: p.random })
    : fail(task, { now: p.now, error: `${leaseExpiredError}; no retries left (${task.attempt} attempts)` })

// ---------------------------------------------------------------------------------------------
// Operator transitions
// ---------------------------------------------------------------------------------------------

/** Who cancelled and why. */
export interface CancelParams {
  readonly now: DateTime.Utc
  readonly reason?: string | undefined
  readonly cancelledBy?: string | undefined
}

/**
 * Request cancellation of a running task: sets `cancel_requested`; the worker notices, interrupts
 * the handler and then applies {@link cancel}. Logged as `running → running` with the reason.
 */
export const requestCancel = (task: Task, p: CancelParams): Task =>
  step(task, p.now, { cancelRequested: true }, { error: `cancel requested${p.reason ? `: ${p.reason}` : ""}` })

/** Cancel: `pending|running → cancelled`, with `cancelled_at`, `cancelled_by` and the reason in `last_error`. */
export const cancel = (task: Task, p: CancelParams): Task =>
  step(
    task,
    p.now,
    {
      status: "cancelled",
      cancelledAt: p.now,
      ...(p.cancelledBy !== undefined ? { cancelledBy: p.cancelledBy } : {}),
      lastError: p.reason !== undefined ? truncate(p.reason, maxErrorLength) : task.lastError,
      ...noLease
    },
    { workerId: task.workerId, error: p.reason }
  )

/** Expire: `pending → expired` once its TTL passed; never claimable afterwards. */
export const expire = (task: Task, p: { readonly now: DateTime.Utc }): Task =>
  step(task, p.now, { status: "expired", expiredAt: p.now, ...noLease }, { error: "expired: its TTL passed before it ran" })

/**
 * Replay: `failed|cancelled|expired → pending`, available now, with a fresh budget: retry, attempt
 * and reschedule counters reset, error, output, cancel and expiry fields cleared (an expired task
 * would otherwise expire again at once; pass `expiresAt` to give it a new deadline). Due at
 * `availableAt` when given (Markers.replayDueAt: the next minute when now would reuse the key of
 * a marker that may still be being deleted).
 */
export const replay = (
  task: Task,
  p: { readonly now: DateTime.Utc; readonly expiresAt?: DateTime.Utc | undefined; readonly availableAt?: DateTime.Utc | undefined }
): Task => {
  const {
    cancelledAt: _ca,
    cancelledBy: _cb,
    expiresAt: _ea,
    expiredAt: _xa,
    outputRef: _or,
    progress: _pr,
    ...rest
  } = task
  return step(rebuilt({ ...rest, ...(p.expiresAt !== undefined ? { expiresAt: p.expiresAt } : {}) }), p.now, {
    status: "pending",
    availableAt: p.availableAt ?? p.now,
    retryCount: 0,
    attempt: 0,
    rescheduleCount: 0,
    completedAt: null,
    lastError: null,
    output: null,
    cancelRequested: false,
    ...noLease
  })
}

/** Archive: a terminal task (`completed|failed|cancelled|expired`) → `archived`. */
export const archive = (task: Task, p: { readonly now: DateTime.Utc }): Task => step(task, p.now, { status: "archived" })

/** The statuses a transition is allowed from, for messages ("replay needs failed, cancelled or expired"). */
export const allowedFrom: Readonly<Record<"claim" | "replay" | "archive" | "expire", ReadonlyArray<TaskStatus>>> = {
  claim: ["pending"],
  replay: ["failed", "cancelled", "expired"],
  archive: ["completed", "failed", "cancelled", "expired"],
  expire: ["pending"]
}
