/**
 * The worker side of DAG workflow runs: the orchestrator pass that drives a run, and the wrappers
 * that run a step's (or a compensation's) handler and record its outcome. All three are ordinary
 * task handlers (reserved types `workflow.orchestrate:{name}` and `workflow.step:{name}:{step}`),
 * so runs move forward on the queue's own claims, leases, retries and cancels.
 *
 * How a run moves, without anyone polling it:
 * 1. `start` creates the state and submits an orchestrator task.
 * 2. The orchestrator reads the state and applies `Dag.decide`. For each ready step it submits the
 *    step's task with an idempotency key naming run, step, attempt and resume (so a crash between
 *    the submit and the CAS that marks the step `running`, or two orchestrators at once, still
 *    make one task), then marks the steps `running` by CAS. Verdicts (complete, fail, pause,
 *    cancel, compensate) are written the same way; running step tasks a verdict stops are
 *    cancelled through the queue.
 * 3. A step's wrapper runs the handler, records the result write-once (`steps/{step}.json`), marks
 *    the step `completed` (or, on its final failure, `failed`) by CAS and submits the next
 *    orchestrator task (idempotent on that outcome). A step already recorded is never run again.
 * 4. Crash windows (a step that finished while nothing woke its run, a lease that ran out on the
 *    last attempt, an orchestrator task lost between two writes) are recovered by the sweeper
 *    (`DagSweeper.ts`), which submits an orchestrator task that reconciles the running steps with
 *    their tasks.
 *
 * @since 0.1.0
 * @module
 */
import { Cause, DateTime, Duration, Effect, Either, Option, Schema } from "effect"
import { PermanentError } from "../domain/HandlerErrors.js"
import { MalformedObject } from "../domain/QueueError.js"
import type { Task } from "../domain/Task.js"
import { isTerminal } from "../domain/TaskStatus.js"
import { decide, stepsToRetryOnResume } from "../domain/workflow/Dag.js"
import type { Decision } from "../domain/workflow/Dag.js"
import { orchestrateTaskType, stepTaskType } from "../domain/workflow/RunKeys.js"
import type { StepDefinition, WorkflowDefinition } from "../domain/workflow/WorkflowDefinition.js"
import { isTerminalWorkflowStatus, makeStepCompensation, makeStepState, makeWorkflowState, WorkflowErrorInfo } from "../domain/workflow/WorkflowState.js"
import type { StepState, WorkflowState } from "../domain/workflow/WorkflowState.js"
import type { WorkflowStatus } from "../domain/workflow/WorkflowState.js"
import {
  cancelledState,
  cancelStepTasks,
  getRun,
  hasPendingSignal,
  readStepResult,
  recordStepResult,
  updateRun,
  wakeRun
} from "../protocol/WorkflowRuns.js"
import { Queue } from "../services/Queue.js"
import type { Storage } from "../services/Storage.js"
import { handler } from "./worker/Handler.js"
import type { HandlerDefinition, TaskContext } from "./worker/Handler.js"

/**
 * What a step's handler asked for by `waitForSignal` when no signal was there: the wrapper ends the
 * step's task (it holds no worker while it waits) and the run resumes the step when one arrives.
 *
 * @since 0.1.0
 * @category errors
 */
export class WaitingForSignal extends Schema.TaggedError<WaitingForSignal>()("WaitingForSignal", {
  signal: Schema.String
}) {}

/**
 * The input of a step's (or compensation's) task.
 *
 * @since 0.1.0
 * @category models
 */
export const StepTaskInput = Schema.Struct({
  workflow_id: Schema.String,
  step: Schema.String,
  attempt: Schema.NonNegativeInt,
  resumes: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0 }),
  /** Set for a compensation's task: the compensation handler's name (`step` is the step it undoes). */
  compensation: Schema.optional(Schema.String)
})

/**
 * The input of an orchestrator task; `reconcile` (the sweeper's) also checks every running step's
 * task, for outcomes nobody reported.
 *
 * @since 0.1.0
 * @category models
 */
export const OrchestrateTaskInput = Schema.Struct({
  workflow_id: Schema.String,
  reconcile: Schema.optional(Schema.Boolean)
})

/**
 * What a step handler gets: the run, the step, the attempt (1 for the first), and the task.
 *
 * @since 0.1.0
 * @category models
 */
