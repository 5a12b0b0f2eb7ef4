/**
 * The plain data of the Promise facade: tasks, events, schedules and results as readonly objects
 * with camelCase fields and JS `Date`s (the stored JSON stays snake_case), converted from the
 * Effect core's Schema classes at the edge. The types here name nothing from Effect (the emitted
 * declarations of `buquet/promise` must not); the converters are marked internal, left out of them.
 *
 * @module
 */
import { DateTime, Option } from "effect"
import type * as Domain from "../domain/Task.js"
import { lastErrorStack as lastErrorStackOf } from "../domain/Task.js"
import type * as ScheduleDomain from "../domain/Schedule.js"
import type { ScheduleSpec } from "../domain/ScheduleSpec.js"
import type { PauseState as DomainPauseState } from "../domain/Pause.js"
import type * as QueueService from "../services/Queue.js"
import type * as SchedulerService from "../services/Scheduler.js"
import { toBuquetError } from "./errors.js"
import type { BuquetError } from "./errors.js"

/**
 * A task's status as stored in its JSON.
 *
 * @since 0.1.0
 * @category models
 */
export type TaskStatus = "pending" | "running" | "completed" | "failed" | "cancelled" | "archived" | "expired"

/**
 * A JSON Schema document (an object, or `true`/`false`), as published for a task type.
 *
 * @since 0.1.0
 * @category models
 */
export type JsonSchema = { readonly [key: string]: unknown } | boolean

/**
 * A typed task type declared with the Effect API's `TaskType.make` (from `buquet`): what the
 * facade needs of it, its name and the types its Schemas decode to. Inputs given with one are
 * checked against its Schema on submit.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedTaskType<I, O> {
  readonly name: string
  readonly input: { readonly Type: I }
  readonly output: { readonly Type: O }
}

/**
 * A task's retry backoff: exponential from `initialIntervalMs` × `multiplier` per retry, capped at `maxIntervalMs`, ± `jitterPercent`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryPolicy {
  /** First delay (default 1000). */
  readonly initialIntervalMs: number
  /** Cap (default 60000). */
  readonly maxIntervalMs: number
  /** Growth per retry (default 2). */
  readonly multiplier: number
  /** Randomisation, 0–1 (default 0.25 = ±25 %). */
  readonly jitterPercent: number
}

/**
 * One entry of a task's transition log.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskEvent {
  /** When (server time). */
  readonly at: Date
  /** The status before (null at submit). */
  readonly from: TaskStatus | null
  /** The status after. */
  readonly to: TaskStatus
  /** The attempt it happened in. */
  readonly attempt: number
  /** The worker that made the change, if a worker did. */
  readonly workerId?: string | undefined
  /** The error or reason, if any. */
  readonly error?: string | undefined
  /** The stack trace of a failed attempt's error, when it had one. */
  readonly stack?: string | undefined
}

/**
 * A task, as stored in the bucket (a snapshot: read it again with `queue.get` to see changes).
 *
 * @since 0.1.0
 * @category models
 */
