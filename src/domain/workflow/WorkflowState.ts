/**
 * A DAG workflow run as stored at `workflow/{id}/state.json`, in the reference's snake_case shape
 * (reference §2.3), and the signal records of its inbox. Our one addition, a step's
 * `compensation` progress, is an optional field the reference ignores. Like every stored object,
 * a state or signal is decoded against its key: a body naming another run or signal is a
 * `MalformedObject` naming the key.
 *
 * @since 0.1.0
 * @module
 */
import { Effect, Schema } from "effect"
import { decodeObject } from "../Codec.js"
import { MalformedObject } from "../QueueError.js"
import { field, nullableField } from "../SnakeCase.js"
import { Timestamp } from "../Task.js"
import { parseSignalKey, parseWorkflowStateKey } from "./RunKeys.js"
import { WorkflowDefinition } from "./WorkflowDefinition.js"

/**
 * A run's status (the reference's set).
 *
 * @since 0.1.0
 * @category models
 */
export const WorkflowStatus = Schema.Literal("pending", "running", "waiting_signal", "compensating", "paused", "completed", "failed", "cancelled")

/**
 * @since 0.1.0
 * @category models
 */
export type WorkflowStatus = typeof WorkflowStatus.Type

/**
 * Whether a run in `status` is over: nothing will ever change it again.
 *
 * @since 0.1.0
 * @category guards
 */
export const isTerminalWorkflowStatus = (status: WorkflowStatus): boolean =>
  status === "completed" || status === "failed" || status === "cancelled"

/**
 * A step's status (the reference's set). A step skipped because a dependency failed keeps
 * `pending` in the state; Dag.blockedSteps derives it, so the reference can still read the state.
 *
 * @since 0.1.0
 * @category models
 */
export const StepStatus = Schema.Literal("pending", "running", "completed", "failed", "cancelled")

/**
 * @since 0.1.0
 * @category models
 */
export type StepStatus = typeof StepStatus.Type

/**
 * The progress of a completed step's compensation (ours): written by the orchestrator while a
 * `compensate` failure unwinds the run.
 *
 * @since 0.1.0
 * @category models
 */
export class StepCompensation extends Schema.Class<StepCompensation>("StepCompensation")({
  status: Schema.Literal("running", "completed", "failed"),
  taskId: nullableField(Schema.String, "task_id"),
  startedAt: nullableField(Timestamp, "started_at"),
  completedAt: nullableField(Timestamp, "completed_at"),
  error: nullableField(Schema.String, "error")
}) {}

/**
 * One step of a run.
 *
 * @since 0.1.0
 * @category models
 */
export class StepState extends Schema.Class<StepState>("StepState")({
  status: StepStatus,
  startedAt: nullableField(Timestamp, "started_at"),
  completedAt: nullableField(Timestamp, "completed_at"),
  result: nullableField(Schema.Unknown, "result"),
  error: nullableField(Schema.String, "error"),
  attempt: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0 }),
  taskId: nullableField(Schema.String, "task_id"),
  compensation: nullableField(StepCompensation, "compensation"),
  /**
   * Ours: the signal this running step waits for. Its task ended (it holds no worker); the
   * orchestrator submits its next run (`resumes` + 1) once a signal of that name is in the inbox.
   */
  waitingSignal: nullableField(Schema.String, "waiting_signal"),
  /** Ours: how many times this attempt was resumed after waiting for a signal (names its task). */
  resumes: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0 }),
  /**
   * Ours: the signals this step consumed, by name (the key suffix `{ts}_{uuid}.json`): a retry of
   * the step gets the same signal back instead of waiting for another one.
   */
  received: nullableField(Schema.Record({ key: Schema.String, value: Schema.String }), "received")
}) {}

/**
 * Why a run stopped (`type` is e.g. `StepFailed`, `VersionMismatch`).
 *
 * @since 0.1.0
 * @category models
 */
export class WorkflowErrorInfo extends Schema.Class<WorkflowErrorInfo>("WorkflowErrorInfo")({
  type: Schema.String,
  message: Schema.String,
  step: nullableField(Schema.String, "step"),
  attempt: nullableField(Schema.NonNegativeInt, "attempt"),
  at: nullableField(Timestamp, "at")
}) {}

/**
 * Where a run's consumer is in one signal name's inbox: the key suffix (`{ts}_{uuid}.json`) of
 * the last signal consumed.
 *
 * @since 0.1.0
 * @category models
 */