export interface StepRun {
  readonly state: WorkflowState
  readonly step: string
  readonly attempt: number
  readonly task: TaskContext
}

/**
 * A workflow as the worker runs it: its validated definition and hash, and a runner per step and
 * per compensation. A step runner returns the step's result encoded to JSON; it fails with
 * {@link WaitingForSignal} to wait.
 *
 * @since 0.1.0
 * @category models
 */
export interface RegisteredWorkflow<R = never> {
  readonly definition: WorkflowDefinition
  readonly hash: string
  readonly runStep: (name: string, run: StepRun) => Effect.Effect<unknown, unknown, R>
  readonly runCompensation: (name: string, step: string, run: StepRun) => Effect.Effect<void, unknown, R>
  /** The names of its compensation handlers. */
  readonly compensations: ReadonlyArray<string>
}

/**
 * The wake-up key (see `WorkflowRuns.wakeRun`) of a step task's outcome: one orchestrator task per
 * run, step, attempt, resume and outcome (`completed`, `failed`, `waiting:{signal}`).
 *
 * @since 0.1.0
 * @category wake-ups
 */
export const stepWakeKey = (step: string, attempt: number, resumes: number, outcome: string): string => `step:${step}:${attempt}:${resumes}:${outcome}`

/**
 * The wake-up key of a compensation's outcome (`completed`, `failed`).
 *
 * @since 0.1.0
 * @category wake-ups
 */
export const compensationWakeKey = (step: string, outcome: string): string => `compensate:${step}:${outcome}`

/**
 * The wake-up key of a run's start.
 *
 * @since 0.1.0
 * @category wake-ups
 */
export const startWakeKey = "start"

/**
 * The keys of the wake-ups that may still move a run which shows nothing in flight, latest first:
 * the outcome of every settled step and compensation (by when it settled: two steps settling at
 * once may wake the run in either order), or its start when nothing has run yet. Empty when the
 * state does not tell (e.g. a resumed run).
 *
 * @since 0.1.0
 * @category wake-ups
 */
export const wakeKeys = (state: WorkflowState): ReadonlyArray<string> => {
  const settled: Array<{ readonly key: string; readonly at: number }> = []
  for (const [name, s] of Object.entries(state.steps)) {
    if ((s.status === "completed" || s.status === "failed") && s.completedAt !== undefined) {
      settled.push({ key: stepWakeKey(name, s.attempt, s.resumes, s.status), at: DateTime.toEpochMillis(s.completedAt) })
    }
    const c = s.compensation
    if (c !== undefined && (c.status === "completed" || c.status === "failed") && c.completedAt !== undefined) {
      settled.push({ key: compensationWakeKey(name, c.status), at: DateTime.toEpochMillis(c.completedAt) })
    }
  }
  if (settled.length > 0) return settled.sort((a, b) => b.at - a.at).map((x) => x.key)
  return Object.values(state.steps).every((s) => s.status === "pending" && s.attempt === 0 && s.compensation === undefined) ? [startWakeKey] : []
}

/** Step tasks get this long on top of the step's own timeout to record the outcome before their lease ends. */
const recordGrace = 10

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const e = failure.value
    if (typeof e === "object" && e !== null && "message" in e && typeof e.message === "string") return e.message
    return String(e)
  }
  return Cause.pretty(cause).split("\n")[0] ?? "failed"
}

const stepOf = (definition: WorkflowDefinition, name: string): StepDefinition | undefined => definition.steps.find((s) => s.name === name)

// ---------------------------------------------------------------------------------------------
// The orchestrator pass

/** What a reconcile learnt about a running step's task. */
type TaskFact =
  | { readonly _tag: "Completed"; readonly step: string; readonly taskId: string; readonly result: unknown; readonly at: Task["updatedAt"] }
  | { readonly _tag: "Failed"; readonly step: string; readonly taskId: string; readonly error: string; readonly at: Task["updatedAt"] }
  | { readonly _tag: "Cancelled"; readonly step: string; readonly taskId: string; readonly at: Task["updatedAt"] }
  | { readonly _tag: "Lost"; readonly step: string; readonly taskId: string }
  | { readonly _tag: "CompensationDone"; readonly step: string; readonly taskId: string; readonly ok: boolean; readonly error: string | undefined; readonly at: Task["updatedAt"] }

