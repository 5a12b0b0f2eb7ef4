/**
 * The Scheduler: cron schedules of tasks (design.md §5.4). CRUD of the schedule records, manual
 * triggers, last / next run, and {@link SchedulerService.runDue}, the one pass the scheduler loop
 * (`programs/SchedulerLoop.ts`) repeats. The implementation is `layers/Scheduler.ts`, on
 * `Storage`, `ServerClock` and `Queue`.
 *
 * @module
 */
import { Context, DateTime, Effect, Option } from "effect"
import type { QueueConfig } from "../domain/QueueConfig.js"
import type { InvalidArgument, MalformedObject } from "../domain/QueueError.js"
import type {
  InvalidCron,
  LastRun,
  Schedule,
  ScheduleExists,
  ScheduleNotFound,
  ScheduleSpec,
  ScheduleUpdate,
  UnknownTimezone
} from "../domain/Schedule.js"
import type { StorageReadError } from "../domain/StorageError.js"
import type { Task } from "../domain/Task.js"
import type { SubmitError } from "./Queue.js"

/**
 * Failures of reading or writing schedule records.
 *
 * @since 0.1.0
 * @category errors
 */
export type ScheduleStoreError = StorageReadError | MalformedObject

/**
 * Why a schedule definition was refused.
 *
 * @since 0.1.0
 * @category errors
 */
export type ScheduleDefinitionError = InvalidCron | UnknownTimezone | InvalidArgument

/**
 * A schedule with the instants it will fire at next.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduleWithRuns {
  readonly schedule: Schedule
  /** The next cron instants after now (empty when disabled). */
  readonly nextRuns: ReadonlyArray<DateTime.Utc>
}

/**
 * A schedule's state for operators: definition, last firing, next firing.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduleStatus {
  readonly schedule: Schedule
  readonly lastRun: Option.Option<LastRun>
  /**
   * Present when `schedules/{id}/last_run.json` exists but does not decode: the status is still
   * shown (as if the schedule never ran) and this says what is wrong with the record.
   */
  readonly lastRunMalformed: Option.Option<MalformedObject>
  /** When the next firing is due (none when disabled or when the cron never fires again). */
  readonly nextRun: Option.Option<DateTime.Utc>
}

/**
 * One firing a pass made.
 *
 * @since 0.1.0
 * @category models
 */
export interface Firing {
  readonly scheduleId: string
  /** The cron instant: the firing's identity. */
  readonly instant: DateTime.Utc
  readonly taskId: string
  /** Whether it was a catch-up of a missed instant (due longer ago than the lateness bound). */
  readonly catchUp: boolean
}

/**
 * A firing that could not be submitted; it is retried on the next pass (`last_run` is untouched).
 *
 * @since 0.1.0
 * @category models
 */
export interface FiringFailure {
  readonly scheduleId: string
  readonly instant: DateTime.Utc
  readonly error: SubmitError | ScheduleStoreError | InvalidCron | UnknownTimezone
}

/**
 * What {@link SchedulerService.listDetailed} found.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduleListing {
  readonly schedules: ReadonlyArray<Schedule>
  /** Schedule objects left out because they do not decode (each names its key). */
  readonly malformed: ReadonlyArray<MalformedObject>
}

/**
 * What one {@link SchedulerService.runDue} pass did.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunDueReport {
  readonly fired: ReadonlyArray<Firing>
  readonly failed: ReadonlyArray<FiringFailure>
  /** Missed instants dropped by the `skip` / `once` / bounded `all` policies. */
  readonly skipped: number
  /** Schedules whose `last_run` another scheduler advanced first (a lost CAS: nothing to do). */
  readonly lostRaces: number
  /** For each enabled schedule looked at: when its next firing is due. */
  readonly nextDue: ReadonlyArray<{ readonly scheduleId: string; readonly dueAt: DateTime.Utc }>
  /** Ids of the schedules looked at (all, or the ones asked for that still exist). */
  readonly seen: ReadonlyArray<string>
}

