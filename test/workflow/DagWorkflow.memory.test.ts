/**
 * DAG workflows (issue 18 acceptance 3 and 5, the logic) on MemoryStorage + TestClock, driven by
 * real buquet Workers: fan-out/fan-in completes, each on_failure policy reaches its verdict
 * (pause/resume from the failed step, continue never hangs, compensate runs compensations in
 * reverse order), cancel interrupts a running step task, and a signal wakes a waiting run with
 * one LIST per wake-up, not one per second.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Layer, Option, Ref, Scope, TestClock } from "effect"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as DagWorkflow from "../../src/programs/DagWorkflow.js"
import * as Worker from "../../src/programs/Worker.js"
import { drive, queueLayer } from "../worker/support.js"
import type { WorkflowStatus } from "../../src/domain/workflow/WorkflowState.js"
import { Storage } from "../../src/services/Storage.js"
import { all, Compensating, Continuing, entries, failNext, Gate, Log, Pausing, Received, Signalled, Slow, Wide } from "./fixtures/dag.js"

/** The prefixes of every LIST under workflow/ (the signal inboxes), in order. */
class InboxLists extends Context.Tag("test/InboxLists")<InboxLists, Ref.Ref<ReadonlyArray<string>>>() {}

/** MemoryStorage whose LISTs under workflow/ are recorded in {@link InboxLists}. */
const countingInboxes = Layer.effectContext(Effect.gen(function*() {
  const inner = yield* Storage
  const lists = yield* Ref.make<ReadonlyArray<string>>([])
  const storage = {
    ...inner,
    list: (prefix: string, options?: Parameters<typeof inner.list>[1]) =>
      Effect.zipRight(prefix.startsWith("workflow/") ? Ref.update(lists, (l) => [...l, prefix]) : Effect.void, inner.list(prefix, options))
  }
  return Context.make(Storage, storage).pipe(Context.add(InboxLists, lists))
})).pipe(Layer.provide(MemoryStorage.layer()))

const startWorker = Effect.gen(function*() {
  const scope = yield* Scope.make()
  yield* Worker.make({
    wakeUp: false,
    monitor: false,
    concurrency: 4,
    // idle passes back off to 2 s: a TestClock minute costs a few dozen LISTs, not 300
    polling: { _tag: "Adaptive", max: "2 seconds" },
    cancelCheckInterval: "2 seconds",
    heartbeat: { idle: "10 minutes", busy: "10 minutes" },
    shutdownGracePeriod: "1 second"
  }, DagWorkflow.handlers(...all)).pipe(Scope.extend(scope))
  return scope
})

const statusOf = (id: string) => Effect.map(DagWorkflow.get(id), (s) => Option.getOrThrow(s).status)
const reaches = (id: string, ...statuses: ReadonlyArray<WorkflowStatus>) => Effect.map(statusOf(id), (s) => statuses.includes(s))

const testLayer = (storage: Layer.Layer<Storage> = MemoryStorage.layer()) => Layer.mergeAll(queueLayer(storage), Log.Default, Gate.Default, Received.Default)

