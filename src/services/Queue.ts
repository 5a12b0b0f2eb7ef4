/**
 * The Queue: everything a producer and an operator does with tasks (design.md §5.4, §7). It speaks
 * only to `Storage` and `ServerClock`; the implementation is `layers/Queue.ts`.
 *
 * @module
 */
import { Context, DateTime, Effect, Option } from "effect"
import type { IdempotencyConflict, IllegalTransition, PayloadMissing, SchemaValidationFailed, TaskNotFound, UnhandledTaskType } from "../domain/TaskErrors.js"
import type { InvalidArgument, MalformedObject } from "../domain/QueueError.js"
import type { PauseState } from "../domain/Pause.js"
import type { QueueConfig } from "../domain/QueueConfig.js"
import type { ReadyEntry } from "../domain/ReadyIndex.js"
import type { StorageReadError } from "../domain/StorageError.js"
import type { SubmitOptions } from "../domain/SubmitOptions.js"
import type { Task, TaskEvent } from "../domain/Task.js"
import type { FlowIds, FlowSpec } from "../domain/FlowRequest.js"
import type { ListSort } from "../domain/TaskOrder.js"
import type { TaskJsonSchemas } from "../domain/TaskSchemas.js"
import type { TaskStatus } from "../domain/TaskStatus.js"
import type { TaskType } from "../domain/TaskType.js"

/**
 * Failures of reads: the storage's, or an object that does not decode.
 *
 * @since 0.1.0
 * @category errors
 */
export type QueueReadError = StorageReadError | MalformedObject

/**
 * Failures of writes. Lost preconditions and ambiguous outcomes are resolved inside the Queue by
 * re-reading, so they never surface; a storage that stays unavailable does.
 *
 * @since 0.1.0
 * @category errors
 */
export type QueueWriteError = StorageReadError | MalformedObject

/**
 * Why a submit failed.
 *
 * @since 0.1.0
 * @category errors
 */
export type SubmitError = InvalidArgument | SchemaValidationFailed | IdempotencyConflict | UnhandledTaskType | QueueWriteError

/**
 * One item of {@link QueueService.submitMany}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubmitItem {
  readonly taskType: string
  readonly input: unknown
  readonly options?: SubmitOptions | undefined
}

/**
 * The result of one item of a bulk submit: a task, or the reason it failed. Partial failure is never hidden.
 *
 * @since 0.1.0
 * @category models
 */
export type SubmitManyResult =
  | { readonly index: number; readonly _tag: "Submitted"; readonly task: Task }
  | { readonly index: number; readonly _tag: "Failed"; readonly error: SubmitError }

/**
 * Options of bulk operations.
 *
 * @since 0.1.0
 * @category models
 */
export interface BulkOptions {
  /** How many items run at once (default: the queue's `bulkConcurrency`). */
  readonly concurrency?: number | undefined
}

/**
 * What a cancel did.
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
 * One item of a bulk cancel: its result, or the error that stopped it (other items go on).
 *
 * @since 0.1.0
 * @category models
 */
export type CancelManyResult =
  | ({ readonly _tag: "Done" } & CancelResult)
  | { readonly _tag: "Failed"; readonly taskId: string; readonly error: InvalidArgument | QueueWriteError }

/**
 * Who cancels and why.
 *
 * @since 0.1.0
 * @category models
 */
export interface CancelOptions {
  /** Stored in `last_error` and in the task's history. */
  readonly reason?: string | undefined
  /** Stored in `cancelled_by`. */
  readonly cancelledBy?: string | undefined
}

/**
 * What `markExpired` did.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExpireResult {
  readonly taskId: string
  /** `expired`: done now; `not_due`: its TTL has not passed; `not_pending`: it ran or ended; `not_found`. */
  readonly outcome: "expired" | "not_due" | "not_pending" | "not_found"
  readonly task?: Task | undefined
}

/**
 * Filters and paging of {@link QueueService.list}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListTasksOptions {
  /** Only tasks in this status (or these statuses). Applied before the limit. */
  readonly status?: TaskStatus | ReadonlyArray<TaskStatus> | undefined
  /** Only tasks of this type. Applied before the limit. */
  readonly taskType?: string | undefined
  /** Only this shard (default: all shards). */
  readonly shard?: string | undefined
  /** Most tasks to return (default 100, at most 1000). */
  readonly limit?: number | undefined
  /** The `cursor` of the previous page (of the same sort). */
  readonly cursor?: string | undefined
  /**
   * The order: `key` (default: storage order, read page by page), or `created` / `updated`
   * (newest first) and `created-asc` (oldest first), which read every task under the prefix to
   * sort them and report how many match (`TaskPage.matched`).
   */
  readonly sort?: ListSort | undefined
}

