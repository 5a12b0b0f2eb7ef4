import { randomUUID } from "node:crypto"
import { existsSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import * as FileStorage from "../../src/layers/FileStorage.js"
import { storageConformance } from "./conformance.js"

const tempDir = (): string => mkdtempSync(path.join(tmpdir(), "buquet-file-storage-"))

storageConformance("FileStorage", FileStorage.layer(tempDir()))

describe("FileStorage", () => {
  it("segments round-trip and encoded names hold no dot, slash or upper-case letter", () => {
    for (const segment of ["", ".", "..", "a.obj", "A", "é", "\u{1f600}", "%", "%2E", "x y", "-_09az", "CON"]) {
      const encoded = FileStorage.encodeSegment(segment)
      expect(encoded).not.toMatch(/[./\\]/)
      expect(encoded.replace(/%[0-9A-F]{2}/g, "")).not.toMatch(/[A-Z]/)
      expect(FileStorage.decodeSegment(encoded)).toBe(segment)
    }
    expect(FileStorage.decodeSegment("a.json")).toBeUndefined()
    expect(FileStorage.decodeSegment("%zz")).toBeUndefined()
  })

  it.effect("hostile keys stay inside the directory", () =>
    Effect.gen(function*() {
      const root = tempDir()
      const storage = yield* FileStorage.make(path.join(root, "store"))
      const keys = ["../escape", "/abs", "a/../../b", "..", ".", "a//b", "\\..\\x", "a/./b"]
      for (const key of keys) {
        yield* storage.put(key, new TextEncoder().encode(key))
      }
      // Nothing but the store directory exists next to it.
      expect(readdirSync(root)).toEqual(["store"])
      for (const key of keys) {
        const got = Option.getOrThrow(yield* storage.get(key))
        expect(new TextDecoder().decode(got.body)).toBe(key)
      }
      const listed = (yield* storage.list("")).objects.map((o) => o.key)
      expect([...listed].sort()).toEqual([...keys].sort())
    }))

  it.effect("a deleted key's empty directories are removed, and the key can be written again", () =>
    Effect.gen(function*() {
      const root = tempDir()
      const storage = yield* FileStorage.make(root)
      yield* storage.put("ready/0/0000000001/abc", new Uint8Array(0))
      yield* storage.delete("ready/0/0000000001/abc")
      expect(readdirSync(root)).toEqual([])
      yield* storage.put("ready/0/0000000001/abc", new Uint8Array(0), { ifNoneMatch: "*" })
      expect(Option.isSome(yield* storage.head("ready/0/0000000001/abc"))).toBe(true)
    }))

  it.effect("a second store on the same directory sees the first one's objects (restart)", () =>
    Effect.gen(function*() {
      const root = tempDir()
      const a = yield* FileStorage.make(root)
      const etag = yield* a.put("tasks/0/x.json", new TextEncoder().encode("{}"))
      const b = yield* FileStorage.make(root)
      expect(Option.map(yield* b.head("tasks/0/x.json"), (m) => m.etag)).toEqual(Option.some(etag))
    }))

  it.live("several stores on one directory in one process never both win a CAS (per-instance locks)", () =>
    Effect.gen(function*() {
      const root = tempDir()
      const stores = yield* Effect.forEach([0, 1, 2], () => FileStorage.make(root))
      yield* stores[0]!.put("counter", new TextEncoder().encode("0"))
      const increments = 150
      // Each store increments by read + CAS until it won `increments` times; every win must count.
      const wins = yield* Effect.forEach(stores, (store) =>
        Effect.gen(function*() {
          let won = 0
          while (won < increments) {
            const current = Option.getOrThrow(yield* store.get("counter"))
            const next = Number(new TextDecoder().decode(current.body)) + 1
            const result = yield* Effect.either(store.put("counter", new TextEncoder().encode(String(next)), { ifMatch: current.etag }))
            if (Either.isRight(result)) won++
            else expect(result.left._tag).toBe("PreconditionFailed")
          }
          return won
        }), { concurrency: "unbounded" })
      expect(wins).toEqual([increments, increments, increments])
      const counter = Option.getOrThrow(yield* stores[1]!.get("counter"))
      expect(new TextDecoder().decode(counter.body)).toBe(String(3 * increments))
    }), 60_000)

  it.live("a leftover lock of this process (a lost release, or an earlier process with this pid) is broken", () =>
    Effect.gen(function*() {
      const root = tempDir()
      const storage = yield* FileStorage.make(root, { lockTimeout: "5 seconds" })
      const etag = yield* storage.put("a/k", new TextEncoder().encode("v1"))
      const lockFile = path.join(root, "a", "k.lock")
      writeFileSync(lockFile, JSON.stringify({ pid: process.pid, at: 0, token: randomUUID() }))
      yield* storage.put("a/k", new TextEncoder().encode("v2"), { ifMatch: etag })
      // Garbage where a lock belongs is removed once older than staleLockAfter.
      writeFileSync(lockFile, "not a lock")
      const old = new Date(Date.now() - 60_000)
      utimesSync(lockFile, old, old)
      yield* storage.put("a/k", new TextEncoder().encode("v3"))
      expect(Option.map(yield* storage.get("a/k"), (o) => new TextDecoder().decode(o.body))).toEqual(Option.some("v3"))
      expect(existsSync(lockFile)).toBe(false)
    }))
})