/** Reads the task of every running step and compensation and says which ended without telling the run. */
const reconcileFacts = (state: WorkflowState) =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const facts: Array<TaskFact> = []
    for (const [step, s] of Object.entries(state.steps)) {
      if (s.status === "running" && s.taskId !== undefined && s.waitingSignal === undefined) {
        const taskId = s.taskId
        const found = yield* queue.get(taskId)
        if (Option.isSome(found) && !isTerminal(found.value.status)) continue
        const task = Option.getOrUndefined(found)
        if (task?.status === "completed" && typeof task.output === "object" && task.output !== null && "waiting_signal" in task.output) continue
        // a recorded result is the step's outcome, whatever became of its task since: retention may
        // have archived (or deleted) the completed task before anyone reconciled the run
        const recorded = yield* readStepResult(state.id, step)
        if (Option.isSome(recorded)) {
          facts.push({ _tag: "Completed", step, taskId, result: recorded.value.result, at: recorded.value.completedAt })
          continue
        }
        if (task === undefined) {
          facts.push({ _tag: "Lost", step, taskId })
          continue
        }
        if (task.status === "completed") {
          facts.push({ _tag: "Completed", step, taskId, result: yield* queue.loadOutput(task), at: task.updatedAt })
        } else if (task.status === "cancelled") {
          facts.push({ _tag: "Cancelled", step, taskId, at: task.updatedAt })
        } else {
          facts.push({ _tag: "Failed", step, taskId, error: task.lastError ?? `its task ended ${task.status}`, at: task.updatedAt })
        }
      }
      const c = s.compensation
      if (c?.status === "running" && c.taskId !== undefined) {
        const found = yield* queue.get(c.taskId)
        if (Option.isSome(found) && isTerminal(found.value.status)) {
          const ok = found.value.status === "completed"
          facts.push({ _tag: "CompensationDone", step, taskId: c.taskId, ok, error: ok ? undefined : found.value.lastError ?? `its task ended ${found.value.status}`, at: found.value.updatedAt })
        }
      }
    }
    return facts
  })

/** Applies reconcile facts to the state (each only if the step still shows the same task running). */
const applyFacts = (state: WorkflowState, facts: ReadonlyArray<TaskFact>): WorkflowState | undefined => {
  const steps = { ...state.steps }
  let changed = false
  for (const f of facts) {
    const s = steps[f.step]
    if (s === undefined) continue
    if (f._tag === "CompensationDone") {
      if (s.compensation?.status !== "running" || s.compensation.taskId !== f.taskId) continue
      steps[f.step] = makeStepState({
        ...s,
        compensation: makeStepCompensation({ ...s.compensation, status: f.ok ? "completed" : "failed", completedAt: f.at, error: f.error })
      })
      changed = true
      continue
    }
    if (s.status !== "running" || s.taskId !== f.taskId) continue
    changed = true
    switch (f._tag) {
      case "Completed":
        steps[f.step] = makeStepState({ ...s, status: "completed", result: f.result, completedAt: f.at, waitingSignal: undefined })
        break
      case "Failed":
        steps[f.step] = makeStepState({ ...s, status: "failed", error: f.error, completedAt: f.at, waitingSignal: undefined })
        break
      case "Cancelled":
        steps[f.step] = makeStepState({ ...s, status: "cancelled", completedAt: f.at, waitingSignal: undefined })
        break
      case "Lost":
        // its task is gone (deleted by hand): submit it again (the same key re-creates the same id)
        steps[f.step] = makeStepState({ ...s, status: "pending", attempt: Math.max(0, s.attempt - 1), taskId: undefined, startedAt: undefined })
        break
    }
  }
  return changed ? makeWorkflowState({ ...state, steps }) : undefined
}

/** The idempotency key of a step's task: one task per run, step, attempt and resume. */
const stepTaskKey = (runId: string, step: string, attempt: number, resumes: number) => `${runId}:step:${step}:${attempt}:${resumes}`

