/**
 * The store of the crash-window suites (a worker paused between two writes, a DELETE that lands
 * late): MemoryStorage under a FaultyStorage whose rules hold chosen requests back, the ServerClock
 * on the test's own clock (TestClock drives it), and a Queue and a LeaseManager on that faulty view.
 *
 * ```ts
 * const { injector, mem, on, queue, claim } = yield* faultyMemory()
 * ```
 *
 * @module
 */
import { Effect, Option } from "effect"
import { leaseMarkerOf } from "../../src/domain/Markers.js"
import * as Tr from "../../src/domain/Transitions.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import * as LeaseManagerLayer from "../../src/layers/LeaseManager.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { casTask, keyOfTaskId, readTask, writeMarker } from "../../src/protocol/TaskObjects.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"

/**
 * The faulty memory store: `mem` (the store itself, past every rule), `injector` (its fault
 * rules), `on` (runs an effect on the faulty view and the clock), `queue` and `lm` (on that view,
 * shard prefix length 1) and `claim`.
 */
export const faultyMemory = (options?: MemoryStorage.MemoryStorageOptions) =>
  Effect.gen(function*() {
    const mem = yield* MemoryStorage.make(options)
    const { injector, storage } = yield* FaultyStorage.make(mem)
    const clock = ServerClockLayer.fromLocalClock(yield* Effect.clock)
    const on = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<Exclude<R, Storage>, ServerClock>> =>
      self.pipe(Effect.provideService(Storage, storage), Effect.provideService(ServerClock, clock))
    const queue = yield* on(QueueLayer.make())
    const lm = yield* on(LeaseManagerLayer.make)
    /**
     * Claims the pending task `taskId` as a worker does (its lease marker, then the CAS to running,
     * leaving the ready marker for the caller); returns what the worker holds.
     */
    const claim = (taskId: string, workerId = "w1") =>
      on(Effect.gen(function*() {
        const found = Option.getOrThrow(yield* readTask(keyOfTaskId(taskId, 1)))
        const next = Tr.claim(found.task, { now: yield* clock.now, workerId, leaseId: `${workerId}-lease` })
        yield* writeMarker(leaseMarkerOf(next)!)
        return { task: next, etag: yield* casTask(next, found.etag) }
      }))
    return { mem, injector, storage, clock, on, queue, lm, claim }
  })