/**
 * The orders `list` knows (defined with their comparison in `domain/TaskOrder.ts`).
 *
 * @since 0.1.0
 * @category models
 */
export { listSorts } from "../domain/TaskOrder.js"

/**
 * One of {@link listSorts}.
 *
 * @since 0.1.0
 * @category models
 */
export type { ListSort } from "../domain/TaskOrder.js"

/**
 * One page of tasks, in key order (shard, then id), or in the order `sort` asked for.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskPage {
  readonly tasks: ReadonlyArray<Task>
  /** Pass back as `cursor` for the next page; absent when there is no more. */
  readonly cursor: string | undefined
  /** How many task objects were read to fill the page. */
  readonly scanned: number
  /** Task objects that did not decode (named by key); they are skipped, not hidden. */
  readonly malformed: ReadonlyArray<MalformedObject>
  /** How many tasks match the filters in all (before paging); only for a sorted list. */
  readonly matched?: number | undefined
}

/**
 * A stored version of a task (only where the bucket's versioning works).
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskVersion {
  readonly versionId: string
  readonly lastModified: DateTime.Utc
  readonly isLatest: boolean
  /** The task as stored in that version; absent for delete markers and undecodable versions. */
  readonly task: Task | undefined
}

/**
 * A task's history: its own transition log (every provider) and, where available, S3 versions.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskHistory {
  readonly taskId: string
  /** The bounded transition log, oldest first. */
  readonly events: ReadonlyArray<TaskEvent>
  /** Stored versions, newest first; empty when the bucket keeps none. */
  readonly versions: ReadonlyArray<TaskVersion>
}

