/**
 * What the surfaces show of a DAG workflow run (`buquet workflow list|show`, the dashboard's
 * workflow pages, `queue.workflows.get`): its progress, each step's row in a stable order, and
 * which signals of its inbox were consumed. Pure functions of the stored state and, when the
 * caller knows it, the run's definition (for the steps not yet started, the skipped ones and the
 * dependency edges).
 *
 * @since 0.1.0
 * @module
 */
import { DateTime, Either } from "effect"
import { isPaused } from "../Pause.js"
import type { PauseState } from "../Pause.js"
import { blockedSteps, topologicalOrder } from "./Dag.js"
import { stepTaskType } from "./RunKeys.js"
import { validateDefinition } from "./WorkflowDefinition.js"
import type { WorkflowDefinition } from "./WorkflowDefinition.js"
import type { StepStatus, WorkflowState } from "./WorkflowState.js"

/**
 * A step as shown: its stored status, or `skipped` for a pending step that can never run because
 * a dependency failed (Dag.blockedSteps; only known with the definition).
 *
 * @since 0.1.0
 * @category models
 */
export type StepDisplayStatus = StepStatus | "skipped"

/**
 * One step's row.
 *
 * @since 0.1.0
 * @category models
 */
export interface StepRow {
  readonly name: string
  readonly status: StepDisplayStatus
  readonly attempt: number
  readonly error: string | null
  readonly taskId: string | null
  readonly startedAt: DateTime.Utc | null
  readonly completedAt: DateTime.Utc | null
  /** Its dependencies; empty when the definition is not known. */
  readonly dependsOn: ReadonlyArray<string>
  /** The compensation's progress, when one ran or runs. */
  readonly compensation: "running" | "completed" | "failed" | null
}

/**
 * The definition a run recorded (`state.definition`), when it is one a run can have (a stored one
 * is not trusted: a cycle or an unknown dependency would make it undrawable); else undefined, and
 * the views fall back to the stored steps.
 *
 * @since 0.1.0
 * @category views
 */
export const recordedDefinition = (state: WorkflowState): WorkflowDefinition | undefined =>
  state.definition === undefined ? undefined : Either.getOrUndefined(validateDefinition(state.definition))

/**
 * The running steps a pause switch holds (`buquet pause TYPE`, or everything paused): their task
 * waits, unclaimed, until the resume. Steps waiting for a signal are not held by it.
 *
 * @since 0.1.0
 * @category views
 */
export const stepsHeldByPause = (state: WorkflowState, pause: PauseState): ReadonlyArray<{ readonly step: string; readonly taskType: string }> =>
  Object.entries(state.steps)
    .filter(([, s]) => s.status === "running" && s.waitingSignal === undefined)
    .map(([step]) => ({ step, taskType: stepTaskType(state.type, step) }))
    .filter((h) => isPaused(pause, h.taskType))

/**
 * Why a held step waits and how to let it go, in the words `buquet workflow show` and the
 * dashboard use.
 *
 * @since 0.1.0
 * @category views
 */
export const describeHold = (held: { readonly step: string; readonly taskType: string }, pause: PauseState): string =>
  `step ${held.step} waits: ${pause.global ? "the queue is paused (buquet resume)" : `its task type ${held.taskType} is paused (buquet resume ${held.taskType})`}`

/**
 * Each step's row: with the definition (by default the one the run recorded), every step of it in topological order (steps the run has
 * not reached are `pending`), then any stored step the definition does not name; without it, the
 * stored steps in the order they started (never-started ones last, by name).
 *
 * @since 0.1.0
 * @category views
 */
