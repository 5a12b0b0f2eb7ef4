/**
 * The "seed 1381" interleaving on every path that writes a ready marker and then CASes a task to
 * pending (a worker's settle was fixed in 4453cac; test/worker/SettleMarkers.test.ts): the writer
 * stalls between its marker PUT and its CAS past the end of the marker's minute; a sweeper that
 * reads the task in between (before the CAS, so the task as read does not need that marker) finds
 * the marker in a closed bucket and deletes it for good (Markers.isDeletable); the CAS then lands
 * and leaves a pending task no worker finds without a full sweep. Each path now moves such a task to
 * a fresh marker once its CAS answered (NewTask.refreshClosedMarker).
 *
 * The sweeper's step is played by hand with the sweeper's own rule (isDeletable on the task as
 * read), at the one instant that matters. MemoryStorage + TestClock; the CAS is held back with a
 * scripted delay, as a paused process or a slow request would. Time starts at 0 (bucket 0 is the
 * first minute).
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, DateTime, Duration, Effect, Fiber, Option, Ref, TestClock } from "effect"
import { isDeletable, neededMarker, ownerOf } from "../../src/domain/Markers.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import { settle } from "../../src/programs/worker/Settle.js"
import { keyOfTask, readTask } from "../../src/protocol/TaskObjects.js"
import type { Task } from "../../src/domain/Task.js"
import { faultyMemory } from "../support/faultyMemory.js"

const setup = Effect.gen(function*() {
  const store = yield* faultyMemory()
  const { injector, mem, on, queue } = store
  /** Holds the next CAS of `task` back for `delay` (a paused writer between its marker and its CAS). */
  const holdCas = (task: Task, delay: Duration.DurationInput) =>
    injector.addRule({ operation: ["put"], key: keyOfTask(task), condition: "ifMatch", fault: Fault.delay(delay), times: 1 })
  /**
   * A sweeper's step: it reads the task now, then judges every ready marker of it by the
   * sweeper's rule on the task as read, and deletes those it may.
   */
  const sweep = (task: Task) =>
    Effect.gen(function*() {
      const asRead = Option.getOrThrow(yield* on(readTask(keyOfTask(task)))).task
      const readAt = yield* Clock.currentTimeMillis
      const listed = yield* mem.list(`ready/${task.shard}/`)
      const deleted: Array<string> = []
      for (const object of listed.objects) {
        if (!object.key.endsWith(task.id)) continue
        const marker = { key: object.key, lastModifiedMillis: DateTime.toEpochMillis(object.lastModified) }
        if (isDeletable(marker, ownerOf(asRead), readAt)) {
          yield* mem.delete(object.key)
          deleted.push(object.key)
        }
      }
      return { asRead, deleted }
    })
  /** The task is pending, has the marker it needs, and discovery lists it once due. */
  const expectFindable = (taskId: string) =>
    Effect.gen(function*() {
      const stored = Option.getOrThrow(yield* queue.get(taskId))
      expect(stored.status).toBe("pending")
      expect(Option.isSome(yield* mem.head(neededMarker(stored)!)), `marker ${neededMarker(stored)}`).toBe(true)
      yield* TestClock.adjust("1 minute")
      expect((yield* queue.listReady({ limit: 10 })).map((e) => e.taskId)).toEqual([taskId])
    })
  return { ...store, holdCas, sweep, expectFindable }
})

describe("a CAS to pending that lands after its ready marker's minute closed keeps the task findable", () => {
  it.scoped("Queue.replay", () =>
    Effect.gen(function*() {
      const { expectFindable, holdCas, queue, sweep } = yield* setup
      const task = yield* queue.submit("job", {})
      yield* queue.cancel(task.id)
      // the replay writes its marker at 115 s (minute 1, which ends at 120 s) and stalls 15 s before its CAS
      yield* TestClock.adjust("115 seconds")
      yield* holdCas(task, "15 seconds")
      const replaying = yield* Effect.fork(queue.replay(task.id))
      yield* TestClock.adjust("11 seconds")
      // at 126 s a sweeper reads the task (still cancelled) and finds that marker's minute closed
      const { asRead, deleted } = yield* sweep(task)
      expect(asRead.status).toBe("cancelled")
      expect(deleted).toHaveLength(1)
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(replaying)
      yield* expectFindable(task.id)
    }))

  it.scoped("lease recovery's retry (LeaseManager.recoverExpired)", () =>
    Effect.gen(function*() {
      const { claim, expectFindable, holdCas, lm, mem, on, queue, sweep } = yield* setup
      const task = yield* queue.submit("job", {}, { timeoutSeconds: 30, retryPolicy: { initialIntervalMs: 1000, jitterPercent: 0 } })
      // a worker claims it at 0 s (lease marker, CAS, ready marker deleted) and dies: the lease ends at 30 s
      yield* claim(task.id)
      yield* mem.delete(readyMarkerKey(task))
      // recovery at 110 s writes the retry's ready marker (due at 111 s: minute 1) and stalls 20 s before its CAS
      yield* TestClock.adjust("110 seconds")
      yield* holdCas(task, "20 seconds")
      const recovering = yield* Effect.fork(on(lm.recoverExpired()))
      yield* TestClock.adjust("17 seconds")
      const { asRead, deleted } = yield* sweep(task)
      expect(asRead.status).toBe("running")
      expect(deleted).toHaveLength(1)
      yield* TestClock.adjust("5 seconds")
      expect((yield* Fiber.join(recovering)).retried).toBe(1)
      yield* expectFindable(task.id)
    }))

  it.scoped("a flow's parent released by its last child's end (Flows.notifyParent)", () =>
    Effect.gen(function*() {
      const { claim, expectFindable, holdCas, mem, on, queue, sweep } = yield* setup
      const flow = yield* queue.flow({ type: "parent", input: {}, children: [{ type: "child", input: {} }] })
      const childId = flow.children[0]!.id
      // a worker claims the child at 115 s and completes it at once; telling the parent writes its
      // ready marker (minute 1, which ends at 120 s) and stalls 15 s before the parent's CAS
      yield* TestClock.adjust("115 seconds")
      const child = Option.getOrThrow(yield* queue.get(childId))
      const held = yield* Ref.make(yield* claim(childId))
      yield* mem.delete(readyMarkerKey(child))
      yield* holdCas(flow.task, "15 seconds")
      const settling = yield* Effect.fork(on(settle(held, "w1-lease", { _tag: "Complete", output: {} })))
      yield* TestClock.adjust("11 seconds")
      // at 126 s a sweeper reads the parent (still waiting) and finds that marker's minute closed
      const { asRead, deleted } = yield* sweep(flow.task)
      expect(asRead.status).toBe("pending")
      expect(asRead.flow?.releasedAt).toBeUndefined()
      expect(deleted).toHaveLength(1)
      yield* TestClock.adjust("5 seconds")
      expect((yield* Fiber.join(settling))._tag).toBe("Settled")
      yield* expectFindable(flow.task.id)
    }))
})
