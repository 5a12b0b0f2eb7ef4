/**
 * The DAG model's pure rules (reference §6.5 "workflow/dag"): validation with errors that say what
 * to fix, ready and blocked steps, topological order, the terminal conditions of every on_failure
 * policy, and that `continue` never leaves a run without a verdict.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Either, FastCheck as fc, Schema } from "effect"
import { blockedSteps, compensationChain, decide, readySteps, topologicalOrder } from "../../../src/domain/workflow/Dag.js"
import { type OnFailure, StepDefinition, validateDefinition, WorkflowDefinition } from "../../../src/domain/workflow/WorkflowDefinition.js"
import { StepCompensation, StepState, type StepStatus, WorkflowState } from "../../../src/domain/workflow/WorkflowState.js"

const t0 = DateTime.unsafeMake("2026-01-01T00:00:00Z")
const at = (s: number) => DateTime.add(t0, { seconds: s })

const step = (name: string, dependsOn: ReadonlyArray<string> = [], onFailure: OnFailure = "fail_workflow", compensation?: string) =>
  new StepDefinition({ name, dependsOn, retries: 3, timeoutSeconds: 300, onFailure, ...(compensation === undefined ? {} : { compensation }) })

const def = (...steps: ReadonlyArray<StepDefinition>) => new WorkflowDefinition({ name: "orders", steps })

/** A state where `statuses` says each named step's status (others pending); completion times follow `completedOrder`. */
const stateOf = (
  d: WorkflowDefinition,
  statuses: Record<string, StepStatus>,
  extra: Record<string, Partial<ConstructorParameters<typeof StepState>[0]>> = {}
) => {
  const steps: Record<string, StepState> = {}
  for (const s of d.steps) {
    const status = statuses[s.name] ?? "pending"
    steps[s.name] = new StepState({ status, attempt: 0, ...extra[s.name] })
  }
  return new WorkflowState({
    id: "wf-1", type: "orders", definitionHash: "sha256:0000000000000000", status: "running",
    currentSteps: [], data: {}, steps, signals: {}, createdAt: t0, updatedAt: t0
  })
}

// a -> (b, c) -> d ; e independent
const diamond = (onB: OnFailure = "fail_workflow") => def(step("a"), step("b", ["a"], onB), step("c", ["a"]), step("d", ["b", "c"]), step("e"))

describe("validateDefinition", () => {
  const problem = (d: WorkflowDefinition) => Either.match(validateDefinition(d), { onLeft: (e) => e, onRight: () => undefined })

  it("accepts a DAG", () => {
    expect(Either.isRight(validateDefinition(diamond()))).toBe(true)
  })
  it("refuses a cycle and names it", () => {
    const e = problem(def(step("a", ["c"]), step("b", ["a"]), step("c", ["b"])))
    expect(e?.problem).toBe("cycle")
    expect(e?.message).toMatch(/a -> c -> b -> a \(-> reads "depends on"\)/)
    expect(e?.message).toMatch(/remove one of these depends_on/)
  })
  it("refuses a dependency on an unknown step", () => {
    const e = problem(def(step("a"), step("b", ["nope"])))
    expect(e).toMatchObject({ problem: "missing_dependency", step: "b" })
    expect(e?.message).toMatch(/"b" depends on "nope", which is not a step/)
  })
  it("refuses a step that depends on itself", () => {
    const e = problem(def(step("a", ["a"])))
    expect(e).toMatchObject({ problem: "self_dependency", step: "a" })
  })
  it("refuses duplicate step names", () => {
    const e = problem(def(step("a"), step("a")))
    expect(e).toMatchObject({ problem: "duplicate_step", step: "a" })
  })
  it("refuses an empty workflow and a compensation on a step without the compensate policy", () => {
    expect(problem(def())?.problem).toBe("empty")
    expect(problem(def(step("a", [], "continue", "undo_a")))).toMatchObject({ problem: "compensation_policy", step: "a" })
  })
  it("refuses names that cannot be a key segment, decoded or built", () => {
    const decoded = Schema.decodeUnknownEither(WorkflowDefinition)({ name: "w", steps: [{ name: "a/b" }] })
    expect(Either.isLeft(decoded)).toBe(true)
    const built = new WorkflowDefinition({ name: "w", steps: [new StepDefinition({ name: "a/b" }, true)] }, true)
    expect(problem(built)).toMatchObject({ problem: "invalid_name", step: "a/b" })
    expect(problem(built)?.message).toMatch(/no slashes/)
  })
  it("reads the reference's snake_case definition with its defaults", () => {
    const d = Schema.decodeUnknownSync(WorkflowDefinition)({
      name: "w", steps: [{ name: "a" }, { name: "b", depends_on: ["a"], retries: 1, timeout: 60, on_failure: "continue" }]
    })
    expect(d.steps[0]).toMatchObject({ dependsOn: [], retries: 3, timeoutSeconds: 300, onFailure: "fail_workflow" })
    expect(d.steps[1]).toMatchObject({ dependsOn: ["a"], retries: 1, timeoutSeconds: 60, onFailure: "continue" })
    expect(Schema.encodeSync(WorkflowDefinition)(d).steps[1]).toEqual({
      name: "b", depends_on: ["a"], retries: 1, timeout: 60, on_failure: "continue"
    })
  })
})

