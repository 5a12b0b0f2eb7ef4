import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option, TestClock } from "effect"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import { storageConformance } from "./conformance.js"

storageConformance("MemoryStorage", MemoryStorage.layer())
storageConformance("MemoryStorage (versioned)", MemoryStorage.layer({ versioning: true }))
storageConformance("MemoryStorage (no conditional DELETE, like RGW)", MemoryStorage.layer({ conditionalDelete: false }))

describe("MemoryStorage", () => {
  it.effect("lastModified comes from Effect's Clock (TestClock drives it)", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      yield* TestClock.adjust(Duration.minutes(5))
      yield* storage.put("k", new Uint8Array([1]))
      const meta = Option.getOrThrow(yield* storage.head("k"))
      expect(meta.lastModified.epochMillis).toBe(5 * 60_000)
    }))

  it.effect("stored bodies are copies: mutating the caller's buffer changes nothing", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      const body = new Uint8Array([1, 2, 3])
      yield* storage.put("k", body)
      body[0] = 9
      const got = Option.getOrThrow(yield* storage.get("k"))
      expect([...got.body]).toEqual([1, 2, 3])
      got.body[1] = 9
      expect([...Option.getOrThrow(yield* storage.get("k")).body]).toEqual([1, 2, 3])
    }))
})
