/**
 * A starting worker writes its registration once: the heartbeat loop's first beat waits its
 * interval instead of repeating the PUT the registration just made (TestClock + MemoryStorage).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref, TestClock } from "effect"
import { workersPrefix } from "../../src/domain/Keys.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as Worker from "../../src/programs/Worker.js"
import { Storage } from "../../src/services/Storage.js"
import { queueLayer } from "./support.js"

/** MemoryStorage counting the PUTs of worker records. */
const countingRecordPuts = (count: Ref.Ref<number>) =>
  Layer.effect(
    Storage,
    Effect.map(MemoryStorage.make(), (s) => ({
      ...s,
      put: (key, body, condition) =>
        key.startsWith(workersPrefix) ? Effect.zipRight(Ref.update(count, (n) => n + 1), s.put(key, body, condition)) : s.put(key, body, condition)
    }))
  )

describe("worker registration", () => {
  it.scoped("the first heartbeat does not repeat the registration PUT; the next comes after the idle interval", () => {
    const count = Ref.unsafeMake(0)
    return Effect.gen(function*() {
      yield* Worker.make({ heartbeat: { idle: "60 seconds" }, monitor: false }, [Worker.handler("job", () => Effect.succeed("ok"))])
      yield* TestClock.adjust("30 seconds")
      expect(yield* Ref.get(count)).toBe(1)
      yield* TestClock.adjust("35 seconds")
      expect(yield* Ref.get(count)).toBe(2)
    }).pipe(Effect.provide(queueLayer(countingRecordPuts(count))))
  })
})
