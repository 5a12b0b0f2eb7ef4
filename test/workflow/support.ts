/** What the workflow engine's MemoryStorage + TestClock suites share. */
import { Effect, Layer, Scope } from "effect"
import * as BuquetWorkflowEngine from "../../src/layers/BuquetWorkflowEngine.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as Worker from "../../src/programs/Worker.js"
import * as WorkflowWorker from "../../src/programs/WorkflowWorker.js"
import { provideOrFail } from "../support/stuck.js"

/** The engine on MemoryStorage (workflow tasks get `timeoutSeconds`), with `extra` beside the queue and `workflows` on top. */
export const memoryEngine = <W, E, R, X>(
  workflows: Layer.Layer<W, E, R>,
  extra: Layer.Layer<X>,
  timeoutSeconds = 30
) =>
  Layer.provideMerge(
    workflows,
    Layer.provideMerge(
      BuquetWorkflowEngine.layer,
      Layer.provideMerge(
        Layer.mergeAll(QueueLayer.layer({ defaultTimeoutSeconds: timeoutSeconds }), layerWorkerServices(), extra),
        Layer.provideMerge(ServerClockLayer.layer, MemoryStorage.layer())
      )
    )
  )

/**
 * Provides an engine layer ({@link memoryEngine}) to a test: `Effect.provide`, except that a close
 * of the layers that cannot finish (a finalizer awaiting a fiber that sleeps on the TestClock, which
 * nobody adjusts once the test has its result) fails the test naming it instead of hanging it.
 */
export const provideEngine = <ROut, E, RIn>(layer: Layer.Layer<ROut, E, RIn>) =>
  provideOrFail(layer, "closing the engine's layers (Queue, ServerClock, storage) after the test")

/** Starts a worker for the registered workflows in its own scope; closing the scope stops it. */
export const startWorker = Effect.gen(function*() {
  const scope = yield* Scope.make()
  yield* Worker.make({
    wakeUp: false,
    monitor: false,
    polling: { _tag: "Adaptive", max: "5 seconds" },
    // an idle worker's periodic checks dominate TestClock time; nothing here depends on them
    cancelCheckInterval: "10 minutes",
    heartbeat: { idle: "10 minutes", busy: "10 minutes" },
    shutdownGracePeriod: "1 second"
  }, yield* WorkflowWorker.handlers).pipe(Scope.extend(scope))
  return scope
})
