/**
 * Promise handlers: `async (input, ctx) => output`, turned into the worker's Effect handler
 * definitions. The handler's promise runs in the task's fiber; interrupting that fiber (cancel,
 * timeout, shutdown after the grace period) aborts `ctx.signal`. Thrown errors are routed by
 * type: `PermanentError` fails the task, `RescheduleError` puts it back after its delay,
 * anything else is retried with backoff.
 *
 * @module
 */
import { Duration, Effect, Runtime } from "effect"
import type { TaskType } from "../domain/TaskType.js"
import * as WorkerHandler from "../programs/worker/Handler.js"
import type { HandlerDefinition } from "../programs/worker/Handler.js"
import { fromExit, toHandlerFailure } from "./errors.js"
import { fromTask } from "./types.js"
import type { RetryPolicy, Task, TypedTaskType } from "./types.js"

/**
 * What a Promise handler can see and do about the task it runs.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskContext {
  /** The task's id. */
  readonly taskId: string
  /** This attempt's number (1 for the first run). */
  readonly attempt: number
  /** The task as claimed (status `running`, with this worker's lease). */
  readonly task: Task
  /** The id of the worker running it. */
  readonly workerId: string
  /**
   * Aborted when the handler must stop: the task was cancelled, it ran past its lease (timeout),
   * or the worker is shutting down and the grace period is over. Pass it to `fetch` and friends.
   */
  readonly signal: AbortSignal
  /**
   * Extends the lease (and the local deadline) by `seconds` from the later of the lease end and
   * now. Rejects with a `BuquetError` whose `_tag` is `"LeaseLost"` when another worker owns the
   * task now: stop working on it.
   */
  readonly extendLease: (seconds: number) => Promise<void>
  /** Records progress (any JSON); written to the task at most every few seconds, the latest value wins. */
  readonly progress: (value: unknown) => void
  /** Whether cancellation of this task has been requested (the signal is also aborted). */
  readonly isCancelRequested: () => boolean
  /**
   * Enqueues a follow-up task, created exactly once if (and only if) this attempt completes, even
   * when the worker dies right after recording the completion. Resolves with the follow-up's id
   * (fixed before it exists); a failed or retried attempt enqueues nothing. At most 100 per
   * completion. Checked as `queue.submit` checks: rejects with a `BuquetError` (`"InvalidArgument"`)
   * on a bad type name or option or an input with no JSON form, `"SchemaValidationFailed"` on an
   * input its typed contract or its type's published JSON Schema refuses.
   */
  readonly enqueue: {
    <I, O>(type: TypedTaskType<I, O>, input: I, options?: FollowUpOptions): Promise<string>
    (taskType: string, input: unknown, options?: FollowUpOptions): Promise<string>
  }
  /**
   * A flow's parent (`queue.flow`): what each child ended with, in the order they were added —
   * `{ id, taskType, status, output, error }` (`output` when it completed, `error` its last error).
   * Empty for a task that is not a flow's parent.
   */
  readonly childrenResults: () => Promise<ReadonlyArray<ChildResult>>
}

/**
 * What a child of a flow ended with (`ctx.childrenResults()`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildResult {
  readonly id: string
  readonly taskType: string
  /** `"completed"`, `"failed"`, `"cancelled"`, `"expired"`, `"archived"`, or `"missing"` (deleted since). */
  readonly status: string
  readonly output: unknown
  readonly error: string | undefined
}

/**
 * Options of a follow-up (`ctx.enqueue`): a submit's, less idempotency (a follow-up is created
 * once by construction) and the type check.
 *
 * @since 0.1.0
 * @category models
 */
