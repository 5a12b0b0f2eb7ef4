/**
 * buquet — a distributed task queue whose only backend is an S3-compatible bucket, on Effect.
 * The public Effect API: re-exports only (design.md §7).
 *
 * ```ts
 * import { Buquet, Queue } from "buquet"
 *
 * const program = Effect.gen(function*() {
 *   const queue = yield* Queue
 *   const task = yield* queue.submit("send_email", { to: "a@example.com" }, { delay: "5 minutes" })
 * })
 * Effect.runPromise(program.pipe(Effect.provide(Buquet.layerFromConfig())))
 * ```
 *
 * @module
 */

// ---- building the stack ----------------------------------------------------------------------

/**
 * The layer constructors: `Buquet.layer({ bucket, endpoint, region, shardPrefixLen })`, `layerFromConfig`, `layerMemory`, `layerFile(dir)`.
 *
 * @since 0.1.0
 * @category constructors
 */
export * as Buquet from "./Buquet.js"
export type { BuquetLayerError, BuquetLocalOptions, BuquetS3Options, BuquetServices } from "./Buquet.js"

// ---- services (Context tags and their interfaces) ----------------------------------------------

/** The producer/operator API: submit, get, list, history, cancel, replay, archive, pause, schemas. */
export { Queue } from "./services/Queue.js"
export type * from "./services/Queue.js"
/** Recurring tasks on a cron: create, update, enable/disable, trigger, run due firings. */
export { Scheduler } from "./services/Scheduler.js"
export type * from "./services/Scheduler.js"
/** The Storage port (S3 semantics) that every protocol speaks to. */
export { Storage } from "./services/Storage.js"
export type * from "./services/Storage.js"
/** The bucket's time as an Effect Clock. */
export { ServerClock } from "./services/ServerClock.js"
export type * from "./services/ServerClock.js"
/** The resolved configuration (flags > env > profile > files > defaults). */
export { BuquetConfig } from "./services/BuquetConfig.js"
export type * from "./services/BuquetConfig.js"
/** Reads and resets the request counts of a `CountingStorage`. */
export { RequestCounter } from "./services/RequestCounter.js"
export type * from "./services/RequestCounter.js"

// ---- layers (implementations) -------------------------------------------------------------------

/** In-memory storage with exact S3 semantics (tests, demos). */
export { MemoryStorage } from "./layers/MemoryStorage.js"
/** A local directory as storage: the embedded default (`./.buquet`). */
export { FileStorage } from "./layers/FileStorage.js"
/** Storage on S3 and S3-compatible servers (AWS, MinIO, Ceph RGW, R2, …). */
export { S3Storage } from "./layers/S3Storage.js"
/** Wraps a storage and counts requests by kind. */
export { CountingStorage } from "./layers/CountingStorage.js"
/** Wraps a storage and injects seeded faults. */
export { FaultInjector, FaultyStorage } from "./layers/FaultyStorage.js"
/**
 * The Queue layer on Storage + ServerClock (`QueueLayer.layer(config)`, `QueueLayer.layerOn(storage)`).
 *
 * @since 0.1.0
 * @category layers
 */
export * as QueueLayer from "./layers/Queue.js"
/**
 * The Scheduler layer on Storage + ServerClock + Queue.
 *
 * @since 0.1.0
 * @category layers
 */
export * as SchedulerLayer from "./layers/Scheduler.js"
/**
 * The ServerClock layer (learns the bucket's time from Date headers).
 *
 * @since 0.1.0
 * @category layers
 */
export * as ServerClockLayer from "./layers/ServerClock.js"
/**
 * Configuration from flags, the environment and TOML files, through Effect Config.
 *
 * @since 0.1.0
 * @category layers
 */
export * as ConfigLayer from "./layers/Config.js"

// ---- domain models ------------------------------------------------------------------------------

