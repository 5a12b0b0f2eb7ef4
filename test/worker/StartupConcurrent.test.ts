/**
 * A starting worker's first requests (the cancel-signal HEAD, the registration PUT, the wake-up
 * prime HEAD) are independent and go out together: with the registration PUT and the cancel HEAD
 * held, all three are sent; and nothing is claimed (no LIST of `ready/`) before the registration is written.
 * (One round trip instead of three before the first LIST: at S3's 20–50 ms, 40–100 ms per start.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, TestClock } from "effect"
import { cancelSignalKey, workersPrefix } from "../../src/domain/Keys.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as Worker from "../../src/programs/Worker.js"
import { wakeUpKey } from "../../src/protocol/WakeUp.js"
import { Storage } from "../../src/services/Storage.js"
import { queueLayer } from "./support.js"

/** MemoryStorage recording requests ("HEAD key", "PUT key", "LIST prefix"), holding worker-record PUTs and cancel-signal HEADs until `gate`. */
const gatedStorage = (log: Array<string>, gate: Deferred.Deferred<void>) =>
  Layer.effect(
    Storage,
    Effect.map(MemoryStorage.make(), (s) => ({
      ...s,
      head: (key) =>
        Effect.zipRight(
          Effect.sync(() => log.push(`HEAD ${key}`)),
          key.startsWith("control/cancel/") ? Effect.zipRight(Deferred.await(gate), s.head(key)) : s.head(key)
        ),
      put: (key, body, condition) =>
        Effect.zipRight(
          Effect.sync(() => log.push(`PUT ${key}`)),
          key.startsWith(workersPrefix) ? Effect.zipRight(Deferred.await(gate), s.put(key, body, condition)) : s.put(key, body, condition)
        ),
      list: (prefix, options) => Effect.zipRight(Effect.sync(() => log.push(`LIST ${prefix}`)), s.list(prefix, options))
    }))
  )

describe("worker start-up", () => {
  it.scoped("sends the cancel HEAD, the registration PUT and the wake-up prime together, and lists ready/ only once registered", () => {
    const log: Array<string> = []
    const gate = Deferred.unsafeMake<void>(undefined as never)
    return Effect.gen(function*() {
      const id = "w-startup"
      const starting = yield* Effect.fork(Worker.make({ id, monitor: false }, [Worker.handler("job", () => Effect.succeed("ok"))]))
      yield* TestClock.adjust("10 millis")
      const held = [...log]
      expect(held.some((r) => r.startsWith(`PUT ${workersPrefix}`))).toBe(true)
      expect(held).toContain(`HEAD ${cancelSignalKey(id)}`)
      expect(held).toContain(`HEAD ${wakeUpKey}`)
      expect(held.some((r) => r.startsWith("LIST ready/"))).toBe(false)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(starting)
      yield* TestClock.adjust("10 millis")
      expect(log.some((r) => r.startsWith("LIST ready/"))).toBe(true)
    }).pipe(Effect.provide(queueLayer(gatedStorage(log, gate))))
  })
})