/** Submits a step's task (idempotent); returns its id. */
const submitStep = (definition: WorkflowDefinition, state: WorkflowState, step: StepDefinition, attempt: number, resumes: number) =>
  Effect.flatMap(Queue, (queue) =>
    queue.submit(stepTaskType(definition.name, step.name), { workflow_id: state.id, step: step.name, attempt, resumes }, {
      typeCheck: "off",
      maxRetries: step.retries,
      timeoutSeconds: step.timeoutSeconds + recordGrace,
      idempotencyKey: stepTaskKey(state.id, step.name, attempt, resumes)
    })).pipe(Effect.map((t) => t.id))

const errorInfo = (type: string, message: string, at: WorkflowState["updatedAt"], step?: string, attempt?: number) =>
  new WorkflowErrorInfo({ type, message, at, ...(step === undefined ? {} : { step }), ...(attempt === undefined ? {} : { attempt }) })

const runningSteps = (state: WorkflowState) => Object.entries(state.steps).filter(([, s]) => s.status === "running").map(([n]) => n)

/** The status a run shows while it runs: waiting for a signal when everything in flight waits for one. */
const runningStatus = (state: WorkflowState, ready: ReadonlyArray<string>): WorkflowStatus => {
  const running = Object.values(state.steps).filter((s) => s.status === "running")
  return ready.length === 0 && running.length > 0 && running.every((s) => s.waitingSignal !== undefined) ? "waiting_signal" : "running"
}

/**
 * One orchestrator pass over run `runId` of `workflow`: reconcile (when asked), then apply
 * `Dag.decide` until the run waits on something outside it. Safe to run any number of times, at
 * the same time too: submits are idempotent and every write is a CAS re-applied on a lost race.
 *
 * @since 0.1.0
 * @category orchestration
 */
export const orchestrate = <R>(workflow: RegisteredWorkflow<R>, runId: string, options: { readonly reconcile?: boolean } = {}) =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const definition = workflow.definition
    // at most a few rounds: each one either waits (returns) or wrote a verdict that changes the next decision
    for (let round = 0; round < 2 * definition.steps.length + 4; round++) {
      const run = yield* getRun(runId)
      const state = run.state
      if (state.type !== definition.name) {
        return yield* new PermanentError({ message: `run "${runId}" is a run of "${state.type}", not "${definition.name}"` })
      }
      if (isTerminalWorkflowStatus(state.status)) {
        // a cancelled run: make sure no step task it cancelled still runs (a crash between the CAS and the cancels)
        if (state.status === "cancelled") yield* cancelStepTasks(state, state.error?.message ?? "cancelled")
        return
      }
      const now = yield* queue.now
      if (state.definitionHash !== workflow.hash) {
        yield* updateRun(runId, (s) =>
          Effect.succeed(
            s.status === "paused" && s.error?.type === "VersionMismatch" || isTerminalWorkflowStatus(s.status) ? undefined : makeWorkflowState({
              ...s,
              status: "paused",
              error: errorInfo(
                "VersionMismatch",
                `run "${runId}" was started with definition ${s.definitionHash} of "${definition.name}", but this worker runs ${workflow.hash}: run it with the definition it started with, or start a new run (see README "DAG workflows", definition hash)`,
                now
              )
            })
          ))
        return
      }
      if (options.reconcile === true && round === 0) {
        const facts = yield* reconcileFacts(state)
        if (facts.length > 0) {
          yield* updateRun(runId, (s) => Effect.succeed(applyFacts(s, facts)))
          continue
        }
      }
      if (state.status === "paused") {
        // show where it stopped: a resume retries the failed pause_workflow steps named here
        const at = [...stepsToRetryOnResume(definition, state), ...runningSteps(state)]
        yield* updateRun(runId, (s) =>
          Effect.succeed(s.status !== "paused" || sameList(s.currentSteps, at) ? undefined : makeWorkflowState({ ...s, currentSteps: at })))
        return
      }
      const decision = decide(definition, state)
      const again = yield* apply(workflow, state, decision)
      if (!again) return
    }
    return yield* Effect.dieMessage(`orchestrator of run "${runId}" did not settle (a defect: every round should change the decision)`)
  }).pipe(Effect.withSpan("DagOrchestrator.orchestrate", { attributes: { runId } }))

const sameList = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => a.length === b.length && a.every((x, i) => x === b[i])

