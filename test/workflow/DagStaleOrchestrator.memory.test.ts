/**
 * An orchestrator pass that decided "run these steps" on an older state must not reopen a run that
 * completed meanwhile (found by the deterministic simulation with DAG runs, seed 6: a pass whose
 * CAS lost re-applied its decision to the run another pass had just completed, and wrote it back
 * as `running` with no step current — a completed run that no longer was). On MemoryStorage +
 * FaultyStorage + TestClock with a real Worker.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Schema, Scope, TestClock } from "effect"
import { layerWorkerServices } from "../../src/Buquet.js"
import { makeWorkflowState } from "../../src/domain/workflow/WorkflowState.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as DagWorkflow from "../../src/programs/DagWorkflow.js"
import * as Worker from "../../src/programs/Worker.js"
import * as WorkflowRuns from "../../src/protocol/WorkflowRuns.js"
import { Queue } from "../../src/services/Queue.js"
import { drive } from "../worker/support.js"

const One = DagWorkflow.make("one", { data: Schema.Struct({ n: Schema.Number }) })
  // long enough that nothing else happens to the run while the test looks at it
  .step("a", { output: Schema.Number, run: (ctx) => Effect.as(Effect.sleep(Duration.hours(1)), ctx.data.n) })

const layer = Layer.provideMerge(
  Layer.mergeAll(QueueLayer.layer(), layerWorkerServices()),
  Layer.provideMerge(ServerClockLayer.layer, Layer.provideMerge(FaultyStorage.layer(), MemoryStorage.layer()))
)

describe("DAG orchestrator: a stale pass", () => {
  it.scoped("does not reopen a run that was completed while it submitted the steps it had decided to run", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const injector = yield* FaultyStorage.FaultInjector
      // the first pass submits step a's task: that submit is slow (its idempotency record's PUT)
      yield* injector.addRule({ operation: "put", key: /^idempotency\/workflow\.step/, fault: FaultyStorage.Fault.delay("10 seconds") })
      yield* DagWorkflow.start(One, { n: 1 }, { id: "r1" })
      const scope = yield* Scope.make()
      yield* Worker.make({
        wakeUp: false,
        monitor: false,
        concurrency: 1,
        polling: { _tag: "Adaptive", max: "1 second" },
        heartbeat: { idle: "10 minutes", busy: "10 minutes" },
        shutdownGracePeriod: "1 second"
      }, DagWorkflow.handlers(One)).pipe(Scope.extend(scope))
      yield* drive(Effect.map(injector.injected, (i) => i.length === 1), "100 millis")
      // meanwhile another pass completes the run (as a pass that saw every step done would)
      yield* WorkflowRuns.updateRun("r1", (s) => Effect.succeed(makeWorkflowState({ ...s, status: "completed", currentSteps: [] })))
      // the first pass goes on: its orchestrator task ends
      const orchestrator = (yield* queue.list({ taskType: "workflow.orchestrate:one", limit: 10 })).tasks[0]!
      yield* drive(Effect.map(queue.get(orchestrator.id), (t) => Option.isSome(t) && t.value.status === "completed"), "1 second")
      yield* TestClock.adjust("1 second")
      expect(Option.getOrThrow(yield* DagWorkflow.get("r1")).status).toBe("completed")
    }).pipe(Effect.provide(layer)))
})
