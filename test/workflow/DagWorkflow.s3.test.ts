/**
 * DAG workflows on the real RGW server (issue 18 acceptance 3 and 5), an in-process Worker over
 * S3Storage, real time; the workflows are the memory suite's (`fixtures/dag.ts`).
 *
 * - Acceptance 3: 10 steps with fan-out 4 and fan-in complete, each step once; `pause_workflow`
 *   pauses and `resume` continues from the failed step; `continue` reaches a verdict with every
 *   dependent settled; `compensate` runs the compensations in reverse order, once each; `cancel`
 *   interrupts the running step's handler within 5 s (the step's recorded cancel time against the
 *   queue's time the handler saw its interruption).
 * - Acceptance 5: a signal sent while a run waits is consumed once and wakes the step within 1 s
 *   (the signal's recorded time against the queue's time the step received it), and while runs
 *   wait, nothing LISTs (or reads) their objects: requests under `workflow/` are counted with
 *   CountingStorage, apart from the queue's.
 */
import { expect, it } from "@effect/vitest"
import { Clock, Context, DateTime, Deferred, Duration, Effect, Layer, Option, Ref } from "effect"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import type { WorkflowStatus } from "../../src/domain/workflow/WorkflowState.js"
import * as DagWorkflow from "../../src/programs/DagWorkflow.js"
import * as Worker from "../../src/programs/Worker.js"
import type { RequestCounterService } from "../../src/services/RequestCounter.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import type { StorageService } from "../../src/services/Storage.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import { describeS3, s3Layer } from "../support/s3.js"
import { all, Compensating, Continuing, entries, failNext, Gate, Log, Pausing, Received, Signalled, Slow, Wide } from "./fixtures/dag.js"

/** Counts the requests for the runs' objects (`workflow/…`) apart from everything else. */
const WorkflowRequests = Context.GenericTag<RequestCounterService>("test/WorkflowRequests")

/** S3Storage whose calls for keys (or LIST prefixes) under `workflow/` go through their own CountingStorage. */
const splitCounting = Layer.effectContext(Effect.gen(function*() {
  const s3 = yield* Storage
  const counted = yield* CountingStorage.make(s3)
  const w = counted.storage
  const ours = (key: string) => key.startsWith("workflow/")
  const storage: StorageService = {
    ...s3,
    get: (key) => (ours(key) ? w.get(key) : s3.get(key)),
    head: (key) => (ours(key) ? w.head(key) : s3.head(key)),
    put: (key, body, condition) => (ours(key) ? w.put(key, body, condition) : s3.put(key, body, condition)),
    delete: (key) => (ours(key) ? w.delete(key) : s3.delete(key)),
    list: (prefix, options) => (ours(prefix) ? w.list(prefix, options) : s3.list(prefix, options)),
    listAll: (prefix, options) => (ours(prefix) ? w.listAll(prefix, options) : s3.listAll(prefix, options))
  }
  return Context.make(Storage, storage).pipe(Context.add(WorkflowRequests, counted.counter))
})).pipe(Layer.provide(s3Layer()))

const layer = <S>(storage: Layer.Layer<S | Storage>) =>
  Layer.provideMerge(
    Layer.mergeAll(Layer.merge(QueueLayer.layer(), layerWorkerServices()), Log.Default, Gate.Default, Received.Default),
    Layer.provideMerge(ServerClockLayer.layer, storage)
  )

/** Polls (real time, every 250 ms) until `done` holds; dies after `withinMillis`. */
const waitUntil = <E, R>(what: string, done: Effect.Effect<boolean, E, R>, withinMillis = 90_000) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + withinMillis
    while ((yield* Clock.currentTimeMillis) < deadline) {
      if (yield* done) return
      yield* Effect.sleep("250 millis")
    }
    return yield* Effect.dieMessage(`timed out waiting until ${what}`)
  })

const stateOf = (id: string) => Effect.map(DagWorkflow.get(id), Option.getOrThrow)
const reaches = (id: string, ...statuses: ReadonlyArray<WorkflowStatus>) => Effect.map(stateOf(id), (s) => statuses.includes(s.status))

