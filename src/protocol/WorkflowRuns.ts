/**
 * The bucket protocol of DAG workflow runs (keys in `domain/workflow/RunKeys.ts`, reference §2.4
 * "Workflow protocol" with its liveness gaps fixed). Everything here is a function of the store and
 * the queue; the orchestrator (`programs/DagOrchestrator.ts`) and the client surfaces (Effect,
 * Promise, CLI, dashboard) are built on it.
 *
 * - **State** `workflow/{id}/state.json`: created once (`If-None-Match: *`), then changed only by
 *   compare-and-swap on its ETag ({@link updateRun}, which re-reads and re-applies on a lost race).
 *   Every read is decoded against its key; a bad one is a `MalformedObject` naming the key.
 * - **Step results** `workflow/{id}/steps/{step}.json`: write-once; the first recorded result wins.
 * - **Signals** `workflow/{id}/signals/{name}/{ts}_{uuid}.json`: write-once, append-only; consumed in
 *   key order by moving the state's cursor forward by CAS, so each is consumed exactly once.
 * - **Wake-ups**: a run is driven by orchestrator tasks (`workflow.orchestrate:{name}`, input
 *   `{ workflow_id }`); whatever changes a run submits one ({@link wakeRun}) instead of anyone
 *   polling the run.
 * - **Intents** pause / resume / cancel are CASes on the state, followed by a wake-up (and, for
 *   cancel, a cancel of every running step task, which interrupts the worker running it).
 *
 * @since 0.1.0
 * @module
 */
import { randomUUID } from "node:crypto"
import { Chunk, DateTime, Duration, Effect, Either, Option, Schedule, Schema, Stream } from "effect"
import { decodeObject, describeParseError, encodeObject, toPlainJson } from "../domain/Codec.js"
import { InvalidArgument, MalformedObject } from "../domain/QueueError.js"
import type { StorageReadError } from "../domain/StorageError.js"
import { field } from "../domain/SnakeCase.js"
import { Timestamp } from "../domain/Task.js"
import type { Task } from "../domain/Task.js"
import type { WorkflowDefinition } from "../domain/workflow/WorkflowDefinition.js"
import { WorkflowName } from "../domain/workflow/WorkflowDefinition.js"
import {
  orchestrateTaskType,
  parseWorkflowStateKey,
  runPrefix,
  signalCursorOf,
  signalKey,
  signalPrefix,
  stepResultKey,
  WorkflowRunId,
  workflowRunsPrefix,
  workflowStateKey
} from "../domain/workflow/RunKeys.js"
import {
  decodeSignal,
  decodeWorkflowState,
  isTerminalWorkflowStatus,
  SignalCursor,
  SignalRecord,
  StepState,
  WorkflowErrorInfo,
  WorkflowState
, makeStepCompensation, makeStepState, makeWorkflowState } from "../domain/workflow/WorkflowState.js"
import type { WorkflowStatus } from "../domain/workflow/WorkflowState.js"
import { Queue } from "../services/Queue.js"
import type { SubmitError } from "../services/Queue.js"
import { Storage } from "../services/Storage.js"
import { putConditional } from "./TaskObjects.js"

/**
 * A run as read: its state and the ETag a CAS must name.
 *
 * @since 0.1.0
 * @category models
 */
export interface VersionedRun {
  readonly state: WorkflowState
  readonly etag: string
}

/**
 * No run has this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkflowRunNotFound extends Schema.TaggedError<WorkflowRunNotFound>()("WorkflowRunNotFound", {
  workflowId: Schema.String,
  message: Schema.String
}) {}

/**
 * A run with this id exists but belongs to another workflow: pick another id.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkflowRunConflict extends Schema.TaggedError<WorkflowRunConflict>()("WorkflowRunConflict", {
  workflowId: Schema.String,
  existingType: Schema.String,
  message: Schema.String
}) {}

/**
 * An intent the run's status does not allow (resume of a run that is not paused, pause of an
 * ended run, …): `message` says what the status is and what can be done.
 *
 * @since 0.1.0
 * @category errors
 */
export class IllegalWorkflowTransition extends Schema.TaggedError<IllegalWorkflowTransition>()("IllegalWorkflowTransition", {
  workflowId: Schema.String,
  operation: Schema.String,
  status: Schema.String,
  message: Schema.String
}) {}

