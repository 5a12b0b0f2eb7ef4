/**
 * The Storage conformance suite: one set of tests that every {@link Storage} layer must pass, so
 * that MemoryStorage, FileStorage and S3Storage all behave like S3 (design.md §3).
 *
 * Every test works under a fresh random prefix, so the suite can run against a shared real bucket.
 *
 * Usage, from a `*.test.ts` file:
 * ```ts
 * storageConformance("MemoryStorage", MemoryStorage.layer())
 * storageConformance("S3Storage", S3Storage.layer(config), { realServer: true })
 * ```
 *
 * @module
 */
import { createHash, randomUUID } from "node:crypto"
import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Option, Stream } from "effect"
import { Storage } from "../../src/services/Storage.js"
import type { ListPage, StorageService } from "../../src/services/Storage.js"

/** Options of {@link storageConformance}. */
export interface StorageConformanceOptions {
  /**
   * The layer talks to a real server over the network: tests run with the live clock (so the
   * layer's retry schedules can sleep), and a CAS loser may get `OutcomeUnknown` instead of
   * `PreconditionFailed` (Ceph RGW answers some losers with 500).
   */
  readonly realServer?: boolean
  /** Per-test timeout override (default: the vitest config's). */
  readonly timeout?: number
  /**
   * Run the 2,500-key pagination test (default true). A second run of the same layer whose
   * listings take the same code path may skip it: on RGW it takes ~25 s.
   */
  readonly paginationAtScale?: boolean
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const bytes = (s: string): Uint8Array => encoder.encode(s)
const text = (b: Uint8Array): string => decoder.decode(b)

/** Bytewise order, computed independently of the layers' own comparator. */
const bytewise = (a: string, b: string): number => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"))

const freshPrefix = (name: string): string => `conformance/${name.replace(/[^A-Za-z0-9_-]/g, "_")}/${randomUUID()}/`

const putAll = (storage: StorageService, keys: ReadonlyArray<string>, concurrency = 32) =>
  Effect.forEach(keys, (key) => storage.put(key, bytes(`body of ${key}`)), { concurrency, discard: true })

/**
 * Registers the conformance tests of one Storage layer (a `describe` block named after it).
 * The layer is built once and shared by the tests of the block.
 */
export const storageConformance = (
  name: string,
  storageLayer: Layer.Layer<Storage, unknown>,
  options?: StorageConformanceOptions
): void => {
  const realServer = options?.realServer === true
  const timeout = options?.timeout
  layer(storageLayer, { excludeTestServices: realServer })(`Storage conformance: ${name}`, (it) => {
    it.effect("put with If-None-Match: * twice: the second fails with PreconditionFailed", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const key = `${freshPrefix(name)}create-only.json`
        const etag = yield* storage.put(key, bytes("first"), { ifNoneMatch: "*" })
        expect(etag.length).toBeGreaterThan(0)
        const second = yield* Effect.either(storage.put(key, bytes("second"), { ifNoneMatch: "*" }))
        expect(Either.isLeft(second) && second.left._tag).toBe("PreconditionFailed")
        const stored = yield* storage.get(key)
        expect(Option.map(stored, (o) => text(o.body))).toEqual(Option.some("first"))
        expect(Option.map(stored, (o) => o.etag)).toEqual(Option.some(etag))
      }), timeout)

    it.effect("get and head return body, ETag, size and last-modified; missing keys give none", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const prefix = freshPrefix(name)
        const etag = yield* storage.put(`${prefix}obj`, bytes("hello"))
        const got = yield* storage.get(`${prefix}obj`)
        expect(Option.isSome(got)).toBe(true)
        const obj = Option.getOrThrow(got)
        expect(obj.key).toBe(`${prefix}obj`)
        expect(text(obj.body)).toBe("hello")
        expect(obj.size).toBe(5)
        expect(obj.etag).toBe(etag)
        const head = Option.getOrThrow(yield* storage.head(`${prefix}obj`))
        expect(head.etag).toBe(etag)
        expect(head.size).toBe(5)
        expect(yield* storage.get(`${prefix}missing`)).toEqual(Option.none())
        expect(yield* storage.head(`${prefix}missing`)).toEqual(Option.none())
        // An empty body is a real object (markers are empty).
        yield* storage.put(`${prefix}empty`, new Uint8Array(0))
        const empty = Option.getOrThrow(yield* storage.get(`${prefix}empty`))
        expect(empty.size).toBe(0)
        expect(empty.body.byteLength).toBe(0)
      }), timeout)

    it.effect("ETags are content hashes: same body, same ETag; different body, different ETag", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const prefix = freshPrefix(name)
        const a = yield* storage.put(`${prefix}a`, bytes("same"))
        const b = yield* storage.put(`${prefix}b`, bytes("same"))
        const c = yield* storage.put(`${prefix}c`, bytes("other"))
        expect(a).toBe(b)
        expect(a).not.toBe(c)
        // S3: the quoted hex MD5 of a single-part upload (a real server's layer may pass it on unquoted).
        const md5 = createHash("md5").update("same").digest("hex")
        if (realServer) expect(a.replace(/"/g, "")).toBe(md5)
        else expect(a).toBe(`"${md5}"`)
      }), timeout)

    it.effect("a key and a key below it coexist (a, a/b, a/b/c)", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const prefix = freshPrefix(name)
        yield* storage.put(`${prefix}a`, bytes("1"))
        yield* storage.put(`${prefix}a/b`, bytes("2"))
        yield* storage.put(`${prefix}a/b/c`, bytes("3"))
        for (const [k, v] of [["a", "1"], ["a/b", "2"], ["a/b/c", "3"]] as const) {
          expect(Option.map(yield* storage.get(`${prefix}${k}`), (o) => text(o.body))).toEqual(Option.some(v))
        }
        const page = yield* storage.list(prefix)
        expect(page.objects.map((o) => o.key)).toEqual([`${prefix}a`, `${prefix}a/b`, `${prefix}a/b/c`])
        yield* storage.delete(`${prefix}a/b`)
        const after = yield* storage.list(prefix)
        expect(after.objects.map((o) => o.key)).toEqual([`${prefix}a`, `${prefix}a/b/c`])
      }), timeout)

    it.effect("CAS with the current ETag succeeds; with a stale one fails; on a missing key fails", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const prefix = freshPrefix(name)
        const key = `${prefix}cas.json`
        const e1 = yield* storage.put(key, bytes("v1"), { ifNoneMatch: "*" })
        const e2 = yield* storage.put(key, bytes("v2"), { ifMatch: e1 })
        expect(e2).not.toBe(e1)
        const stale = yield* Effect.either(storage.put(key, bytes("v3"), { ifMatch: e1 }))
        expect(Either.isLeft(stale) && stale.left._tag).toBe("PreconditionFailed")
        expect(Option.map(yield* storage.get(key), (o) => text(o.body))).toEqual(Option.some("v2"))
        const e3 = yield* storage.put(key, bytes("v3"), { ifMatch: e2 })
        expect(Option.map(yield* storage.head(key), (o) => o.etag)).toEqual(Option.some(e3))
        const missing = yield* Effect.either(storage.put(`${prefix}missing.json`, bytes("x"), { ifMatch: e1 }))
        expect(Either.isLeft(missing) && missing.left._tag).toBe("PreconditionFailed")
        expect(yield* storage.head(`${prefix}missing.json`)).toEqual(Option.none())
        // An unconditional put overwrites, and a CAS with the old ETag then fails.
        yield* storage.put(key, bytes("v4"))
        const afterOverwrite = yield* Effect.either(storage.put(key, bytes("v5"), { ifMatch: e3 }))
        expect(Either.isLeft(afterOverwrite) && afterOverwrite.left._tag).toBe("PreconditionFailed")
      }), timeout)

    it.effect("20 concurrent CAS writers from one ETag: exactly one winner, 20 rounds", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const key = `${freshPrefix(name)}race.json`
        let etag = yield* storage.put(key, bytes("round-start"), { ifNoneMatch: "*" })
        for (let round = 0; round < 20; round++) {
          const from = etag
          const results = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            (i) => Effect.either(storage.put(key, bytes(`round ${round} writer ${i}`), { ifMatch: from })),
            { concurrency: "unbounded" }
          )
          const winners = results.flatMap((r, i) => (Either.isRight(r) ? [i] : []))
          const losers = results.flatMap((r) => (Either.isLeft(r) ? [r.left._tag] : []))
          const allowed = realServer ? ["PreconditionFailed", "OutcomeUnknown"] : ["PreconditionFailed"]
          for (const tag of losers) expect(allowed).toContain(tag)
          const stored = Option.getOrThrow(yield* storage.get(key))
          if (realServer) {
            // A winner whose answer was lost shows up as OutcomeUnknown: at most one reported winner.
            expect(winners.length).toBeLessThanOrEqual(1)
            expect(text(stored.body)).toMatch(new RegExp(`^round ${round} writer \\d+$`))
          } else {
            expect(winners.length).toBe(1)
          }
          if (winners.length === 1) {
            const w = winners[0]!
            expect(text(stored.body)).toBe(`round ${round} writer ${w}`)
            const r = results[w]!
            expect(Either.isRight(r) && r.right).toBe(stored.etag)
          }
          etag = stored.etag
        }
      }), timeout)

    it.effect("concurrent create-only writers: exactly one winner", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const prefix = freshPrefix(name)
        for (let round = 0; round < 5; round++) {
          const key = `${prefix}create-${round}`
          const results = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            (i) => Effect.either(storage.put(key, bytes(`writer ${i}`), { ifNoneMatch: "*" })),
            { concurrency: "unbounded" }
          )
          const winners = results.flatMap((r, i) => (Either.isRight(r) ? [i] : []))
          if (realServer) expect(winners.length).toBeLessThanOrEqual(1)
          else expect(winners.length).toBe(1)
          const stored = Option.getOrThrow(yield* storage.get(key))
          if (winners.length === 1) expect(text(stored.body)).toBe(`writer ${winners[0]!}`)
        }
      }), timeout)

    it.effect("LIST is in bytewise order (not locale order) and respects the prefix", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const prefix = freshPrefix(name)
        const names = [
          "b", "B", "a", "A", "Z", "z", "0", "9", "10", "1", "~", "~a", "-", "-a", "_", "_b", ".dot", "a-b", "a~b",
          "aB", "ab", "a.b", "a_b", "a0", "é", "e", "f", "\u00ff", "\uff5e", "\u{1f600}", "x y", "x+y", "x%20y"
        ]
        const keys = names.map((n) => `${prefix}k/${n}`)
        yield* putAll(storage, keys)
        // A sibling whose name extends the prefix must not leak into the listing.
        yield* storage.put(`${prefix}kk`, bytes("sibling"))
        const expected = [...keys].sort(bytewise)
        // Sanity: locale order differs from bytewise order on these keys, so the test can fail.
        expect([...keys].sort((a, b) => a.localeCompare(b))).not.toEqual(expected)
        const page = yield* storage.list(`${prefix}k/`)
        expect(page.objects.map((o) => o.key)).toEqual(expected)
        expect(page.nextContinuationToken).toBeUndefined()
        expect(page.commonPrefixes).toEqual([])
        for (const o of page.objects) {
          expect(o.size).toBe(bytes(`body of ${o.key}`).byteLength)
          expect(o.etag.length).toBeGreaterThan(0)
        }
        const streamed = yield* Stream.runCollect(storage.listAll(`${prefix}k/`, { maxKeys: 7 }))
        expect(Chunk.toReadonlyArray(streamed).map((o) => o.key)).toEqual(expected)
        const all = yield* storage.list(prefix)
        expect(all.objects.map((o) => o.key)).toEqual([...expected, `${prefix}kk`])
        expect((yield* storage.list(`${prefix}nothing-here/`)).objects).toEqual([])
      }), timeout)

    it.effect("StartAfter lists strictly after the given key", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const prefix = freshPrefix(name)
        const keys = ["a", "b", "b0", "b~", "c", "C", "d/e"].map((n) => `${prefix}${n}`)
        yield* putAll(storage, keys)
        const expected = [...keys].sort(bytewise)
        const after = (start: string) => storage.list(prefix, { startAfter: start }).pipe(Effect.map((p) => p.objects.map((o) => o.key)))
        expect(yield* after(`${prefix}b`)).toEqual(expected.filter((k) => bytewise(k, `${prefix}b`) > 0))
        // A StartAfter that is not itself a key.
        expect(yield* after(`${prefix}b5`)).toEqual(expected.filter((k) => bytewise(k, `${prefix}b5`) > 0))
        // A StartAfter before the prefix lists everything; after it, nothing.
        expect(yield* after("conformance/")).toEqual(expected)
        expect(yield* after(`${prefix}zzz`)).toEqual([])
        const page = yield* storage.list(prefix, { startAfter: `${prefix}a`, maxKeys: 2 })
        expect(page.objects.map((o) => o.key)).toEqual(expected.filter((k) => bytewise(k, `${prefix}a`) > 0).slice(0, 2))
        expect(page.nextContinuationToken).toBeDefined()
      }), timeout)

    it.effect("delimiter groups keys into common prefixes, and pages across them", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const prefix = freshPrefix(name)
        const keys = [
          "top1", "top2", "dir1/a", "dir1/b", "dir1/sub/c", "dir2/a", "dir-x/a", "dir0", "dir3/a", "zz"
        ].map((n) => `${prefix}${n}`)
        yield* putAll(storage, keys)
        const page = yield* storage.list(prefix, { delimiter: "/" })
        expect(page.objects.map((o) => o.key)).toEqual([`${prefix}dir0`, `${prefix}top1`, `${prefix}top2`, `${prefix}zz`])
        expect(page.commonPrefixes).toEqual([`${prefix}dir-x/`, `${prefix}dir1/`, `${prefix}dir2/`, `${prefix}dir3/`])
        const inner = yield* storage.list(`${prefix}dir1/`, { delimiter: "/" })
        expect(inner.objects.map((o) => o.key)).toEqual([`${prefix}dir1/a`, `${prefix}dir1/b`])
        expect(inner.commonPrefixes).toEqual([`${prefix}dir1/sub/`])
        // Pages of 2: common prefixes count as entries and are never repeated.
        const seenObjects: Array<string> = []
        const seenPrefixes: Array<string> = []
        let token: string | undefined = undefined
        let pages = 0
        do {
          const p: ListPage = yield* storage.list(prefix, { delimiter: "/", maxKeys: 2, continuationToken: token })
          expect(p.objects.length + p.commonPrefixes.length).toBeLessThanOrEqual(2)
          seenObjects.push(...p.objects.map((o) => o.key))
          seenPrefixes.push(...p.commonPrefixes)
          token = p.nextContinuationToken
          pages++
        } while (token !== undefined && pages < 20)
        expect(seenObjects).toEqual(page.objects.map((o) => o.key))
        expect(seenPrefixes).toEqual(page.commonPrefixes)
        expect(pages).toBe(4)
      }), timeout)

    it.effect.skipIf(options?.paginationAtScale === false)("pagination over 2,500 keys: pages of at most 1000, continuation tokens, listAll", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const prefix = freshPrefix(name)
        const keys = Array.from({ length: 2500 }, (_, i) => `${prefix}${(i * 7919) % 2500}-${i % 3 === 0 ? "X" : "y"}`)
        yield* putAll(storage, keys, realServer ? 32 : 64)
        const expected = [...keys].sort(bytewise)
        const p1 = yield* storage.list(prefix)
        expect(p1.objects.length).toBe(1000)
        expect(p1.nextContinuationToken).toBeDefined()
        const p2 = yield* storage.list(prefix, { continuationToken: p1.nextContinuationToken })
        expect(p2.objects.length).toBe(1000)
        const p3 = yield* storage.list(prefix, { continuationToken: p2.nextContinuationToken })
        expect(p3.objects.length).toBe(500)
        expect(p3.nextContinuationToken).toBeUndefined()
        expect([...p1.objects, ...p2.objects, ...p3.objects].map((o) => o.key)).toEqual(expected)
        // maxKeys above 1000 is capped at 1000, as on S3.
        const capped = yield* storage.list(prefix, { maxKeys: 5000 })
        expect(capped.objects.length).toBe(1000)
        const small = yield* storage.list(prefix, { maxKeys: 1 })
        expect(small.objects.map((o) => o.key)).toEqual([expected[0]])
        const streamed = yield* Stream.runCollect(storage.listAll(prefix))
        expect(Chunk.toReadonlyArray(streamed).map((o) => o.key)).toEqual(expected)
        const fromMiddle = yield* Stream.runCollect(storage.listAll(prefix, { startAfter: expected[1499]!, maxKeys: 300 }))
        expect(Chunk.toReadonlyArray(fromMiddle).map((o) => o.key)).toEqual(expected.slice(1500))
        yield* storage.deleteMany(keys.slice(0, 1000))
        yield* storage.deleteMany(keys.slice(1000, 2000))
        yield* storage.deleteMany(keys.slice(2000))
        expect((yield* storage.list(prefix)).objects).toEqual([])
      }), timeout)

    it.effect("delete removes the object; deleting a missing key succeeds", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const prefix = freshPrefix(name)
        yield* storage.put(`${prefix}gone`, bytes("x"))
        yield* storage.delete(`${prefix}gone`)
        expect(yield* storage.get(`${prefix}gone`)).toEqual(Option.none())
        expect((yield* storage.list(prefix)).objects).toEqual([])
        yield* storage.delete(`${prefix}gone`)
        yield* storage.delete(`${prefix}never-existed`)
        // After a delete, create-only succeeds again and CAS with the old ETag fails.
        const e = yield* storage.put(`${prefix}gone`, bytes("y"), { ifNoneMatch: "*" })
        yield* storage.delete(`${prefix}gone`)
        const cas = yield* Effect.either(storage.put(`${prefix}gone`, bytes("z"), { ifMatch: e }))
        expect(Either.isLeft(cas) && cas.left._tag).toBe("PreconditionFailed")
      }), timeout)

    it.effect("deleteIfMatch: deletes only the version it names where supported; refused (nothing deleted) where not", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const caps = yield* storage.capabilities
        const prefix = freshPrefix(name)
        const key = `${prefix}conditional-delete`
        const first = yield* storage.put(key, bytes("v1"))
        const second = yield* storage.put(key, bytes("v2"))
        const stale = yield* Effect.either(storage.deleteIfMatch(key, first))
        if (!caps.conditionalDelete) {
          // RGW ignores If-Match on DELETE: the layer must refuse rather than delete unconditionally
          expect(Either.isLeft(stale) && stale.left._tag).toBe("InvalidResponse")
          expect(Either.isLeft(stale) && stale.left.message).toMatch(/conditionalDelete is false/)
          expect(Either.isLeft(yield* Effect.either(storage.deleteIfMatch(key, second)))).toBe(true)
          expect(Option.map(yield* storage.get(key), (o) => text(o.body))).toEqual(Option.some("v2"))
          return
        }
        // a stale ETag leaves the object alone
        expect(Either.isLeft(stale) && stale.left._tag).toBe("PreconditionFailed")
        expect(Option.map(yield* storage.get(key), (o) => text(o.body))).toEqual(Option.some("v2"))
        // the current one deletes it
        yield* storage.deleteIfMatch(key, second)
        expect(yield* storage.get(key)).toEqual(Option.none())
        // on a missing key it fails (nothing to match)
        const missing = yield* Effect.either(storage.deleteIfMatch(key, second))
        expect(Either.isLeft(missing) && missing.left._tag).toBe("PreconditionFailed")
      }), timeout)

    it.effect("deleteMany removes the listed keys only, missing ones are fine", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const prefix = freshPrefix(name)
        const keys = ["a", "b", "c", "d/e", "d/f"].map((n) => `${prefix}${n}`)
        yield* putAll(storage, keys)
        yield* storage.deleteMany([`${prefix}a`, `${prefix}d/e`, `${prefix}missing`])
        yield* storage.deleteMany([])
        const left = yield* storage.list(prefix)
        expect(left.objects.map((o) => o.key)).toEqual([`${prefix}b`, `${prefix}c`, `${prefix}d/f`])
      }), timeout)

    it.effect("versions: newest first with delete markers where the bucket keeps them; none otherwise", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const caps = yield* storage.capabilities
        const key = `${freshPrefix(name)}versioned.json`
        yield* storage.put(key, bytes("v1"))
        yield* storage.put(key, bytes("v2"))
        yield* storage.put(key, bytes("v3"))
        yield* storage.delete(key)
        const versions = yield* storage.listVersions(key)
        if (caps.versioning === "enabled") {
          expect(versions.length).toBe(4)
          expect(versions[0]!.isDeleteMarker).toBe(true)
          expect(versions[0]!.isLatest).toBe(true)
          expect(versions.slice(1).map((v) => v.isDeleteMarker)).toEqual([false, false, false])
          expect(versions.slice(1).map((v) => v.isLatest)).toEqual([false, false, false])
          const bodies: Array<string> = []
          for (const v of versions.slice(1)) {
            expect(v.key).toBe(key)
            bodies.push(Option.match(yield* storage.getVersion(key, v.versionId), { onNone: () => "none", onSome: (o) => text(o.body) }))
          }
          expect(bodies).toEqual(["v3", "v2", "v1"])
          expect(yield* storage.getVersion(key, versions[0]!.versionId)).toEqual(Option.none())
          expect(yield* storage.get(key)).toEqual(Option.none())
        } else if (caps.versioning === "off") {
          expect(versions).toEqual([])
        }
      }), timeout)

    it.effect("capabilities describe a store with working conditional writes", () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const caps = yield* storage.capabilities
        expect(caps.conditionalWrites).toBe(true)
        expect(["enabled", "suspended", "off", "unknown"]).toContain(caps.versioning)
        expect(["local", "remote"]).toContain(caps.clock)
      }), timeout)
  })
}