/**
 * A created flow: the root task as stored, and the ids of every node.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlowCreated extends FlowIds {
  readonly task: Task
}

/**
 * The Queue service's interface.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueService {
  /** The settings this queue runs with. */
  readonly config: QueueConfig

  /**
   * Submits a task: a typed contract (input type-checked and encoded by its Schema) or a plain
   * task type with JSON input. Built from server time; the ready marker is written before the
   * create-only PUT of the task, so no pending task is ever unfindable. With an idempotency key,
   * concurrent submits make exactly one task and all get it back.
   */
  readonly submit: {
    <I, O, II, OI>(type: TaskType<I, O, II, OI>, input: I, options?: SubmitOptions): Effect.Effect<Task, SubmitError>
    (taskType: string, input: unknown, options?: SubmitOptions): Effect.Effect<Task, SubmitError>
  }

  /**
   * Submits many tasks with bounded concurrency; one result per item, in input order. A typed
   * contract with a list of inputs, or a list of `{ taskType, input, options }`.
   */
  readonly submitMany: {
    <I, O, II, OI>(
      type: TaskType<I, O, II, OI>,
      inputs: Iterable<I>,
      options?: SubmitOptions & BulkOptions
    ): Effect.Effect<ReadonlyArray<SubmitManyResult>>
    (items: Iterable<SubmitItem>, options?: BulkOptions): Effect.Effect<ReadonlyArray<SubmitManyResult>>
  }

  /**
   * Creates a flow (BullMQ's FlowProducer): the root task waits, not claimable, until its
   * children have all ended, then runs and reads their results (`ctx.childrenResults`); children
   * may have children. Created top-down exactly once (a crash mid-way is finished by recovery);
   * see domain/Flows.ts. Returns the root as stored and the ids of every node.
   */
  readonly flow: (spec: FlowSpec) => Effect.Effect<FlowCreated, SubmitError>

  /** Reads a task by id; none if it does not exist. A hostile id fails with InvalidArgument. */
  readonly get: (taskId: string) => Effect.Effect<Option.Option<Task>, InvalidArgument | QueueReadError>

  /** Lists tasks across shards (or one), filters applied before the limit, paged by cursor. */
  readonly list: (options?: ListTasksOptions) => Effect.Effect<TaskPage, InvalidArgument | StorageReadError>

  /** Due entries of the ready index (one shard, or all), highest priority first within a shard. */
  readonly listReady: (
    options?: { readonly shard?: string | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<ReadyEntry>, InvalidArgument | StorageReadError>

  /** A task's transition log, plus S3 versions where the bucket's versioning works. */
  readonly history: (taskId: string) => Effect.Effect<TaskHistory, InvalidArgument | TaskNotFound | QueueReadError>

  /** The bucket's time. */
  readonly now: Effect.Effect<DateTime.Utc>

  /**
   * Cancels a task. Pending → `cancelled`; running → `cancel_requested` (the worker interrupts the
   * handler); terminal → `already_terminal`; missing → `not_found`. Idempotent; a race with a
   * claim is resolved by re-reading, never by overwriting.
   */
  readonly cancel: (
    taskId: string,
    options?: CancelOptions
  ) => Effect.Effect<CancelResult, InvalidArgument | QueueWriteError>

  /** Cancels many tasks; one result per id, in order. */
  readonly cancelMany: (
    taskIds: Iterable<string>,
    options?: CancelOptions & BulkOptions
  ) => Effect.Effect<ReadonlyArray<CancelManyResult>>

  /** Cancels every non-terminal task of a type (scans all shards); one result per task found. */
  readonly cancelByType: (
    taskType: string,
    options?: CancelOptions & BulkOptions
  ) => Effect.Effect<ReadonlyArray<CancelManyResult>, InvalidArgument | StorageReadError>

  /** Marks a pending task whose TTL has passed as `expired` (it is never claimed afterwards). */
  readonly markExpired: (taskId: string) => Effect.Effect<ExpireResult, InvalidArgument | QueueWriteError>

  /**
   * Replays a failed, cancelled or expired task with a fresh budget (counters reset), available now
   * (a cancelled or expired task replayed in the minute it was last due: at the next minute, as
   * the DELETE of its old ready marker may still land and the new marker must not have its key).
   */
  readonly replay: (
    taskId: string
  ) => Effect.Effect<Task, InvalidArgument | TaskNotFound | IllegalTransition | QueueWriteError>

  /** Archives a terminal task (idempotent on an archived one). */
  readonly archive: (
    taskId: string
  ) => Effect.Effect<Task, InvalidArgument | TaskNotFound | IllegalTransition | QueueWriteError>

  /** Deletes a task with its markers and payloads; false if it did not exist. */
  readonly delete: (taskId: string) => Effect.Effect<boolean, InvalidArgument | QueueReadError>

  /** The task's input, loaded from `payloads/` when it was offloaded. */
  readonly loadInput: (task: Task) => Effect.Effect<unknown, PayloadMissing | QueueReadError>

  /** The task's output, loaded from `payloads/` when it was offloaded. */
  readonly loadOutput: (task: Task) => Effect.Effect<unknown, PayloadMissing | QueueReadError>

  /** Pauses claiming of one task type, or of everything. Returns the new switches. */
  readonly pause: (taskType?: string) => Effect.Effect<PauseState, InvalidArgument | QueueWriteError>

  /** Resumes one task type, or everything (the global switch). Returns the new switches. */
  readonly resume: (taskType?: string) => Effect.Effect<PauseState, InvalidArgument | QueueWriteError>

  /** The current pause switches. */
  readonly pauseState: Effect.Effect<PauseState, QueueReadError>

  /** Publishes (or replaces) a task type's JSON Schemas; submit validates inputs against them. */
  readonly publishSchema: (
    taskType: string,
    schemas: TaskJsonSchemas
  ) => Effect.Effect<void, InvalidArgument | QueueWriteError>

  /** A task type's published JSON Schemas, if any. */
  readonly getSchema: (taskType: string) => Effect.Effect<Option.Option<TaskJsonSchemas>, InvalidArgument | QueueReadError>

  /** Task types with published schemas, sorted. */
  readonly listSchemas: Effect.Effect<ReadonlyArray<string>, StorageReadError>

  /** Deletes a task type's published schemas (no-op if none). */
  readonly deleteSchema: (taskType: string) => Effect.Effect<void, InvalidArgument | StorageReadError>
  /**
   * Tells submit's type check that a worker of this process handles these types (a worker on this
   * queue calls it as it starts), so a submit right after starting a worker neither asks the
   * bucket nor warns before the worker's `control/types/` registration has landed.
   */
  readonly noteHandledTypes: (taskTypes: ReadonlyArray<string>) => Effect.Effect<void>
}

/**
 * The Queue service: `yield* Queue` gives the producer/operator API.
 *
 * @since 0.1.0
 * @category tags
 */
export class Queue extends Context.Tag("buquet/Queue")<Queue, QueueService>() {}