describe("topologicalOrder", () => {
  it("puts every step after its dependencies, ties in definition order", () => {
    const d = def(step("d", ["b", "c"]), step("c", ["a"]), step("b", ["a"]), step("a"), step("e"))
    expect(topologicalOrder(d)).toEqual(["a", "e", "c", "b", "d"])
  })
})

describe("readySteps / blockedSteps", () => {
  it("roots are ready first; a step becomes ready when all its dependencies completed", () => {
    const d = diamond()
    expect(readySteps(d, stateOf(d, {}))).toEqual(["a", "e"])
    expect(readySteps(d, stateOf(d, { a: "completed", e: "running" }))).toEqual(["b", "c"])
    expect(readySteps(d, stateOf(d, { a: "completed", b: "completed", c: "running", e: "completed" }))).toEqual([])
    expect(readySteps(d, stateOf(d, { a: "completed", b: "completed", c: "completed", e: "completed" }))).toEqual(["d"])
  })
  it("a step behind a failed or cancelled one is blocked, transitively", () => {
    const d = diamond("continue")
    const s = stateOf(d, { a: "completed", b: "failed", c: "completed" })
    expect(blockedSteps(d, s)).toEqual(["d"])
    expect(blockedSteps(d, stateOf(d, { a: "failed" }))).toEqual(["b", "c", "d"])
    expect(readySteps(d, s)).toEqual(["e"])
  })
})

describe("decide: terminal conditions", () => {
  it("runs ready steps while work remains", () => {
    const d = diamond()
    expect(decide(d, stateOf(d, { a: "running" }))).toEqual({ _tag: "Run", ready: ["e"], running: ["a"] })
  })
  it("completes when every step completed", () => {
    const d = diamond()
    const all = { a: "completed", b: "completed", c: "completed", d: "completed", e: "completed" } as const
    expect(decide(d, stateOf(d, all))).toEqual({ _tag: "Complete" })
  })
  it("fail_workflow fails at once and names the running steps to cancel", () => {
    const d = diamond()
    expect(decide(d, stateOf(d, { a: "completed", b: "failed", c: "running", e: "running" }))).toEqual({
      _tag: "Fail", step: "b", reason: "step_failed", cancel: ["e", "c"]
    })
  })
  it("pause_workflow pauses and schedules nothing", () => {
    const d = def(step("a"), step("b", [], "pause_workflow"), step("c", ["b"]))
    expect(decide(d, stateOf(d, { b: "failed", a: "running" }))).toEqual({ _tag: "Pause", step: "b" })
  })
  it("a cancelled step cancels the workflow", () => {
    const d = diamond()
    expect(decide(d, stateOf(d, { a: "cancelled", e: "running" }))).toEqual({ _tag: "Cancel", step: "a", cancel: ["e"] })
  })
  it("steps cancelled because the run failed do not turn the failure into a cancel", () => {
    const d = diamond()
    expect(decide(d, stateOf(d, { a: "completed", b: "failed", c: "cancelled", e: "cancelled" }))).toMatchObject({
      _tag: "Fail", step: "b", reason: "step_failed"
    })
  })
  it("fail beats pause; the first failed step in topological order is named", () => {
    const d = def(step("p", [], "pause_workflow"), step("f"), step("g"))
    expect(decide(d, stateOf(d, { p: "failed", g: "failed", f: "failed" }))).toMatchObject({ _tag: "Fail", step: "f" })
  })
})

