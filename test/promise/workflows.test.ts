/**
 * DAG workflows from Promise code (issue 18): `Workflow.define(…).step(…)`, `worker.workflow(wf)`
 * and `queue.workflows.start/get/list/signal/pause/resume/cancel/sweep`, with plain JS values only.
 * A run fans out and in, one step waits for a signal sent through the API; a `pause_workflow`
 * failure pauses the run and `resume` continues from it; cancel ends a run; bad input and unknown
 * runs reject with typed errors. On the embedded file store (and memory for the JSON checks), one
 * case on RGW; real time, real Workers.
 */
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { BuquetError, connect, PermanentError, Workflow } from "../../src/promise.js"
import { tempDir } from "../cli/support.js"
import { connectOptions, describeS3, prefixesEmptiedAfterAll } from "../support/s3.js"
import type { Queue, WorkflowRun } from "../../src/promise.js"

const until = async (queue: Queue, id: string, done: (run: WorkflowRun) => boolean): Promise<WorkflowRun> => {
  for (let i = 0; i < 400; i++) {
    const run = await queue.workflows.get(id)
    if (run !== undefined && done(run)) return run
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`run ${id} never got there: ${JSON.stringify(await queue.workflows.get(id))}`)
}

const rejection = async (p: Promise<unknown>): Promise<BuquetError> => {
  try {
    await p
  } catch (e) {
    expect(e).toBeInstanceOf(BuquetError)
    return e as BuquetError
  }
  throw new Error("expected a rejection")
}

