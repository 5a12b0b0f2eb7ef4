/**
 * The rules of a DAG workflow run, as pure functions of its definition and stored state: which
 * steps are ready, which are blocked, the topological order, and {@link decide} — the one
 * verdict the orchestrator acts on after every change. The definition must have passed
 * `validateDefinition` (no cycles, no unknown dependencies).
 *
 * The verdict, in order of precedence (each rule looks at steps in topological order):
 * 1. a `failed` step with `compensate` unwinds the run: running steps are cancelled first, then
 *    the completed steps' compensations run one at a time in reverse completion order; when all
 *    are done the run fails (`compensated`); a compensation that fails stops the unwinding and
 *    fails the run naming it (`compensation_failed`);
 * 2. a `failed` step with `fail_workflow` fails the run at once (running steps are cancelled);
 * 3. a `cancelled` step cancels the run (its running steps are to be cancelled) — after the
 *    failures, since rules 1 and 2 cancel steps themselves;
 * 4. a `failed` step with `pause_workflow` pauses the run (nothing new is scheduled; `resume`
 *    retries it, see {@link stepsToRetryOnResume});
 * 5. otherwise (only `continue` failures, or none) every step that is not blocked runs: a
 *    `pending` step is *blocked* (terminal, skipped) when a dependency failed, was cancelled or
 *    is blocked itself;
 * 6. when nothing is ready or running every step is terminal, and the run **completes** if no
 *    step was skipped, or **fails** (`dependents_skipped`, naming the first failed `continue`
 *    step and every skipped one) if some were: a tolerated failure whose dependents never ran is
 *    work the definition asked for and did not get. A `continue` step without dependents
 *    therefore never stops the run from completing, and no run is ever left without a verdict.
 *
 * @since 0.1.0
 * @module
 */
import { DateTime } from "effect"
import type { StepDefinition, WorkflowDefinition } from "./WorkflowDefinition.js"
import type { StepStatus, WorkflowState } from "./WorkflowState.js"

const statusOf = (state: WorkflowState, step: string): StepStatus => state.steps[step]?.status ?? "pending"

/**
 * The step names in dependency order, level by level (every step after all its dependencies;
 * the steps of one level in definition order): a stable order for scheduling and display.
 *
 * @since 0.1.0
 * @category dag
 */
export const topologicalOrder = (definition: WorkflowDefinition): ReadonlyArray<string> => {
  const placed = new Set<string>()
  const order: Array<string> = []
  let remaining: ReadonlyArray<StepDefinition> = definition.steps
  while (remaining.length > 0) {
    const level = remaining.filter((s) => s.dependsOn.every((d) => placed.has(d)))
    // a cycle or unknown dependency: validateDefinition refuses those, so this is a caller's defect
    if (level.length === 0) throw new Error(`topologicalOrder: "${definition.name}" is not a valid DAG (validate it first)`)
    for (const s of level) {
      placed.add(s.name)
      order.push(s.name)
    }
    remaining = remaining.filter((s) => !placed.has(s.name))
  }
  return order
}

const byName = (definition: WorkflowDefinition) => new Map(definition.steps.map((s) => [s.name, s]))

/**
 * The pending steps that can never run because a dependency failed, was cancelled or is blocked
 * itself, in topological order. They are terminal (skipped); the stored state keeps them `pending`.
 *
 * @since 0.1.0
 * @category dag
 */
export const blockedSteps = (definition: WorkflowDefinition, state: WorkflowState): ReadonlyArray<string> => {
  const steps = byName(definition)
  const blocked = new Set<string>()
  for (const name of topologicalOrder(definition)) {
    if (statusOf(state, name) !== "pending") continue
    const dead = steps.get(name)!.dependsOn.some((d) => {
      const s = statusOf(state, d)
      return s === "failed" || s === "cancelled" || blocked.has(d)
    })
    if (dead) blocked.add(name)
  }
  return [...blocked]
}

/**
 * The pending steps whose dependencies all completed, in topological order: what to submit next.
 *
 * @since 0.1.0
 * @category dag
 */
export const readySteps = (definition: WorkflowDefinition, state: WorkflowState): ReadonlyArray<string> => {
  const steps = byName(definition)
  return topologicalOrder(definition).filter((name) =>
    statusOf(state, name) === "pending" && steps.get(name)!.dependsOn.every((d) => statusOf(state, d) === "completed")
  )
}

/**
 * The completed steps that have a compensation, in reverse completion order (latest first;
 * steps completed at the same instant, or without a recorded time, latest in topological order
 * first): the order a `compensate` failure undoes them in. Includes those already compensated.
 *
 * @since 0.1.0
 * @category dag
 */