/**
 * Failures of reads of runs: a bad id, the store's, or an object that does not decode.
 *
 * @since 0.1.0
 * @category errors
 */
export type RunReadError = InvalidArgument | StorageReadError | MalformedObject

const checked = <A>(schema: Schema.Schema<A, string>, argument: string, value: string): Effect.Effect<A, InvalidArgument> =>
  Either.match(Schema.decodeUnknownEither(schema)(value), {
    onLeft: (e) => Effect.fail(new InvalidArgument({ argument, message: `${argument} ${JSON.stringify(value.slice(0, 80))} is refused: ${describeParseError(e)}` })),
    onRight: Effect.succeed
  })

/**
 * Checks a run id (1–200 letters, digits, `_ . : -`; no slashes, no `..`): `InvalidArgument` otherwise.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkRunId = (id: string): Effect.Effect<string, InvalidArgument> => checked(WorkflowRunId, "workflow id", id)

/**
 * Checks a signal or step name (a `WorkflowName`): `InvalidArgument` otherwise.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkName = (what: string, name: string): Effect.Effect<string, InvalidArgument> => checked(WorkflowName, what, name)

/**
 * Reads a run's state (validated against its key); none if the run does not exist.
 *
 * @since 0.1.0
 * @category state
 */
export const readRun = Effect.fn("WorkflowRuns.readRun")(function*(id: string) {
  yield* checkRunId(id)
  const storage = yield* Storage
  const key = workflowStateKey(id)
  const found = yield* storage.get(key)
  if (Option.isNone(found)) return Option.none<VersionedRun>()
  const state = yield* decodeWorkflowState(key, found.value.body)
  return Option.some<VersionedRun>({ state, etag: found.value.etag })
})

/**
 * Reads a run's state; `WorkflowRunNotFound` if it does not exist.
 *
 * @since 0.1.0
 * @category state
 */
export const getRun = (id: string): Effect.Effect<VersionedRun, RunReadError | WorkflowRunNotFound, Storage> =>
  Effect.flatMap(readRun(id), Option.match({
    onNone: () => Effect.fail(new WorkflowRunNotFound({ workflowId: id, message: `no workflow run "${id}" (nothing at ${workflowStateKey(id)})` })),
    onSome: Effect.succeed
  }))

/**
 * Options of {@link createRun}.
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateRunOptions {
  readonly id: string
  readonly definition: WorkflowDefinition
  readonly definitionHash: string
  /** The run's input, already encoded to JSON by the workflow's data Schema. */
  readonly data: unknown
}

/**
 * Creates a run's state (`pending`, every step `pending`) with `If-None-Match: *`. If the run
 * already exists it is returned as it is (`created: false`), so starting twice with one id starts
 * it once; a run of another workflow under that id is a `WorkflowRunConflict`. The caller then
 * wakes it ({@link wakeRun}); a crash in between leaves a `pending` run the sweeper wakes.
 *
 * @since 0.1.0
 * @category state
 */
export const createRun = Effect.fn("WorkflowRuns.createRun")(function*(options: CreateRunOptions) {
  const id = yield* checkRunId(options.id)
  const data = yield* toPlainJson("data", options.data, "a run's data")
  const queue = yield* Queue
  const now = yield* queue.now
  const steps: Record<string, StepState> = {}
  for (const s of options.definition.steps) steps[s.name] = makeStepState({ status: "pending", attempt: 0, resumes: 0 })
  const state = makeWorkflowState({
    id,
    type: options.definition.name,
    definitionHash: options.definitionHash,
    status: "pending",
    currentSteps: [],
    data,
    steps,
    signals: {},
    createdAt: now,
    updatedAt: now,
    // ours: readers without the workflow's code (CLI, dashboard) draw the DAG from it
    definition: options.definition
  })
  const created = yield* putConditional(workflowStateKey(id), encodeObject(WorkflowState, state), { ifNoneMatch: "*" }).pipe(
    Effect.map((etag) => Option.some<VersionedRun>({ state, etag })),
    Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<VersionedRun>()))
  )
  if (Option.isSome(created)) return { run: created.value, created: true }
  const existing = yield* getRun(id)
  if (existing.state.type !== options.definition.name) {
    return yield* new WorkflowRunConflict({
      workflowId: id,
      existingType: existing.state.type,
      message: `workflow run "${id}" already exists as a run of "${existing.state.type}", not "${options.definition.name}": choose another id`
    })
  }
  return { run: existing, created: false }
})