export interface Task {
  /** The task's id (a UUID). */
  readonly id: string
  /** Its shard (the first hex characters of the id). */
  readonly shard: string
  /** Its type, which selects the handler. */
  readonly taskType: string
  /** `pending`, `running`, `completed`, `failed`, `cancelled`, `archived` or `expired`. */
  readonly status: TaskStatus
  /** The input as stored (JSON); null when offloaded to `payloads/` (see `inputRef` and `queue.loadInput`). */
  readonly input: unknown
  /** The handler's output (JSON), null until completed or when offloaded (see `outputRef`). */
  readonly output: unknown
  /** Where an offloaded input lives. */
  readonly inputRef?: string | undefined
  /** Where an offloaded output lives. */
  readonly outputRef?: string | undefined
  /** Lease length of one attempt, in seconds. */
  readonly timeoutSeconds: number
  /** Retries allowed after the first attempt. */
  readonly maxRetries: number
  /** Retries used so far. */
  readonly retryCount: number
  /** The retry backoff. */
  readonly retryPolicy: RetryPolicy
  /** Attempts started so far (1 during the first run). */
  readonly attempt: number
  /** When it was submitted. */
  readonly createdAt: Date
  /** When it last changed. */
  readonly updatedAt: Date
  /** It may be claimed at or after this instant. */
  readonly availableAt: Date
  /** When the running attempt's lease ends (null unless running). */
  readonly leaseExpiresAt: Date | null
  /** The running attempt's lease id (null unless running). */
  readonly leaseId: string | null
  /** When it reached `completed` or `failed`. */
  readonly completedAt: Date | null
  /** The worker running (or that last ran) it. */
  readonly workerId: string | null
  /** The last failure's message (or the cancel reason). */
  readonly lastError: string | null
  /** The stack trace of the latest failure (of the newest logged error), when it had one. */
  readonly lastErrorStack?: string | undefined
  /** Reschedules used so far (they do not consume retries). */
  readonly rescheduleCount: number
  /** Reschedules allowed (unlimited when absent). */
  readonly maxReschedules?: number | undefined
  /** A cancel was requested while it ran. */
  readonly cancelRequested: boolean
  /** When it was cancelled. */
  readonly cancelledAt?: Date | undefined
  /** Who cancelled it. */
  readonly cancelledBy?: string | undefined
  /** It expires (is never run) if not claimed by then. */
  readonly expiresAt?: Date | undefined
  /** When it was marked expired. */
  readonly expiredAt?: Date | undefined
  /** 0–9999; higher is claimed first within a shard. */
  readonly priority?: number | undefined
  /** The last value the handler reported with `ctx.progress`. */
  readonly progress?: unknown
  /** Free-form labels. */
  readonly tags?: ReadonlyArray<string> | undefined
  /** The task whose handler enqueued this one (`ctx.enqueue`), or whose flow it is a child of (`queue.flow`). */
  readonly parentId?: string | undefined
  /** The follow-ups its completion enqueued: their ids, and when they were all created (absent until then). */
  readonly followUps?: { readonly ids: ReadonlyArray<string>; readonly createdAt?: Date | undefined } | undefined
  /**
   * A flow's parent (`queue.flow`): its children (id, type, and the status each reported when it
   * ended) and when it was released (made due, or failed by a child). Absent on other tasks.
   */
  readonly flow?: {
    readonly children: ReadonlyArray<{ readonly id: string; readonly taskType: string; readonly outcome?: TaskStatus | undefined }>
    readonly releasedAt?: Date | undefined
  } | undefined
  /** The bounded transition log, oldest first. */
  readonly events: ReadonlyArray<TaskEvent>
}

const toDate = (dt: DateTime.DateTime): Date => DateTime.toDate(dt)
const toDateOrNull = (dt: DateTime.DateTime | null): Date | null => (dt === null ? null : toDate(dt))
const toDateOrUndefined = (dt: DateTime.DateTime | undefined): Date | undefined => (dt === undefined ? undefined : toDate(dt))

/**
 * Converts a stored task event.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromTaskEvent = (e: Domain.TaskEvent): TaskEvent => ({
  at: toDate(e.at),
  from: e.from,
  to: e.to,
  attempt: e.attempt,
  ...(e.workerId === undefined ? {} : { workerId: e.workerId }),
  ...(e.error === undefined ? {} : { error: e.error }),
  ...(e.stack === undefined ? {} : { stack: e.stack })
})

// The facade's tasks keep a link to the core's, so `loadInput(task)` needs no extra read.
const origins = new WeakMap<Task, Domain.Task>()

/**
 * The core task a facade task was made from, if it was made here.
 *
 * @since 0.1.0
 * @category utils
 * @internal
 */
export const originOf = (task: Task): Domain.Task | undefined => origins.get(task)