export const compensationChain = (definition: WorkflowDefinition, state: WorkflowState): ReadonlyArray<string> => {
  const order = topologicalOrder(definition)
  const steps = byName(definition)
  const time = (name: string): number => {
    const at = state.steps[name]?.completedAt
    return at === undefined ? Number.NEGATIVE_INFINITY : DateTime.toEpochMillis(at)
  }
  return order
    .map((name, index) => ({ name, index }))
    .filter(({ name }) => statusOf(state, name) === "completed" && steps.get(name)!.compensation !== undefined)
    .sort((a, b) => time(b.name) - time(a.name) || b.index - a.index)
    .map(({ name }) => name)
}

/**
 * The failed `pause_workflow` steps a `resume` sets back to `pending` so the run retries them.
 *
 * @since 0.1.0
 * @category dag
 */
export const stepsToRetryOnResume = (definition: WorkflowDefinition, state: WorkflowState): ReadonlyArray<string> =>
  definition.steps.filter((s) => s.onFailure === "pause_workflow" && statusOf(state, s.name) === "failed").map((s) => s.name)

/**
 * What the orchestrator does next with a run (see the module doc for the rules).
 *
 * @since 0.1.0
 * @category models
 */
export type Decision =
  /** Submit `ready`; `running` are still in flight. */
  | { readonly _tag: "Run"; readonly ready: ReadonlyArray<string>; readonly running: ReadonlyArray<string> }
  /** Every step completed. */
  | { readonly _tag: "Complete" }
  /** The run fails because of `step`; cancel the `cancel` steps' tasks. */
  | {
    readonly _tag: "Fail"
    readonly step: string
    readonly reason: "step_failed" | "dependents_skipped" | "compensated" | "compensation_failed"
    readonly skipped?: ReadonlyArray<string>
    readonly cancel: ReadonlyArray<string>
  }
  /** `step` failed with `pause_workflow`. */
  | { readonly _tag: "Pause"; readonly step: string }
  /** `step` was cancelled; cancel the `cancel` steps' tasks. */
  | { readonly _tag: "Cancel"; readonly step: string; readonly cancel: ReadonlyArray<string> }
  /**
   * `step` failed with `compensate`: cancel `cancel`, then run `next`'s compensation (undefined:
   * wait — steps are still being cancelled or a compensation is running).
   */
  | { readonly _tag: "Compensate"; readonly step: string; readonly next: string | undefined; readonly cancel: ReadonlyArray<string> }

/**
 * The verdict on a run: the single rule the orchestrator applies after every change (module doc).
 *
 * @since 0.1.0
 * @category dag
 */
export const decide = (definition: WorkflowDefinition, state: WorkflowState): Decision => {
  const order = topologicalOrder(definition)
  const steps = byName(definition)
  const withStatus = (status: StepStatus) => order.filter((name) => statusOf(state, name) === status)
  const running = withStatus("running")
  const failed = withStatus("failed")
  const firstFailed = (policy: StepDefinition["onFailure"]) => failed.find((name) => steps.get(name)!.onFailure === policy)

  const unwind = firstFailed("compensate")
  if (unwind !== undefined) {
    if (running.length > 0) return { _tag: "Compensate", step: unwind, next: undefined, cancel: running }
    for (const name of compensationChain(definition, state)) {
      const progress = state.steps[name]?.compensation?.status
      if (progress === "completed") continue
      if (progress === "failed") return { _tag: "Fail", step: name, reason: "compensation_failed", cancel: [] }
      return { _tag: "Compensate", step: unwind, next: progress === "running" ? undefined : name, cancel: [] }
    }
    return { _tag: "Fail", step: unwind, reason: "compensated", cancel: [] }
  }

  const fatal = firstFailed("fail_workflow")
  if (fatal !== undefined) return { _tag: "Fail", step: fatal, reason: "step_failed", cancel: running }

  // after the failures: a step cancelled because the run fails or unwinds must not turn it into a cancel
  const cancelled = withStatus("cancelled")[0]
  if (cancelled !== undefined) return { _tag: "Cancel", step: cancelled, cancel: running }

  const pause = firstFailed("pause_workflow")
  if (pause !== undefined) return { _tag: "Pause", step: pause }

  const ready = readySteps(definition, state)
  if (ready.length > 0 || running.length > 0) return { _tag: "Run", ready, running }

  const skipped = blockedSteps(definition, state)
  if (skipped.length > 0) return { _tag: "Fail", step: failed[0]!, reason: "dependents_skipped", skipped, cancel: [] }
  return { _tag: "Complete" }
}
