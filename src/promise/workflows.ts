/**
 * DAG workflows from Promise code: {@link Workflow.define} builds a workflow of async steps,
 * `worker.workflow(wf)` runs it, and `queue.workflows` starts, reads, signals, pauses, resumes,
 * cancels and sweeps its runs. A thin layer over the Effect API (`DagWorkflow`): the same bucket
 * format, the same rules; data, results and signal payloads are plain JSON here.
 *
 * @module
 */
import { Cause, Duration, Effect, Exit, Option, Runtime, Schema } from "effect"
import { describeHold, recordedDefinition, stepRows, stepsHeldByPause } from "../domain/workflow/RunView.js"
import { Queue } from "../services/Queue.js"
import type { WorkflowState } from "../domain/workflow/WorkflowState.js"
import { WorkflowStatus as WorkflowStatusSchema } from "../domain/workflow/WorkflowState.js"
import * as DagWorkflow from "../programs/DagWorkflow.js"
import { WaitingForSignal } from "../programs/DagWorkflow.js"
import type { BuquetServices as Services } from "../Buquet.js"
import type { HandlerDefinition } from "../programs/worker/Handler.js"
import { BuquetError, toHandlerFailure } from "./errors.js"
import { promiseTaskContext } from "./handlers.js"
import type { TaskContext } from "./handlers.js"

/**
 * What a step's permanent failure does to its run (see README "DAG workflows").
 *
 * @since 0.1.0
 * @category models
 */
export type OnFailure = "fail_workflow" | "pause_workflow" | "continue" | "compensate"

/**
 * A run's status.
 *
 * @since 0.1.0
 * @category models
 */
export type WorkflowStatus = "pending" | "running" | "waiting_signal" | "compensating" | "paused" | "completed" | "failed" | "cancelled"

/**
 * A step's status as shown: `skipped` is a pending step that can never run because a dependency failed.
 *
 * @since 0.1.0
 * @category models
 */
export type WorkflowStepStatus = "pending" | "running" | "completed" | "failed" | "cancelled" | "skipped"

/**
 * What a step's function gets.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowStepContext<Data = unknown> {
  /** The run's id. */
  readonly runId: string
  /** This step's name. */
  readonly step: string
  /** The step's attempt: 1 for the first run, + 1 after each resume of a paused run. */
  readonly attempt: number
  /** The run's data (the JSON it was started with). */
  readonly data: Data
  /** The result of a completed step this one depends on. */
  readonly result: (step: string) => Promise<unknown>
  /**
   * The payload of the next signal of `name`. When none has arrived, the step's task ends (do not
   * catch what this throws then) and the step runs again from the start once one is sent: it holds
   * no worker while it waits, and nobody polls the inbox. A step receives one signal per name; a
   * retry of the step gets the same one back.
   */
  readonly waitForSignal: (name: string) => Promise<unknown>
  /** The step's task: its abort signal, lease extension, progress. */
  readonly task: TaskContext
}

/**
 * One step: its dependencies, retry and timeout, its failure policy, and its async function.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowStepOptions<Data = unknown> {
  /** Steps that must complete first (declared before this one). */
  readonly dependsOn?: ReadonlyArray<string> | undefined
  /** Retries after the first attempt (default 3). */
  readonly retries?: number | undefined
  /** Seconds one attempt may take (default 300). */
  readonly timeoutSeconds?: number | undefined
  /** What the step's permanent failure does to the run (default `fail_workflow`). */
  readonly onFailure?: OnFailure | undefined
  /** The compensation (declared with `.compensation`) that undoes this step when a `compensate` failure unwinds the run. */
  readonly compensation?: string | undefined
  /** Does the step's work; resolves with its result (any JSON). Throw `PermanentError` to fail it at once. */
  readonly run: (ctx: WorkflowStepContext<Data>) => Promise<unknown> | unknown
}

/**
 * What a compensation's function gets: the run, and the step it undoes.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowCompensationContext<Data = unknown> {
  readonly runId: string
  /** The step being undone. */
  readonly step: string
  readonly data: Data
  /** The result of a completed step (e.g. the one being undone). */
  readonly result: (step: string) => Promise<unknown>
  readonly task: TaskContext
}

const effects = new WeakMap<Workflow<never>, DagWorkflow.Any>()

/** Thrown inside a step's function when it must wait for a signal; turned back into the Effect API's `WaitingForSignal`. */
class WaitingThrown extends Error {
  constructor(readonly waiting: WaitingForSignal) {
    super(`waiting for signal "${waiting.signal}": let this propagate out of the step`)
  }
}

/** The value of an exit, or its failure thrown as it is (a step's `result` / `waitForSignal`). */
const fromStepExit = <A>(exit: Exit.Exit<A, unknown>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) throw failure.value
  throw Cause.squash(exit.cause)
}

