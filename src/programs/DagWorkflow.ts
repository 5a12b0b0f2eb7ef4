/**
 * DAG workflows, the Effect API (the reference's `Workflow(name).step(...)` model, done right; see
 * README "DAG workflows"). A workflow is built step by step, each step typed with Schema: the run's
 * data, each step's result, and the signals it waits for.
 *
 * ```ts
 * const Order = DagWorkflow.make("order", { data: Schema.Struct({ id: Schema.String }) })
 *   .step("reserve", { output: Schema.String, run: (ctx) => Effect.succeed(`r-${ctx.data.id}`) })
 *   .step("charge", {
 *     dependsOn: ["reserve"], onFailure: "compensate", compensation: "refund", output: Schema.Number,
 *     run: (ctx) => Effect.map(ctx.result("reserve"), (r) => r.length)
 *   })
 *   .compensation("refund", { run: (ctx) => Effect.log(`refund ${ctx.data.id}`) })
 *
 * yield* Worker.make({}, DagWorkflow.handlers(Order))      // workers run it
 * const run = yield* DagWorkflow.start(Order, { id: "o1" })  // anyone starts it
 * ```
 *
 * Client operations (`start`, `get`, `signal`, `pause`, `resume`, `cancel`, `sweep`) need `Queue`
 * and `Storage` (the `Buquet` layers provide both).
 *
 * @since 0.1.0
 * @module
 */
import { randomUUID } from "node:crypto"
import { Effect, Either, Option, Schema } from "effect"
import { describeParseError, toPlainJson } from "../domain/Codec.js"
import { PermanentError } from "../domain/HandlerErrors.js"
import { definitionHash } from "../domain/workflow/DefinitionHash.js"
import { InvalidWorkflowDefinition, StepDefinition, validateDefinition, WorkflowDefinition } from "../domain/workflow/WorkflowDefinition.js"
import type { OnFailure } from "../domain/workflow/WorkflowDefinition.js"
import type { WorkflowState } from "../domain/workflow/WorkflowState.js"
import * as Runs from "../protocol/WorkflowRuns.js"
import type { Queue } from "../services/Queue.js"
import type { Storage } from "../services/Storage.js"
import { handlersOf, startWakeKey, WaitingForSignal } from "./DagOrchestrator.js"
import type { RegisteredWorkflow, StepRun } from "./DagOrchestrator.js"
import type { HandlerDefinition, TaskContext } from "./worker/Handler.js"
import * as DagSweeper from "./DagSweeper.js"

export { WaitingForSignal } from "./DagOrchestrator.js"

/**
 * A recorded value (the run's data, a step's result, a signal's payload) that does not decode with
 * its Schema: the step fails for good with this message.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoredValueMismatch extends Schema.TaggedError<StoredValueMismatch>()("StoredValueMismatch", {
  message: Schema.String
}) {}

/**
 * What a step's handler gets.
 *
 * @since 0.1.0
 * @category models
 */
export interface StepContext<Data, Results> {
  /** The run's id. */
  readonly runId: string
  /** This step's name. */
  readonly step: string
  /** The step's attempt: 1 for the first run, + 1 after each resume of a paused run. */
  readonly attempt: number
  /** The run's data, decoded with the workflow's `data` Schema. */
  readonly data: Data
  /** The result of a step this one depends on, decoded with that step's `output` Schema. */
  readonly result: <K extends keyof Results & string>(step: K) => Effect.Effect<Results[K], StoredValueMismatch>
  /**
   * The next signal of `name`, decoded with `payload`. When none has arrived the step's task ends
   * ({@link WaitingForSignal}; do not catch it) and the step runs again from the start once one is
   * sent: the handler holds no worker and nobody polls the inbox while it waits. A step receives
   * one signal per name; a retry of the step gets the same one back.
   */
  readonly waitForSignal: <A, I>(name: string, payload: Schema.Schema<A, I>) => Effect.Effect<A, WaitingForSignal | StoredValueMismatch>
  /** The step's task (lease extension, progress, cancel requests). */
  readonly task: TaskContext
}

/**
 * Options of one step.
 *
 * @since 0.1.0
 * @category models
 */
export interface StepOptions<Data, Results, O, OI, E, R> {
  /** Steps that must complete first (declared before this one). */
  readonly dependsOn?: ReadonlyArray<keyof Results & string> | undefined
  /** Retries after the first attempt (default 3). */
  readonly retries?: number | undefined
  /** Seconds one attempt may take (default 300). */
  readonly timeoutSeconds?: number | undefined
  /** What the step's permanent failure does to the run (default `fail_workflow`). */
  readonly onFailure?: OnFailure | undefined
  /** The compensation (declared with `.compensation`) that undoes this step when a `compensate` failure unwinds the run. */
  readonly compensation?: string | undefined
  /** The Schema of the step's result (stored as JSON). */
  readonly output: Schema.Schema<O, OI>
  readonly run: (ctx: StepContext<Data, Results>) => Effect.Effect<O, E, R>
}

