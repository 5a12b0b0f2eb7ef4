/**
 * Settling never deletes a lease marker that a newer claim may have written at the same key
 * (issue 15 fix 6): a marker in a still-open minute bucket is left for lease recovery, which
 * deletes it only once the bucket is closed.
 * MemoryStorage + TestClock; a scripted delay holds the DELETE back, as a slow request or a
 * paused process would.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, Ref, TestClock } from "effect"
import * as Tr from "../../src/domain/Transitions.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import * as LeaseManagerLayer from "../../src/layers/LeaseManager.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { leaseMarkerOf } from "../../src/domain/Markers.js"
import { settle } from "../../src/programs/worker/Settle.js"
import { casTask, keyOfTask, readTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"

const setup = Effect.gen(function*() {
  const mem = yield* MemoryStorage.make()
  const { injector, storage } = yield* FaultyStorage.make(mem)
  const clock = ServerClockLayer.fromLocalClock(yield* Effect.clock)
  const on = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    self.pipe(Effect.provideService(Storage, storage), Effect.provideService(ServerClock, clock))
  const queue = yield* on(QueueLayer.make())
  const lm = yield* on(LeaseManagerLayer.make)
  /** A claim as the worker makes it: lease marker, then CAS to running. */
  const claim = (taskId: string, workerId: string) =>
    on(Effect.gen(function*() {
      const found = Option.getOrThrow(yield* readTask(keyOfTask(Option.getOrThrow(yield* queue.get(taskId)))))
      const next = Tr.claim(found.task, { now: yield* clock.now, workerId, leaseId: `${workerId}-lease` })
      yield* writeMarker(leaseMarkerOf(next)!)
      const etag = yield* casTask(next, found.etag)
      return { task: next, etag }
    }))
  return { mem, injector, queue, lm, claim, on }
})

describe("markers in an open bucket are left alone", () => {
  it.scoped("a delayed lease-marker DELETE of a settle does not remove the marker of the claim that followed", () =>
    Effect.gen(function*() {
      const { claim, injector, lm, mem, on, queue } = yield* setup
      const task = yield* queue.submit("job", {}, { timeoutSeconds: 30 })
      const w1 = yield* claim(task.id, "w1")
      const marker = leaseMarkerOf(w1.task)!
      // W1 gives the task back; its DELETE of the lease marker is held up for 10 s.
      yield* injector.addRule({ operation: ["delete", "deleteMany"], key: marker, fault: Fault.delay("10 seconds") })
      const held = yield* Ref.make(w1)
      const settling = yield* Effect.fork(on(settle(held, "w1-lease", { _tag: "Release", reason: "shutdown" })))
      yield* TestClock.adjust("1 second")
      // W2 claims it in the same minute: its lease marker has the same key.
      const w2 = yield* claim(task.id, "w2")
      expect(leaseMarkerOf(w2.task)).toBe(marker)
      yield* TestClock.adjust("10 seconds")
      const settled = yield* Fiber.join(settling)
      expect(settled._tag).toBe("Settled")
      yield* injector.reset
      // W2's marker survives W1's late DELETE…
      expect(Option.isSome(yield* mem.head(marker))).toBe(true)
      // …so when W2 dies without settling, lease recovery finds the task.
      yield* TestClock.adjust("2 minutes")
      const report = yield* on(lm.recoverExpired())
      expect(report.retried).toBe(1)
      expect(Option.map(yield* queue.get(task.id), (t) => t.status)).toEqual(Option.some("pending"))
      // and the old marker is gone once its bucket closed
      expect(Option.isSome(yield* mem.head(marker))).toBe(false)
    }))
})
