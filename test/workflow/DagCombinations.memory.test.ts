/**
 * DAG workflows combined with the queue's other features (issue 18), on MemoryStorage + TestClock
 * with real Workers: a run waiting for a signal while the monitor's retention archives its old
 * finished tasks is not lost; a step whose result was recorded (but whose run was not told) keeps
 * that result when retention archived or deleted its task before the sweeper reconciled it; a step
 * whose task type is paused (`buquet pause TYPE`) holds its run, the sweeper does not call that
 * stuck, and the run finishes after the resume.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Schema, Scope } from "effect"
import { stepTaskType } from "../../src/domain/workflow/RunKeys.js"
import { makeStepState, makeWorkflowState } from "../../src/domain/workflow/WorkflowState.js"
import * as DagWorkflow from "../../src/programs/DagWorkflow.js"
import * as Worker from "../../src/programs/Worker.js"
import * as WorkflowRuns from "../../src/protocol/WorkflowRuns.js"
import { Queue } from "../../src/services/Queue.js"
import { drive, queueLayer } from "../worker/support.js"

const Data = Schema.Struct({ n: Schema.Number })
const Approval = Schema.Struct({ by: Schema.String })

const Waiting = DagWorkflow.make("waiting", { data: Data })
  .step("prepare", { output: Schema.Number, run: (ctx) => Effect.succeed(ctx.data.n) })
  .step("approve", {
    dependsOn: ["prepare"],
    output: Schema.String,
    run: (ctx) => Effect.map(ctx.waitForSignal("approval", Approval), (a) => a.by)
  })
  .step("finish", { dependsOn: ["approve"], output: Schema.String, run: (ctx) => Effect.map(ctx.result("approve"), (by) => `approved by ${by}`) })

/** b fails the test if it ever runs: its result is recorded before the run starts. */
const Recorded = DagWorkflow.make("recorded", { data: Data })
  .step("a", { output: Schema.Number, run: () => Effect.die("step a ran although its result was recorded") })
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
    }, DagWorkflow.handlers(Waiting, Recorded)).pipe(Scope.extend(scope))
    return scope
  })

const stateOf = (id: string) => Effect.map(DagWorkflow.get(id), Option.getOrThrow)
const ended = (id: string) => Effect.map(stateOf(id), (s) => s.status === "completed" || s.status === "failed" || s.status === "cancelled")

/**
 * A run of `Recorded` whose step "a" finished and recorded its result (7), but whose state still
 * shows it running: the worker crashed between the record and the state's CAS. Its task is then
 * left to `afterwards` (retention archives or deletes it).
 */
const recordedButUntold = (id: string, afterwards: (taskId: string) => Effect.Effect<unknown, unknown, Queue>) =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const definition = Either.getOrThrow(DagWorkflow.validate(Recorded))
    yield* WorkflowRuns.createRun({ id, definition, definitionHash: DagWorkflow.hashOf(Recorded), data: { n: 1 } })
    const task = yield* queue.submit(stepTaskType("recorded", "a"), { workflow_id: id, step: "a", attempt: 1, resumes: 0 }, { typeCheck: "off" })
    yield* WorkflowRuns.updateRun(id, (s) =>
      Effect.succeed(makeWorkflowState({
        ...s,
        status: "running",
        steps: { ...s.steps, a: makeStepState({ ...s.steps["a"]!, status: "running", attempt: 1, taskId: task.id }) }
      })))
    yield* WorkflowRuns.recordStepResult(id, "a", 1, 7)
    // the task ended (here: cancelled, as nothing must run it) and retention then took it
    yield* queue.cancel(task.id, { reason: "its worker is gone" })
    yield* afterwards(task.id)
    return task.id
  })