export interface FollowUpOptions {
  /** Lease length of one attempt, in seconds (default 300). */
  readonly timeoutSeconds?: number | undefined
  /** Retries after the first attempt (default 3). */
  readonly maxRetries?: number | undefined
  /** How many times a handler may reschedule it (unlimited when unset). */
  readonly maxReschedules?: number | undefined
  /** 0 (default) to 9999: within a shard, higher priorities are claimed first. */
  readonly priority?: number | undefined
  /** Free-form labels stored with the task. */
  readonly tags?: ReadonlyArray<string> | undefined
  /** Retry backoff; unset fields keep the defaults. */
  readonly retryPolicy?: Partial<RetryPolicy> | undefined
  /** Not before this instant (kept as a delay from the enqueue). Exclusive with `delayMs`. */
  readonly scheduleAt?: Date | undefined
  /** Not before this many milliseconds after it is created. */
  readonly delayMs?: number | undefined
  /** Expire (never run) if not claimed within this many seconds of being created. Exclusive with `expiresAt`. */
  readonly ttlSeconds?: number | undefined
  /** Expire if not claimed by this instant (kept as a TTL from the enqueue). */
  readonly expiresAt?: Date | undefined
}

/**
 * A Promise handler: gets the input and a context, resolves with the output (any JSON).
 *
 * @since 0.1.0
 * @category models
 */
export type Handler<I = unknown, O = unknown> = (input: I, ctx: TaskContext) => Promise<O> | O

/**
 * Options of one handler.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandlerOptions {
  /** Renew the lease automatically while the handler runs, for handlers that cannot say how long they take. */
  readonly autoExtendLease?: boolean | undefined
  /** A local rate limit: at most `limit` claims of this type per `intervalMs` in this worker. */
  readonly rateLimit?: { readonly limit: number; readonly intervalMs: number } | undefined
}

/**
 * Handlers by task type: the default export of a module for `buquet worker --handlers FILE`.
 *
 * @since 0.1.0
 * @category models
 */
export type HandlerMap = Readonly<Record<string, Handler>>

const toEffectOptions = (options: HandlerOptions = {}): WorkerHandler.HandlerOptions => ({
  ...(options.autoExtendLease === undefined ? {} : { autoExtendLease: options.autoExtendLease }),
  ...(options.rateLimit === undefined
    ? {}
    : { rateLimit: { limit: options.rateLimit.limit, interval: Duration.millis(options.rateLimit.intervalMs) } })
})

/**
 * The Promise {@link TaskContext} of a task the worker runs, on the handler's runtime, with the
 * abort signal of its `tryPromise`.
 *
 * @since 0.1.0
 * @category utils
 * @internal
 */
export const promiseTaskContext = (ctx: WorkerHandler.TaskContext, runtime: Runtime.Runtime<never>, signal: AbortSignal): TaskContext => ({
  taskId: ctx.taskId,
  attempt: ctx.attempt,
  task: fromTask(ctx.task),
  workerId: ctx.workerId,
  signal,
  extendLease: (seconds) =>
    Runtime.runPromiseExit(runtime)(ctx.extendLease(Duration.seconds(seconds))).then(fromExit),
  progress: (value) => Runtime.runSync(runtime)(ctx.progress(value)),
  isCancelRequested: () => Runtime.runSync(runtime)(ctx.isCancelRequested),
  enqueue: (type: string | TypedTaskType<unknown, unknown>, input: unknown, options?: FollowUpOptions) =>
    Runtime.runPromiseExit(runtime)(
      typeof type === "string" ? ctx.enqueue(type, input, options) : ctx.enqueue(asTaskType(type), input, options)
    ).then(fromExit),
  childrenResults: () => Runtime.runPromiseExit(runtime)(ctx.childrenResults).then(fromExit)
})

/** Runs a Promise handler as the Effect the worker expects. */
const toEffect = <I, O>(run: Handler<I, O>) => (input: I, ctx: WorkerHandler.TaskContext): Effect.Effect<O, unknown> =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) =>
    Effect.tryPromise({
      try: async (signal) => await run(input, promiseTaskContext(ctx, runtime, signal)),
      catch: toHandlerFailure
    }))

