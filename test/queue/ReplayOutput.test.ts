/**
 * Replay and the finished run's offloaded output (issue 15 fix 11): the old `output.json` goes
 * before the replay's CAS, never after it, where it could erase the output of the new run.
 * MemoryStorage + TestClock; a scripted delay holds the replay's DELETE back.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, TestClock } from "effect"
import { payloadKey } from "../../src/domain/Keys.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"

describe("Queue.replay and offloaded output", () => {
  it.scoped("a slow delete of the old output never removes the output the replayed run wrote", () =>
    Effect.gen(function*() {
      const mem = yield* MemoryStorage.make()
      const { injector, storage } = yield* FaultyStorage.make(mem)
      const clock = ServerClockLayer.fromLocalClock(yield* Effect.clock)
      const queue = yield* QueueLayer.make().pipe(Effect.provideService(Storage, storage), Effect.provideService(ServerClock, clock))
      const task = yield* queue.submit("job", {})
      yield* queue.cancel(task.id)
      const output = payloadKey(task.id, "output")
      yield* mem.put(output, new TextEncoder().encode(JSON.stringify({ run: 1 })))
      yield* injector.addRule({ operation: ["delete", "deleteMany"], key: output, fault: Fault.delay("10 seconds") })
      const replaying = yield* Effect.fork(queue.replay(task.id))
      // The new run: as soon as the task is pending again, a worker may run it and offload its output.
      for (let s = 0; s < 30; s++) {
        yield* TestClock.adjust("1 second")
        if (Option.getOrThrow(yield* queue.get(task.id)).status === "pending") break
      }
      yield* mem.put(output, new TextEncoder().encode(JSON.stringify({ run: 2 })))
      yield* TestClock.adjust("1 minute")
      expect((yield* Fiber.join(replaying)).status).toBe("pending")
      const stored = yield* mem.get(output)
      expect(Option.map(stored, (o) => JSON.parse(new TextDecoder().decode(o.body)))).toEqual(Option.some({ run: 2 }))
    }))
})