/** Lost CAS races are re-read and re-applied: a few parallel steps settling at once contend here. */
const casRetry = Schedule.intersect(Schedule.exponential(Duration.millis(20), 1.5).pipe(Schedule.jittered), Schedule.recurs(30))

/**
 * Changes a run's state by compare-and-swap: reads it, applies `change` (return `undefined` for
 * "nothing to do"), writes with `If-Match`; on a lost race re-reads and applies `change` again, so
 * `change` must be a function of the state it is given. `updated_at` is set to the queue's time.
 * Returns the run as it is after the change (or as read when there was nothing to do).
 *
 * @since 0.1.0
 * @category state
 */
export const updateRun = <E, R>(
  id: string,
  change: (state: WorkflowState) => Effect.Effect<WorkflowState | undefined, E, R>
): Effect.Effect<{ readonly run: VersionedRun; readonly changed: boolean }, E | RunReadError | WorkflowRunNotFound, Storage | Queue | R> =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const attempt = Effect.gen(function*() {
      const current = yield* getRun(id)
      const next = yield* change(current.state)
      if (next === undefined) return { run: current, changed: false }
      const now = yield* queue.now
      const written = makeWorkflowState({ ...next, updatedAt: now })
      const etag = yield* putConditional(workflowStateKey(id), encodeObject(WorkflowState, written), { ifMatch: current.etag })
      return { run: { state: written, etag }, changed: true }
    })
    return yield* attempt.pipe(
      Effect.retry({ schedule: casRetry, while: (e) => (e as { readonly _tag?: string })._tag === "PreconditionFailed" }),
      Effect.catchIf(
        (e): e is Extract<typeof e, { readonly _tag: "PreconditionFailed" }> => (e as { readonly _tag?: string })._tag === "PreconditionFailed",
        (e) => Effect.die(e)
      )
    ) as Effect.Effect<{ readonly run: VersionedRun; readonly changed: boolean }, E | RunReadError | WorkflowRunNotFound, Storage | Queue | R>
  }).pipe(Effect.withSpan("WorkflowRuns.updateRun"))

/**
 * One page of {@link listRuns}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunPage {
  readonly runs: ReadonlyArray<VersionedRun>
  /** State objects that did not decode (named by key): skipped, not hidden. */
  readonly malformed: ReadonlyArray<MalformedObject>
  /** Pass back as `cursor` for the next page; absent at the end. */
  readonly cursor: string | undefined
}

/**
 * Lists runs in id order, `limit` per page (default 100, at most 1000): one LIST of run prefixes
 * and one GET per run. Runs whose folder has no state yet (a start in progress) are left out.
 *
 * @since 0.1.0
 * @category state
 */
export const listRuns = Effect.fn("WorkflowRuns.listRuns")(function*(options: { readonly limit?: number | undefined; readonly cursor?: string | undefined } = {}) {
  const limit = options.limit ?? 100
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    return yield* new InvalidArgument({ argument: "limit", message: `limit must be a whole number from 1 to 1000, got ${limit}` })
  }
  const storage = yield* Storage
  const page = yield* storage.list(workflowRunsPrefix, {
    delimiter: "/",
    maxKeys: limit,
    ...(options.cursor === undefined ? {} : { continuationToken: options.cursor })
  })
  const results = yield* Effect.forEach(page.commonPrefixes, (prefix) => {
    const key = `${prefix}state.json`
    return storage.get(key).pipe(
      Effect.flatMap(Option.match({
        onNone: () => Effect.succeed(Option.none<Either.Either<VersionedRun, MalformedObject>>()),
        onSome: (o) =>
          decodeWorkflowState(key, o.body).pipe(
            Effect.map((state) => Option.some(Either.right<VersionedRun>({ state, etag: o.etag }))),
            Effect.catchAll((e) => Effect.succeed(Option.some(Either.left<MalformedObject>(e))))
          )
      }))
    )
  }, { concurrency: 8 })
  const runs: Array<VersionedRun> = []
  const malformed: Array<MalformedObject> = []
  for (const r of results) {
    if (Option.isNone(r)) continue
    if (Either.isRight(r.value)) runs.push(r.value.right)
    else malformed.push(r.value.left)
  }
  return { runs, malformed, cursor: page.nextContinuationToken } satisfies RunPage
})

