/**
 * A transient storage error must not cost a retry or re-run a finished handler (issue 15 fix 8):
 * the worker retries within the attempt's time and resolves an ambiguous write by re-reading until
 * it knows. FaultyStorage over MemoryStorage, TestClock; the test reads the store behind the faults.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option, Ref } from "effect"
import { taskKey } from "../../src/domain/Keys.js"
import type { Task } from "../../src/domain/Task.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault, FaultInjector } from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { readTask } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive } from "./support.js"

const env = Layer.provideMerge(
  Layer.merge(QueueLayer.layer(), layerWorkerServices()),
  Layer.provideMerge(ServerClockLayer.layer, FaultyStorage.layer().pipe(Layer.provideMerge(MemoryStorage.layer())))
)

const noWake: Worker.WorkerOptions = { wakeUp: false }

/** The task as stored, read behind the faults (so the test never uses up a rule). */
const truth = (task: Task) =>
  Effect.gen(function*() {
    const injector = yield* FaultInjector
    const found = yield* readTask(taskKey(task.shard, task.id)).pipe(Effect.provideService(Storage, injector.underlying))
    return Option.getOrThrow(found).task
  })

const hasStatus = (task: Task, status: Task["status"]) => Effect.map(truth(task), (t) => t.status === status)

const keyOf = (task: Task) => taskKey(task.shard, task.id)

/** Every scripted fault was injected (else the test proves nothing). */
const expectInjected = (kinds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const injected = yield* Effect.flatMap(FaultInjector, (i) => i.injected)
    expect(injected.filter((f) => f.source === "scripted").map((f) => `${f.operation} ${f.kind}`)).toEqual(kinds)
  })

describe("Worker under transient storage errors", () => {
  it.scoped("a failed automatic extension is retried: a handler running 3× its timeout completes on attempt 1", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const injector = yield* FaultInjector
      const task = yield* queue.submit("auto", {}, { timeoutSeconds: 4 })
      const runs = yield* Ref.make(0)
      yield* Worker.make(noWake, [
        Worker.handler("auto", () => Effect.zipRight(Ref.update(runs, (n) => n + 1), Effect.as(Effect.sleep("12 seconds"), "ok")), {
          autoExtendLease: true
        })
      ])
      yield* drive(hasStatus(task, "running"))
      const key = keyOf(task)
      // The first extension fails before it lands; the second lands but its answer is lost and so
      // is the re-read that would tell.
      yield* injector.addRule({ operation: "put", key, condition: "ifMatch", fault: Fault.unavailable })
      yield* injector.addRule({ operation: "put", key, condition: "ifMatch", timing: "after", fault: Fault.outcomeUnknown })
      yield* injector.addRule({ operation: "get", key, fault: Fault.unavailable, times: 2 })
      yield* drive(hasStatus(task, "completed"), "100 millis", 600)
      const done = yield* truth(task)
      expect([done.attempt, done.retryCount]).toEqual([1, 0])
      expect(yield* Ref.get(runs)).toBe(1)
      yield* expectInjected(["put Unavailable", "put OutcomeUnknown", "get Unavailable", "get Unavailable"])
    }).pipe(Effect.provide(env)))

  it.scoped("ctx.extendLease rides out a transient error instead of reporting LeaseLost while the lease is held", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const injector = yield* FaultInjector
      const task = yield* queue.submit("explicit", {}, { timeoutSeconds: 10 })
      const extended = yield* Ref.make<Either.Either<void, string> | undefined>(undefined)
      yield* Worker.make(noWake, [
        Worker.handler("explicit", (_input, ctx) =>
          Effect.gen(function*() {
            yield* Effect.sleep("1 second")
            const result = yield* Effect.either(ctx.extendLease("30 seconds"))
            yield* Ref.set(extended, Either.mapLeft(result, (e) => e.message))
            yield* Effect.sleep("15 seconds")
            return "ok"
          }))
      ])
      yield* drive(hasStatus(task, "running"))
      yield* injector.addRule({ operation: "put", key: keyOf(task), condition: "ifMatch", fault: Fault.unavailable, times: 2 })
      yield* drive(hasStatus(task, "completed"), "100 millis", 600)
      expect(yield* Ref.get(extended)).toEqual(Either.right(undefined))
      expect((yield* truth(task)).attempt).toBe(1)
      yield* expectInjected(["put Unavailable", "put Unavailable"])
    }).pipe(Effect.provide(env)))

  for (const timing of ["after", "before"] as const) {
    it.scoped(`a finished handler's result is kept when its settle is ambiguous (${timing === "after" ? "landed" : "not landed"}) and the re-read fails`, () =>
      Effect.gen(function*() {
        const queue = yield* Queue
        const injector = yield* FaultInjector
        const task = yield* queue.submit("quick", {}, { timeoutSeconds: 30 })
        const runs = yield* Ref.make(0)
        const worker = yield* Worker.make(noWake, [
          Worker.handler("quick", () => Effect.zipRight(Ref.update(runs, (n) => n + 1), Effect.as(Effect.sleep("2 seconds"), { done: true })))
        ])
        yield* drive(hasStatus(task, "running"))
        const key = keyOf(task)
        yield* injector.addRule({ operation: "put", key, condition: "ifMatch", timing, fault: Fault.outcomeUnknown })
        yield* injector.addRule({ operation: "get", key, fault: Fault.unavailable, times: 2 })
        yield* drive(hasStatus(task, "completed"), "100 millis", 600)
        const done = yield* truth(task)
        expect([done.attempt, done.output]).toEqual([1, { done: true }])
        expect(yield* Ref.get(runs)).toBe(1)
        // The worker knows it completed the task (not "could not settle").
        yield* drive(Effect.map(worker.stats, (st) => st.completed === 1), "100 millis", 50)
        yield* expectInjected(["put OutcomeUnknown", "get Unavailable", "get Unavailable"])
      }).pipe(Effect.provide(env)))
  }

  it.scoped("an ambiguous claim whose re-read fails is resolved: a max_retries 0 task runs once and completes", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const injector = yield* FaultInjector
      const task = yield* queue.submit("once", {}, { timeoutSeconds: 20, maxRetries: 0 })
      const key = keyOf(task)
      // The claim's CAS lands but its answer is lost; the claim's own read (skipped) goes through,
      // the two re-reads after the CAS fail.
      yield* injector.addRule({ operation: "put", key, condition: "ifMatch", timing: "after", fault: Fault.outcomeUnknown })
      yield* injector.addRule({ operation: "get", key, skip: 1, fault: Fault.unavailable, times: 2 })
      const runs = yield* Ref.make(0)
      yield* Worker.make(noWake, [Worker.handler("once", () => Effect.as(Ref.update(runs, (n) => n + 1), "ran"))])
      yield* drive(hasStatus(task, "completed"), "100 millis", 600)
      const done = yield* truth(task)
      expect([done.attempt, done.retryCount, done.output]).toEqual([1, 0, "ran"])
      expect(yield* Ref.get(runs)).toBe(1)
      yield* expectInjected(["put OutcomeUnknown", "get Unavailable", "get Unavailable"])
    }).pipe(Effect.provide(env)))
})