/** Acts on a decision; true when the run should be decided again right away. */
const apply = <R>(workflow: RegisteredWorkflow<R>, state: WorkflowState, decision: Decision) =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const definition = workflow.definition
    const now = yield* queue.now
    const runId = state.id
    const stepError = (step: string) => state.steps[step]?.error ?? "failed"
    switch (decision._tag) {
      case "Run": {
        // steps waiting for a signal that has arrived run again (the next resume of the same attempt)
        const resumable: Array<string> = []
        for (const name of decision.running) {
          const s = state.steps[name]!
          if (s.waitingSignal !== undefined && (yield* hasPendingSignal(state, s.waitingSignal))) resumable.push(name)
        }
        const submitted = new Map<string, { readonly taskId: string; readonly attempt: number; readonly resumes: number }>()
        for (const name of decision.ready) {
          const s = state.steps[name]
          const attempt = (s?.attempt ?? 0) + 1
          submitted.set(name, { taskId: yield* submitStep(definition, state, stepOf(definition, name)!, attempt, 0), attempt, resumes: 0 })
        }
        for (const name of resumable) {
          const s = state.steps[name]!
          const resumes = s.resumes + 1
          submitted.set(name, { taskId: yield* submitStep(definition, state, stepOf(definition, name)!, s.attempt, resumes), attempt: s.attempt, resumes })
        }
        yield* updateRun(runId, (s) => {
          // a run another pass ended meanwhile (this decision was taken on an older state) stays ended
          if (isTerminalWorkflowStatus(s.status)) return Effect.succeed(undefined)
          const steps = { ...s.steps }
          let changed = false
          for (const [name, sub] of submitted) {
            const cur = steps[name] ?? makeStepState({ status: "pending", attempt: 0, resumes: 0 })
            const fresh = cur.status === "pending" && cur.attempt === sub.attempt - 1 && sub.resumes === 0
            const resumed = cur.status === "running" && cur.attempt === sub.attempt && cur.resumes === sub.resumes - 1 && cur.waitingSignal !== undefined
            if (!fresh && !resumed) continue // it moved on meanwhile (its task may even have finished)
            steps[name] = makeStepState({
              ...cur,
              status: "running",
              attempt: sub.attempt,
              resumes: sub.resumes,
              taskId: sub.taskId,
              startedAt: fresh ? now : cur.startedAt,
              waitingSignal: undefined
            })
            changed = true
          }
          const next = makeWorkflowState({ ...s, steps })
          const status = s.status === "paused" ? "paused" : runningStatus(next, [])
          const current = runningSteps(next)
          if (!changed && s.status === status && sameList(s.currentSteps, current)) return Effect.succeed(undefined)
          return Effect.succeed(makeWorkflowState({ ...next, status, currentSteps: current }))
        })
        return false
      }
      case "Complete": {
        yield* updateRun(runId, (s) =>
          Effect.succeed(isTerminalWorkflowStatus(s.status) ? undefined : makeWorkflowState({ ...s, status: "completed", currentSteps: [], error: undefined })))
        return false
      }
      case "Fail": {
        const message = decision.reason === "step_failed"
          ? `step "${decision.step}" failed: ${stepError(decision.step)}`
          : decision.reason === "dependents_skipped"
          ? `step "${decision.step}" failed (on_failure: continue) and its dependents never ran: ${(decision.skipped ?? []).join(", ")}`
          : decision.reason === "compensated"
          ? `step "${decision.step}" failed: ${stepError(decision.step)}; the completed steps were compensated`
          : `compensation of step "${decision.step}" failed: ${state.steps[decision.step]?.compensation?.error ?? "failed"}; compensation stopped there`
        const type = { step_failed: "StepFailed", dependents_skipped: "DependentsSkipped", compensated: "Compensated", compensation_failed: "CompensationFailed" }[decision.reason]
        const { run } = yield* updateRun(runId, (s) => {
          if (isTerminalWorkflowStatus(s.status)) return Effect.succeed(undefined)
          const cancelled = cancelledState(s, errorInfo(type, message, now, decision.step), now)
          return Effect.succeed(makeWorkflowState({ ...cancelled, status: "failed" }))
        })
        if (decision.cancel.length > 0) yield* cancelStepTasks(run.state, message)
        return false
      }
      case "Pause": {
        yield* updateRun(runId, (s) =>
          Effect.succeed(
            s.status === "paused" || isTerminalWorkflowStatus(s.status) ? undefined : makeWorkflowState({
              ...s,
              status: "paused",
              currentSteps: [...stepsToRetryOnResume(definition, s), ...runningSteps(s)],
              error: errorInfo("StepFailed", `step "${decision.step}" failed (on_failure: pause_workflow): ${stepError(decision.step)}; resume the run to retry it`, now, decision.step, s.steps[decision.step]?.attempt)
            })
          ))
        return false
      }
      case "Cancel": {
        const message = `step "${decision.step}" was cancelled`
        const { run } = yield* updateRun(runId, (s) =>
          Effect.succeed(isTerminalWorkflowStatus(s.status) ? undefined : cancelledState(s, errorInfo("StepCancelled", message, now, decision.step), now)))
        yield* cancelStepTasks(run.state, message)
        return false
      }
      case "Compensate": {
        if (decision.cancel.length > 0) {
          const message = `step "${decision.step}" failed (on_failure: compensate): unwinding the run`
          const { run } = yield* updateRun(runId, (s) => {
            if (isTerminalWorkflowStatus(s.status)) return Effect.succeed(undefined)
            const steps = { ...s.steps }
            for (const name of decision.cancel) {
              const cur = steps[name]
              if (cur?.status === "running") steps[name] = makeStepState({ ...cur, status: "cancelled", completedAt: now, error: message, waitingSignal: undefined })
            }
            return Effect.succeed(makeWorkflowState({ ...s, status: "compensating", currentSteps: [], steps }))
          })
          yield* cancelStepTasks(run.state, message)
          return true
        }
        const next = decision.next
        if (next === undefined) {
          yield* updateRun(runId, (s) =>
            Effect.succeed(s.status === "compensating" || isTerminalWorkflowStatus(s.status) ? undefined : makeWorkflowState({ ...s, status: "compensating" })))
          return false
        }
        const compensation = stepOf(definition, next)!.compensation!
        const task = yield* queue.submit(
          stepTaskType(definition.name, compensation),
          { workflow_id: runId, step: next, attempt: 1, resumes: 0, compensation },
          { typeCheck: "off", maxRetries: stepOf(definition, next)!.retries, timeoutSeconds: stepOf(definition, next)!.timeoutSeconds + recordGrace, idempotencyKey: `${runId}:compensate:${next}` }
        )
        yield* updateRun(runId, (s) => {
          const cur = s.steps[next]
          if (cur === undefined || cur.compensation !== undefined || isTerminalWorkflowStatus(s.status)) return Effect.succeed(undefined)
          const steps = {
            ...s.steps,
            [next]: makeStepState({ ...cur, compensation: makeStepCompensation({ status: "running", taskId: task.id, startedAt: now }) })
          }
          return Effect.succeed(makeWorkflowState({ ...s, status: "compensating", currentSteps: [next], steps }))
        })
        return false
      }
    }
  })