/**
 * What a compensation's handler gets: the run, and the step it undoes (with that step's result).
 *
 * @since 0.1.0
 * @category models
 */
export interface CompensationContext<Data, Results> {
  readonly runId: string
  /** The step being undone. */
  readonly step: keyof Results & string
  readonly data: Data
  readonly result: <K extends keyof Results & string>(step: K) => Effect.Effect<Results[K], StoredValueMismatch>
  readonly task: TaskContext
}

interface StepImpl {
  readonly definition: StepDefinition
  readonly output: Schema.Schema<unknown, unknown>
  readonly run: (ctx: StepContext<unknown, Record<string, unknown>>) => Effect.Effect<unknown, unknown, unknown>
}

interface CompensationImpl {
  readonly run: (ctx: CompensationContext<unknown, Record<string, unknown>>) => Effect.Effect<void, unknown, unknown>
}

/**
 * A DAG workflow: its name, data Schema and steps (`Results` maps each step to its result type,
 * `R` is what its handlers need).
 *
 * @since 0.1.0
 * @category models
 */
export interface DagWorkflow<Data, DataEncoded, Results extends Record<string, unknown>, R> {
  readonly name: string
  readonly data: Schema.Schema<Data, DataEncoded>
  /** Steps in declaration order. */
  readonly steps: ReadonlyArray<StepImpl>
  readonly compensations: ReadonlyMap<string, CompensationImpl>
  /** Adds a step; its `dependsOn` may name only steps declared before it. */
  readonly step: <K extends string, O, OI, E, R2>(
    name: K,
    options: StepOptions<Data, Results, O, OI, E, R2>
  ) => DagWorkflow<Data, DataEncoded, Results & { readonly [k in K]: O }, R | R2>
  /** Adds a compensation handler (name it in a step's `compensation`). */
  readonly compensation: <E, R2>(
    name: string,
    options: { readonly run: (ctx: CompensationContext<Data, Results>) => Effect.Effect<void, E, R2> }
  ) => DagWorkflow<Data, DataEncoded, Results, R | R2>
}

/**
 * Any DAG workflow.
 *
 * @since 0.1.0
 * @category models
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Any = DagWorkflow<any, any, any, any>

const build = <Data, DataEncoded, Results extends Record<string, unknown>, R>(
  name: string,
  data: Schema.Schema<Data, DataEncoded>,
  steps: ReadonlyArray<StepImpl>,
  compensations: ReadonlyMap<string, CompensationImpl>
): DagWorkflow<Data, DataEncoded, Results, R> => ({
  name,
  data,
  steps,
  compensations,
  step: (stepName, options) =>
    build(name, data, [
      ...steps,
      {
        definition: new StepDefinition({
          name: stepName,
          dependsOn: options.dependsOn ?? [],
          retries: options.retries ?? 3,
          timeoutSeconds: options.timeoutSeconds ?? 300,
          onFailure: options.onFailure ?? "fail_workflow",
          ...(options.compensation === undefined ? {} : { compensation: options.compensation })
        }, { disableValidation: true }),
        output: options.output as Schema.Schema<unknown, unknown>,
        run: options.run as unknown as StepImpl["run"]
      }
    ], compensations),
  compensation: (compName, options) =>
    build(name, data, steps, new Map([...compensations, [compName, { run: options.run as unknown as CompensationImpl["run"] }]]))
})

/**
 * Starts a workflow with its data Schema; add steps with `.step` and compensations with `.compensation`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Data, DataEncoded>(
  name: string,
  options: { readonly data: Schema.Schema<Data, DataEncoded> }
): DagWorkflow<Data, DataEncoded, {}, never> => build(name, options.data, [], new Map())

/**
 * The workflow's definition as stored and hashed (snake_case; see `DefinitionHash.ts`).
 *
 * @since 0.1.0
 * @category definitions
 */
export const definitionOf = (workflow: Any): WorkflowDefinition =>
  new WorkflowDefinition({ name: workflow.name, steps: workflow.steps.map((s: StepImpl) => s.definition) }, { disableValidation: true })

/**
 * Checks that the workflow can run (`validateDefinition`'s rules, plus: every compensation a step
 * names is declared, and no compensation shares a step's name, as both name a task type).
 *
 * @since 0.1.0
 * @category definitions
 */
