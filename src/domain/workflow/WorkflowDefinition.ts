/**
 * A DAG workflow's definition (the reference's `Workflow(name).step(...)` model): named steps,
 * each with its dependencies, retries, timeout, what its permanent failure does to the run
 * (`on_failure`) and, for the `compensate` policy, the step that undoes it. Validation refuses
 * what would make a run hang or collide in the bucket, with an error that says what to fix.
 *
 * @since 0.1.0
 * @module
 */
import { Either, Schema } from "effect"
import { describeParseError } from "../Codec.js"
import { field, optionalField } from "../SnakeCase.js"

/**
 * A name that becomes one key segment (`steps/{step}.json`) and part of a task type
 * (`workflow.step:{workflow}:{step}`): letters, digits, `_ . -`, 1–128 characters, no `..`.
 *
 * @since 0.1.0
 * @category models
 */
export const WorkflowName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, {
    message: () => "a workflow or step name has 1–128 letters, digits, _ . - (not starting with . or -); no slashes, colons or spaces"
  }),
  Schema.filter((s) => !s.includes("..") || "a workflow or step name must not contain \"..\"")
)

/**
 * What a step's permanent failure does to its run:
 * - `fail_workflow`: the run fails at once; running steps are cancelled.
 * - `pause_workflow`: the run pauses; `resume` retries the failed step.
 * - `continue`: the failure is tolerated; steps that depend on it are skipped (see Dag.decide).
 * - `compensate`: the completed steps' compensations run in reverse completion order, then the run fails.
 *
 * @since 0.1.0
 * @category models
 */
export const OnFailure = Schema.Literal("fail_workflow", "pause_workflow", "continue", "compensate")

/**
 * @since 0.1.0
 * @category models
 */
export type OnFailure = typeof OnFailure.Type

/**
 * One step of a definition, in the reference's snake_case shape (`depends_on`, `on_failure`).
 * Defaults are the reference's: 3 retries, a 300 s timeout, `fail_workflow`.
 *
 * @since 0.1.0
 * @category models
 */
export class StepDefinition extends Schema.Class<StepDefinition>("StepDefinition")({
  name: WorkflowName,
  dependsOn: Schema.optionalWith(Schema.Array(WorkflowName), { default: () => [] }).pipe(Schema.fromKey("depends_on")),
  retries: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 3 }),
  timeoutSeconds: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 300 }).pipe(Schema.fromKey("timeout")),
  onFailure: Schema.optionalWith(OnFailure, { default: () => "fail_workflow" as const }).pipe(Schema.fromKey("on_failure")),
  /** The step (handler) that undoes this one when a later `compensate` failure unwinds the run. */
  compensation: optionalField(WorkflowName, "compensation")
}) {}

/**
 * A workflow definition: its name and steps, in the order they were declared.
 *
 * @since 0.1.0
 * @category models
 */
export class WorkflowDefinition extends Schema.Class<WorkflowDefinition>("WorkflowDefinition")({
  name: WorkflowName,
  steps: field(Schema.Array(StepDefinition), "steps")
}) {}

/**
 * A definition that cannot run: `problem` says which rule it breaks, `step` where, and `message`
 * what to change.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidWorkflowDefinition extends Schema.TaggedError<InvalidWorkflowDefinition>()("InvalidWorkflowDefinition", {
  workflow: Schema.String,
  problem: Schema.Literal("empty", "invalid_name", "duplicate_step", "self_dependency", "missing_dependency", "cycle", "compensation_policy"),
  step: Schema.optional(Schema.String),
  message: Schema.String
}) {}

/** The cycle through `start` found by a depth-first walk, as step names (first repeated last). */
const findCycle = (definition: WorkflowDefinition): ReadonlyArray<string> | undefined => {
  const deps = new Map(definition.steps.map((s) => [s.name, s.dependsOn]))
  const state = new Map<string, "visiting" | "done">()
  const path: Array<string> = []
  const visit = (name: string): ReadonlyArray<string> | undefined => {
    if (state.get(name) === "done") return undefined
    if (state.get(name) === "visiting") return [...path.slice(path.indexOf(name)), name]
    state.set(name, "visiting")
    path.push(name)
    for (const dep of deps.get(name) ?? []) {
      const cycle = visit(dep)
      if (cycle !== undefined) return cycle
    }
    path.pop()
    state.set(name, "done")
    return undefined
  }
  for (const s of definition.steps) {
    const cycle = visit(s.name)
    if (cycle !== undefined) return cycle
  }
  return undefined
}

/**
 * Checks that `definition` can run: at least one step, names usable in keys, no duplicate names,
 * no step depending on itself or on a step that does not exist, no cycle. Only a `compensate`
 * failure ever runs compensations, so a compensation in a workflow without any `compensate` step
 * is refused as a mistake (it would never run).
 *
 * @since 0.1.0
 * @category validation
 */
export const validateDefinition = (definition: WorkflowDefinition): Either.Either<WorkflowDefinition, InvalidWorkflowDefinition> => {
  const workflow = definition.name
  const fail = (problem: InvalidWorkflowDefinition["problem"], message: string, step?: string) =>
    Either.left(new InvalidWorkflowDefinition({ workflow, problem, message, ...(step === undefined ? {} : { step }) }))
  if (definition.steps.length === 0) return fail("empty", `workflow "${workflow}" has no steps: add at least one`)
  const names = new Set<string>()
  for (const s of definition.steps) {
    for (const name of [s.name, ...s.dependsOn, ...(s.compensation === undefined ? [] : [s.compensation])]) {
      const checked = Schema.decodeUnknownEither(WorkflowName)(name)
      if (Either.isLeft(checked)) return fail("invalid_name", `step ${JSON.stringify(name)}: ${describeParseError(checked.left)}`, s.name)
    }
    if (names.has(s.name)) return fail("duplicate_step", `step "${s.name}" is defined twice: give each step its own name`, s.name)
    names.add(s.name)
  }
  for (const s of definition.steps) {
    for (const dep of s.dependsOn) {
      if (dep === s.name) return fail("self_dependency", `step "${s.name}" depends on itself: remove "${dep}" from its depends_on`, s.name)
      if (!names.has(dep)) {
        return fail("missing_dependency", `step "${s.name}" depends on "${dep}", which is not a step of "${workflow}": define it or fix the name`, s.name)
      }
    }
  }
  const cycle = findCycle(definition)
  if (cycle !== undefined) {
    return fail("cycle", `steps form a cycle ${cycle.join(" -> ")} (-> reads "depends on"): remove one of these depends_on so the steps form a DAG`, cycle[0])
  }
  if (!definition.steps.some((s) => s.onFailure === "compensate")) {
    const orphan = definition.steps.find((s) => s.compensation !== undefined)
    if (orphan !== undefined) {
      return fail(
        "compensation_policy",
        `step "${orphan.name}" has a compensation but no step of "${workflow}" has on_failure "compensate", so it would never run: set on_failure: "compensate" where a failure should unwind the run`,
        orphan.name
      )
    }
  }
  return Either.right(definition)
}