describe("decide: continue never hangs", () => {
  it("a failed continue step without dependents: the rest runs and the workflow completes", () => {
    const d = def(step("a"), step("b", [], "continue"), step("c", ["a"]))
    expect(decide(d, stateOf(d, { b: "failed", a: "completed" }))).toEqual({ _tag: "Run", ready: ["c"], running: [] })
    expect(decide(d, stateOf(d, { a: "completed", b: "failed", c: "completed" }))).toEqual({ _tag: "Complete" })
  })
  it("a failed continue step with dependents: other branches finish, then the workflow fails naming the skipped steps", () => {
    const d = diamond("continue")
    expect(decide(d, stateOf(d, { a: "completed", b: "failed", c: "running" }))).toEqual({ _tag: "Run", ready: ["e"], running: ["c"] })
    expect(decide(d, stateOf(d, { a: "completed", b: "failed", c: "completed", e: "completed" }))).toEqual({
      _tag: "Fail", step: "b", reason: "dependents_skipped", skipped: ["d"], cancel: []
    })
  })
  it("every state of every small DAG gets a verdict or has work to do", () => {
    // exhaustive over a 4-step DAG, all statuses: never Run with nothing ready and nothing running
    const d = def(step("a", [], "continue"), step("b", ["a"], "continue"), step("c", ["a"], "continue"), step("d", ["b", "c"], "continue"))
    const statuses: ReadonlyArray<StepStatus> = ["pending", "running", "completed", "failed"]
    let checked = 0
    for (const a of statuses) for (const b of statuses) for (const c of statuses) for (const e of statuses) {
      const decision = decide(d, stateOf(d, { a, b, c, d: e }))
      if (decision._tag === "Run") expect(decision.ready.length + decision.running.length).toBeGreaterThan(0)
      checked++
    }
    expect(checked).toBe(256)
  })
})

describe("decide: compensate", () => {
  const saga = def(
    step("reserve", [], "compensate", "release"),
    step("charge", ["reserve"], "compensate", "refund"),
    step("note", ["reserve"]),
    step("ship", ["charge", "note"], "compensate")
  )
  const completed = (s: number) => ({ completedAt: at(s) })

  it("yields the completed steps' compensations in reverse completion order", () => {
    const s = stateOf(saga, { reserve: "completed", charge: "completed", note: "completed", ship: "failed" }, {
      reserve: completed(1), charge: completed(5), note: completed(3)
    })
    expect(compensationChain(saga, s)).toEqual(["charge", "reserve"])
    expect(decide(saga, s)).toEqual({ _tag: "Compensate", step: "ship", next: "charge", cancel: [] })
  })
  it("waits for running steps to be cancelled first, then compensates one at a time, then fails", () => {
    const base = { reserve: "completed", charge: "completed" } as const
    const running = stateOf(saga, { ...base, note: "running", ship: "failed" }, { reserve: completed(1), charge: completed(2) })
    expect(decide(saga, running)).toEqual({ _tag: "Compensate", step: "ship", next: undefined, cancel: ["note"] })
    const oneDone = stateOf(saga, { ...base, note: "cancelled", ship: "failed" }, {
      reserve: completed(1),
      charge: { ...completed(2), compensation: new StepCompensation({ status: "completed" }) }
    })
    expect(decide(saga, oneDone)).toEqual({ _tag: "Compensate", step: "ship", next: "reserve", cancel: [] })
    const allDone = stateOf(saga, { ...base, note: "cancelled", ship: "failed" }, {
      reserve: { ...completed(1), compensation: new StepCompensation({ status: "completed" }) },
      charge: { ...completed(2), compensation: new StepCompensation({ status: "completed" }) }
    })
    expect(decide(saga, allDone)).toEqual({ _tag: "Fail", step: "ship", reason: "compensated", cancel: [] })
  })
  it("a running compensation is waited for; a failed one fails the workflow naming it", () => {
    const s = (status: "running" | "failed") => stateOf(saga, { reserve: "completed", charge: "completed", note: "completed", ship: "failed" }, {
      reserve: completed(1), note: completed(2),
      charge: { ...completed(3), compensation: new StepCompensation({ status }) }
    })
    expect(decide(saga, s("running"))).toEqual({ _tag: "Compensate", step: "ship", next: undefined, cancel: [] })
    expect(decide(saga, s("failed"))).toEqual({ _tag: "Fail", step: "charge", reason: "compensation_failed", cancel: [] })
  })
})

