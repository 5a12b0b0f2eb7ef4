/**
 * A create-only PUT (If-None-Match: *) whose answer was lost and which did not land: nothing was
 * written, so it is not a lost race. Taking it for one ("the id exists") dropped the write: a
 * handler's follow-up or a flow's child counted as created and never existed, and a submit failed
 * as if its id were taken. Sending the create again is safe (If-None-Match still guards it); if it
 * keeps not landing the write is StorageUnavailable, a transient error the caller retries.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { followUpId } from "../../src/domain/FollowUps.js"
import { taskKey } from "../../src/domain/Keys.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault, FaultInjector } from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { drive, hasStatus } from "../worker/support.js"

const env = Layer.provideMerge(
  Layer.merge(QueueLayer.layer(), layerWorkerServices()),
  Layer.provideMerge(ServerClockLayer.layer, FaultyStorage.layer().pipe(Layer.provideMerge(MemoryStorage.layer())))
)

const tasksCreate = { operation: "put", key: /^tasks\//, condition: "ifNoneMatch", timing: "before", fault: Fault.outcomeUnknown } as const

describe("An ambiguous create that did not land", () => {
  it.scoped("submit: sent again, the task exists and is the one returned", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const injector = yield* FaultInjector
      yield* injector.addRule(tasksCreate)
      const task = yield* queue.submit("job", { n: 1 })
      const stored = yield* injector.underlying.get(taskKey(task.shard, task.id))
      expect(Option.isSome(stored)).toBe(true)
      expect((yield* injector.injected).map((f) => [f.kind, f.landed])).toEqual([["OutcomeUnknown", false]])
    }).pipe(Effect.provide(env)))

  it.scoped("submit: a create that never lands is StorageUnavailable, never 'the id exists'", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const injector = yield* FaultInjector
      yield* injector.addRule({ ...tasksCreate, times: Infinity })
      const error = yield* Effect.flip(queue.submit("job", { n: 1 }))
      expect(error._tag).toBe("StorageUnavailable")
      expect(error.message).toMatch(/did not land/)
    }).pipe(Effect.provide(env)))

  it.scoped("a handler's follow-up whose create was ambiguous and did not land still exists", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const injector = yield* FaultInjector
      const parent = yield* queue.submit("parent", {})
      const child = followUpId(parent.id, 0)
      yield* injector.addRule({ ...tasksCreate, key: new RegExp(`${child}\\.json$`) })
      yield* Worker.make({ wakeUp: false }, [
        Worker.handler("parent", (_input, ctx) => Effect.as(ctx.enqueue("child", { from: parent.id }), "done")),
        Worker.handler("child", () => Effect.succeed("ok"))
      ]).pipe(Effect.forkScoped)
      yield* drive(hasStatus(parent.id, "completed"))
      expect((yield* injector.injected).filter((f) => f.kind === "OutcomeUnknown").length).toBe(1)
      yield* drive(Effect.map(queue.get(child), Option.isSome))
      yield* drive(hasStatus(child, "completed"))
    }).pipe(Effect.provide(env)))
})