// ---------------------------------------------------------------------------------------------
// Step and compensation wrappers

/** Whether a failure leaves the task no retry (so the step has failed for good). */
const isFinal = (error: unknown, task: Task): boolean =>
  (typeof error === "object" && error !== null && "_tag" in error && error._tag === "PermanentError") || task.retryCount >= task.maxRetries

const isReschedule = (error: unknown): boolean => typeof error === "object" && error !== null && "_tag" in error && error._tag === "RescheduleError"

/**
 * Whether a step's task `input` may still change the step: the run is live and the step shows this
 * attempt (running, or pending just before the orchestrator's CAS that marks it running lands).
 */
const stepIsCurrent = (state: WorkflowState, input: typeof StepTaskInput.Type): boolean => {
  if (isTerminalWorkflowStatus(state.status)) return false
  const s = state.steps[input.step]
  if (s === undefined) return false
  if (s.status === "running") return s.attempt === input.attempt && s.resumes === input.resumes
  return s.status === "pending" && s.attempt === input.attempt - 1 && input.resumes === 0
}

/** Marks the step of `input` with `change` if it is still current; returns whether it did. */
const recordStep = (input: typeof StepTaskInput.Type, taskId: string, change: (s: StepState) => StepState) =>
  Effect.map(
    updateRun(input.workflow_id, (state) => {
      if (!stepIsCurrent(state, input)) return Effect.succeed(undefined)
      const cur = state.steps[input.step]!
      const base = makeStepState({ ...cur, status: "running", attempt: input.attempt, resumes: input.resumes, taskId })
      return Effect.succeed(makeWorkflowState({ ...state, steps: { ...state.steps, [input.step]: change(base) } }))
    }),
    (r) => r.changed
  )