/**
 * A DAG workflow of async steps, for Promise code. Build it with {@link Workflow.define}, then
 * `.step(…)` and `.compensation(…)` (each returns a new workflow); register it on a worker with
 * `worker.workflow(wf)` and start runs with `queue.workflows.start(wf, data)`.
 *
 * ```ts
 * const order = Workflow.define<{ id: string }>("order")
 *   .step("reserve", { run: async (ctx) => `r-${ctx.data.id}` })
 *   .step("charge", { dependsOn: ["reserve"], run: async (ctx) => ({ charged: await ctx.result("reserve") }) })
 * queue.worker().workflow(order).run()
 * const run = await queue.workflows.start(order, { id: "o1" })
 * ```
 *
 * @since 0.1.0
 * @category facade
 */
export class Workflow<Data = unknown> {
  /** The workflow's name (its runs' `type`). */
  readonly name: string

  private constructor(name: string, effect: DagWorkflow.Any) {
    this.name = name
    effects.set(this as Workflow<never>, effect)
  }

  /** A workflow named `name` with no steps yet; `Data` describes the JSON a run starts with. */
  static define<Data = unknown>(name: string): Workflow<Data> {
    return new Workflow<Data>(name, DagWorkflow.make(name, { data: Schema.Unknown }))
  }

  /** The workflow with one more step (its `dependsOn` may name only steps declared before it). */
  step(name: string, options: WorkflowStepOptions<Data>): Workflow<Data> {
    const run = options.run
    const next = effectOf(this).step(name, {
      dependsOn: options.dependsOn,
      retries: options.retries,
      timeoutSeconds: options.timeoutSeconds,
      onFailure: options.onFailure,
      compensation: options.compensation,
      output: Schema.Unknown,
      run: (ctx) =>
        Effect.flatMap(Effect.runtime<never>(), (runtime) => {
          let waiting: WaitingForSignal | undefined
          return Effect.tryPromise({
            try: async (signal) =>
              await run({
                runId: ctx.runId,
                step: ctx.step,
                attempt: ctx.attempt,
                data: ctx.data as Data,
                result: (step) => Runtime.runPromiseExit(runtime)(ctx.result(step)).then(fromStepExit),
                waitForSignal: (signalName) =>
                  Runtime.runPromiseExit(runtime)(ctx.waitForSignal(signalName, Schema.Unknown)).then((exit) => {
                    try {
                      return fromStepExit(exit)
                    } catch (e) {
                      if (e instanceof WaitingForSignal) {
                        waiting = e
                        throw new WaitingThrown(e)
                      }
                      throw e
                    }
                  }),
                task: promiseTaskContext(ctx.task, runtime, signal)
              }),
            catch: (thrown) => (waiting !== undefined ? waiting : toHandlerFailure(thrown))
          })
        })
    })
    return new Workflow<Data>(this.name, next)
  }

  /** The workflow with a compensation (name it in a step's `compensation`). */
  compensation(name: string, options: { readonly run: (ctx: WorkflowCompensationContext<Data>) => Promise<void> | void }): Workflow<Data> {
    const run = options.run
    const next = effectOf(this).compensation(name, {
      run: (ctx) =>
        Effect.flatMap(Effect.runtime<never>(), (runtime) =>
          Effect.tryPromise({
            try: async (signal) =>
              void await run({
                runId: ctx.runId,
                step: ctx.step,
                data: ctx.data as Data,
                result: (step) => Runtime.runPromiseExit(runtime)(ctx.result(step)).then(fromStepExit),
                task: promiseTaskContext(ctx.task, runtime, signal)
              }),
            catch: toHandlerFailure
          }))
    })
    return new Workflow<Data>(this.name, next)
  }
}

/**
 * The Effect API's workflow behind a Promise {@link Workflow}.
 *
 * @since 0.1.0
 * @category utils
 * @internal
 */
export const effectOf = (workflow: Workflow<never> | Workflow<unknown> | Workflow<any>): DagWorkflow.Any => { // eslint-disable-line @typescript-eslint/no-explicit-any
  const effect = typeof workflow === "object" && workflow !== null ? effects.get(workflow as Workflow<never>) : undefined
  if (effect === undefined) {
    throw new BuquetError("InvalidArgument", `${describeValue(workflow)} is not a workflow: build one with Workflow.define(name).step(…)`)
  }
  return effect
}

const describeValue = (value: unknown): string => (typeof value === "string" ? JSON.stringify(value.slice(0, 80)) : typeof value === "object" ? "this object" : String(value))

const workflowStatuses: ReadonlyArray<WorkflowStatus> = WorkflowStatusSchema.literals