/**
 * Converts a stored task.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromTask = (t: Domain.Task): Task => {
  const task: Task = {
    id: t.id,
    shard: t.shard,
    taskType: t.taskType,
    status: t.status,
    input: t.input,
    output: t.output,
    ...(t.inputRef === undefined ? {} : { inputRef: t.inputRef }),
    ...(t.outputRef === undefined ? {} : { outputRef: t.outputRef }),
    timeoutSeconds: t.timeoutSeconds,
    maxRetries: t.maxRetries,
    retryCount: t.retryCount,
    retryPolicy: {
      initialIntervalMs: t.retryPolicy.initialIntervalMs,
      maxIntervalMs: t.retryPolicy.maxIntervalMs,
      multiplier: t.retryPolicy.multiplier,
      jitterPercent: t.retryPolicy.jitterPercent
    },
    attempt: t.attempt,
    createdAt: toDate(t.createdAt),
    updatedAt: toDate(t.updatedAt),
    availableAt: toDate(t.availableAt),
    leaseExpiresAt: toDateOrNull(t.leaseExpiresAt),
    leaseId: t.leaseId,
    completedAt: toDateOrNull(t.completedAt),
    workerId: t.workerId,
    lastError: t.lastError,
    ...(lastErrorStackOf(t) === undefined ? {} : { lastErrorStack: lastErrorStackOf(t) }),
    rescheduleCount: t.rescheduleCount,
    ...(t.maxReschedules === undefined ? {} : { maxReschedules: t.maxReschedules }),
    cancelRequested: t.cancelRequested,
    ...(t.cancelledAt === undefined ? {} : { cancelledAt: toDate(t.cancelledAt) }),
    ...(t.cancelledBy === undefined ? {} : { cancelledBy: t.cancelledBy }),
    ...(t.expiresAt === undefined ? {} : { expiresAt: toDate(t.expiresAt) }),
    ...(t.expiredAt === undefined ? {} : { expiredAt: toDate(t.expiredAt) }),
    ...(t.priority === undefined ? {} : { priority: t.priority }),
    ...(t.progress === undefined ? {} : { progress: t.progress }),
    ...(t.tags === undefined ? {} : { tags: t.tags }),
    ...(t.parentId === undefined ? {} : { parentId: t.parentId }),
    ...(t.flow === undefined ? {} : {
      flow: {
        children: t.flow.children.map((c) => ({ id: c.id, taskType: c.taskType, ...(c.outcome === undefined ? {} : { outcome: c.outcome }) })),
        ...(t.flow.releasedAt === undefined ? {} : { releasedAt: toDate(t.flow.releasedAt) })
      }
    }),
    ...(t.followUps === undefined ? {} : {
      followUps: {
        ids: t.followUps.tasks.map((f) => f.id),
        ...(t.followUps.materializedAt === undefined ? {} : { createdAt: toDate(t.followUps.materializedAt) })
      }
    }),
    events: (t.events ?? []).map(fromTaskEvent)
  }
  origins.set(task, t)
  return task
}

/**
 * One page of {@link Queue.list}.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskPage {
  /** The tasks, in key order (shard, then id). */
  readonly tasks: ReadonlyArray<Task>
  /** Pass back as `cursor` for the next page; undefined when there is no more. */
  readonly cursor: string | undefined
}

/**
 * Converts a page of tasks.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromTaskPage = (p: QueueService.TaskPage): TaskPage => ({ tasks: p.tasks.map(fromTask), cursor: p.cursor })

/**
 * A stored S3 version of a task (only where the bucket's versioning works).
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskVersion {
  readonly versionId: string
  readonly lastModified: Date
  readonly isLatest: boolean
  /** The task in that version; undefined for delete markers and undecodable versions. */
  readonly task: Task | undefined
}

/**
 * A task's history: its own transition log (every provider) and S3 versions where kept.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskHistory {
  readonly taskId: string
  /** Oldest first. */
  readonly events: ReadonlyArray<TaskEvent>
  /** Newest first; empty when the bucket keeps no versions. */
  readonly versions: ReadonlyArray<TaskVersion>
}

/**
 * Converts a history.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromHistory = (h: QueueService.TaskHistory): TaskHistory => ({
  taskId: h.taskId,
  events: h.events.map(fromTaskEvent),
  versions: h.versions.map((v) => ({
    versionId: v.versionId,
    lastModified: toDate(v.lastModified),
    isLatest: v.isLatest,
    task: v.task === undefined ? undefined : fromTask(v.task)
  }))
})

/**
 * What a cancel did: `cancelled` (it was pending), `cancel_requested` (it is running: the worker stops it), `already_terminal` or `not_found`.
 *
 * @since 0.1.0
 * @category models
 */
export type CancelOutcome = "cancelled" | "cancel_requested" | "already_terminal" | "not_found"

/**
 * The result of a cancel: the outcome and the task as it is now (absent when not found).
 *
 * @since 0.1.0
 * @category models
 */
export interface CancelResult {
  readonly taskId: string
  readonly outcome: CancelOutcome
  readonly task?: Task | undefined
}

/**
 * Converts a cancel result.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromCancelResult = (r: QueueService.CancelResult): CancelResult => ({
  taskId: r.taskId,
  outcome: r.outcome,
  ...(r.task === undefined ? {} : { task: fromTask(r.task) })
})

/**
 * One item of a bulk cancel: its result, or the error that stopped it (the other items go on).
 *
 * @since 0.1.0
 * @category models
 */
export type CancelManyResult =
  | (CancelResult & { readonly ok: true })
  | { readonly ok: false; readonly taskId: string; readonly error: BuquetError }

/**
 * Converts one item of a bulk cancel.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromCancelMany = (r: QueueService.CancelManyResult): CancelManyResult =>
  r._tag === "Done"
    ? { ok: true, ...fromCancelResult(r) }
    : { ok: false, taskId: r.taskId, error: toBuquetError(r.error) }

/**
 * One item of a bulk submit, in input order: the task, or why it failed. Partial failure is never hidden.
 *
 * @since 0.1.0
 * @category models
 */
