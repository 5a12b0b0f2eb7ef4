/**
 * The S3 requests of a flow (issue 18: "write down the S3 requests per step"), counted with
 * CountingStorage on MemoryStorage and held to upper bounds: creating a flow, what a child's end
 * costs on top of an ordinary completion (telling its parent; the last one releases it), and the
 * parent's read of its children's results. The table is in BENCHMARKS.md "Flows".
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Ref } from "effect"
import { flowNode } from "../../src/domain/FlowRequest.js"
import { leaseMarkerOf } from "../../src/domain/Markers.js"
import * as Tr from "../../src/domain/Transitions.js"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { settle } from "../../src/programs/worker/Settle.js"
import { readChildren } from "../../src/protocol/Flows.js"
import { casTask, keyOfTaskId, readTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import type { RequestCounts } from "../../src/services/RequestCounter.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"

const kinds = (c: RequestCounts) => ({ GET: c.GET, HEAD: c.HEAD, PUT: c.PUT, LIST: c.LIST, DELETE: c.DELETE })

const setup = Effect.gen(function*() {
  const mem = yield* MemoryStorage.make()
  const { counter, storage } = yield* CountingStorage.make(mem)
  const clock = ServerClockLayer.fromLocalClock(yield* Effect.clock)
  const on = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    self.pipe(Effect.provideService(Storage, storage), Effect.provideService(ServerClock, clock))
  const queue = yield* on(QueueLayer.make())
  /** Runs `self` and returns what it cost. */
  const cost = <A, E>(self: Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      yield* counter.reset
      const a = yield* self
      return { a, counts: kinds(yield* counter.take) }
    })
  /** Claims a task as a worker does (not counted), then completes it as the worker does (counted). */
  const claimAndComplete = (id: string) =>
    Effect.gen(function*() {
      const held = yield* on(Effect.gen(function*() {
        const found = Option.getOrThrow(yield* readTask(keyOfTaskId(id, 1)))
        const next = Tr.claim(found.task, { now: yield* clock.now, workerId: "w", leaseId: "l" })
        yield* writeMarker(leaseMarkerOf(next)!)
        return { task: next, etag: yield* casTask(next, found.etag) }
      }))
      const ref = yield* Ref.make(held)
      return yield* cost(on(settle(ref, "l", { _tag: "Complete", output: { id } })))
    })
  return { queue, on, cost, claimAndComplete }
})

describe("S3 requests of a flow", () => {
  it.scoped("creation, each child's end, the release, the parent's read: within the bounds of BENCHMARKS.md", () =>
    Effect.gen(function*() {
      const { claimAndComplete, cost, on, queue } = yield* setup
      const n = 3
      const created = yield* cost(queue.flow(flowNode("parent", {}, { children: Array.from({ length: n }, (_, i) => flowNode("child", { i })) })))
      // the type's published schema (a GET, cached, as a submit's); root: recovery marker + create;
      // each child: ready marker + create; one CAS dropping the outbox; the wake-up touch
      expect(created.counts).toEqual({ GET: 1, HEAD: 0, PUT: 2 + 2 * n + 1 + 1, LIST: 0, DELETE: 0 })

      // an ordinary task's completion, for comparison
      const plain = yield* queue.submit("child", {})
      const ordinary = (yield* claimAndComplete(plain.id)).counts
      expect(ordinary).toEqual({ GET: 0, HEAD: 0, PUT: 1, LIST: 0, DELETE: 0 })

      const ids = created.a.children.map((c) => c.id)
      const ends = []
      for (const id of ids) ends.push((yield* claimAndComplete(id)).counts)
      // a child that is not the last: + GET and CAS of the parent, + the CAS stamping notified_at
      expect(ends[0]).toEqual({ GET: 1, HEAD: 0, PUT: 3, LIST: 0, DELETE: 0 })
      expect(ends[1]).toEqual({ GET: 1, HEAD: 0, PUT: 3, LIST: 0, DELETE: 0 })
      // the last: also the parent's ready marker, written before the CAS that makes it due
      expect(ends[2]).toEqual({ GET: 1, HEAD: 0, PUT: 4, LIST: 0, DELETE: 0 })

      const parent = Option.getOrThrow(yield* queue.get(created.a.id))
      expect(parent.flow?.releasedAt).toBeDefined()
      const read = yield* cost(on(readChildren(parent)))
      expect(read.a.map((c) => c.status)).toEqual(["completed", "completed", "completed"])
      expect(read.counts).toEqual({ GET: n, HEAD: 0, PUT: 0, LIST: 0, DELETE: 0 })
    }))
})
