import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Stream } from "effect"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import { RequestCounter } from "../../src/services/RequestCounter.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import { Storage } from "../../src/services/Storage.js"
import { storageConformance } from "./conformance.js"

const counted = CountingStorage.layer.pipe(Layer.provide(MemoryStorage.layer()))

// The wrapper must not change the semantics of the store it wraps.
storageConformance("CountingStorage over MemoryStorage", counted)

describe("CountingStorage", () => {
  it.effect("counts each request by kind, failed ones included", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const counter = yield* RequestCounter
      const body = new Uint8Array([1])
      const etag = yield* storage.put("a", body, { ifNoneMatch: "*" })
      yield* Effect.either(storage.put("a", body, { ifNoneMatch: "*" })) // a 412 is a request too
      yield* storage.put("a", body, { ifMatch: etag })
      yield* storage.get("a")
      yield* storage.get("missing")
      yield* storage.head("a")
      yield* storage.list("")
      yield* storage.listVersions("a")
      yield* storage.getVersion("a", "v")
      yield* storage.delete("a")
      expect(yield* counter.snapshot).toEqual({
        PUT: 3, GET: 3, HEAD: 1, LIST: 1, "LIST-VERSIONS": 1, DELETE: 1, deletedKeys: 0, total: 10
      })
      yield* counter.reset
      expect((yield* counter.snapshot).total).toBe(0)
    }).pipe(Effect.provide(counted)))

  it.effect("listAll counts one LIST per page; deleteMany one DELETE per 1000 keys", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const counter = yield* RequestCounter
      const keys = Array.from({ length: 2001 }, (_, i) => `k/${String(i).padStart(5, "0")}`)
      yield* Effect.forEach(keys, (k) => storage.put(k, new Uint8Array(0)), { discard: true })
      expect((yield* counter.take).PUT).toBe(2001)
      expect((yield* counter.snapshot).total).toBe(0) // take resets
      const all = yield* Stream.runCollect(storage.listAll("k/"))
      expect(all.length).toBe(2001)
      expect((yield* counter.snapshot).LIST).toBe(3)
      yield* storage.deleteMany(keys)
      yield* storage.deleteMany([])
      const after = yield* counter.snapshot
      expect(after.DELETE).toBe(3)
      expect(after.deletedKeys).toBe(2001)
      expect(after.total).toBe(6)
    }).pipe(Effect.provide(counted)))

  it.effect("a failing request is counted", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const counter = yield* RequestCounter
      const result = yield* Effect.either(storage.put("x", new Uint8Array(0), { ifMatch: "\"nope\"" }))
      expect(Either.isLeft(result)).toBe(true)
      expect((yield* counter.snapshot).PUT).toBe(1)
    }).pipe(Effect.provide(counted)))
})