export type SubmitManyResult =
  | { readonly ok: true; readonly index: number; readonly task: Task }
  | { readonly ok: false; readonly index: number; readonly error: BuquetError }

/**
 * Converts one item of a bulk submit.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromSubmitMany = (r: QueueService.SubmitManyResult): SubmitManyResult =>
  r._tag === "Submitted"
    ? { ok: true, index: r.index, task: fromTask(r.task) }
    : { ok: false, index: r.index, error: toBuquetError(r.error) }

/**
 * The pause switches.
 *
 * @since 0.1.0
 * @category models
 */
export interface PauseState {
  /** Everything is paused. */
  readonly global: boolean
  /** These task types are paused. */
  readonly taskTypes: ReadonlyArray<string>
  /** When the switches last changed. */
  readonly updatedAt?: Date | undefined
}

/**
 * Converts the pause switches.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromPauseState = (p: DomainPauseState): PauseState => ({
  global: p.global,
  taskTypes: p.taskTypes,
  ...(p.updatedAt === undefined ? {} : { updatedAt: toDate(p.updatedAt) })
})

/**
 * A cron schedule, as stored at `schedules/{id}.json`: its spec (input and `enabled` always known) and when it changed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Schedule extends Omit<ScheduleSpec, "input" | "enabled"> {
  /** Input of every firing's task. */
  readonly input: unknown
  readonly enabled: boolean
  readonly createdAt: Date
  readonly updatedAt: Date
}

/**
 * Converts a schedule.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromSchedule = (s: ScheduleDomain.Schedule): Schedule => ({
  id: s.id,
  taskType: s.taskType,
  input: s.input,
  cron: s.cron,
  ...(s.timezone === undefined ? {} : { timezone: s.timezone }),
  enabled: s.enabled,
  ...(s.timeoutSeconds === undefined ? {} : { timeoutSeconds: s.timeoutSeconds }),
  ...(s.maxRetries === undefined ? {} : { maxRetries: s.maxRetries }),
  ...(s.maxReschedules === undefined ? {} : { maxReschedules: s.maxReschedules }),
  ...(s.priority === undefined ? {} : { priority: s.priority }),
  ...(s.ttlSeconds === undefined ? {} : { ttlSeconds: s.ttlSeconds }),
  ...(s.tags === undefined ? {} : { tags: s.tags }),
  ...(s.missed === undefined ? {} : { missed: s.missed }),
  ...(s.missedLimit === undefined ? {} : { missedLimit: s.missedLimit }),
  ...(s.jitterSeconds === undefined ? {} : { jitterSeconds: s.jitterSeconds }),
  createdAt: toDate(s.createdAt),
  updatedAt: toDate(s.updatedAt)
})

/**
 * A schedule with the instants it fires at next (empty when disabled).
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduleWithRuns {
  readonly schedule: Schedule
  readonly nextRuns: ReadonlyArray<Date>
}

/**
 * Converts a schedule with its next runs.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromScheduleWithRuns = (s: SchedulerService.ScheduleWithRuns): ScheduleWithRuns => ({
  schedule: fromSchedule(s.schedule),
  nextRuns: s.nextRuns.map(toDate)
})

/**
 * The scheduler's record of a schedule's last firing (the reference's `ScheduleLastRun`).
 *
 * @since 0.1.0
 * @category models
 */
export interface LastRun {
  /** The schedule it belongs to. */
  readonly scheduleId: string
  /** The cron instant of the last firing. */
  readonly lastRunAt: Date
  /** The task it submitted. */
  readonly lastTaskId: string
  /** The next cron instant after it. */
  readonly nextRunAt: Date
}

/**
 * A schedule's state: definition, last firing, next firing.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduleStatus {
  readonly schedule: Schedule
  /** Undefined if it never fired. */
  readonly lastRun: LastRun | undefined
  /** Undefined when disabled or when the cron never fires again. */
  readonly nextRun: Date | undefined
}

/**
 * Converts a last-run record.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromLastRun = (r: ScheduleDomain.LastRun): LastRun => ({
  scheduleId: r.scheduleId,
  lastRunAt: toDate(r.lastRunAt),
  lastTaskId: r.lastTaskId,
  nextRunAt: toDate(r.nextRunAt)
})

/**
 * Converts a schedule's state.
 *
 * @since 0.1.0
 * @category constructors
 * @internal
 */
export const fromScheduleStatus = (s: SchedulerService.ScheduleStatus): ScheduleStatus => ({
  schedule: fromSchedule(s.schedule),
  lastRun: Option.getOrUndefined(Option.map(s.lastRun, fromLastRun)),
  nextRun: toDateOrUndefined(Option.getOrUndefined(s.nextRun))
})