// ---------------------------------------------------------------------------------------------
// Step results

/**
 * A step's recorded result, as stored at `workflow/{id}/steps/{step}.json` (ours: the reference's
 * result plus the ids it belongs to, so a read can check it against its key).
 *
 * @since 0.1.0
 * @category models
 */
export class StepResultRecord extends Schema.Class<StepResultRecord>("StepResultRecord")({
  workflowId: field(Schema.String, "workflow_id"),
  step: Schema.String,
  attempt: Schema.NonNegativeInt,
  result: Schema.optionalWith(Schema.Unknown, { default: () => null }),
  completedAt: field(Timestamp, "completed_at")
}) {}

const decodeStepResult = (key: string, id: string, step: string, body: Uint8Array) =>
  Effect.filterOrFail(
    decodeObject(StepResultRecord, key, body),
    (r) => r.workflowId === id && r.step === step,
    (r) => new MalformedObject({ key, message: `${key} is malformed: it records step "${r.step.slice(0, 80)}" of run "${r.workflowId.slice(0, 80)}", not the ones its key names` })
  )

/**
 * Reads a step's recorded result; none if the step has not completed.
 *
 * @since 0.1.0
 * @category steps
 */
export const readStepResult = Effect.fn("WorkflowRuns.readStepResult")(function*(id: string, step: string) {
  const storage = yield* Storage
  const key = stepResultKey(id, step)
  const found = yield* storage.get(key)
  if (Option.isNone(found)) return Option.none<StepResultRecord>()
  return Option.some(yield* decodeStepResult(key, id, step, found.value.body))
})

/**
 * Records a step's result once (`If-None-Match: *`). If a result is already recorded (an earlier
 * attempt finished and crashed before telling the run) that one is returned: the first wins.
 *
 * @since 0.1.0
 * @category steps
 */
export const recordStepResult = Effect.fn("WorkflowRuns.recordStepResult")(function*(id: string, step: string, attempt: number, result: unknown) {
  const queue = yield* Queue
  const now = yield* queue.now
  const record = new StepResultRecord({ workflowId: id, step, attempt, result, completedAt: now })
  const written = yield* putConditional(stepResultKey(id, step), encodeObject(StepResultRecord, record), { ifNoneMatch: "*" }).pipe(
    Effect.as(true),
    Effect.catchTag("PreconditionFailed", () => Effect.succeed(false))
  )
  if (written) return record
  const existing = yield* readStepResult(id, step)
  return Option.getOrElse(existing, () => record)
})

// ---------------------------------------------------------------------------------------------
// Wake-ups

/**
 * Submits an orchestrator task for run `id` of workflow `workflow` (`workflow.orchestrate:{name}`,
 * input `{ workflow_id }`) and returns it. With `idempotencyKey` (an event's name, e.g. a step
 * task settling), repeating the wake-up for one event submits one task (the first one is
 * returned, whatever its status now). A run is never polled: every change to it ends with one of these.
 *
 * @since 0.1.0
 * @category wake-ups
 */
export const wakeRun = (
  workflow: string,
  id: string,
  idempotencyKey?: string
): Effect.Effect<Task, SubmitError, Queue> =>
  Effect.flatMap(Queue, (queue) =>
    queue.submit(orchestrateTaskType(workflow), { workflow_id: id }, {
      // the orchestrator is ours: the type check's "no worker has ever handled" warning is noise here
      typeCheck: "off",
      maxRetries: 10,
      timeoutSeconds: 120,
      ...(idempotencyKey === undefined ? {} : { idempotencyKey: `${id}:${idempotencyKey}` })
    })).pipe(Effect.withSpan("WorkflowRuns.wakeRun"))

/**
 * The input of an orchestrator task.
 *
 * @since 0.1.0
 * @category models
 */
export const OrchestrateInput = Schema.Struct({ workflow_id: WorkflowRunId })

// ---------------------------------------------------------------------------------------------
// Signals

/**
 * Sends a signal to a run: a write-once object in its inbox (`signals/{name}/{ts}_{uuid}.json`,
 * `ts` the queue's time, so keys sort by time), then a wake-up of the run, so a step waiting for
 * it resumes without anyone polling the inbox. Returns the signal as stored. A run that does not
 * exist is a `WorkflowRunNotFound`; a signal to an ended run is kept but wakes nothing.
 *
 * @since 0.1.0
 * @category signals
 */