describe("queue.workflows (Promise API)", () => {
  it("start → fan-out/fan-in with a signal → completed; pause_workflow → resume; cancel; typed errors (embedded store)", async () => {
    const queue = await connect({ directory: join(tempDir(), ".buquet"), quiet: true })
    try {
      let flaky = 0
      const order = Workflow.define<{ readonly id: string }>("order")
        .step("reserve", { run: async (ctx) => `r-${ctx.data.id}` })
        .step("ship", { dependsOn: ["reserve"], run: async (ctx) => ({ shipped: await ctx.result("reserve") }) })
        .step("approve", { dependsOn: ["reserve"], run: async (ctx) => ctx.waitForSignal("approval") })
        .step("close", {
          dependsOn: ["ship", "approve"],
          onFailure: "pause_workflow",
          retries: 0,
          run: async (ctx) => {
            flaky++
            if (flaky === 1) throw new PermanentError("the ledger is closed")
            return { approval: await ctx.result("approve"), attempt: ctx.attempt }
          }
        })
      const slow = Workflow.define("slow").step("wait", { run: (ctx) => ctx.waitForSignal("never") })
      const worker = queue.worker({ concurrency: 4, signals: false, monitor: false }).workflow(order, slow)
      const running = worker.run()

      const started = await queue.workflows.start(order, { id: "o1" }, { id: "run-1" })
      expect(started.id).toBe("run-1")
      expect(started.workflow).toBe("order")
      expect(started.steps.map((s) => [s.name, s.dependsOn])).toEqual([
        ["reserve", []],
        ["ship", ["reserve"]],
        ["approve", ["reserve"]],
        ["close", ["ship", "approve"]]
      ])
      // the same id starts once
      expect((await queue.workflows.start(order, { id: "o1" }, { id: "run-1" })).createdAt).toEqual(started.createdAt)

      // approve waits for its signal; the rest runs
      await until(queue, "run-1", (r) => r.steps.find((s) => s.name === "ship")?.status === "completed")
      const sent = await queue.workflows.signal("run-1", "approval", { by: "ann" })
      expect(sent.name).toBe("approval")
      expect(sent.createdAt).toBeInstanceOf(Date)

      // close fails once with pause_workflow: the run pauses; resume continues from it
      const paused = await until(queue, "run-1", (r) => r.status === "paused")
      expect(paused.steps.find((s) => s.name === "close")).toMatchObject({ status: "failed", error: expect.stringContaining("the ledger is closed") })
      const resumed = await queue.workflows.resume("run-1")
      expect(resumed.status).toBe("running")
      const done = await until(queue, "run-1", (r) => r.status === "completed")
      expect(done.steps.find((s) => s.name === "ship")?.result).toEqual({ shipped: "r-o1" })
      expect(done.steps.find((s) => s.name === "close")?.result).toEqual({ approval: { by: "ann" }, attempt: 2 })

      // list, with a status filter
      const other = await queue.workflows.start(slow, null, { id: "run-2" })
      const page = await queue.workflows.list({ status: "completed" })
      expect(page.runs.map((r) => r.id)).toEqual(["run-1"])
      expect(page.malformed).toEqual([])

      // pages of one run: limit and cursor apply
      const first = await queue.workflows.list({ limit: 1 })
      expect(first.runs.map((r) => r.id)).toEqual(["run-1"])
      expect(first.cursor).toBeDefined()
      const second = await queue.workflows.list({ limit: 1, cursor: first.cursor })
      expect(second.runs.map((r) => r.id)).toEqual(["run-2"])
      // minAgeMs applies: the live run changed just now is too young to judge
      const early = await queue.workflows.sweep({ minAgeMs: 3_600_000 })
      expect(early).toMatchObject({ scanned: 2, young: 1, recovered: [] })

      // pause and cancel of a live run; cancel of an ended one is refused
      const pausedOther = await queue.workflows.pause(other.id, { reason: "maintenance" })
      expect(pausedOther.status).toBe("paused")
      expect(pausedOther.error).toMatchObject({ type: "Paused", message: "maintenance" })
      const cancelled = await queue.workflows.cancel(other.id, { reason: "not needed" })
      expect(cancelled.status).toBe("cancelled")
      expect((await rejection(queue.workflows.cancel("run-1")))._tag).toBe("IllegalWorkflowTransition")

      // a sweep over healthy runs recovers none
      const report = await queue.workflows.sweep({ minAgeMs: 0 })
      expect(report.scanned).toBe(2)
      expect(report.young).toBe(0)
      expect(report.recovered).toEqual([])

      // unknown runs and bad input
      expect(await queue.workflows.get("run-zzz")).toBeUndefined()
      expect((await rejection(queue.workflows.signal("run-zzz", "approval"))).code).toBe("WORKFLOW_RUN_NOT_FOUND")
      expect((await rejection(queue.workflows.get("../etc")))._tag).toBe("InvalidArgument")
      expect((await rejection(queue.workflows.signal("run-1", "no/slash")))._tag).toBe("InvalidArgument")
      expect(() => queue.worker().workflow(Workflow.define("loop").step("a", { dependsOn: ["a"], run: () => 1 }))).toThrow(/depends on itself/)
      expect((await rejection(queue.workflows.start(Workflow.define("loop").step("a", { dependsOn: ["a"], run: () => 1 }), null)))._tag)
        .toBe("InvalidWorkflowDefinition")
      expect((await rejection(queue.workflows.start(order, { id: "o2" }, { id: "a/b" })))._tag).toBe("InvalidArgument")
      // a JS caller's wrong values: typed errors that say what is wanted
      const notWorkflow = await rejection(queue.workflows.start({ name: "order" } as unknown as typeof order, { id: "o3" }))
      expect(notWorkflow._tag).toBe("InvalidArgument")
      expect(notWorkflow.message).toContain("Workflow.define")
      expect(() => queue.worker().workflow({} as never)).toThrow(/Workflow\.define/)
      const badStatus = await rejection(queue.workflows.list({ status: "done" as never }))
      expect(badStatus._tag).toBe("InvalidArgument")
      expect(badStatus.message).toContain("use one of pending, running")
      expect((await rejection(queue.workflows.list({ limit: 0 })))._tag).toBe("InvalidArgument")
      expect((await rejection(queue.workflows.sweep({ minAgeMs: -1 })))._tag).toBe("InvalidArgument")
      expect((await rejection(queue.workflows.resume("run-1")))._tag).toBe("IllegalWorkflowTransition")

      await worker.stop()
      await running
    } finally {
      await queue.close()
    }
  }, 120_000)

  it("get says which running step a pause switch holds, and how to resume it", async () => {
    const queue = await connect({ memory: true, quiet: true })
    try {
      const held = Workflow.define("held").step("charge", { run: async () => "charged" })
      await queue.pause("workflow.step:held:charge")
      const worker = queue.worker({ concurrency: 2, signals: false, monitor: false }).workflow(held)
      const running = worker.run()
      await queue.workflows.start(held, null, { id: "held-1" })
      const waiting = await until(queue, "held-1", (r) => r.steps[0]?.status === "running")
      expect(waiting.heldByPause).toEqual([{
        step: "charge",
        taskType: "workflow.step:held:charge",
        reason: "step charge waits: its task type workflow.step:held:charge is paused (buquet resume workflow.step:held:charge)"
      }])
      await queue.resume("workflow.step:held:charge")
      const done = await until(queue, "held-1", (r) => r.status === "completed")
      expect(done.heldByPause).toEqual([])
      await worker.stop()
      await running
    } finally {
      await queue.close()
    }
  }, 120_000)

  it("data, signal payloads and step results must be JSON: a BigInt is a typed error, not a crash", async () => {
    const queue = await connect({ memory: true, quiet: true })
    try {
      const odd = Workflow.define<unknown>("odd")
        .step("count", { retries: 0, run: () => ({ n: 10n }) })
      const worker = queue.worker({ concurrency: 2, signals: false, monitor: false }).workflow(odd)
      const running = worker.run()
      const bad = await rejection(queue.workflows.start(odd, { n: 1n }))
      expect(bad._tag).toBe("InvalidArgument")
      expect(bad.message).toMatch(/JSON/)
      const run = await queue.workflows.start(odd, { n: 1 }, { id: "odd-1" })
      const payload = await rejection(queue.workflows.signal(run.id, "go", { n: 2n }))
      expect(payload._tag).toBe("InvalidArgument")
      expect(payload.message).toMatch(/JSON/)
      // a result that is not JSON fails the step for good, saying so; the run gets its verdict
      const failed = await until(queue, "odd-1", (r) => r.status === "failed")
      expect(failed.steps[0]).toMatchObject({ name: "count", status: "failed", error: expect.stringMatching(/JSON/) })
      await worker.stop()
      await running
    } finally {
      await queue.close()
    }
  }, 120_000)
})