export class SignalCursor extends Schema.Class<SignalCursor>("SignalCursor")({
  cursor: nullableField(Schema.String, "cursor")
}) {}

/**
 * A run, as stored at `workflow/{id}/state.json`.
 *
 * @since 0.1.0
 * @category models
 */
export class WorkflowState extends Schema.Class<WorkflowState>("WorkflowState")({
  id: Schema.String,
  type: Schema.String,
  definitionHash: field(Schema.String, "definition_hash"),
  status: WorkflowStatus,
  currentSteps: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }).pipe(Schema.fromKey("current_steps")),
  data: Schema.optionalWith(Schema.Unknown, { default: () => null }),
  steps: Schema.optionalWith(Schema.Record({ key: Schema.String, value: StepState }), { default: () => ({}) }),
  signals: Schema.optionalWith(Schema.Record({ key: Schema.String, value: SignalCursor }), { default: () => ({}) }),
  error: nullableField(WorkflowErrorInfo, "error"),
  createdAt: field(Timestamp, "created_at"),
  updatedAt: field(Timestamp, "updated_at"),
  orchestratorTaskId: nullableField(Schema.String, "orchestrator_task_id"),
  /**
   * Ours: the definition the run was started with (its steps' `depends_on`, policies and
   * compensations), so a reader without the workflow's code — `buquet workflow show`, the
   * dashboard's DAG — can draw its dependencies and tell skipped steps from pending ones.
   */
  definition: nullableField(WorkflowDefinition, "definition")
}) {}

/**
 * One signal, as stored at `workflow/{id}/signals/{name}/{ts}_{uuid}.json`.
 *
 * @since 0.1.0
 * @category models
 */
export class SignalRecord extends Schema.Class<SignalRecord>("SignalRecord")({
  id: Schema.String,
  name: Schema.String,
  payload: Schema.optionalWith(Schema.Unknown, { default: () => null }),
  createdAt: field(Timestamp, "created_at")
}) {}

const malformed = (key: string, problem: string) => new MalformedObject({ key, message: `${key} is malformed: ${problem}` })

/**
 * Decodes the run state stored at `key` and checks that its `id` is the run its key names.
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodeWorkflowState = (key: string, body: Uint8Array): Effect.Effect<WorkflowState, MalformedObject> => {
  const named = parseWorkflowStateKey(key)
  if (named === undefined) return Effect.fail(malformed(key, "not a workflow state key (workflow/{id}/state.json)"))
  return Effect.filterOrFail(
    decodeObject(WorkflowState, key, body),
    (state) => state.id === named,
    (state) => malformed(key, `its id ${JSON.stringify(state.id.slice(0, 80))} is not the run its key names (${named})`)
  )
}

/**
 * Decodes the signal stored at `key` and checks that its `name` and `id` are the ones its key names.
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodeSignal = (key: string, body: Uint8Array): Effect.Effect<SignalRecord, MalformedObject> => {
  const named = parseSignalKey(key)
  if (named === undefined) return Effect.fail(malformed(key, "not a signal key (workflow/{id}/signals/{name}/{ts}_{uuid}.json)"))
  return Effect.flatMap(decodeObject(SignalRecord, key, body), (signal) =>
    signal.name !== named.name
      ? Effect.fail(malformed(key, `its name ${JSON.stringify(signal.name.slice(0, 80))} is not the signal its key names (${named.name})`))
      : signal.id !== named.signalId
      ? Effect.fail(malformed(key, `its id ${JSON.stringify(signal.id.slice(0, 80))} is not the id its key names (${named.signalId})`))
      : Effect.succeed(signal))
}

/** `fields` without the keys whose value is `undefined` (the stored shape leaves them out). */
const defined = <A extends object>(fields: A): A =>
  Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as A

/**
 * A {@link StepState} from fields where `undefined` means "absent" (so `{ ...step, error: undefined }` clears it).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeStepState = (fields: ConstructorParameters<typeof StepState>[0]): StepState => new StepState(defined(fields))

/**
 * A {@link WorkflowState} from fields where `undefined` means "absent".
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWorkflowState = (fields: ConstructorParameters<typeof WorkflowState>[0]): WorkflowState => new WorkflowState(defined(fields))

/**
 * A {@link StepCompensation} from fields where `undefined` means "absent".
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeStepCompensation = (fields: ConstructorParameters<typeof StepCompensation>[0]): StepCompensation =>
  new StepCompensation(defined(fields))