export const sendSignal = Effect.fn("WorkflowRuns.sendSignal")(function*(id: string, name: string, payload: unknown) {
  yield* checkRunId(id)
  yield* checkName("signal name", name)
  const json = yield* toPlainJson("payload", payload, "a signal's payload")
  const run = yield* getRun(id)
  const queue = yield* Queue
  const now = yield* queue.now
  const signalId = randomUUID()
  const record = new SignalRecord({ id: signalId, name, payload: json, createdAt: now })
  const key = signalKey(id, name, DateTime.formatIso(now), signalId)
  yield* putConditional(key, encodeObject(SignalRecord, record), { ifNoneMatch: "*" })
  if (!isTerminalWorkflowStatus(run.state.status)) yield* wakeRun(run.state.type, id, `signal:${signalId}`)
  return record
})

/**
 * The next unconsumed signal of `name` after the run's cursor (one LIST of at most 1 key, and a
 * GET), without consuming it. Malformed signals are returned as such (the caller skips them).
 */
const peekSignal = (state: WorkflowState, name: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const prefix = signalPrefix(state.id, name)
    const cursor = state.signals[name]?.cursor
    const page = yield* storage.list(prefix, { maxKeys: 1, ...(cursor === undefined ? {} : { startAfter: `${prefix}${cursor}` }) })
    const first = page.objects[0]
    if (first === undefined) return Option.none<{ readonly key: string; readonly signal: Either.Either<SignalRecord, MalformedObject> }>()
    const found = yield* storage.get(first.key)
    const signal: Either.Either<SignalRecord, MalformedObject> = Option.isNone(found)
      ? Either.left(new MalformedObject({ key: first.key, message: `${first.key} was listed but is gone` }))
      : yield* Effect.either(decodeSignal(first.key, found.value.body))
    return Option.some({ key: first.key, signal })
  })

/**
 * Whether a signal of `name` is waiting past the run's cursor (one LIST of at most 1 key).
 *
 * @since 0.1.0
 * @category signals
 */
export const hasPendingSignal = Effect.fn("WorkflowRuns.hasPendingSignal")(function*(state: WorkflowState, name: string) {
  const storage = yield* Storage
  const prefix = signalPrefix(state.id, name)
  const cursor = state.signals[name]?.cursor
  const page = yield* storage.list(prefix, { maxKeys: 1, ...(cursor === undefined ? {} : { startAfter: `${prefix}${cursor}` }) })
  return page.objects.length > 0
})

/**
 * Consumes the next signal of `name`: finds the first one after the run's cursor and moves the
 * cursor past it by CAS, so of any number of concurrent consumers exactly one gets each signal.
 * None when the inbox has nothing new. With `step`, the same CAS records the signal on that step
 * (`received`), and a step that already received a signal of `name` gets that one back (a retry
 * of the step does not take a second signal). A malformed signal object is skipped (the cursor
 * moves past it, a warning names its key) so one bad object never blocks the inbox.
 *
 * @since 0.1.0
 * @category signals
 */
export const consumeSignal = Effect.fn("WorkflowRuns.consumeSignal")(function*(id: string, name: string, step?: string) {
  yield* checkName("signal name", name)
  const prefix = signalPrefix(id, name)
  const storage = yield* Storage
  for (;;) {
    const run = yield* getRun(id)
    const already = step === undefined ? undefined : run.state.steps[step]?.received?.[name]
    if (already !== undefined) {
      const key = `${prefix}${already}`
      const found = yield* storage.get(key)
      if (Option.isNone(found)) return yield* new MalformedObject({ key, message: `${key}, the signal step "${step}" received, is gone` })
      return Option.some(yield* decodeSignal(key, found.value.body))
    }
    const next = yield* peekSignal(run.state, name)
    if (Option.isNone(next)) return Option.none<SignalRecord>()
    const cursor = signalCursorOf(next.value.key, prefix)
    const good = Either.isRight(next.value.signal)
    const moved = yield* updateRun(id, (state) => {
      if (state.signals[name]?.cursor !== run.state.signals[name]?.cursor) return Effect.succeed(undefined) // consumed meanwhile: look again
      const steps = { ...state.steps }
      const s = step === undefined ? undefined : steps[step]
      if (step !== undefined && s !== undefined && good) {
        if (s.received?.[name] !== undefined) return Effect.succeed(undefined) // another run of this step took one: use it
        steps[step] = makeStepState({ ...s, received: { ...(s.received ?? {}), [name]: cursor } })
      }
      return Effect.succeed(makeWorkflowState({ ...state, steps, signals: { ...state.signals, [name]: new SignalCursor({ cursor }) } }))
    })
    if (!moved.changed) continue
    if (Either.isLeft(next.value.signal)) {
      yield* Effect.logWarning(`skipped a malformed signal: ${next.value.signal.left.message}`)
      continue
    }
    return Option.some(next.value.signal.right)
  }
})

