/**
 * The worker-facing half of the buquet workflow engine: which workflows are registered, and how to
 * run one execution's body for a task of the reserved type `workflow:{name}`. The engine layer
 * (`layers/BuquetWorkflowEngine.ts`) provides it next to `@effect/workflow`'s `WorkflowEngine`;
 * `programs/WorkflowWorker.ts` turns it into worker handlers.
 *
 * @module
 */
import { Context } from "effect"
import type { Effect } from "effect"

/**
 * How a run of a workflow body ended: `complete` (the result is recorded), `suspended` (it waits
 * for a DurableDeferred or a DurableClock; a later task resumes it) or `handed-over` (another run
 * of the execution was in its body; that one replays it once more instead, see
 * `protocol/WorkflowLease.ts`).
 *
 * @since 0.1.0
 * @category workflows
 */
export interface WorkflowRunOutcome {
  readonly executionId: string
  readonly state: "complete" | "suspended" | "handed-over"
}

/**
 * Who runs the body, for how long at a time: the execution's lease is taken in the holder's name
 * and renewed every half `leaseSeconds` while the body runs (the worker passes the task's id and
 * timeout, so a task's own retry takes it back at once).
 *
 * @since 0.1.0
 * @category workflows
 */
export interface RunLease {
  readonly holder: string
  readonly leaseSeconds: number
}

/**
 * @since 0.1.0
 * @category workflows
 */
export interface WorkflowRunnerService {
  /** The names of the workflows registered so far (by their `toLayer`). */
  readonly workflows: Effect.Effect<ReadonlyArray<string>>
  /**
   * Runs (or replays) the body of an execution of workflow `name` for a task whose input is
   * `input`, holding the execution's lease meanwhile. Fails (so the task is retried) when the bucket
   * could not be read or written or the lease was lost; fails with a `PermanentError` when the task
   * or the execution record is unusable.
   */
  readonly run: (name: string, input: unknown, lease: RunLease) => Effect.Effect<WorkflowRunOutcome, unknown>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class WorkflowRunner extends Context.Tag("buquet/WorkflowRunner")<WorkflowRunner, WorkflowRunnerService>() {}
