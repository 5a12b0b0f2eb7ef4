/**
 * Stored run state and signals (reference §2.3, §6.5 "workflow/types"): the reference's JSON is
 * read, ours round-trips, and a body that does not belong to its key is a MalformedObject naming it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import { encodeObject, utf8 } from "../../../src/domain/Codec.js"
import { parseSignalKey, signalKey, stepResultKey, workflowStateKey } from "../../../src/domain/workflow/RunKeys.js"
import { decodeSignal, decodeWorkflowState, isTerminalWorkflowStatus, SignalRecord, WorkflowState } from "../../../src/domain/workflow/WorkflowState.js"

const referenceState = {
  id: "order-42",
  type: "orders",
  definition_hash: "sha256:0123456789abcdef",
  status: "waiting_signal",
  current_steps: ["charge"],
  data: { amount: 0, note: null },
  steps: {
    reserve: { status: "completed", started_at: "2026-01-01T00:00:00.000000+00:00", completed_at: "2026-01-01T00:00:01Z", result: false, attempt: 1, task_id: "t-1" },
    charge: { status: "running", started_at: "2026-01-01T00:00:02Z", completed_at: null, result: null, error: null, attempt: 0, task_id: "t-2" },
    ship: { status: "pending" }
  },
  signals: { approve: { cursor: "2026-01-01T00:00:03Z_8b0c6a57-3f7e-4b59-9d3a-0c6e4f2a1b3c.json" }, other: {} },
  error: null,
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:02Z",
  orchestrator_task_id: "t-0"
}
const key = workflowStateKey("order-42")
const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runSyncExit(e)
/** The typed failure of a decode that must fail. */
const refusal = <A, E>(e: Effect.Effect<A, E>): E => Effect.runSync(Effect.flip(e))

describe("WorkflowState", () => {
  it("reads the reference's state, keeping falsy results and treating null as absent", () => {
    const exit = run(decodeWorkflowState(key, utf8(JSON.stringify(referenceState))))
    expect(Exit.isSuccess(exit)).toBe(true)
    const state = (exit as Exit.Success<WorkflowState, never>).value
    expect(state.status).toBe("waiting_signal")
    expect(state.steps["reserve"]).toMatchObject({ status: "completed", result: false, attempt: 1, taskId: "t-1" })
    expect(state.steps["charge"]!.completedAt).toBeUndefined()
    expect(state.steps["ship"]).toMatchObject({ status: "pending", attempt: 0 })
    expect(state.signals["other"]!.cursor).toBeUndefined()
    expect(isTerminalWorkflowStatus(state.status)).toBe(false)
  })
  it("round-trips through its encoding", () => {
    const state = Schema.decodeUnknownSync(WorkflowState)(referenceState)
    const again = run(decodeWorkflowState(key, encodeObject(WorkflowState, state)))
    expect(again).toEqual(Exit.succeed(state))
  })
  it("refuses a body that names another run, a bad status, and a key that is not a state key", () => {
    const other = refusal(decodeWorkflowState(workflowStateKey("order-43"), utf8(JSON.stringify(referenceState))))
    expect(other).toMatchObject({ _tag: "MalformedObject", key: "workflow/order-43/state.json" })
    expect(other.message).toMatch(/workflow\/order-43\/state\.json is malformed: its id "order-42" is not the run its key names/)
    const bad = refusal(decodeWorkflowState(key, utf8(JSON.stringify({ ...referenceState, status: "sleeping" }))))
    expect(bad.message).toMatch(/workflow\/order-42\/state\.json is malformed: field "status"/)
    const notKey = refusal(decodeWorkflowState("workflow/../x/state.json", utf8(JSON.stringify(referenceState))))
    expect(notKey).toMatchObject({ _tag: "MalformedObject", key: "workflow/../x/state.json" })
    expect(notKey.message).toMatch(/not a workflow state key/)
  })
})

describe("signals", () => {
  const id = "8b0c6a57-3f7e-4b59-9d3a-0c6e4f2a1b3c"
  const sKey = signalKey("order-42", "approve", "2026-01-01T00:00:03Z", id)
  const body = { id, name: "approve", payload: { ok: true }, created_at: "2026-01-01T00:00:03Z" }

  it("keys parse back to their parts; keys of one run stay under its prefix", () => {
    expect(sKey).toBe(`workflow/order-42/signals/approve/2026-01-01T00:00:03Z_${id}.json`)
    expect(parseSignalKey(sKey)).toEqual({ workflowId: "order-42", name: "approve", ts: "2026-01-01T00:00:03Z", signalId: id })
    expect(parseSignalKey("workflow/order-42/signals/a/b/x_" + id + ".json")).toBeUndefined()
    expect(stepResultKey("order-42", "charge")).toBe("workflow/order-42/steps/charge.json")
  })
  it("a signal decodes against its key; another name or id is refused naming the key", () => {
    expect(run(decodeSignal(sKey, utf8(JSON.stringify(body))))).toEqual(Exit.succeed(Schema.decodeUnknownSync(SignalRecord)(body)))
    expect(refusal(decodeSignal(sKey, utf8(JSON.stringify({ ...body, name: "reject" })))).message).toMatch(/its name "reject" is not the signal its key names \(approve\)/)
    expect(refusal(decodeSignal(sKey, utf8(JSON.stringify({ ...body, id: "x" })))).message).toMatch(/its id "x" is not the id its key names/)
  })
})