const decodeInput = (json: unknown) =>
  Schema.decodeUnknown(StepTaskInput)(json).pipe(Effect.mapError((e) => new PermanentError({ message: `workflow step task input is malformed: ${e.message}` })))

const asPermanent = (e: unknown) =>
  new PermanentError({ message: typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e) })

/** Reads the run for a step task; a missing or unreadable run fails the task for good. */
const readForStep = (runId: string) =>
  getRun(runId).pipe(
    Effect.catchTags({
      WorkflowRunNotFound: (e) => Effect.fail(new PermanentError({ message: e.message })),
      MalformedObject: (e: MalformedObject) => Effect.fail(new PermanentError({ message: e.message })),
      InvalidArgument: (e) => Effect.fail(new PermanentError({ message: e.message }))
    })
  )

/**
 * Runs one step's task: skips it if the run moved on or the step's result is already recorded,
 * runs the handler under the step's timeout, records the outcome and wakes the run.
 */
const runStepTask = <R>(workflow: RegisteredWorkflow<R>, stepName: string) => (json: unknown, ctx: TaskContext) =>
  Effect.gen(function*() {
    const input = yield* decodeInput(json)
    const definition = workflow.definition
    const step = stepOf(definition, stepName)
    if (step === undefined || input.step !== stepName) return yield* new PermanentError({ message: `task of step "${stepName}" names step "${input.step}"` })
    const wake = (outcome: string) => wakeRun(definition.name, input.workflow_id, stepWakeKey(stepName, input.attempt, input.resumes, outcome))
    const run = yield* readForStep(input.workflow_id)
    if (!stepIsCurrent(run.state, input)) {
      // the run moved on (cancelled, failed, or this attempt was already settled): nothing to do
      if (run.state.steps[stepName]?.status === "completed") yield* wake("completed")
      return { skipped: true }
    }
    const recorded = yield* readStepResult(input.workflow_id, stepName)
    if (Option.isSome(recorded)) {
      // an earlier attempt finished and crashed before telling the run: never run a recorded step again
      yield* recordStep(input, ctx.taskId, (s) => makeStepState({ ...s, status: "completed", result: recorded.value.result, completedAt: recorded.value.completedAt }))
      yield* wake("completed")
      return recorded.value.result
    }
    const outcome = yield* Effect.either(
      workflow.runStep(stepName, { state: run.state, step: stepName, attempt: input.attempt, task: ctx }).pipe(
        Effect.timeoutFail({
          duration: Duration.seconds(step.timeoutSeconds),
          onTimeout: () => new Error(`step "${stepName}" timed out after ${step.timeoutSeconds} s`)
        })
      )
    )
    if (Either.isRight(outcome)) {
      const record = yield* recordStepResult(input.workflow_id, stepName, input.attempt, outcome.right)
      yield* recordStep(input, ctx.taskId, (s) => makeStepState({ ...s, status: "completed", result: record.result, completedAt: record.completedAt, error: undefined, waitingSignal: undefined }))
      yield* wake("completed")
      return record.result
    }
    const error = outcome.left
    if (error instanceof WaitingForSignal) {
      yield* recordStep(input, ctx.taskId, (s) => makeStepState({ ...s, waitingSignal: error.signal }))
      // the orchestrator looks at the inbox after this CAS, so a signal sent meanwhile is not missed
      yield* wake(`waiting:${error.signal}`)
      return { waiting_signal: error.signal }
    }
    if (isReschedule(error) || !isFinal(error, ctx.task)) return yield* Effect.fail(error)
    const message = describeCause(Cause.fail(error))
    const now = yield* Effect.flatMap(Queue, (q) => q.now)
    yield* recordStep(input, ctx.taskId, (s) => makeStepState({ ...s, status: "failed", error: message, completedAt: now, waitingSignal: undefined }))
    yield* wake("failed")
    return yield* new PermanentError({ message })
  })