/** `fn` as a Promise: a throw (bad input found before any I/O) becomes its rejection. */
const attempt = <A>(fn: () => Promise<A>): Promise<A> => {
  try {
    return fn()
  } catch (e) {
    return Promise.reject(e)
  }
}

const invalid = (argument: string, message: string) => new BuquetError("InvalidArgument", `${argument}: ${message}`)

/**
 * One step of a run.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowStep {
  readonly name: string
  readonly status: WorkflowStepStatus
  /** Its task's attempt (0 before it first runs). */
  readonly attempt: number
  readonly error: string | undefined
  /** The task running (or that ran) it. */
  readonly taskId: string | undefined
  readonly startedAt: Date | undefined
  readonly completedAt: Date | undefined
  /** Its result once completed (JSON). */
  readonly result: unknown
  /** The steps it depends on. */
  readonly dependsOn: ReadonlyArray<string>
}

/**
 * A run, as stored at `workflow/{id}/state.json`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowRun {
  readonly id: string
  /** The workflow's name. */
  readonly workflow: string
  readonly status: WorkflowStatus
  /** The definition hash the run was started with. */
  readonly definitionHash: string
  /** The JSON the run was started with. */
  readonly data: unknown
  /** Every step, in dependency order. */
  readonly steps: ReadonlyArray<WorkflowStep>
  /** Why it stopped (failed, paused, cancelled). */
  readonly error: { readonly type: string; readonly message: string; readonly step: string | undefined } | undefined
  readonly createdAt: Date
  readonly updatedAt: Date
  /**
   * Running steps a pause switch holds (`queue.pause(type)` or everything paused): their task
   * waits unclaimed until the resume. Filled by `get` (it reads the pause switches); undefined in
   * what `start`, `list`, `cancel`, `pause` and `resume` return.
   */
  readonly heldByPause?: ReadonlyArray<{ readonly step: string; readonly taskType: string; readonly reason: string }> | undefined
}

const toDate = (t: { readonly epochMillis: number }): Date => new Date(t.epochMillis)

/**
 * A stored run as the facade shows it.
 *
 * @since 0.1.0
 * @category utils
 * @internal
 */
export const fromState = (state: WorkflowState): WorkflowRun => ({
  id: state.id,
  workflow: state.type,
  status: state.status,
  definitionHash: state.definitionHash,
  data: state.data,
  steps: stepRows(state, recordedDefinition(state)).map((r) => ({
    name: r.name,
    status: r.status,
    attempt: r.attempt,
    error: r.error ?? undefined,
    taskId: r.taskId ?? undefined,
    startedAt: r.startedAt === null ? undefined : toDate(r.startedAt),
    completedAt: r.completedAt === null ? undefined : toDate(r.completedAt),
    result: state.steps[r.name]?.status === "completed" ? state.steps[r.name]?.result : undefined,
    dependsOn: r.dependsOn
  })),
  error: state.error === undefined ? undefined : { type: state.error.type, message: state.error.message, step: state.error.step },
  createdAt: toDate(state.createdAt),
  updatedAt: toDate(state.updatedAt)
})

/**
 * A signal as sent.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowSignal {
  readonly id: string
  readonly name: string
  readonly payload: unknown
  readonly createdAt: Date
}

/**
 * One page of runs (`queue.workflows.list`).
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowRunPage {
  readonly runs: ReadonlyArray<WorkflowRun>
  /** State objects that did not decode, each named by its key: skipped, not hidden. */
  readonly malformed: ReadonlyArray<{ readonly key: string; readonly message: string }>
  /** Pass back as `cursor` for the next page; undefined at the end. */
  readonly cursor: string | undefined
}

/**
 * What a sweep did (`queue.workflows.sweep`).
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowSweepReport {
  /** Runs read. */
  readonly scanned: number
  /** Active runs changed less than `minAgeMs` ago: not judged this pass (the next one looks again). */
  readonly young: number
  /** Stuck runs it woke, and why each was stuck. */
  readonly recovered: ReadonlyArray<{ readonly runId: string; readonly workflow: string; readonly reason: string }>
  readonly malformed: ReadonlyArray<{ readonly key: string; readonly message: string }>
}

/**
 * The DAG workflow runs of a queue (`queue.workflows`). Every method rejects with a `BuquetError`:
 * `_tag` `"WorkflowRunNotFound"` for an unknown run, `"InvalidArgument"` for a malformed id or
 * name, `"IllegalWorkflowTransition"` for an intent the run's status does not allow.
 *
 * @since 0.1.0
 * @category models
 */