/**
 * A handler definition built with the Effect API's `Worker.handler` (from `buquet`), or loaded by
 * {@link handlersFromModule}: Promise code only passes it on to `worker.register`. Its handler
 * must need no services of its own.
 *
 * @since 0.1.0
 * @category models
 */
export interface EffectHandler {
  readonly taskType: string
  readonly decodeInput: (json: unknown) => unknown
  readonly encodeOutput: (output: unknown) => unknown
  readonly run: (input: unknown, ctx: never) => unknown
}

/**
 * The Effect API's task type behind a {@link TypedTaskType} (the facade's declarations only
 * name its shape).
 *
 * @since 0.1.0
 * @category utils
 * @internal
 */
export const asTaskType = <I, O>(type: TypedTaskType<I, O>): TaskType<I, O, unknown, unknown> =>
  type as unknown as TaskType<I, O, unknown, unknown>

/**
 * A Promise handler for `type` as the Effect worker's handler definition. With a typed contract
 * the input is decoded (and the output encoded) by its Schemas, as in the Effect API.
 *
 * @since 0.1.0
 * @category utils
 * @internal
 */
export function toHandlerDefinition<I, O, II, OI>(
  type: TaskType<I, O, II, OI>,
  run: Handler<I, O>,
  options?: HandlerOptions
): HandlerDefinition
/**
 * @since 0.1.0
 * @category utils
 * @internal
 */
export function toHandlerDefinition(type: string, run: Handler, options?: HandlerOptions): HandlerDefinition
/**
 * @since 0.1.0
 * @category utils
 * @internal
 */
export function toHandlerDefinition(
  type: string | TaskType<unknown, unknown, unknown, unknown>,
  run: Handler,
  options?: HandlerOptions
): HandlerDefinition {
  return typeof type === "string"
    ? WorkerHandler.handler(type, toEffect(run), toEffectOptions(options))
    : WorkerHandler.handler(type, toEffect(run), toEffectOptions(options))
}

const isHandlerDefinition = (u: unknown): u is HandlerDefinition<never> =>
  typeof u === "object" && u !== null && "taskType" in u && typeof u.taskType === "string" && "run" in u &&
  typeof u.run === "function" && "decodeInput" in u && "encodeOutput" in u

/**
 * The handlers a `--handlers` module exports as its default: either an object mapping task types
 * to Promise handlers (`export default { send_email: async (input, ctx) => … }`) or a list of
 * handler definitions built with the Effect API (`Worker.handler(…)`). Throws a TypeError that
 * says what is expected for anything else.
 *
 * @since 0.1.0
 * @category utils
 */
export const handlersFromModule: (exported: unknown) => ReadonlyArray<EffectHandler> = (exported) => definitionsFromModule(exported)

/**
 * {@link handlersFromModule} for the worker and the CLI: the definitions as the Effect worker takes them.
 *
 * @since 0.1.0
 * @category utils
 * @internal
 */
export const definitionsFromModule = (exported: unknown): ReadonlyArray<HandlerDefinition<never>> => {
  if (Array.isArray(exported)) {
    const list: ReadonlyArray<unknown> = exported
    const bad = list.findIndex((h) => !isHandlerDefinition(h))
    if (bad >= 0) throw new TypeError(`handlers module: item ${bad} of the default export is not a handler definition (build it with Worker.handler)`)
    return list.filter(isHandlerDefinition)
  }
  if (typeof exported === "object" && exported !== null) {
    const entries = Object.entries(exported)
    if (entries.length === 0) throw new TypeError("handlers module: the default export has no handlers")
    return entries.map(([taskType, run]) => {
      if (typeof run !== "function") {
        throw new TypeError(`handlers module: "${taskType}" must be a function (input, ctx) => Promise<output>`)
      }
      return toHandlerDefinition(taskType, run as Handler)
    })
  }
  throw new TypeError(
    "handlers module: the default export must be an object mapping task types to async handlers, or a list of Worker.handler(…) definitions"
  )
}