export const validate = (workflow: Any): Either.Either<WorkflowDefinition, InvalidWorkflowDefinition> =>
  Either.flatMap(validateDefinition(definitionOf(workflow)), (definition) => {
    const fail = (step: string, message: string) =>
      Either.left(new InvalidWorkflowDefinition({ workflow: workflow.name, problem: "compensation_policy", step, message }))
    for (const s of definition.steps) {
      if (s.compensation !== undefined && !workflow.compensations.has(s.compensation)) {
        return fail(s.name, `step "${s.name}" names compensation "${s.compensation}", which is not declared: add .compensation("${s.compensation}", { run })`)
      }
    }
    for (const c of workflow.compensations.keys()) {
      if (definition.steps.some((s) => s.name === c)) return fail(c, `compensation "${c}" has the name of a step: give it its own name`)
    }
    return Either.right(definition)
  })

/**
 * The workflow's definition hash (`"sha256:"` + 16 hex; README "DAG workflows").
 *
 * @since 0.1.0
 * @category definitions
 */
export const hashOf = (workflow: Any): string => definitionHash(definitionOf(workflow))

const decodeStored = <A, I>(schema: Schema.Schema<A, I>, value: unknown, what: string) =>
  Schema.decodeUnknown(schema)(value).pipe(
    Effect.mapError((e) => new StoredValueMismatch({ message: `${what} does not match its Schema: ${describeParseError(e)}` }))
  )

const contextFor = (workflow: Any, run: StepRun) =>
  Effect.gen(function*() {
    const data = yield* decodeStored(workflow.data as Schema.Schema<unknown, unknown>, run.state.data, `the data of run "${run.state.id}"`)
    const result = (step: string) => {
      const impl = workflow.steps.find((s: StepImpl) => s.definition.name === step)
      if (impl === undefined) return Effect.fail(new StoredValueMismatch({ message: `"${step}" is not a step of "${workflow.name}"` }))
      const s = run.state.steps[step]
      if (s?.status !== "completed") return Effect.fail(new StoredValueMismatch({ message: `step "${step}" of run "${run.state.id}" has no result (it is ${s?.status ?? "pending"}): depend on it to read it` }))
      return decodeStored(impl.output, s.result, `the result of step "${step}"`)
    }
    return { data, result }
  })

/** A recorded value that does not decode will not decode on a retry either: the step fails for good. */
const permanentOnMismatch = <A, R>(self: Effect.Effect<A, unknown, R>): Effect.Effect<A, unknown, R> =>
  Effect.catchIf(self, (e): e is StoredValueMismatch => e instanceof StoredValueMismatch, (e) => Effect.fail(new PermanentError({ message: e.message })))

const toRegistered = (workflow: Any, definition: WorkflowDefinition): RegisteredWorkflow<unknown> => ({
  definition,
  hash: definitionHash(definition),
  compensations: [...workflow.compensations.keys()],
  runStep: (name, run) =>
    Effect.gen(function*() {
      const impl = workflow.steps.find((s: StepImpl) => s.definition.name === name)!
      const { data, result } = yield* contextFor(workflow, run)
      const ctx: StepContext<unknown, Record<string, unknown>> = {
        runId: run.state.id,
        step: name,
        attempt: run.attempt,
        data,
        result,
        task: run.task,
        waitForSignal: (signal, payload) =>
          Runs.consumeSignal(run.state.id, signal, name).pipe(
            Effect.catchAll((e) => Effect.die(e)),
            Effect.flatMap((found): Effect.Effect<unknown, WaitingForSignal | StoredValueMismatch> =>
              Option.isNone(found)
                ? Effect.fail(new WaitingForSignal({ signal }))
                : decodeStored(payload, found.value.payload, `the payload of signal "${signal}"`)
            )
          ) as Effect.Effect<never, WaitingForSignal | StoredValueMismatch>
      }
      const value = yield* impl.run(ctx)
      const encoded = yield* Schema.encodeUnknown(impl.output)(value).pipe(
        Effect.mapError((e) => new PermanentError({ message: `the result of step "${name}" does not match its output Schema: ${describeParseError(e)}` }))
      )
      // it is stored as JSON: a value without a JSON form fails the step for good, not the worker
      return yield* toPlainJson("result", encoded, `the result of step "${name}"`).pipe(
        Effect.mapError((e) => new PermanentError({ message: e.message }))
      )
    }).pipe(permanentOnMismatch),
  runCompensation: (name, step, run) =>
    Effect.gen(function*() {
      const impl = workflow.compensations.get(name)!
      const { data, result } = yield* contextFor(workflow, run)
      yield* impl.run({ runId: run.state.id, step, data, result, task: run.task })
    }).pipe(permanentOnMismatch)
})