/** Runs one compensation's task: skips it unless the step's compensation is current, records the outcome, wakes the run. */
const runCompensationTask = <R>(workflow: RegisteredWorkflow<R>, compensation: string) => (json: unknown, ctx: TaskContext) =>
  Effect.gen(function*() {
    const input = yield* decodeInput(json)
    if (input.compensation !== compensation) return yield* new PermanentError({ message: `task of compensation "${compensation}" names "${input.compensation}"` })
    const definition = workflow.definition
    const wake = (outcome: string) => wakeRun(definition.name, input.workflow_id, compensationWakeKey(input.step, outcome))
    const run = yield* readForStep(input.workflow_id)
    const current = (state: WorkflowState) => {
      const c = state.steps[input.step]?.compensation
      // pending: the orchestrator's CAS naming this task has not landed yet
      return !isTerminalWorkflowStatus(state.status) && (c === undefined || (c.status === "running" && (c.taskId === undefined || c.taskId === ctx.taskId)))
    }
    if (!current(run.state)) return { skipped: true }
    const settle = (ok: boolean, error: string | undefined) =>
      Effect.gen(function*() {
        const now = yield* Effect.flatMap(Queue, (q) => q.now)
        yield* updateRun(input.workflow_id, (state) => {
          if (!current(state)) return Effect.succeed(undefined)
          const s = state.steps[input.step]!
          const comp = makeStepCompensation({
            status: ok ? "completed" : "failed",
            taskId: ctx.taskId,
            startedAt: s.compensation?.startedAt ?? now,
            completedAt: now,
            error
          })
          return Effect.succeed(makeWorkflowState({ ...state, steps: { ...state.steps, [input.step]: makeStepState({ ...s, compensation: comp }) } }))
        })
        yield* wake(ok ? "completed" : "failed")
      })
    const step = stepOf(definition, input.step)
    const outcome = yield* Effect.either(
      workflow.runCompensation(compensation, input.step, { state: run.state, step: input.step, attempt: ctx.attempt, task: ctx }).pipe(
        Effect.timeoutFail({
          duration: Duration.seconds(step?.timeoutSeconds ?? 300),
          onTimeout: () => new Error(`compensation "${compensation}" of step "${input.step}" timed out`)
        })
      )
    )
    if (Either.isRight(outcome)) {
      yield* settle(true, undefined)
      return null
    }
    const error = outcome.left
    if (isReschedule(error) || !isFinal(error, ctx.task)) return yield* Effect.fail(error)
    const message = describeCause(Cause.fail(error))
    yield* settle(false, message)
    return yield* new PermanentError({ message })
  })

/**
 * The worker handlers of `workflow`: its orchestrator, one per step and one per compensation.
 * Give them to `Worker.make` next to your other handlers.
 *
 * @since 0.1.0
 * @category orchestration
 */
export const handlersOf = <R>(workflow: RegisteredWorkflow<R>): ReadonlyArray<HandlerDefinition<R | Queue | Storage>> => {
  const definition = workflow.definition
  const orchestrator = handler(orchestrateTaskType(definition.name), (json) =>
    Effect.gen(function*() {
      const input = yield* Schema.decodeUnknown(OrchestrateTaskInput)(json).pipe(
        Effect.mapError((e) => new PermanentError({ message: `orchestrator task input is malformed: ${e.message}` }))
      )
      yield* orchestrate(workflow, input.workflow_id, { reconcile: input.reconcile === true }).pipe(
        Effect.catchTags({
          WorkflowRunNotFound: (e) => Effect.fail(new PermanentError({ message: e.message })),
          MalformedObject: (e) => Effect.fail(asPermanent(e)),
          InvalidArgument: (e) => Effect.fail(asPermanent(e))
        })
      )
      return null
    }))
  const steps = definition.steps.map((s) => handler(stepTaskType(definition.name, s.name), runStepTask(workflow, s.name)))
  const compensations = workflow.compensations.map((c) => handler(stepTaskType(definition.name, c), runCompensationTask(workflow, c)))
  return [orchestrator, ...steps, ...compensations] as ReadonlyArray<HandlerDefinition<R | Queue | Storage>>
}
