/**
 * One corrupt `control/pause.json` must not stop the whole queue (issue 15 fix 12): a worker goes
 * on with the switches it last read (nothing paused if it never read any), warns once naming the
 * key and the repair; `pause`/`resume` name the key and the repair instead of failing blindly.
 * MemoryStorage + TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Ref } from "effect"
import { utf8 } from "../../src/domain/Codec.js"
import { pauseKey } from "../../src/domain/Pause.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, hasStatus, queueLayer } from "../worker/support.js"

const collectWarnings = (into: Ref.Ref<Array<string>>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") Effect.runSync(Ref.update(into, (w) => [...w, String(message)]))
    })
  )

describe("a corrupt control/pause.json", () => {
  it.scoped("a worker that never read good switches runs tasks, warning once with the key and the repair", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const warnings = yield* Ref.make<Array<string>>([])
      yield* storage.put(pauseKey, utf8("garbage"))
      const tasks = yield* Effect.forEach([1, 2, 3], (n) => queue.submit("job", { n }))
      yield* Worker.make({ wakeUp: false }, [Worker.handler("job", () => Effect.succeed("ok"))]).pipe(
        Effect.provide(collectWarnings(warnings))
      )
      for (const t of tasks) yield* drive(hasStatus(t.id, "completed"))
      const about = (yield* Ref.get(warnings)).filter((w) => w.includes(pauseKey))
      expect(about).toHaveLength(1)
      expect(about[0]).toContain(`buquet repair ${pauseKey}`)
    }).pipe(Effect.provide(queueLayer())))

  it.scoped("a worker that read good switches keeps them: the paused type waits, the others run", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      yield* queue.pause("slow")
      const worker = yield* Worker.make({ wakeUp: false }, [
        Worker.handler("slow", () => Effect.succeed("ok")),
        Worker.handler("fast", () => Effect.succeed("ok"))
      ])
      const first = yield* queue.submit("fast", {})
      yield* drive(hasStatus(first.id, "completed"))
      yield* storage.put(pauseKey, utf8("{\"global\": \"maybe\"}"))
      const slow = yield* queue.submit("slow", {})
      const fast = yield* queue.submit("fast", {})
      yield* drive(hasStatus(fast.id, "completed"))
      const passes = (yield* worker.stats).passes
      yield* drive(Effect.map(worker.stats, (s) => s.passes > passes + 3))
      expect(yield* hasStatus(slow.id, "pending")).toBe(true)
    }).pipe(Effect.provide(queueLayer())))

  it.effect("pause and resume fail with the key and the repair", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      yield* storage.put(pauseKey, utf8("garbage"))
      for (const op of [queue.pause(), queue.resume("job")]) {
        const error = yield* Effect.flip(op)
        expect(error._tag).toBe("MalformedObject")
        expect(error.message).toContain(pauseKey)
        expect(error.message).toContain(`buquet repair ${pauseKey}`)
      }
    }).pipe(Effect.provide(queueLayer())))
})