describe("DAG workflows on MemoryStorage + TestClock", () => {
  it.scoped("10 steps with fan-out 4 and fan-in complete, each step once, the fan-in after all four", () =>
    Effect.gen(function*() {
      yield* startWorker
      const run = yield* DagWorkflow.start(Wide, { n: 7 }, { id: "wide-1" })
      expect(run.status).toBe("pending")
      // the run records its definition, so readers without the code (CLI, dashboard) draw its DAG
      const stored = yield* Effect.flatMap(Storage, (s) => s.get("workflow/wide-1/state.json"))
      const body = JSON.parse(new TextDecoder().decode(Option.getOrThrow(stored).body)) as { definition?: { steps: ReadonlyArray<{ name: string; depends_on?: ReadonlyArray<string> }> } }
      expect(body.definition?.steps.map((s) => [s.name, s.depends_on ?? []])).toEqual(
        DagWorkflow.definitionOf(Wide).steps.map((s) => [s.name, s.dependsOn])
      )
      yield* drive(reaches("wide-1", "completed", "failed"), "200 millis")
      const state = Option.getOrThrow(yield* DagWorkflow.get("wide-1"))
      expect(state.status).toBe("completed")
      const log = yield* entries("wide-1")
      expect([...log].sort()).toEqual(["a", "b1", "b2", "b3", "b4", "c", "d1", "d2", "e", "f"])
      expect(log.indexOf("c")).toBeGreaterThan(Math.max(...["b1", "b2", "b3", "b4"].map((b) => log.indexOf(b))))
      expect(Option.getOrThrow(yield* DagWorkflow.stepResult(Wide, "wide-1", "c"))).toBe("b1-7+b2-7+b3-7+b4-7")
      // starting again with the same id starts nothing
      yield* DagWorkflow.start(Wide, { n: 7 }, { id: "wide-1" })
      expect((yield* DagWorkflow.get("wide-1")).pipe(Option.getOrThrow).status).toBe("completed")
    }).pipe(Effect.provide(testLayer())))

  it.scoped("pause_workflow pauses the run at the failed step; resume retries it and the run completes", () =>
    Effect.gen(function*() {
      yield* startWorker
      yield* failNext("pause-1", "b", 1)
      yield* DagWorkflow.start(Pausing, { n: 1 }, { id: "pause-1" })
      yield* drive(reaches("pause-1", "paused", "failed", "completed"), "200 millis")
      const paused = Option.getOrThrow(yield* DagWorkflow.get("pause-1"))
      expect(paused.status).toBe("paused")
      expect(paused.error?.step).toBe("b")
      expect(paused.currentSteps).toEqual(["b"])
      expect(yield* entries("pause-1")).toEqual(["a", "b!"])
      yield* DagWorkflow.resume("pause-1")
      yield* drive(reaches("pause-1", "completed", "failed", "paused"), "200 millis")
      expect(yield* statusOf("pause-1")).toBe("completed")
      expect(yield* entries("pause-1")).toEqual(["a", "b!", "b", "c"])
      const state = Option.getOrThrow(yield* DagWorkflow.get("pause-1"))
      expect(state.steps["b"]?.attempt).toBe(2)
    }).pipe(Effect.provide(testLayer())))

  it.scoped("continue: the failure is tolerated, its dependents are skipped, the others run, and the run gets a verdict", () =>
    Effect.gen(function*() {
      yield* startWorker
      yield* failNext("cont-1", "b", 1)
      yield* DagWorkflow.start(Continuing, { n: 1 }, { id: "cont-1" })
      yield* drive(reaches("cont-1", "completed", "failed"), "200 millis")
      const state = Option.getOrThrow(yield* DagWorkflow.get("cont-1"))
      expect(state.status).toBe("failed")
      expect(state.error?.type).toBe("DependentsSkipped")
      expect([...(yield* entries("cont-1"))].sort()).toEqual(["a", "b!", "d"])
    }).pipe(Effect.provide(testLayer())))

  it.scoped("compensate: the completed steps' compensations run in reverse order, once each, then the run fails", () =>
    Effect.gen(function*() {
      yield* startWorker
      yield* failNext("comp-1", "ship", 1)
      yield* DagWorkflow.start(Compensating, { n: 1 }, { id: "comp-1" })
      yield* drive(reaches("comp-1", "completed", "failed"), "200 millis")
      const state = Option.getOrThrow(yield* DagWorkflow.get("comp-1"))
      expect(state.status).toBe("failed")
      expect(state.error?.type).toBe("Compensated")
      expect(yield* entries("comp-1")).toEqual(["reserve", "charge", "ship!", "refund", "unreserve"])
      expect(state.steps["charge"]?.compensation?.status).toBe("completed")
      expect(state.steps["reserve"]?.compensation?.status).toBe("completed")
    }).pipe(Effect.provide(testLayer())))

  it.scoped("cancel interrupts the running step's task and settles the run as cancelled", () =>
    Effect.gen(function*() {
      yield* startWorker
      const gate = yield* Gate
      yield* DagWorkflow.start(Slow, { n: 1 }, { id: "slow-1" })
      yield* drive(Effect.map(Deferred.poll(gate.started), Option.isSome), "200 millis")
      const taskId = Option.getOrThrow(yield* DagWorkflow.get("slow-1")).steps["long"]?.taskId
      const cancelled = yield* DagWorkflow.cancel("slow-1", "no longer needed")
      expect(cancelled.status).toBe("cancelled")
      // the worker notices the queue's cancel signal on its next check (every 2 s here)
      yield* drive(Effect.map(Deferred.poll(gate.interrupted), Option.isSome), "200 millis", 25)
      expect(taskId).toBeDefined()
      const state = Option.getOrThrow(yield* DagWorkflow.get("slow-1"))
      expect(state.status).toBe("cancelled")
      expect(state.steps["long"]?.status).toBe("cancelled")
      expect(state.steps["after"]?.status).toBe("pending")
      expect(yield* entries("slow-1")).toEqual([])
    }).pipe(Effect.provide(testLayer())))

  it.scoped("a signal sent while the run waits is consumed once and wakes it; waiting costs no LIST per second", () =>
    Effect.gen(function*() {
      yield* startWorker
      yield* DagWorkflow.start(Signalled, { n: 1 }, { id: "sig-1" })
      yield* drive(reaches("sig-1", "waiting_signal", "failed"), "200 millis")
      expect(yield* statusOf("sig-1")).toBe("waiting_signal")
      const lists = yield* InboxLists
      const inbox = "workflow/sig-1/signals/"
      const listsOfInbox = Effect.map(Ref.get(lists), (l) => l.filter((p) => p.startsWith(inbox)).length)
      const before = yield* listsOfInbox
      // a minute of waiting: nothing looks at the inbox
      yield* drive(Effect.succeed(false), "5 seconds", 12).pipe(Effect.catchAllDefect(() => Effect.void))
      expect(yield* listsOfInbox).toBe(before)
      expect(yield* statusOf("sig-1")).toBe("waiting_signal")
      yield* DagWorkflow.signal("sig-1", "approval", { by: "alice" })
      // signals are ordered by their time (the key's timestamp, then a random id): two sent in the
      // same millisecond have no order, so bob's comes a millisecond later
      yield* TestClock.adjust("1 millis")
      yield* DagWorkflow.signal("sig-1", "approval", { by: "bob" })
      yield* drive(reaches("sig-1", "completed", "failed"), "200 millis")
      expect(yield* statusOf("sig-1")).toBe("completed")
      expect(yield* entries("sig-1")).toEqual(["prepare", "approved by alice", "finish"])
      // the wake-ups cost a handful of LISTs of the inbox, not one per second
      expect((yield* listsOfInbox) - before).toBeLessThanOrEqual(6)
      const state = Option.getOrThrow(yield* DagWorkflow.get("sig-1"))
      expect(state.signals["approval"]?.cursor).toBeDefined()
      const page = yield* DagWorkflow.list()
      expect(page.runs.map((r) => r.state.id)).toContain("sig-1")
    }).pipe(Effect.provide(Layer.merge(testLayer(countingInboxes as unknown as Layer.Layer<Storage>), countingInboxes))))
})