const freshPrefix = prefixesEmptiedAfterAll()

describeS3("queue.workflows on RGW", (s) => {
  it("start, a step waiting for a signal sent through the API, completion; cancel of another run", async () => {
    const queue = await connect({ ...connectOptions(s, freshPrefix(s)), quiet: true })
    try {
      const greet = Workflow.define<{ readonly name: string }>("greet")
        .step("hello", { run: (ctx) => `hello ${ctx.data.name}` })
        .step("reply", { dependsOn: ["hello"], run: async (ctx) => ({ said: await ctx.result("hello"), got: await ctx.waitForSignal("reply") }) })
      const worker = queue.worker({ concurrency: 2, signals: false, monitor: false }).workflow(greet)
      const running = worker.run()
      const run = await queue.workflows.start(greet, { name: "ann" })
      await until(queue, run.id, (r) => r.status === "waiting_signal")
      await queue.workflows.signal(run.id, "reply", "hi!")
      const done = await until(queue, run.id, (r) => r.status === "completed")
      expect(done.steps.map((x) => [x.name, x.status, x.result])).toEqual([
        ["hello", "completed", "hello ann"],
        ["reply", "completed", { said: "hello ann", got: "hi!" }]
      ])
      const other = await queue.workflows.start(greet, { name: "bob" })
      await until(queue, other.id, (r) => r.status === "waiting_signal")
      expect((await queue.workflows.cancel(other.id, { reason: "no reply coming" })).status).toBe("cancelled")
      expect((await queue.workflows.get(other.id))?.error).toMatchObject({ type: "Cancelled", message: "no reply coming" })
      const page = await queue.workflows.list()
      expect(page.runs.map((r) => r.id).sort()).toEqual([run.id, other.id].sort())
      await worker.stop()
      await running
    } finally {
      await queue.close()
    }
  }, 180_000)
})
