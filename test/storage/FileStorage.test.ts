import { mkdtempSync, readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
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
})
