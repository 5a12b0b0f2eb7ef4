/**
 * The DAG workflow sweeper (issue 18, "a reconciliation sweeper that recovers stuck runs") on
 * MemoryStorage + TestClock with real Workers: a run whose orchestrator task was lost, and a run
 * whose running step's task ended without telling it, are found, reported with the reason, and
 * finished; a healthy run and a recently changed one are left alone.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Schema, Scope, TestClock } from "effect"
import { stepTaskType } from "../../src/domain/workflow/RunKeys.js"
import { makeStepState, makeWorkflowState } from "../../src/domain/workflow/WorkflowState.js"
import * as DagWorkflow from "../../src/programs/DagWorkflow.js"
import * as Worker from "../../src/programs/Worker.js"
import * as WorkflowRuns from "../../src/protocol/WorkflowRuns.js"
import { Queue } from "../../src/services/Queue.js"
import { drive, queueLayer } from "../worker/support.js"

const Data = Schema.Struct({ n: Schema.Number })
const Two = DagWorkflow.make("two", { data: Data })
  .step("a", { output: Schema.Number, run: (ctx) => Effect.succeed(ctx.data.n) })
  .step("b", { output: Schema.Number, dependsOn: ["a"], run: (ctx) => Effect.map(ctx.result("a"), (a) => a + 1) })

const startWorker = (monitor: Worker.WorkerOptions["monitor"] = false) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Worker.make({
      wakeUp: false,
      monitor,
      concurrency: 2,
      polling: { _tag: "Adaptive", max: "2 seconds" },
      heartbeat: { idle: "10 minutes", busy: "10 minutes" },
      shutdownGracePeriod: "1 second"
    }, DagWorkflow.handlers(Two)).pipe(Scope.extend(scope))
    return scope
  })

const statusOf = (id: string) => Effect.map(DagWorkflow.get(id), (s) => Option.getOrThrow(s).status)

/** Creates a run the way `start` does, but loses its orchestrator task (a crash between the two). */
const startWithoutWake = (id: string, n: number) => {
  const definition = Either.getOrThrow(DagWorkflow.validate(Two))
  return WorkflowRuns.createRun({ id, definition, definitionHash: DagWorkflow.hashOf(Two), data: { n } })
}

describe("DAG workflow sweeper on MemoryStorage + TestClock", () => {
  it.scoped("recovers a run whose orchestrator task was lost and one whose step task ended unreported; says which and why", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      // lost: the state exists, no orchestrator task was ever submitted
      yield* startWithoutWake("lost-1", 1)
      // unreported: step "a" shows running with a task that was cancelled behind the run's back
      yield* startWithoutWake("unreported-1", 2)
      const task = yield* queue.submit(stepTaskType("two", "a"), { workflow_id: "unreported-1", step: "a", attempt: 1, resumes: 0 }, { typeCheck: "off" })
      yield* WorkflowRuns.updateRun("unreported-1", (s) =>
        Effect.succeed(makeWorkflowState({
          ...s,
          status: "running",
          steps: { ...s.steps, a: makeStepState({ ...s.steps["a"]!, status: "running", attempt: 1, taskId: task.id }) }
        })))
      yield* queue.cancel(task.id, { reason: "lost in a crash" })
      // a healthy run: started normally (its orchestrator task is pending)
      yield* DagWorkflow.start(Two, { n: 3 }, { id: "healthy-1" })

      // changed just now: left alone
      const early = yield* DagWorkflow.sweep({ minAge: "30 seconds" })
      expect(early.recovered).toEqual([])
      expect(early.young).toBe(3)

      // 35 s later, still no worker: the healthy run's start is merely waiting for one (its task
      // is pending), the other two are stuck
      yield* drive(Effect.succeed(false), "5 seconds", 7).pipe(Effect.catchAllDefect(() => Effect.void))
      const report = yield* DagWorkflow.sweep({ minAge: "30 seconds" })
      expect(report.scanned).toBe(3)
      expect(report.young).toBe(0)
      expect(report.recovered.map((r) => r.workflowId).sort()).toEqual(["lost-1", "unreported-1"])
      expect(report.recovered.find((r) => r.workflowId === "lost-1")?.reason).toContain(`its orchestrator task was lost (wake-up "start"`)
      expect(report.recovered.find((r) => r.workflowId === "unreported-1")?.reason).toContain(`task ${task.id} is cancelled`)
      // sweeping again before anything ran: lost-1's wake-up now waits for a worker like the healthy
      // one's; unreported-1 is still stuck, and its reconciling wake-up is not submitted twice
      yield* TestClock.adjust("1 second")
      const again = yield* DagWorkflow.sweep({ minAge: "30 seconds" })
      expect(again.recovered.map((r) => r.workflowId)).toEqual(["unreported-1"])
      // healthy-1's start, lost-1's start submitted again, unreported-1's reconcile
      const orchestrators = yield* queue.list({ taskType: "workflow.orchestrate:two", limit: 100 })
      expect(orchestrators.tasks.length).toBe(3)

      yield* startWorker()
      yield* drive(Effect.map(Effect.all([statusOf("lost-1"), statusOf("unreported-1"), statusOf("healthy-1")]), (s) =>
        s.every((x) => x === "completed" || x === "failed" || x === "cancelled")), "500 millis")
      expect(yield* statusOf("lost-1")).toBe("completed")
      expect(yield* statusOf("healthy-1")).toBe("completed")
      // the reconcile saw the step's task cancelled: the step is cancelled, so is the run
      const unreported = Option.getOrThrow(yield* DagWorkflow.get("unreported-1"))
      expect(unreported.status).toBe("cancelled")
      expect(unreported.steps["a"]?.status).toBe("cancelled")
      expect(Option.getOrThrow(yield* DagWorkflow.stepResult(Two, "lost-1", "b"))).toBe(2)
      // nothing left to recover
      yield* drive(Effect.succeed(false), "5 seconds", 7).pipe(Effect.catchAllDefect(() => Effect.void))
      expect((yield* DagWorkflow.sweep({ minAge: "30 seconds" })).recovered).toEqual([])
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("the worker's monitor runs the sweeper: a run whose orchestrator task was lost completes by itself", () =>
    Effect.gen(function*() {
      yield* startWithoutWake("lost-2", 5)
      yield* startWorker({ checkInterval: "5 seconds", workflows: { interval: "10 seconds", minAge: "5 seconds" } })
      yield* drive(Effect.map(statusOf("lost-2"), (s) => s === "completed"), "1 second", 120)
      expect(Option.getOrThrow(yield* DagWorkflow.stepResult(Two, "lost-2", "b"))).toBe(6)
    }).pipe(Effect.provide(queueLayer())))
})
