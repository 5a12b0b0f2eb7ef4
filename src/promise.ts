/**
 * `buquet/promise`: the Promise facade, for code that does not use Effect (design.md §7).
 *
 * ```ts
 * import { connect, PermanentError, RetryableError } from "buquet/promise"
 *
 * const queue = await connect()                     // env, config files, else the embedded ./.buquet
 * const task = await queue.submit("send_email", { to: "a@example.com" })
 *
 * const worker = queue.worker({ concurrency: 4 })
 * worker.task("send_email", async (input, ctx) => {
 *   if (ctx.signal.aborted) throw new RetryableError("stopping")
 *   return { sent: true }
 * })
 * await worker.run()                                // until worker.stop(), SIGINT or SIGTERM
 * await queue.close()                               // releases everything: the process can exit
 * ```
 *
 * One `ManagedRuntime` per {@link connect}; every failure rejects with a {@link BuquetError}
 * carrying the Effect API's tagged error as `_tag`, `code` and `cause`.
 *
 * @module
 */
export { connect, Queue } from "./promise/queue.js"
export type {
  BulkOptions,
  CancelOptions,
  ConnectOptions,
  FlowCreated,
  FlowJob,
  FlowNodeIds,
  ListOptions,
  ScheduleSpec,
  ScheduleUpdate,
  Schedules,
  Schemas,
  SubmitItem,
  SubmitOptions
} from "./promise/queue.js"
export { Workflow } from "./promise/workflows.js"
export type {
  OnFailure,
  WorkflowCompensationContext,
  WorkflowRun,
  WorkflowRunPage,
  WorkflowSignal,
  WorkflowStatus,
  WorkflowStep,
  WorkflowStepContext,
  WorkflowStepOptions,
  WorkflowStepStatus,
  WorkflowSweepReport,
  Workflows
} from "./promise/workflows.js"
export { Worker } from "./promise/worker.js"
export type { MonitorSettings, PollingOptions, ShardLeasingOptions, WorkerEvent, WorkerEventType, WorkerOptions, WorkerStats } from "./promise/worker.js"
export { handlersFromModule } from "./promise/handlers.js"
export type { ChildResult, EffectHandler, Handler, HandlerMap, HandlerOptions, TaskContext } from "./promise/handlers.js"
export { BuquetError, PermanentError, RescheduleError, RetryableError } from "./promise/errors.js"
export type { LeaseLostError, RescheduleOptions } from "./promise/errors.js"
export type {
  CancelManyResult,
  CancelOutcome,
  CancelResult,
  JsonSchema,
  LastRun,
  PauseState,
  RetryPolicy,
  Schedule,
  ScheduleStatus,
  ScheduleWithRuns,
  SubmitManyResult,
  Task,
  TaskEvent,
  TaskHistory,
  TaskPage,
  TaskStatus,
  TaskVersion,
  TypedTaskType
} from "./promise/types.js"