/**
 * Options of {@link SchedulerService.runDue}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunDueOptions {
  /** Only these schedules (each re-read: a disable or delete since the last pass is honoured). Default: all. */
  readonly ids?: ReadonlyArray<string> | undefined
}

/**
 * The Scheduler service's interface.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchedulerService {
  /**
   * Creates a schedule (create-only: an existing id fails with ScheduleExists). Validates the cron
   * and timezone, and returns the next runs. A new schedule first fires at its first cron instant
   * after creation.
   */
  readonly create: (
    spec: ScheduleSpec,
    options?: { readonly previewRuns?: number | undefined }
  ) => Effect.Effect<ScheduleWithRuns, ScheduleDefinitionError | ScheduleExists | ScheduleStoreError>

  /** Reads a schedule; none if missing. */
  readonly get: (id: string) => Effect.Effect<Option.Option<Schedule>, InvalidArgument | ScheduleStoreError>

  /** All schedules, by id. Objects that do not decode are skipped with a warning in the log. */
  readonly list: Effect.Effect<ReadonlyArray<Schedule>, StorageReadError>

  /** All schedules, by id, and the schedule objects that were skipped because they do not decode. */
  readonly listDetailed: Effect.Effect<ScheduleListing, StorageReadError>

  /** Changes a schedule (compare-and-swap; concurrent updates are retried on the fresh record). */
  readonly update: (
    id: string,
    update: ScheduleUpdate
  ) => Effect.Effect<ScheduleWithRuns, ScheduleDefinitionError | ScheduleNotFound | ScheduleStoreError>

  /** Enables a schedule; it fires from its first instant after now (the disabled period is not caught up). */
  readonly enable: (id: string) => Effect.Effect<Schedule, InvalidArgument | ScheduleNotFound | ScheduleStoreError>

  /** Disables a schedule; running schedulers stop firing it from their next pass. */
  readonly disable: (id: string) => Effect.Effect<Schedule, InvalidArgument | ScheduleNotFound | ScheduleStoreError>

  /** Deletes a schedule and its last-run record; false if it did not exist. */
  readonly delete: (id: string) => Effect.Effect<boolean, InvalidArgument | StorageReadError>

  /** Submits the schedule's task now, outside the cron (no idempotency key, `last_run` unchanged). */
  readonly triggerNow: (id: string) => Effect.Effect<Task, InvalidArgument | ScheduleNotFound | ScheduleStoreError | SubmitError>

  /** The schedule's last-run record; none if it never fired. */
  readonly lastRun: (id: string) => Effect.Effect<Option.Option<LastRun>, InvalidArgument | ScheduleStoreError>

  /** When the schedule fires next; none when disabled or never again. */
  readonly nextRun: (
    id: string
  ) => Effect.Effect<Option.Option<DateTime.Utc>, InvalidArgument | ScheduleNotFound | ScheduleStoreError | InvalidCron | UnknownTimezone>

  /** Definition, last run and next run together. */
  readonly status: (
    id: string
  ) => Effect.Effect<ScheduleStatus, InvalidArgument | ScheduleNotFound | ScheduleStoreError | InvalidCron | UnknownTimezone>

  /**
   * One scheduler pass at server time: for each enabled schedule, the firings due under its
   * missed-window policy are submitted with their deterministic idempotency key, then `last_run`
   * is advanced by compare-and-swap. Safe to run on any number of instances at once: each firing
   * makes one task. Per-schedule failures are reported, not raised; only a failure to list fails.
   */
  readonly runDue: (options?: RunDueOptions) => Effect.Effect<RunDueReport, StorageReadError>

  /**
   * The settings of the queue the firings are submitted to. A worker follows them (its shard
   * prefix length above all: it polls the shards the firings and this config's producers write to).
   */
  readonly queueConfig: QueueConfig
}

/**
 * The Scheduler service: `yield* Scheduler` gives the schedules API.
 *
 * @since 0.1.0
 * @category tags
 */
export class Scheduler extends Context.Tag("buquet/Scheduler")<Scheduler, SchedulerService>() {}
