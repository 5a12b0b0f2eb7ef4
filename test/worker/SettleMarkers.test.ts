/**
 * Settling never deletes a lease marker that a newer claim may have written at the same key
 * (issue 15 fix 6): a marker in a still-open minute bucket is left for lease recovery, which
 * deletes it only once the bucket is closed. And a settle back to pending whose CAS lands after its
 * ready marker's minute closed moves the task to a fresh marker (a sweeper may delete the old one).
 * MemoryStorage + TestClock; a scripted delay holds the DELETE back, as a slow request or a
 * paused process would.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, DateTime, Effect, Fiber, Option, Ref, TestClock } from "effect"
import { Fault } from "../../src/layers/FaultyStorage.js"
import { isDeletable, leaseMarkerOf, neededMarker, ownerOf } from "../../src/domain/Markers.js"
import { readyMarkerKeyFor } from "../../src/domain/ReadyIndex.js"
import { settle } from "../../src/programs/worker/Settle.js"
import { keyOfTask, readTask } from "../../src/protocol/TaskObjects.js"
import { faultyMemory } from "../support/faultyMemory.js"

const setup = faultyMemory()

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

describe("a settle whose CAS lands late keeps its pending task findable", () => {
  // seed 1381 of the simulation: the settle's ready marker is written in the last seconds of its
  // minute and its CAS lands after that minute closed; a sweeper that read the task (still running)
  // in between finds the marker in a closed bucket, not needed by the task as read, and deletes it.
  it.scoped("a settle whose CAS lands after its ready marker's bucket closed moves the task to a fresh marker", () =>
    Effect.gen(function*() {
      const { claim, injector, mem, on, queue } = yield* setup
      const task = yield* queue.submit("job", {}, { timeoutSeconds: 300 })
      const w1 = yield* claim(task.id, "w1")
      yield* TestClock.adjust("55 seconds")
      // the CAS of the settle is held up 15 s (a paused worker, a slow request)
      yield* injector.addRule({ operation: ["put"], key: keyOfTask(task), fault: Fault.delay("15 seconds"), times: 1 })
      const held = yield* Ref.make(w1)
      const settling = yield* Effect.fork(on(settle(held, "w1-lease", { _tag: "Release", reason: "shutdown" })))
      yield* TestClock.adjust("11 seconds")
      // a sweeper reads the task (still running), then lists the ready marker the settle wrote
      const asRead = Option.getOrThrow(yield* on(readTask(keyOfTask(task)))).task
      expect(asRead.status).toBe("running")
      const marker = readyMarkerKeyFor(task.shard, task.id, DateTime.unsafeMake(55_000), task.priority)
      const listed = Option.getOrThrow(yield* mem.head(marker))
      const readAt = yield* Clock.currentTimeMillis
      if (isDeletable({ key: marker, lastModifiedMillis: DateTime.toEpochMillis(listed.lastModified) }, ownerOf(asRead), readAt)) {
        yield* mem.delete(marker)
      }
      yield* TestClock.adjust("5 seconds")
      const settled = yield* Fiber.join(settling)
      expect(settled._tag).toBe("Settled")
      // the pending task has the marker it needs, and workers find it
      const stored = Option.getOrThrow(yield* queue.get(task.id))
      expect(stored.status).toBe("pending")
      expect(Option.isSome(yield* mem.head(neededMarker(stored)!))).toBe(true)
      expect((yield* queue.listReady({ limit: 10 })).map((e) => e.taskId)).toEqual([task.id])
    }))
})
