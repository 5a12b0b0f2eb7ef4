/**
 * Orphaned payloads are collected by the sweeper (issue 15, fix 10; review finding 15), on
 * MemoryStorage + TestClock: a submit killed between its payload PUT and its task PUT, and an
 * output offloaded by an attempt whose task then finished without it, leave payloads that no task
 * references. A full sweep after the grace deletes them; before the grace it leaves them (an
 * in-flight submit's task may not exist yet); a payload a task references always survives, and so
 * does the output payload of a task still running (its attempt may settle with it).
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Fiber, Layer, Stream, TestClock } from "effect"
import { payloadKey } from "../../src/domain/Keys.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Sweeper from "../../src/programs/monitor/Sweeper.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, hasStatus } from "../worker/support.js"
import { layerWorkerServices } from "../../src/Buquet.js"

const payloadKeys = Effect.flatMap(Storage, (s) => Stream.runCollect(s.listAll("payloads/"))).pipe(
  Effect.map((c) => Chunk.toReadonlyArray(c).map((m) => m.key).sort())
)

const big = { blob: "x".repeat(500) }

/** MemoryStorage whose task creates hang once `hang` is set (a process frozen, then killed). */
const hangingTaskCreates = (gate: { hang: boolean; reached: Deferred.Deferred<void> }) =>
  Layer.effect(
    Storage,
    Effect.map(MemoryStorage.make(), (s) => ({
      ...s,
      put: (key: string, body: Uint8Array, condition?: Parameters<typeof s.put>[2]) =>
        gate.hang && key.startsWith("tasks/")
          ? Effect.zipRight(Deferred.succeed(gate.reached, undefined), Effect.never)
          : s.put(key, body, condition)
    }))
  )

/** A queue (100-byte offload threshold) and worker services over `storage`. */
const workerLayer = (storage: Layer.Layer<Storage>) =>
  Layer.merge(QueueLayer.layer({ payloadThresholdBytes: 100 }), layerWorkerServices()).pipe(
    Layer.provideMerge(ServerClockLayer.layer),
    Layer.provideMerge(storage)
  )

describe("Sweeper collects orphaned payloads", () => {
  it.scoped("a submit killed between payload and task, an unreferenced output: collected after the grace; referenced ones survive", () =>
    Effect.gen(function*() {
      const reached = yield* Deferred.make<void>()
      const gate = { hang: false, reached }
      const layer = workerLayer(hangingTaskCreates(gate))
      yield* Effect.gen(function*() {
        const queue = yield* Queue
        const storage = yield* Storage
        // referenced: a pending task's input, a completed task's output
        const kept = yield* queue.submit("big", big)
        const done = yield* queue.submit("echo", {})
        const small = yield* queue.submit("small", {})
        // the workers stop before the clock moves by hours (their polling would only cost time)
        yield* Effect.scoped(Effect.gen(function*() {
          yield* Worker.make({ wakeUp: false, payloadThresholdBytes: 100 }, [
            Worker.handler("echo", () => Effect.succeed(big)),
            Worker.handler("small", () => Effect.succeed({ ok: true }))
          ])
          yield* drive(Effect.zipWith(hasStatus(done.id, "completed"), hasStatus(small.id, "completed"), (a, b) => a && b))
        }))
        // an output offloaded by an attempt that then lost: the task finished without it
        yield* storage.put(payloadKey(small.id, "output"), new TextEncoder().encode(JSON.stringify(big)))
        // killed between the payload PUT and the task PUT
        gate.hang = true
        const crashed = yield* Effect.fork(queue.submit("big", { ...big, n: 2 }))
        yield* Deferred.await(reached)
        yield* Fiber.interrupt(crashed)
        gate.hang = false
        const before = yield* payloadKeys
        expect(before).toHaveLength(4)
        const orphanInput = before.find((k) => k.endsWith("/input.json") && !k.includes(kept.id))!
        // each attempt offloads its output to its own key, which the task names
        const doneOutput = (yield* Effect.flatten(queue.get(done.id))).outputRef!
        expect(doneOutput).toMatch(new RegExp(`^payloads/${done.id}/output-[0-9a-f-]{36}\\.json$`))
        const expectKept = [payloadKey(kept.id, "input"), doneOutput].sort()

        const sweeper = yield* Sweeper.make()
        // within the grace nothing is collected: an in-flight submit's task may not exist yet
        yield* sweeper.fullSweep
        expect(yield* payloadKeys).toEqual(before)

        yield* TestClock.adjust("2 hours")
        const report = yield* sweeper.fullSweep
        expect(yield* payloadKeys).toEqual(expectKept)
        expect(report.totals.payloadsDeleted).toBe(2)
        expect(before).toContain(orphanInput)
        // the referenced payloads still load
        const finished = yield* Effect.flatten(queue.get(done.id))
        expect(yield* queue.loadOutput(finished)).toEqual(big)
      }).pipe(Effect.provide(layer))
    }), 60_000)

  it.scoped("the output payload of a running task is kept (its attempt may still settle with it)", () =>
    Effect.gen(function*() {
      const layer = workerLayer(MemoryStorage.layer())
      yield* Effect.gen(function*() {
        const queue = yield* Queue
        const storage = yield* Storage
        const task = yield* queue.submit("slow", { timeout: 1 }, { timeoutSeconds: 3600 })
        const release = yield* Deferred.make<void>()
        yield* Worker.make({ wakeUp: false }, [Worker.handler("slow", () => Effect.as(Deferred.await(release), { ok: true }))])
        yield* drive(hasStatus(task.id, "running"))
        yield* storage.put(payloadKey(task.id, "output"), new TextEncoder().encode(JSON.stringify(big)))
        // no grace: only the rule protects it
        const sweeper = yield* Sweeper.make({ payloadGrace: 0 })
        yield* sweeper.fullSweep
        expect(yield* payloadKeys).toEqual([payloadKey(task.id, "output")])
        // let the attempt finish, so the worker stops without waiting out its grace on TestClock
        yield* Deferred.succeed(release, undefined)
        yield* drive(hasStatus(task.id, "completed"))
      }).pipe(Effect.provide(layer))
    }), 60_000)
})