// an idle worker looks at the wake-up object every 300 ms here (default 1.1 s): a wake-up is then
// picked up within 1 s however the HEADs fall (with the default, within about 1.1 s plus the claim)
const worker = Worker.make({ monitor: false, concurrency: 8, shutdownGracePeriod: "1 second", wakeUp: { checkInterval: "300 millis" } }, DagWorkflow.handlers(...all))

describeS3("DAG workflows on RGW (issue 18 acceptance 3 and 5)", () => {
  it.live("fan-out/fan-in completes; pause_workflow + resume, continue, compensate reach their verdicts; cancel interrupts the running step within 5 s", () =>
    Effect.gen(function*() {
      yield* worker
      const gate = yield* Gate
      yield* failNext("pause-s3", "b", 1)
      yield* failNext("cont-s3", "b", 1)
      yield* failNext("comp-s3", "ship", 1)
      yield* DagWorkflow.start(Wide, { n: 7 }, { id: "wide-s3" })
      yield* DagWorkflow.start(Pausing, { n: 1 }, { id: "pause-s3" })
      yield* DagWorkflow.start(Continuing, { n: 1 }, { id: "cont-s3" })
      yield* DagWorkflow.start(Compensating, { n: 1 }, { id: "comp-s3" })
      yield* DagWorkflow.start(Slow, { n: 1 }, { id: "slow-s3" })
      yield* waitUntil("every run reached its verdict and the slow step runs", Effect.map(Effect.all([
        reaches("wide-s3", "completed", "failed"),
        reaches("pause-s3", "paused", "failed", "completed"),
        reaches("cont-s3", "completed", "failed"),
        reaches("comp-s3", "completed", "failed"),
        Effect.map(Deferred.poll(gate.started), Option.isSome)
      ]), (done) => done.every((d) => d)))

      // fan-out 4 and fan-in: each step once, c after all four b's
      expect((yield* stateOf("wide-s3")).status).toBe("completed")
      const wide = yield* entries("wide-s3")
      expect([...wide].sort()).toEqual(["a", "b1", "b2", "b3", "b4", "c", "d1", "d2", "e", "f"])
      expect(wide.indexOf("c")).toBeGreaterThan(Math.max(...["b1", "b2", "b3", "b4"].map((b) => wide.indexOf(b))))
      expect(Option.getOrThrow(yield* DagWorkflow.stepResult(Wide, "wide-s3", "c"))).toBe("b1-7+b2-7+b3-7+b4-7")

      // continue: b's failure is tolerated, d ran, c (b's dependent) was skipped, and the run has a verdict
      const cont = yield* stateOf("cont-s3")
      expect(cont.status).toBe("failed")
      expect(cont.error?.type).toBe("DependentsSkipped")
      expect(cont.error?.message).toContain("c")
      expect(Object.values(cont.steps).filter((s) => s.status === "running")).toEqual([])
      expect([...(yield* entries("cont-s3"))].sort()).toEqual(["a", "b!", "d"])

      // compensate: the completed steps are undone in reverse order, once each
      const comp = yield* stateOf("comp-s3")
      expect(comp.status).toBe("failed")
      expect(comp.error?.type).toBe("Compensated")
      expect(yield* entries("comp-s3")).toEqual(["reserve", "charge", "ship!", "refund", "unreserve"])

      // pause_workflow: paused at the failed step; resume continues from it
      const paused = yield* stateOf("pause-s3")
      expect(paused.status).toBe("paused")
      expect(paused.currentSteps).toEqual(["b"])
      yield* DagWorkflow.resume("pause-s3")
      yield* waitUntil("the resumed run ends", reaches("pause-s3", "completed", "failed", "paused"))
      expect((yield* stateOf("pause-s3")).status).toBe("completed")
      expect(yield* entries("pause-s3")).toEqual(["a", "b!", "b", "c"])

      // cancel: the running step's handler is interrupted, within 5 s of the cancel (both the queue's times)
      yield* DagWorkflow.cancel("slow-s3", "no longer needed")
      const interruptedAt = yield* Deferred.await(gate.interrupted).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error("the handler was never interrupted") }))
      const slow = yield* stateOf("slow-s3")
      expect(slow.status).toBe("cancelled")
      expect(slow.steps["long"]?.status).toBe("cancelled")
      expect(slow.steps["after"]?.status).toBe("pending")
      const cancelledAt = slow.steps["long"]?.completedAt
      expect(cancelledAt).toBeDefined()
      const lag = DateTime.distance(cancelledAt!, interruptedAt)
      expect(lag).toBeLessThanOrEqual(Duration.toMillis("5 seconds"))
    }).pipe(Effect.scoped, Effect.provide(layer(s3Layer()))), 180_000)

  it.live("a signal sent while runs wait is consumed once and wakes its step within 1 s; waiting runs cost no request, no LIST", () =>
    Effect.gen(function*() {
      yield* worker
      const requests = yield* WorkflowRequests
      const ids = ["sig-a", "sig-b", "sig-c"]
      for (const id of ids) yield* DagWorkflow.start(Signalled, { n: 1 }, { id })
      yield* waitUntil("every run waits for its signal", Effect.map(Effect.forEach(ids, (id) => reaches(id, "waiting_signal", "failed")), (d) => d.every((x) => x)))
      for (const id of ids) expect((yield* stateOf(id)).status).toBe("waiting_signal")

      // 5 s of waiting: the three runs cost nothing, in particular no LIST of their inboxes
      yield* requests.take
      yield* Effect.sleep("5 seconds")
      const idle = yield* requests.take
      expect({ GET: idle.GET, HEAD: idle.HEAD, PUT: idle.PUT, LIST: idle.LIST }).toEqual({ GET: 0, HEAD: 0, PUT: 0, LIST: 0 })

      // two signals to one run: the step takes the first, once; the second stays in the inbox
      const alice = yield* DagWorkflow.signal("sig-a", "approval", { by: "alice" })
      yield* Effect.sleep("5 millis")
      yield* DagWorkflow.signal("sig-a", "approval", { by: "bob" })
      yield* waitUntil("sig-a completes", reaches("sig-a", "completed", "failed"))
      expect((yield* stateOf("sig-a")).status).toBe("completed")
      expect(yield* entries("sig-a")).toEqual(["prepare", "approved by alice", "finish"])
      const received = yield* Effect.flatMap(Received, Ref.get)
      expect(received.map((r) => r.by)).toEqual(["alice"])
      // the wake-up: sending the signal submitted the run's orchestrator task at once (no one polls
      // the inbox), and the orchestrator resumed the step (created its next task) within 1 s
      const orchestrators = (yield* Effect.flatMap(Queue, (q) => q.list({ taskType: "workflow.orchestrate:signalled", limit: 100 }))).tasks
      const wakeUp = orchestrators.filter((t) => DateTime.greaterThanOrEqualTo(t.createdAt, alice.createdAt))
        .sort((a, b) => DateTime.toEpochMillis(a.createdAt) - DateTime.toEpochMillis(b.createdAt))[0]
      expect(wakeUp).toBeDefined()
      const approve = (yield* stateOf("sig-a")).steps["approve"]!
      expect(approve.resumes).toBe(1)
      const resumedTask = Option.getOrThrow(yield* Effect.flatMap(Queue, (q) => q.get(approve.taskId!)))
      const submitted = DateTime.distance(alice.createdAt, wakeUp!.createdAt)
      const woke = DateTime.distance(alice.createdAt, resumedTask.createdAt)
      yield* Effect.log(`signal -> wake-up task: ${submitted} ms; -> resumed step task: ${woke} ms; -> the step received it: ${DateTime.distance(alice.createdAt, received[0]!.at)} ms`)
      expect(submitted).toBeLessThanOrEqual(200)
      expect(woke).toBeLessThanOrEqual(1000)
      // the others still wait, untouched
      for (const id of ["sig-b", "sig-c"]) expect((yield* stateOf(id)).status).toBe("waiting_signal")
    }).pipe(Effect.scoped, Effect.provide(layer(splitCounting))), 180_000)
})
