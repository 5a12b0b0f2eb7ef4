/**
 * Handler definitions: `Worker.handler(TaskTypeOrName, (input, ctx) => Effect)`.
 *
 * A typed contract (`TaskType.make(name, { input, output })`) decodes the stored input with its
 * Schema before the handler runs (a bad input is a PermanentError carrying the decode message) and
 * encodes the handler's output with its output Schema. A plain string task type hands the handler
 * the stored JSON as `unknown` and stores its result as JSON.
 *
 * @module
 */
import { Effect, Schema } from "effect"
import type { Duration } from "effect"
import { describeParseError } from "../../domain/Codec.js"
import type { Task } from "../../domain/Task.js"
import type { TaskType } from "../../domain/TaskType.js"
import type { FollowUpOptions } from "../../domain/FollowUpRequest.js"
import type { InvalidArgument, MalformedObject } from "../../domain/QueueError.js"
import type { ChildResult } from "../../domain/FlowRequest.js"
import type { StorageReadError } from "../../domain/StorageError.js"
import type { PayloadMissing, SchemaValidationFailed } from "../../domain/TaskErrors.js"
import type { LeaseLost } from "./Errors.js"

/** What a handler can see and do about the task it runs. */
export interface TaskContext {
  /** The task's id. */
  readonly taskId: string
  /** This attempt's number (1 for the first run). */
  readonly attempt: number
  /** The task record as claimed (status `running`, with this worker's lease). */
  readonly task: Task
  /** The id of the worker running it. */
  readonly workerId: string
  /**
   * Extends the lease (and the local execution deadline) by `by` from `max(lease end, now)`.
   * Fails with LeaseLost when another worker owns the task now: stop working on it.
   */
  readonly extendLease: (by: Duration.DurationInput) => Effect.Effect<void, LeaseLost>
  /** Records progress; written to the task at most every few seconds (the latest value wins). */
  readonly progress: (value: unknown) => Effect.Effect<void>
  /** Whether cancellation of this task has been requested (the worker also interrupts the handler). */
  readonly isCancelRequested: Effect.Effect<boolean>
  /**
   * Enqueues a follow-up task, created exactly once if (and only if) this attempt completes — even
   * when the worker dies right after the completion is written (domain/FollowUps.ts). Succeeds with
   * the follow-up's id, fixed before it exists; a failed or retried attempt enqueues nothing. A
   * typed contract encodes the input with its Schema. Checked as a submit is: bad options or an
   * input with no JSON form fail with InvalidArgument, an input its contract's Schema or its type's
   * published JSON Schema refuses with SchemaValidationFailed (a stored schema that does not
   * compile is a MalformedObject naming its key).
   */
  readonly enqueue: {
    <I, O, II, OI>(type: TaskType<I, O, II, OI>, input: I, options?: FollowUpOptions): Effect.Effect<string, FollowUpError>
    (taskType: string, input: unknown, options?: FollowUpOptions): Effect.Effect<string, FollowUpError>
  }
  /**
   * A flow's parent (Queue.flow): what each of its children ended with — status, output (JSON),
   * last error — in the order they were added. Empty for a task that is not a flow's parent.
   */
  readonly childrenResults: Effect.Effect<ReadonlyArray<ChildResult>, ChildrenReadError>
  /**
   * The results of the children of one typed contract, with each completed child's output decoded
   * by its output Schema (a child whose stored output does not match fails with MalformedObject).
   */
  readonly childResults: <I, O, II, OI>(type: TaskType<I, O, II, OI>) => Effect.Effect<ReadonlyArray<ChildResult<O>>, ChildrenReadError>
}

/** Why a parent's handler could not read its children's results (storage, a malformed object, a lost payload). */
export type ChildrenReadError = StorageReadError | MalformedObject | PayloadMissing

/**
 * Why `ctx.enqueue` refused a follow-up (or could not read its type's published schema).
 *
 * @since 0.1.0
 * @category errors
 */
export type FollowUpError = InvalidArgument | SchemaValidationFailed | MalformedObject | StorageReadError

/** Options of one handler. */
export interface HandlerOptions {
  /**
   * Renew the lease automatically while the handler runs (a fiber extends it by the task's
   * timeout whenever half of it is left), for handlers that cannot say how long they take.
   */
  readonly autoExtendLease?: boolean | undefined
  /** A local rate limit: at most `limit` claims of this type per `interval` in this worker. */
  readonly rateLimit?: { readonly limit: number; readonly interval: Duration.DurationInput } | undefined
}

/** A handler registered for one task type (the input/output Schemas come from the contract). */
export interface HandlerDefinition<R = never> {
  readonly taskType: string
  /** Decodes the stored JSON input for the handler (identity for plain types). */
  readonly decodeInput: (json: unknown) => Effect.Effect<unknown, string>
  /** Encodes the handler's result to JSON (identity for plain types). */
  readonly encodeOutput: (output: unknown) => Effect.Effect<unknown, string>
  readonly run: (input: unknown, ctx: TaskContext) => Effect.Effect<unknown, unknown, R>
  readonly options: HandlerOptions
}

/**
 * Defines a handler. With a contract, `input` is the decoded Type and the result is encoded with
 * the output Schema; with a plain name, input and output are JSON.
 *
 * ```ts
 * Worker.handler(SendEmail, (input, ctx) => Effect.succeed({ sent: true }))
 * Worker.handler("resize", (input) => Effect.fail(new RetryableError({ message: "busy" })))
 * ```
 */
export function handler<I, O, II, OI, E, R>(
  type: TaskType<I, O, II, OI>,
  run: (input: I, ctx: TaskContext) => Effect.Effect<O, E, R>,
  options?: HandlerOptions
): HandlerDefinition<R>
export function handler<E, R>(
  type: string,
  run: (input: unknown, ctx: TaskContext) => Effect.Effect<unknown, E, R>,
  options?: HandlerOptions
): HandlerDefinition<R>
export function handler<E, R>(
  type: string | TaskType<unknown, unknown, unknown, unknown>,
  run: (input: unknown, ctx: TaskContext) => Effect.Effect<unknown, E, R>,
  options: HandlerOptions = {}
): HandlerDefinition<R> {
  if (typeof type === "string") {
    return { taskType: type, decodeInput: Effect.succeed, encodeOutput: Effect.succeed, run, options }
  }
  return {
    taskType: type.name,
    decodeInput: (json) =>
      Schema.decodeUnknown(type.input)(json).pipe(
        Effect.mapError((e) => `stored input of ${type.name} does not match its Schema: ${describeParseError(e)}`)
      ),
    encodeOutput: (output) =>
      Schema.encodeUnknown(type.output)(output).pipe(
        Effect.mapError((e) => `output of ${type.name} does not match its Schema: ${describeParseError(e)}`)
      ),
    run,
    options
  }
}
