/**
 * Stores of DAG workflow runs for the `buquet workflow` CLI tests: runs written in the
 * reference's shape (`workflow/{id}/state.json`, `signals/{name}/{ts}_{uuid}.json`) into a fresh
 * embedded store.
 */
import { putObject, tempDir } from "./support.js"

const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString()

/** A run of the reference's shape: `steps` maps names to their stored state. */
export const storedRun = (id: string, status: string, steps: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  id,
  type: "order",
  definition_hash: "sha256:0123456789abcdef",
  status,
  current_steps: [],
  data: { order: 7 },
  steps,
  signals: {},
  created_at: at(3 * 1440),
  updated_at: at(1),
  ...extra
})

export const step = (status: string, extra: Record<string, unknown> = {}) => ({
  status,
  started_at: at(60),
  completed_at: status === "completed" || status === "failed" ? at(30) : null,
  result: null,
  error: null,
  attempt: 1,
  task_id: null,
  ...extra
})

export const sig1 = "2026-12-06T10:00:00.000Z_0b7e4a4e-8f59-4a11-9a8a-3d3f1d1e0001"
export const sig2 = "2026-12-06T10:05:00.000Z_0b7e4a4e-8f59-4a11-9a8a-3d3f1d1e0002"

/** A store with five runs (failed, waiting on a signal, completed, with a recorded definition, with a bad one) and a malformed one. */
export const seeded = (): string => {
  const cwd = tempDir()
  putObject(cwd, "workflow/run-a/state.json", storedRun("run-a", "failed", {
    reserve: step("completed"),
    charge: step("failed", { attempt: 3, error: "card declined\nby the bank", task_id: "11111111-1111-4111-8111-111111111111" })
  }, { error: { type: "StepFailed", message: "step charge failed", step: "charge", attempt: 3, at: at(30) } }))
  putObject(cwd, "workflow/run-b/state.json", storedRun("run-b", "waiting_signal", {
    approve: step("running", { started_at: at(20) }),
    reserve: step("completed")
  }, { signals: { approval: { cursor: `${sig1}.json` } } }))
  putObject(cwd, `workflow/run-b/signals/approval/${sig1}.json`, { id: sig1.slice(25), name: "approval", payload: { ok: false }, created_at: at(20) })
  putObject(cwd, `workflow/run-b/signals/approval/${sig2}.json`, { id: sig2.slice(25), name: "approval", payload: { ok: true }, created_at: at(15) })
  putObject(cwd, "workflow/run-c/state.json", storedRun("run-c", "completed", { only: step("completed") }))
  // a recorded definition: c waits on b, which failed (continue), so c is skipped; d has no state yet
  putObject(cwd, "workflow/run-d/state.json", storedRun("run-d", "running", {
    a: step("completed"),
    b: step("failed", { error: "tolerated" })
  }, {
    definition: {
      name: "order",
      steps: [{ name: "a" }, { name: "b", depends_on: ["a"], on_failure: "continue" }, { name: "c", depends_on: ["b"] }, { name: "d", depends_on: ["a"] }]
    }
  }))
  // a recorded definition that is not a DAG is not trusted: the stored steps are shown
  putObject(cwd, "workflow/run-e/state.json", storedRun("run-e", "running", { a: step("running") }, {
    definition: { name: "order", steps: [{ name: "a", depends_on: ["b"] }, { name: "b", depends_on: ["a"] }] }
  }))
  // a state whose body names another run: malformed, named by its key
  putObject(cwd, "workflow/run-x/state.json", storedRun("run-elsewhere", "running", {}))
  return cwd
}