export interface Workflows {
  /**
   * Starts a run of `workflow` with `data` (JSON) and wakes its orchestrator; a worker with
   * `worker.workflow(workflow)` runs it. With `id`, starting twice starts once (the existing run
   * is returned).
   */
  readonly start: <Data>(workflow: Workflow<Data>, data: Data, options?: { readonly id?: string | undefined }) => Promise<WorkflowRun>
  /** A run, or undefined if there is none with this id. */
  readonly get: (id: string) => Promise<WorkflowRun | undefined>
  /**
   * Runs in id order, `limit` per page (default 100, at most 1000). With `status`, only the runs
   * of the page in that status are returned (a page can then hold fewer, even none, while
   * `cursor` says there is more).
   */
  readonly list: (options?: {
    readonly limit?: number | undefined
    readonly cursor?: string | undefined
    readonly status?: WorkflowStatus | undefined
  }) => Promise<WorkflowRunPage>
  /** Sends a signal (payload: any JSON); a step waiting for it resumes. */
  readonly signal: (id: string, name: string, payload?: unknown) => Promise<WorkflowSignal>
  /** Cancels a run; its running step tasks are cancelled too (the worker running one is interrupted). */
  readonly cancel: (id: string, options?: { readonly reason?: string | undefined }) => Promise<WorkflowRun>
  /** Pauses a run: nothing new is scheduled until `resume`; running steps finish. */
  readonly pause: (id: string, options?: { readonly reason?: string | undefined }) => Promise<WorkflowRun>
  /** Resumes a paused run, from the step it failed at. */
  readonly resume: (id: string) => Promise<WorkflowRun>
  /** One reconciliation pass: wakes stuck runs (runs changed within `minAgeMs`, default 30000, are left alone) and says which. */
  readonly sweep: (options?: { readonly minAgeMs?: number | undefined }) => Promise<WorkflowSweepReport>
}

const malformedJson = (m: { readonly key: string; readonly message: string }) => ({ key: m.key, message: m.message })

/**
 * `queue.workflows` over a connection's runner.
 *
 * @since 0.1.0
 * @category utils
 * @internal
 */
export const makeWorkflows = (run: <A, E>(effect: Effect.Effect<A, E, Services>) => Promise<A>): Workflows => ({
  start: (workflow, data, options) => attempt(() => run(DagWorkflow.start(effectOf(workflow), data, { id: options?.id })).then(fromState)),
  get: (id) =>
    run(Effect.gen(function*() {
      const found = yield* DagWorkflow.get(id)
      if (Option.isNone(found)) return undefined
      const pause = yield* (yield* Queue).pauseState
      const heldByPause = stepsHeldByPause(found.value, pause).map((h) => ({ ...h, reason: describeHold(h, pause) }))
      return { ...fromState(found.value), heldByPause }
    })),
  list: (options) => {
    const status = options?.status
    if (status !== undefined && !workflowStatuses.includes(status)) {
      return Promise.reject(invalid("status", `${describeValue(status)} is not a workflow status; use one of ${workflowStatuses.join(", ")}`))
    }
    return run(DagWorkflow.list({ limit: options?.limit, cursor: options?.cursor })).then((page) => ({
      runs: page.runs.map((r) => fromState(r.state)).filter((r) => status === undefined || r.status === status),
      malformed: page.malformed.map(malformedJson),
      cursor: page.cursor
    }))
  },
  signal: (id, name, payload) =>
    run(DagWorkflow.signal(id, name, payload)).then((s) => ({ id: s.id, name: s.name, payload: s.payload, createdAt: toDate(s.createdAt) })),
  cancel: (id, options) => run(DagWorkflow.cancel(id, options?.reason)).then(fromState),
  pause: (id, options) => run(DagWorkflow.pause(id, options?.reason)).then(fromState),
  resume: (id) => run(DagWorkflow.resume(id)).then(fromState),
  sweep: (options) => {
    const minAgeMs = options?.minAgeMs
    if (minAgeMs !== undefined && !(typeof minAgeMs === "number" && Number.isFinite(minAgeMs) && minAgeMs >= 0)) {
      return Promise.reject(invalid("minAgeMs", `must be a number of milliseconds, 0 or more; got ${describeValue(minAgeMs)}`))
    }
    return run(DagWorkflow.sweep(options?.minAgeMs === undefined ? {} : { minAge: Duration.millis(options.minAgeMs) })).then((r) => ({
      scanned: r.scanned,
      young: r.young,
      recovered: r.recovered.map((x) => ({ runId: x.workflowId, workflow: x.workflow, reason: x.reason })),
      malformed: r.malformed.map(malformedJson)
    }))
  }
})

/**
 * The worker handlers of Promise workflows.
 *
 * @since 0.1.0
 * @category utils
 * @internal
 */
export const workflowHandlers = (workflows: ReadonlyArray<Workflow<any>>): ReadonlyArray<HandlerDefinition<never>> => // eslint-disable-line @typescript-eslint/no-explicit-any
  DagWorkflow.handlers(...workflows.map(effectOf)) as unknown as ReadonlyArray<HandlerDefinition<never>>
