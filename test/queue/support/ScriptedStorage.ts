/**
 * A Storage wrapper for queue tests: counts writes by kind and fails scripted requests, so a test
 * can assert "zero writes" or kill a submit between two of its writes.
 *
 * @module
 */
import { Deferred, Effect, Ref } from "effect"
import { StorageUnavailable } from "../../../src/domain/StorageError.js"
import type { StorageService } from "../../../src/services/Storage.js"

/** One scripted fault: the next `times` PUTs whose key matches fail with StorageUnavailable (nothing written). */
export interface PutFault {
  readonly match: (key: string) => boolean
  readonly times: number
}

/** What the wrapper exposes besides the port. */
export interface ScriptedControl {
  readonly writes: Effect.Effect<ReadonlyArray<string>>
  readonly failPuts: (fault: PutFault) => Effect.Effect<void>
  /** The next PUT whose key matches never returns (nothing written); the Deferred completes when it is reached. */
  readonly hangPuts: (match: (key: string) => boolean) => Effect.Effect<Deferred.Deferred<void>>
}

/** Wraps a storage service. */
export const wrap = (inner: StorageService) =>
  Effect.gen(function*() {
    const writes = yield* Ref.make<ReadonlyArray<string>>([])
    const faults = yield* Ref.make<ReadonlyArray<{ match: (key: string) => boolean; left: number }>>([])
    const hangs = yield* Ref.make<ReadonlyArray<{ match: (key: string) => boolean; reached: Deferred.Deferred<void> }>>([])
    const record = (what: string) => Ref.update(writes, (w) => [...w, what])
    // Yield a varying (seeded, reproducible) number of times before every request so that
    // concurrent fibers interleave between requests in many orders, as they do against a real
    // server (MemoryStorage itself runs each request in one synchronous step).
    let seed = 42
    const jitter = Effect.suspend(() => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return Effect.repeatN(Effect.yieldNow(), (seed >> 8) % 8)
    })
    const service: StorageService = {
      ...inner,
      get: (key) => Effect.zipRight(jitter, inner.get(key)),
      head: (key) => Effect.zipRight(jitter, inner.head(key)),
      put: (key, body, condition) =>
        Effect.gen(function*() {
          yield* jitter
          const hit = yield* Ref.modify(faults, (fs) => {
            const i = fs.findIndex((f) => f.left > 0 && f.match(key))
            if (i < 0) return [false, fs] as const
            return [true, fs.map((f, j) => (j === i ? { ...f, left: f.left - 1 } : f))] as const
          })
          const hang = yield* Ref.modify(hangs, (hs) => {
            const i = hs.findIndex((h) => h.match(key))
            return i < 0 ? [undefined, hs] as const : [hs[i], hs.filter((_, j) => j !== i)] as const
          })
          if (hang !== undefined) {
            yield* Deferred.succeed(hang.reached, undefined)
            return yield* Effect.never
          }
          if (hit) return yield* new StorageUnavailable({ operation: "PutObject", key, message: `scripted fault on ${key}` })
          yield* record(`PUT ${key}`)
          return yield* inner.put(key, body, condition)
        }),
      delete: (key) => record(`DELETE ${key}`).pipe(Effect.zipRight(inner.delete(key))),
      deleteIfMatch: (key, etag) => record(`DELETE ${key} If-Match`).pipe(Effect.zipRight(inner.deleteIfMatch(key, etag))),
      deleteMany: (keys) => record(`DELETE ${keys.join(",")}`).pipe(Effect.zipRight(inner.deleteMany(keys)))
    }
    const control: ScriptedControl = {
      writes: Ref.get(writes),
      failPuts: (fault) => Ref.update(faults, (fs) => [...fs, { match: fault.match, left: fault.times }]),
      hangPuts: (match) =>
        Effect.tap(Deferred.make<void>(), (reached) => Ref.update(hangs, (hs) => [...hs, { match, reached }]))
    }
    return { service, control }
  })
