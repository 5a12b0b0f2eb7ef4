/**
 * DeleteBatcher: natural batching, no timer. A lone key goes at once as a plain DELETE; the keys
 * asked for while a request is in flight go together in one DeleteObjects when it is answered;
 * each caller is answered with its own request's outcome. MemoryStorage whose DELETEs wait on a gate.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Ref, Scope } from "effect"
import { StorageUnavailable } from "../../src/domain/StorageError.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as DeleteBatcher from "../../src/protocol/DeleteBatcher.js"
import { Storage } from "../../src/services/Storage.js"
import type { StorageService } from "../../src/services/Storage.js"

/** A memory store whose delete/deleteMany log their keys, then wait for `gate` (re-armed by the test), and may fail. */
const gated = Effect.gen(function*() {
  const mem = yield* MemoryStorage.make()
  const requests = yield* Ref.make<ReadonlyArray<ReadonlyArray<string>>>([])
  const gate = yield* Ref.make(yield* Deferred.make<void>())
  const failNext = yield* Ref.make(false)
  const hold = (keys: ReadonlyArray<string>, run: Effect.Effect<void, never>) =>
    Effect.gen(function*() {
      yield* Ref.update(requests, (r) => [...r, keys])
      yield* Deferred.await(yield* Ref.get(gate))
      if (yield* Ref.getAndSet(failNext, false)) {
        return yield* Effect.fail(new StorageUnavailable({ operation: "DeleteObjects", key: keys[0]!, message: "down" }))
      }
      yield* run
    })
  const storage: StorageService = {
    ...mem,
    delete: (key) => hold([key], Effect.orDie(mem.delete(key))),
    deleteMany: (keys) => hold(keys, Effect.orDie(mem.deleteMany(keys)))
  }
  const open = Effect.gen(function*() {
    yield* Deferred.succeed(yield* Ref.get(gate), undefined)
    yield* Ref.set(gate, yield* Deferred.make<void>())
  })
  return { storage, requests, open, failNext }
})

const marker = (i: number) => `ready/0/0000000001/task-${i}`
const waitFor = (check: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if (yield* check) return
      yield* Effect.yieldNow()
    }
    throw new Error("never happened")
  })

describe("DeleteBatcher", () => {
  it.scoped("a lone key is one plain DELETE, sent at once; the keys asked for meanwhile go in ONE DeleteObjects", () =>
    Effect.gen(function*() {
      const { open, requests, storage } = yield* gated
      for (let i = 0; i < 7; i++) yield* storage.put(marker(i), new Uint8Array())
      const batcher = yield* DeleteBatcher.make.pipe(Effect.provideService(Storage, storage))
      const first = yield* Effect.fork(batcher.delete([marker(0)]))
      yield* waitFor(Effect.map(Ref.get(requests), (r) => r.length === 1))
      // six more callers while the first request is in flight: nothing is sent for them yet
      const more = yield* Effect.forEach([1, 2, 3, 4, 5, 6], (i) => Effect.fork(batcher.delete([marker(i), marker(i)])))
      yield* Effect.yieldNow()
      expect(yield* Ref.get(requests)).toEqual([[marker(0)]])
      expect(Option.isNone(yield* Fiber.poll(first))).toBe(true)
      yield* open
      yield* Fiber.join(first)
      yield* waitFor(Effect.map(Ref.get(requests), (r) => r.length === 2))
      expect((yield* Ref.get(requests))[1]).toEqual([1, 2, 3, 4, 5, 6].map(marker))
      for (const f of more) expect(Option.isNone(yield* Fiber.poll(f))).toBe(true)
      yield* open
      for (const f of more) yield* Fiber.join(f)
      for (let i = 0; i < 7; i++) expect(Option.isNone(yield* storage.head(marker(i)))).toBe(true)
      // idle again: the next lone key goes at once, alone
      yield* storage.put(marker(0), new Uint8Array())
      const again = yield* Effect.fork(batcher.delete([marker(0)]))
      yield* waitFor(Effect.map(Ref.get(requests), (r) => r.length === 3))
      expect((yield* Ref.get(requests))[2]).toEqual([marker(0)])
      yield* open
      yield* Fiber.join(again)
    }))

  it.scoped("a failed request fails every caller in it, and only those; an interrupted caller leaves the others answered", () =>
    Effect.gen(function*() {
      const { failNext, open, requests, storage } = yield* gated
      const batcher = yield* DeleteBatcher.make.pipe(Effect.provideService(Storage, storage))
      const first = yield* Effect.fork(batcher.delete([marker(0)]))
      yield* waitFor(Effect.map(Ref.get(requests), (r) => r.length === 1))
      const a = yield* Effect.fork(batcher.delete([marker(1)]))
      const b = yield* Effect.fork(batcher.delete([marker(2)]))
      const quitter = yield* Effect.fork(batcher.delete([marker(3)]))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(quitter)
      yield* open
      yield* Fiber.join(first)
      yield* waitFor(Effect.map(Ref.get(requests), (r) => r.length === 2))
      yield* Ref.set(failNext, true)
      yield* open
      const [ea, eb] = [yield* Fiber.await(a), yield* Fiber.await(b)]
      expect(Exit.isFailure(ea) && Exit.isFailure(eb)).toBe(true)
      // the next caller gets a request of its own, and its success
      const c = yield* Effect.fork(batcher.delete([marker(4)]))
      yield* waitFor(Effect.map(Ref.get(requests), (r) => r.length === 3))
      yield* open
      expect(Exit.isSuccess(yield* Fiber.await(c))).toBe(true)
    }))

  it.scoped("a caller after the batcher's Scope closed sends its own DELETE and is answered, not left waiting", () =>
    Effect.gen(function*() {
      const { open, requests, storage } = yield* gated
      yield* storage.put(marker(0), new Uint8Array())
      yield* storage.put(marker(1), new Uint8Array())
      const scope = yield* Scope.make()
      const batcher = yield* DeleteBatcher.make.pipe(Effect.provideService(Storage, storage), Scope.extend(scope))
      yield* Scope.close(scope, Exit.void)
      yield* open
      const late = yield* Effect.fork(batcher.delete([marker(0), marker(1)]))
      yield* waitFor(Effect.map(Ref.get(requests), (r) => r.length === 1))
      yield* open
      expect(Exit.isSuccess(yield* Fiber.await(late))).toBe(true)
      expect(yield* Ref.get(requests)).toEqual([[marker(0), marker(1)]])
      expect(Option.isNone(yield* storage.head(marker(0)))).toBe(true)
    }))
})