/**
 * Every signal in a run's inbox (of one name, or all), oldest first, with whether it has been
 * consumed; malformed ones are reported, not hidden.
 *
 * @since 0.1.0
 * @category signals
 */
export const listSignals = Effect.fn("WorkflowRuns.listSignals")(function*(id: string, name?: string) {
  const run = yield* getRun(id)
  if (name !== undefined) yield* checkName("signal name", name)
  const storage = yield* Storage
  const prefix = name === undefined ? `${runPrefix(id)}signals/` : signalPrefix(id, name)
  const objects = Chunk.toReadonlyArray(yield* Stream.runCollect(storage.listAll(prefix)))
  const signals: Array<{ readonly signal: SignalRecord; readonly consumed: boolean }> = []
  const malformed: Array<MalformedObject> = []
  for (const o of objects) {
    const found = yield* storage.get(o.key)
    if (Option.isNone(found)) continue
    const decoded = yield* Effect.either(decodeSignal(o.key, found.value.body))
    if (Either.isLeft(decoded)) {
      malformed.push(decoded.left)
      continue
    }
    const cursor = run.state.signals[decoded.right.name]?.cursor
    const consumed = cursor !== undefined && signalCursorOf(o.key, signalPrefix(id, decoded.right.name)) <= cursor
    signals.push({ signal: decoded.right, consumed })
  }
  return { signals, malformed }
})

// ---------------------------------------------------------------------------------------------
// Intents: pause / resume / cancel

const illegal = (state: WorkflowState, operation: string, advice: string) =>
  new IllegalWorkflowTransition({
    workflowId: state.id,
    operation,
    status: state.status,
    message: `cannot ${operation} workflow run "${state.id}": it is ${state.status}; ${advice}`
  })

const errorInfo = (type: string, message: string, at: DateTime.Utc, step?: string) =>
  new WorkflowErrorInfo({ type, message, at, ...(step === undefined ? {} : { step }) })

/**
 * Pauses a run: nothing new is scheduled until {@link requestResume}; steps already running finish
 * and are recorded. Pausing a paused run changes nothing; an ended run is an
 * `IllegalWorkflowTransition`.
 *
 * @since 0.1.0
 * @category intents
 */
export const requestPause = Effect.fn("WorkflowRuns.requestPause")(function*(id: string, reason?: string) {
  const queue = yield* Queue
  const now = yield* queue.now
  const { run } = yield* updateRun(id, (state) => {
    if (state.status === "paused") return Effect.succeed(undefined)
    if (isTerminalWorkflowStatus(state.status)) return Effect.fail(illegal(state, "pause", "an ended run stays ended"))
    return Effect.succeed(makeWorkflowState({ ...state, status: "paused", error: errorInfo("Paused", reason ?? "paused by request", now) }))
  })
  return run.state
})

/**
 * Resumes a paused run: the failed steps it stopped at (its `current_steps` that are `failed`: the
 * orchestrator puts a run's failed `pause_workflow` steps there when it pauses it) go back to
 * `pending` with their attempt kept (the next task is attempt + 1), the error is cleared, and the
 * run is woken, so it continues from the failed step. A run paused for a definition mismatch
 * pauses again unless the orchestrator now runs a matching definition. Resuming a run that is not
 * paused is an `IllegalWorkflowTransition`.
 *
 * @since 0.1.0
 * @category intents
 */