/** The task object as stored, and its transition log entries. */
export { Task, TaskEvent } from "./domain/Task.js"
/** Task statuses (exactly the reference's set). */
export { allStatuses, isTerminal, TaskStatus } from "./domain/TaskStatus.js"
/** Typed task contracts shared by producers and workers. */
export { TaskType } from "./domain/TaskType.js"
/** Flows: a parent task that waits for its children (`Queue.flow`, `flowNode`, `ctx.childrenResults`). */
export { flowNode } from "./domain/FlowRequest.js"
export type { ChildResult, FlowIds, FlowNodeOptions, FlowSpec } from "./domain/FlowRequest.js"
/** Retry backoff of a task. */
export { RetryPolicy } from "./domain/RetryPolicy.js"
/** Options of a submit. */
export type { IdempotencyScopeOption, Instant, RetryPolicyOptions, SubmitOptions } from "./domain/SubmitOptions.js"
/** The Queue's settings. */
export { QueueConfig } from "./domain/QueueConfig.js"
/** Pause switches. */
export { PauseState } from "./domain/Pause.js"
/** Published JSON Schemas of a task type. */
export { TaskJsonSchemas } from "./domain/TaskSchemas.js"
/** Cron schedules and their last-run records. */
export { LastRun, MissedPolicy, Schedule } from "./domain/Schedule.js"
export type { ScheduleSpec, ScheduleUpdate } from "./domain/Schedule.js"
/** Shard and time-bucket arithmetic. */
export { allShards, shardOf, ShardPrefixLen } from "./domain/Shard.js"

// ---- errors ---------------------------------------------------------------------------------------

/** Failures of queue operations. */
export { IdempotencyConflict, IllegalTransition, PayloadMissing, SchemaValidationFailed, TaskNotFound } from "./domain/TaskErrors.js"
/** A refused argument, or an object in the bucket that does not decode. */
export { InvalidArgument, MalformedObject } from "./domain/QueueError.js"
/** Failures of the storage port. */
export { AccessDenied, InvalidResponse, NoSuchBucket, OutcomeUnknown, PreconditionFailed, StorageUnavailable } from "./domain/StorageError.js"
export type { StorageError, StorageReadError, StorageWriteError } from "./domain/StorageError.js"
/** Failures of schedules. */
export { InvalidCron, ScheduleExists, ScheduleNotFound, UnknownTimezone } from "./domain/Schedule.js"
/** A configuration value that is not allowed (names the file, the key and the allowed values). */
export { InvalidConfig } from "./domain/ConfigFile.js"

// ---- the worker ------------------------------------------------------------------------------------

/**
 * The Worker runtime: `Worker.make`, `Worker.run`, `Worker.handler` (design.md §6).
 *
 * @since 0.1.0
 * @category programs
 */
export * as Worker from "./programs/Worker.js"

/**
 * Durable workflows (preview): `@effect/workflow`'s `WorkflowEngine` on the bucket
 * (`BuquetWorkflowEngine.layer`) and the worker handlers that run workflow bodies
 * (`WorkflowWorker.handlers`). See README "Workflows (preview)".
 *
 * @since 0.1.0
 * @category workflows
 */
export * as BuquetWorkflowEngine from "./layers/BuquetWorkflowEngine.js"

/**
 * The worker handlers of the registered workflows (task types `workflow:{name}`).
 *
 * @since 0.1.0
 * @category workflows
 */
export * as WorkflowWorker from "./programs/WorkflowWorker.js"

/**
 * The engine's worker-facing service.
 *
 * @since 0.1.0
 * @category workflows
 */
export { WorkflowRunner } from "./services/WorkflowRunner.js"
export type * from "./services/WorkflowRunner.js"

/**
 * DAG workflows (the reference's `Workflow(name).step(...)` model): build one with
 * `DagWorkflow.make(name, { data }).step(...)`, run it with `DagWorkflow.handlers`, drive it with
 * `start/get/signal/pause/resume/cancel/sweep`. See README "DAG workflows".
 *
 * @since 0.1.0
 * @category workflows
 */
export * as DagWorkflow from "./programs/DagWorkflow.js"

/**
 * The bucket protocol of DAG workflow runs (`workflow/{id}/state.json`, `steps/`, `signals/`):
 * read, CAS, signal, pause/resume/cancel intents and wake-ups, for tools built on the runs.
 *
 * @since 0.1.0
 * @category workflows
 */
export * as WorkflowRuns from "./protocol/WorkflowRuns.js"

/**
 * The reconciliation sweeper of DAG workflow runs (recovers stuck runs, says which).
 *
 * @since 0.1.0
 * @category workflows
 */
export * as DagSweeper from "./programs/DagSweeper.js"
export { PermanentError, RescheduleError, RetryableError } from "./domain/HandlerErrors.js"
export type { HandlerError } from "./domain/HandlerErrors.js"
