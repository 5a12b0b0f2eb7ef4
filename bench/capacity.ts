/**
 * The server's raw capacity at 32-way concurrency, measured in the same run as the queue: plain
 * PUT, CAS PUT (If-Match on an object each fiber owns, so every write wins), GET and LIST of 1,000
 * keys — through the same S3Storage layer the queue uses. Each kind runs for a bounded time and
 * a bounded count, then stops.
 *
 * @module
 */
import { Clock, Effect, Option } from "effect"
import { utf8 } from "../src/domain/Codec.js"
import { Storage } from "../src/services/Storage.js"
import { log, round } from "./lib/env.js"
import { storageLayer, wipe } from "./lib/stack.js"
import type { Backend } from "./lib/stack.js"

export interface CapacityResult {
  readonly concurrency: number
  readonly seconds: number
  readonly putPerSec: number
  readonly casPutPerSec: number
  readonly getPerSec: number
  readonly list1000PerSec: number
  readonly errors: number
}

const CONCURRENCY = 32
const MAX_OPS = 200_000

/** Runs `op(fiber, i)` from 32 fibers until `seconds` have passed (or MAX_OPS); returns ops/s. */
const measure = (seconds: number, op: (fiber: number, i: number) => Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const end = start + seconds * 1000
    let done = 0
    let errors = 0
    yield* Effect.forEach(
      Array.from({ length: CONCURRENCY }, (_, f) => f),
      (f) =>
        Effect.gen(function*() {
          for (let i = 0; done + errors < MAX_OPS; i++) {
            if ((yield* Clock.currentTimeMillis) >= end) return
            if (yield* op(f, i)) done++
            else errors++
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    const elapsed = ((yield* Clock.currentTimeMillis) - start) / 1000
    return { perSec: done / elapsed, errors }
  })

export const runCapacity = (backend: Backend, seconds: number): Promise<CapacityResult> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const storage = yield* Storage
      const body = utf8(JSON.stringify({ pad: "x".repeat(600) })) // about a task's size
      const ok = <A, E>(e: Effect.Effect<A, E>) => Effect.match(e, { onFailure: () => false, onSuccess: () => true })

      // warm-up: connections, JIT, the SDK's first-call costs (not measured)
      yield* measure(1, (f, i) => ok(storage.put(`cap/warm/${f}/${i}`, body)))
      log(`capacity: PUT for ${seconds} s at ${CONCURRENCY}-way`)
      const written = Array.from({ length: CONCURRENCY }, () => 0)
      const put = yield* measure(seconds, (f, i) =>
        storage.put(`cap/put/${f}/${i}`, body).pipe(
          Effect.match({
            onFailure: () => false,
            onSuccess: () => {
              written[f] = Math.max(written[f]!, i + 1)
              return true
            }
          })
        ))

      log("capacity: CAS PUT")
      const etags = yield* Effect.forEach(
        Array.from({ length: CONCURRENCY }, (_, f) => f),
        (f) => storage.put(`cap/cas/${f}`, body, { ifNoneMatch: "*" }).pipe(Effect.orDie)
      )
      const cas = yield* measure(seconds, (f) =>
        storage.put(`cap/cas/${f}`, body, { ifMatch: etags[f]! }).pipe(
          Effect.match({
            onFailure: () => false,
            onSuccess: (etag) => {
              etags[f] = etag
              return true
            }
          })
        ))

      log("capacity: GET")
      const get = yield* measure(seconds, (f, i) =>
        storage.get(`cap/put/${f}/${i % Math.max(1, Math.min(50, written[f]!))}`).pipe(Effect.match({ onFailure: () => false, onSuccess: Option.isSome })))

      log("capacity: LIST-1000")
      // at least 1,000 keys under cap/put/ (the PUT phase wrote them; top up if it was short)
      const listed = yield* storage.list("cap/put/", { maxKeys: 1000 }).pipe(Effect.orDie)
      if (listed.objects.length < 1000) {
        yield* Effect.forEach(Array.from({ length: 1000 }, (_, i) => i), (i) => storage.put(`cap/put/fill/${i}`, body), {
          concurrency: CONCURRENCY,
          discard: true
        }).pipe(Effect.orDie)
      }
      const list = yield* measure(seconds, () => ok(storage.list("cap/put/", { maxKeys: 1000 })))
      const removed = yield* wipe
      log(`capacity: done (wiped ${removed} objects)`)
      return {
        concurrency: CONCURRENCY,
        seconds,
        putPerSec: round(put.perSec),
        casPutPerSec: round(cas.perSec),
        getPerSec: round(get.perSec),
        list1000PerSec: round(list.perSec),
        errors: put.errors + cas.errors + get.errors + list.errors
      } satisfies CapacityResult
    }).pipe(Effect.scoped, Effect.provide(storageLayer(backend, 64)))
  )