describe("decide: every run reaches a verdict (random DAGs, policies and outcomes)", () => {
  const policies: ReadonlyArray<OnFailure> = ["fail_workflow", "pause_workflow", "continue", "compensate"]
  // a random DAG: step i may depend on any earlier step, so it is acyclic by construction
  const arbitraryRun = fc.integer({ min: 1, max: 8 }).chain((n) =>
    fc.tuple(
      fc.tuple(...Array.from({ length: n }, (_, i) =>
        fc.record({
          deps: fc.subarray(Array.from({ length: i }, (_, j) => `s${j}`)),
          policy: fc.constantFrom(...policies),
          compensated: fc.boolean()
        }))),
      fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }) // step outcomes, in the order they finish
    )
  )

  it("drives each run by its decisions alone to Complete, Fail, Pause or Cancel, every step terminal", () => {
    fc.assert(fc.property(arbitraryRun, ([shape, outcomes]) => {
      const hasCompensate = shape.some((s) => s.policy === "compensate")
      const d = def(...shape.map((s, i) => step(`s${i}`, s.deps, s.policy, hasCompensate && s.compensated ? `undo${i}` : undefined)))
      expect(Either.isRight(validateDefinition(d))).toBe(true)
      let state = stateOf(d, {})
      let clock = 0
      const set = (name: string, patch: Partial<ConstructorParameters<typeof StepState>[0]>) => {
        state = new WorkflowState({ ...state, steps: { ...state.steps, [name]: new StepState({ ...state.steps[name]!, ...patch }) } })
      }
      for (let round = 0; round < 200; round++) {
        const decision = decide(d, state)
        switch (decision._tag) {
          case "Run": {
            for (const name of decision.ready) set(name, { status: "running" })
            const finishing = (decision.ready[0] ?? decision.running[0])!
            set(finishing, outcomes[round % outcomes.length]! ? { status: "completed", completedAt: at(++clock) } : { status: "failed" })
            break
          }
          case "Compensate": {
            for (const name of decision.cancel) set(name, { status: "cancelled" })
            if (decision.next !== undefined) set(decision.next, { compensation: new StepCompensation({ status: "completed" }) })
            break
          }
          default: {
            // a verdict: nothing is left running unless the verdict lets it finish (Pause) or names it to cancel
            const running = Object.entries(state.steps).filter(([, s]) => s.status === "running").map(([n]) => n)
            if (decision._tag === "Fail" || decision._tag === "Cancel") expect([...decision.cancel].sort()).toEqual(running.sort())
            if (decision._tag === "Complete") {
              // completed, or a tolerated failure of a continue step none of whose dependents was skipped
              for (const s of d.steps) {
                expect(state.steps[s.name]!.status === "completed" || (state.steps[s.name]!.status === "failed" && s.onFailure === "continue")).toBe(true)
              }
            }
            if (decision._tag === "Fail" && decision.reason === "dependents_skipped") {
              expect(decision.skipped!.length).toBeGreaterThan(0)
              expect([...decision.skipped!].sort()).toEqual(Object.entries(state.steps).filter(([, s]) => s.status === "pending").map(([n]) => n).sort())
            }
            if (decision._tag === "Fail" && decision.reason === "compensated") {
              for (const name of compensationChain(d, state)) expect(state.steps[name]!.compensation?.status).toBe("completed")
            }
            return
          }
        }
      }
      throw new Error("no verdict after 200 rounds")
    }), { numRuns: 300 })
  })
})