describe("DAG workflows with retention and pause switches (MemoryStorage + TestClock)", () => {
  it.scoped("a run waiting for a signal while retention archives its finished tasks, completes when the signal comes", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      yield* startWorker({
        checkInterval: "5 seconds",
        sweepInterval: "1 minute",
        sweepMode: "on_demand",
        retention: { olderThan: "5 minutes", action: "archive" },
        workflows: { interval: "1 minute", minAge: "30 seconds" },
        // while the run waits nothing runs, so the bucket would turn quiet and sweep (and apply
        // retention) hourly; the test wants retention within its twenty minutes
        quiet: false
      })
      yield* DagWorkflow.start(Waiting, { n: 3 }, { id: "wait-1" })
      yield* drive(Effect.map(stateOf("wait-1"), (s) => s.status === "waiting_signal"), "1 second")
      // twenty minutes of waiting: retention archives the finished orchestrator and step tasks
      yield* drive(Effect.succeed(false), "1 minute", 20).pipe(Effect.catchAllDefect(() => Effect.void))
      const archived = yield* queue.list({ status: "archived", limit: 100 })
      expect(archived.tasks.map((t) => t.taskType)).toContain(stepTaskType("waiting", "prepare"))
      expect((yield* stateOf("wait-1")).status).toBe("waiting_signal")
      yield* DagWorkflow.signal("wait-1", "approval", { by: "ann" })
      yield* drive(ended("wait-1"), "1 second")
      const done = yield* stateOf("wait-1")
      expect(done.status).toBe("completed")
      expect(done.steps["finish"]?.result).toBe("approved by ann")
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("a recorded step whose task retention archived or deleted before the sweeper came keeps its result; the run completes", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      yield* recordedButUntold("archived-1", (id) => queue.archive(id))
      yield* recordedButUntold("deleted-1", (id) => queue.delete(id))
      yield* drive(Effect.succeed(false), "5 seconds", 7).pipe(Effect.catchAllDefect(() => Effect.void))
      const report = yield* DagWorkflow.sweep({ minAge: "30 seconds" })
      expect(report.recovered.map((r) => r.workflowId).sort()).toEqual(["archived-1", "deleted-1"])
      yield* startWorker()
      yield* drive(Effect.map(Effect.all([ended("archived-1"), ended("deleted-1")]), (e) => e.every(Boolean)), "500 millis")
      for (const id of ["archived-1", "deleted-1"]) {
        const state = yield* stateOf(id)
        expect(state.status, `${id}: ${JSON.stringify(state.error)}`).toBe("completed")
        expect(state.steps["a"]).toMatchObject({ status: "completed", result: 7 })
        expect(state.steps["b"]).toMatchObject({ status: "completed", result: 8 })
      }
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("a step whose task type is paused holds the run (not stuck for the sweeper); after the resume the run completes", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const held = stepTaskType("waiting", "approve")
      yield* queue.pause(held)
      yield* startWorker()
      yield* DagWorkflow.start(Waiting, { n: 1 }, { id: "paused-1" })
      yield* drive(Effect.map(stateOf("paused-1"), (s) => s.steps["approve"]?.status === "running"), "1 second")
      yield* drive(Effect.succeed(false), "10 seconds", 12).pipe(Effect.catchAllDefect(() => Effect.void))
      const waiting = yield* stateOf("paused-1")
      expect(waiting.status).toBe("running")
      expect(waiting.steps["approve"]?.status).toBe("running")
      const task = Option.getOrThrow(yield* queue.get(waiting.steps["approve"]!.taskId!))
      expect(task.status).toBe("pending")
      // waiting for a paused type is not stuck: nothing to recover
      expect((yield* DagWorkflow.sweep({ minAge: "30 seconds" })).recovered).toEqual([])
      yield* DagWorkflow.signal("paused-1", "approval", { by: "bob" })
      yield* queue.resume(held)
      yield* drive(ended("paused-1"), "1 second")
      expect((yield* stateOf("paused-1")).status).toBe("completed")
    }).pipe(Effect.provide(queueLayer())))
})