export const stepRows = (
  state: WorkflowState,
  definition: WorkflowDefinition | undefined = recordedDefinition(state)
): ReadonlyArray<StepRow> => {
  const deps = new Map(definition?.steps.map((s) => [s.name, s.dependsOn]) ?? [])
  const skipped = new Set(definition === undefined ? [] : blockedSteps(definition, state))
  const row = (name: string): StepRow => {
    const s = state.steps[name]
    const status = s?.status ?? "pending"
    return {
      name,
      status: status === "pending" && skipped.has(name) ? "skipped" : status,
      attempt: s?.attempt ?? 0,
      error: s?.error ?? null,
      taskId: s?.taskId ?? null,
      startedAt: s?.startedAt ?? null,
      completedAt: s?.completedAt ?? null,
      dependsOn: deps.get(name) ?? [],
      compensation: s?.compensation?.status ?? null
    }
  }
  const stored = Object.keys(state.steps)
  if (definition !== undefined) {
    const order = topologicalOrder(definition)
    const known = new Set(order)
    return [...order, ...stored.filter((n) => !known.has(n)).sort()].map(row)
  }
  const started = (name: string) => state.steps[name]?.startedAt
  return stored
    .map(row)
    .sort((a, b) => {
      const sa = started(a.name)
      const sb = started(b.name)
      if (sa == null || sb == null) return sa == null && sb == null ? (a.name < b.name ? -1 : 1) : sa == null ? 1 : -1
      return sa.epochMillis - sb.epochMillis || (a.name < b.name ? -1 : 1)
    })
}

/**
 * How far a run is: its completed steps out of all of them (the definition's steps when known —
 * by default the one the run recorded — else the steps its state records).
 *
 * @since 0.1.0
 * @category views
 */
export const runProgress = (
  state: WorkflowState,
  definition: WorkflowDefinition | undefined = recordedDefinition(state)
): { readonly completed: number; readonly total: number } => {
  const rows = stepRows(state, definition)
  return { completed: rows.filter((r) => r.status === "completed").length, total: rows.length }
}

/**
 * Whether the signal stored under `suffix` (`{ts}_{uuid}.json`, the part of its key after
 * `signals/{name}/`) was consumed: the run's cursor for that name is at or past it (signals are
 * consumed in key order).
 *
 * @since 0.1.0
 * @category views
 */
export const signalConsumed = (state: WorkflowState, name: string, suffix: string): boolean => {
  const cursor = state.signals[name]?.cursor
  return cursor !== undefined && cursor !== null && suffix <= cursor
}

/**
 * Each step's column in a drawing of the DAG: 0 for a step without dependencies, else one more
 * than its furthest dependency (the longest path to it), so every edge points right.
 *
 * @since 0.1.0
 * @category views
 */
export const stepLevels = (definition: WorkflowDefinition): ReadonlyMap<string, number> => {
  const deps = new Map(definition.steps.map((s) => [s.name, s.dependsOn]))
  const levels = new Map<string, number>()
  for (const name of topologicalOrder(definition)) {
    levels.set(name, Math.max(-1, ...(deps.get(name) ?? []).map((d) => levels.get(d) ?? 0)) + 1)
  }
  return levels
}

const iso = (t: DateTime.Utc | null | undefined): string | null => (t === null || t === undefined ? null : DateTime.formatIso(t))

/**
 * A run's summary as JSON (`buquet workflow list --json`, the dashboard's `/api/v1/workflows`).
 *
 * @since 0.1.0
 * @category views
 */
export const runSummaryJson = (state: WorkflowState) => ({
  id: state.id,
  type: state.type,
  status: state.status,
  definition_hash: state.definitionHash,
  progress: runProgress(state),
  created_at: iso(state.createdAt),
  updated_at: iso(state.updatedAt),
  error: state.error === undefined ? null : { type: state.error.type, message: state.error.message, step: state.error.step ?? null }
})

/**
 * A step row as JSON (`buquet workflow show --json`, `/api/v1/workflows/{id}`).
 *
 * @since 0.1.0
 * @category views
 */
export const stepRowJson = (row: StepRow) => ({
  name: row.name,
  status: row.status,
  attempt: row.attempt,
  error: row.error,
  task_id: row.taskId,
  started_at: iso(row.startedAt),
  completed_at: iso(row.completedAt),
  depends_on: row.dependsOn,
  compensation: row.compensation
})