/**
 * The worker handlers of these workflows (each one's orchestrator, steps and compensations), for
 * `Worker.make`. An invalid workflow is refused here, with the message of
 * `InvalidWorkflowDefinition` (a defect: a program that registers it cannot work).
 *
 * @since 0.1.0
 * @category workers
 */
export const handlers = <Ws extends ReadonlyArray<Any>>(
  ...workflows: Ws
): ReadonlyArray<HandlerDefinition<Queue | Storage | ([Ws[number]] extends [DagWorkflow<any, any, any, infer R>] ? R : never)>> => // eslint-disable-line @typescript-eslint/no-explicit-any
  workflows.flatMap((w) => {
    const checked = validate(w)
    if (Either.isLeft(checked)) throw new Error(`DagWorkflow.handlers: ${checked.left.message}`)
    return handlersOf(toRegistered(w, checked.right))
  }) as unknown as ReadonlyArray<HandlerDefinition<never>>

/**
 * Starts a run of `workflow` with `data` (encoded with its Schema): creates its state and wakes
 * its orchestrator. With `id`, starting twice starts once (the existing run is returned). Returns
 * the run's state as created (or found).
 *
 * @since 0.1.0
 * @category client
 */
export const start = <Data, DataEncoded, Results extends Record<string, unknown>, R>(
  workflow: DagWorkflow<Data, DataEncoded, Results, R>,
  data: Data,
  options: { readonly id?: string | undefined } = {}
) =>
  Effect.gen(function*() {
    const definition = yield* Either.match(validate(workflow), { onLeft: Effect.fail, onRight: Effect.succeed })
    const encoded = yield* Schema.encode(workflow.data)(data).pipe(
      Effect.mapError((e) => new StoredValueMismatch({ message: `the data of a "${workflow.name}" run does not match its Schema: ${describeParseError(e)}` }))
    )
    const id = options.id ?? randomUUID()
    const { run } = yield* Runs.createRun({ id, definition, definitionHash: definitionHash(definition), data: encoded })
    yield* Runs.wakeRun(workflow.name, id, startWakeKey)
    return run.state
  }).pipe(Effect.withSpan("DagWorkflow.start"))

/**
 * A run's state; none if there is no such run.
 *
 * @since 0.1.0
 * @category client
 */
export const get = (id: string): Effect.Effect<Option.Option<WorkflowState>, Runs.RunReadError, Storage> =>
  Effect.map(Runs.readRun(id), Option.map((r) => r.state))

/**
 * The result of a completed step of a run, decoded with the step's `output` Schema; none if the
 * step has not completed.
 *
 * @since 0.1.0
 * @category client
 */
export const stepResult = <Data, DataEncoded, Results extends Record<string, unknown>, R, K extends keyof Results & string>(
  workflow: DagWorkflow<Data, DataEncoded, Results, R>,
  id: string,
  step: K
) =>
  Effect.gen(function*() {
    const impl = workflow.steps.find((s) => s.definition.name === step)
    if (impl === undefined) return yield* new StoredValueMismatch({ message: `"${step}" is not a step of "${workflow.name}"` })
    const recorded = yield* Runs.readStepResult(id, step)
    if (Option.isNone(recorded)) return Option.none<Results[K]>()
    return Option.some((yield* decodeStored(impl.output, recorded.value.result, `the result of step "${step}"`)) as Results[K])
  })

/**
 * Sends a signal to a run (see `WorkflowRuns.sendSignal`); a step waiting for it resumes.
 *
 * @since 0.1.0
 * @category client
 */
export const signal = (id: string, name: string, payload?: unknown) => Runs.sendSignal(id, name, payload)

/**
 * Pauses a run (see `WorkflowRuns.requestPause`).
 *
 * @since 0.1.0
 * @category client
 */
export const pause = (id: string, reason?: string) => Runs.requestPause(id, reason)

/**
 * Resumes a paused run from its failed step (see `WorkflowRuns.requestResume`).
 *
 * @since 0.1.0
 * @category client
 */
export const resume = (id: string) => Runs.requestResume(id)

/**
 * Cancels a run and its running step tasks (see `WorkflowRuns.requestCancel`).
 *
 * @since 0.1.0
 * @category client
 */
export const cancel = (id: string, reason?: string) => Runs.requestCancel(id, reason)

/**
 * Lists runs (see `WorkflowRuns.listRuns`).
 *
 * @since 0.1.0
 * @category client
 */
export const list = (options?: { readonly limit?: number | undefined; readonly cursor?: string | undefined }) => Runs.listRuns(options)

/**
 * One reconciliation pass over every run: recovers stuck runs and says which (see `DagSweeper.sweep`).
 *
 * @since 0.1.0
 * @category client
 */
export const sweep = DagSweeper.sweep