export const requestResume = Effect.fn("WorkflowRuns.requestResume")(function*(id: string) {
  const { run } = yield* updateRun(id, (state) => {
    if (state.status !== "paused") return Effect.fail(illegal(state, "resume", "only a paused run can be resumed"))
    const steps: Record<string, StepState> = { ...state.steps }
    for (const name of state.currentSteps) {
      const s = steps[name]
      if (s === undefined || s.status !== "failed") continue
      steps[name] = makeStepState({
        ...s,
        status: "pending",
        error: undefined,
        startedAt: undefined,
        completedAt: undefined,
        taskId: undefined,
        resumes: 0,
        waitingSignal: undefined
      })
    }
    return Effect.succeed(makeWorkflowState({ ...state, status: "running", error: undefined, steps }))
  })
  yield* wakeRun(run.state.type, id, `resume:${DateTime.formatIso(run.state.updatedAt)}`)
  return run.state
})

/**
 * Cancels a run: the state becomes `cancelled` (its running steps `cancelled`), then every running
 * step's (and compensation's) task is cancelled through the queue, which interrupts the worker
 * running it (the queue's cancel signal, noticed within about 5 s). Cancelling a cancelled run
 * repeats the task cancels (harmless); a completed or failed run is an `IllegalWorkflowTransition`.
 *
 * @since 0.1.0
 * @category intents
 */
export const requestCancel = Effect.fn("WorkflowRuns.requestCancel")(function*(id: string, reason?: string) {
  const queue = yield* Queue
  const now = yield* queue.now
  const message = reason ?? "cancelled by request"
  const { run } = yield* updateRun(id, (state) => {
    if (state.status === "cancelled") return Effect.succeed(undefined)
    if (isTerminalWorkflowStatus(state.status)) return Effect.fail(illegal(state, "cancel", "an ended run stays ended"))
    return Effect.succeed(cancelledState(state, errorInfo("Cancelled", message, now), now))
  })
  yield* cancelStepTasks(run.state, message)
  return run.state
})

/**
 * The state of `state` cancelled: running steps `cancelled`, a running compensation `failed`.
 *
 * @since 0.1.0
 * @category intents
 */
export const cancelledState = (state: WorkflowState, error: WorkflowErrorInfo, now: DateTime.Utc): WorkflowState => {
  const steps: Record<string, StepState> = {}
  for (const [name, s] of Object.entries(state.steps)) {
    const comp = s.compensation?.status === "running"
      ? { compensation: makeStepCompensation({ ...s.compensation, status: "failed", completedAt: now, error: error.message }) }
      : {}
    steps[name] = s.status === "running"
      ? makeStepState({ ...s, ...comp, status: "cancelled", completedAt: now, error: error.message, waitingSignal: undefined })
      : makeStepState({ ...s, ...comp })
  }
  return makeWorkflowState({ ...state, status: "cancelled", currentSteps: [], steps, error })
}

/**
 * Cancels (through the queue) the task of every step that `state` shows cancelled, and of every
 * compensation it shows failed by a cancel: each a no-op on a task already ended. Failures are
 * logged, not raised: the step's handler records nothing for a cancelled step either way.
 *
 * @since 0.1.0
 * @category intents
 */
export const cancelStepTasks = (state: WorkflowState, reason: string): Effect.Effect<void, never, Queue> =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const taskIds = Object.values(state.steps).flatMap((s) => [
      ...(s.status === "cancelled" && s.taskId !== undefined ? [s.taskId] : []),
      ...(s.compensation?.status === "failed" && s.compensation.taskId !== undefined ? [s.compensation.taskId] : [])
    ])
    yield* Effect.forEach(taskIds, (taskId) =>
      queue.cancel(taskId, { reason: `workflow run ${state.id}: ${reason}`, cancelledBy: `workflow:${state.id}` }).pipe(
        Effect.catchAll((e) => Effect.logWarning(`could not cancel step task ${taskId} of run ${state.id}: ${e.message}`))
      ), { concurrency: 8, discard: true })
  })

/**
 * The run a state key names, for tools that walk `workflow/` (undefined for any other key).
 *
 * @since 0.1.0
 * @category state
 */
export const runIdOfStateKey = (key: string): string | undefined => parseWorkflowStateKey(key)

/**
 * Whether a run in `status` still needs an orchestrator (not ended, not paused).
 *
 * @since 0.1.0
 * @category state
 */
export const isActiveStatus = (status: WorkflowStatus): boolean => !isTerminalWorkflowStatus(status) && status !== "paused"
