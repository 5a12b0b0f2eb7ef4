/**
 * Requests by operation, key family and caller: wraps a Storage and counts each call as
 * `OP family by caller` (family: `tasks`, `ready`, `leases`, `control/<name>`, …; caller: the
 * outermost named span of the calling fiber that says who asked, e.g. `Sweeper.step`,
 * `Worker.discover`, `buquet.settle`). For `bench/cpu.ts` (`BENCH_CPU_KEYS=1`): which requests a
 * task costs and why. Not for CPU figures (it reads the span chain per call).
 *
 * @module
 */
import { Effect, Layer, Option } from "effect"
import type { Tracer } from "effect"
import { listAllFromList, Storage } from "../../src/services/Storage.js"
import type { StorageService } from "../../src/services/Storage.js"

const familyOf = (key: string): string => {
  const parts = key.split("/")
  if (parts[0] === "control" && parts.length > 1) return `control/${parts[1]}`
  return parts[0] ?? key
}

/** The most telling span name in the chain: the innermost whose name says which program asked. */
const callerOf = (span: Option.Option<Tracer.AnySpan>): string => {
  const names: Array<string> = []
  let s: Tracer.AnySpan | undefined = Option.getOrUndefined(span)
  while (s !== undefined) {
    if (s._tag === "Span") names.push(s.name)
    s = s._tag === "Span" ? Option.getOrUndefined(s.parent) : undefined
  }
  const telling = names.find((n) => /^(Sweeper|LeaseRecovery|LeaderLease|Monitor|Worker|buquet\.|Heartbeat|Discovery|WakeUp)/.test(n))
  return telling ?? names[names.length - 1] ?? "(no span)"
}

/** A layer counting the Storage below it by `OP family by caller` into `counts`. */
export const familyCounting = (below: Layer.Layer<Storage>, counts: Map<string, number>): Layer.Layer<Storage> =>
  Layer.effect(
    Storage,
    Effect.map(Storage, (s): StorageService => {
      const count = <A, E>(op: string, key: string, call: Effect.Effect<A, E>): Effect.Effect<A, E> =>
        Effect.flatMap(Effect.currentSpan.pipe(Effect.option), (span) => {
          const label = `${op} ${familyOf(key)} by ${callerOf(span)}`
          counts.set(label, (counts.get(label) ?? 0) + 1)
          return call
        })
      const list: StorageService["list"] = (prefix, options) => count("LIST", prefix, s.list(prefix, options))
      return {
        ...s,
        get: (key) => count("GET", key, s.get(key)),
        head: (key) => count("HEAD", key, s.head(key)),
        put: (key, body, condition) => count("PUT", key, s.put(key, body, condition)),
        delete: (key) => count("DELETE", key, s.delete(key)),
        deleteIfMatch: (key, etag) => count("DELETE", key, s.deleteIfMatch(key, etag)),
        deleteMany: (keys) => count(`DELETE-MANY(${keys.length})`, keys[0] ?? "", s.deleteMany(keys)),
        list,
        listAll: listAllFromList(list),
        getVersion: (key, v) => count("GET", key, s.getVersion(key, v))
      }
    })
  ).pipe(Layer.provide(below))