describe("a late DELETE of the payload collector", () => {
  it.scoped("never removes the output a replayed run offloaded after the collector judged the old one an orphan", () =>
    Effect.gen(function*() {
      // The sweeper's storage holds its payload DELETEs until `release` (S3 retries, a paused monitor).
      const reached = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const layer = workerLayer(MemoryStorage.layer())
      yield* Effect.gen(function*() {
        const queue = yield* Queue
        const storage = yield* Storage
        const holding = {
          ...storage,
          delete: (key: string) =>
            Effect.zipRight(Effect.zipRight(Deferred.succeed(reached, undefined), Deferred.await(release)), storage.delete(key)),
          deleteMany: (keys: ReadonlyArray<string>) =>
            Effect.zipRight(Effect.zipRight(Deferred.succeed(reached, undefined), Deferred.await(release)), storage.deleteMany(keys))
        }
        const task = yield* queue.submit("echo", {})
        const run = Effect.scoped(Effect.gen(function*() {
          yield* Worker.make({ wakeUp: false, payloadThresholdBytes: 100 }, [Worker.handler("echo", () => Effect.succeed(big))])
          yield* drive(hasStatus(task.id, "completed"))
        }))
        // an attempt offloaded its output, then lost its lease; the task was cancelled without it
        yield* storage.put(payloadKey(task.id, "output"), new TextEncoder().encode(JSON.stringify({ lost: true })))
        yield* queue.cancel(task.id)
        // the collector judges run 1's output an orphan; its DELETE is held up
        const sweeper = yield* Sweeper.make({ payloadGrace: 0 }).pipe(Effect.provideService(Storage, holding))
        const sweeping = yield* Effect.fork(sweeper.fullSweep)
        yield* Deferred.await(reached)
        // meanwhile a replay and a new run that offloads its output and completes
        yield* queue.replay(task.id)
        yield* TestClock.adjust("1 minute")
        yield* run
        // the held DELETE lands
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(sweeping)
        const finished = yield* Effect.flatten(queue.get(task.id))
        expect(finished.status).toBe("completed")
        expect(yield* queue.loadOutput(finished)).toEqual(big)
        // the orphan it judged is gone; the new run's output is at its own key
        expect(yield* payloadKeys).toEqual([finished.outputRef])
        // and it goes with its task
        yield* queue.delete(task.id)
        expect(yield* payloadKeys).toEqual([])
      }).pipe(Effect.provide(layer))
    }), 60_000)
})

describe("an output at the reference's layout (payloads/{id}/output.json)", () => {
  it.scoped("still loads, is kept by the collector while referenced, and goes with its task", () =>
    Effect.gen(function*() {
      const layer = QueueLayer.layer({ payloadThresholdBytes: 100 }).pipe(
        Layer.provideMerge(ServerClockLayer.layer),
        Layer.provideMerge(MemoryStorage.layer())
      )
      yield* Effect.gen(function*() {
        const queue = yield* Queue
        const storage = yield* Storage
        const task = yield* queue.submit("echo", {})
        yield* queue.cancel(task.id)
        // a task finished by the reference's worker: its output_ref names output.json
        const legacy = payloadKey(task.id, "output")
        const key = `tasks/${task.shard}/${task.id}.json`
        const stored = yield* Effect.flatten(storage.get(key))
        const doc = JSON.parse(new TextDecoder().decode(stored.body)) as Record<string, unknown>
        yield* storage.put(legacy, new TextEncoder().encode(JSON.stringify(big)))
        yield* storage.put(key, new TextEncoder().encode(JSON.stringify({ ...doc, status: "completed", output: null, output_ref: legacy })))
        const read = yield* Effect.flatten(queue.get(task.id))
        expect(read.outputRef).toBe(legacy)
        expect(yield* queue.loadOutput(read)).toEqual(big)
        yield* TestClock.adjust("2 hours")
        yield* (yield* Sweeper.make()).fullSweep
        expect(yield* payloadKeys).toEqual([legacy])
        yield* queue.delete(task.id)
        expect(yield* payloadKeys).toEqual([])
      }).pipe(Effect.provide(layer))
    }), 60_000)
})
