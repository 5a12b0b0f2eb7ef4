/**
 * The embedded store: one corrupt object file must not fail every listing (issue 15 fix 12). On
 * S3 a garbage object is just an object with a garbage body, which the layer above names as a
 * malformed key; the file store now behaves the same: the file is listed, read back as its raw
 * bytes (an ETag from their hash), and can be overwritten by CAS or deleted.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { utf8 } from "../../src/domain/Codec.js"
import { taskKey } from "../../src/domain/Keys.js"
import * as FileStorage from "../../src/layers/FileStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"

const fileOf = (root: string, key: string) => {
  const segments = key.split("/").map(FileStorage.encodeSegment)
  return path.join(root, ...segments.slice(0, -1), `${segments.at(-1)!}.obj`)
}

describe("FileStorage with one corrupt object file", () => {
  it.effect("listing, get and the queue's list go on; the key is named as malformed; CAS and DELETE repair it", () => {
    const root = mkdtempSync(path.join(tmpdir(), "buquet-corrupt-"))
    return Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const tasks = yield* Effect.forEach([1, 2, 3], (n) => queue.submit("job", { n }))
      const broken = tasks[1]!
      const key = taskKey(broken.shard, broken.id)
      writeFileSync(fileOf(root, key), "garbage without header")

      // the storage layer lists it like any object, and GET gives its bytes
      const listed = (yield* storage.list("tasks/")).objects.map((o) => o.key)
      expect([...listed].sort()).toEqual(tasks.map((t) => taskKey(t.shard, t.id)).sort())
      const raw = Option.getOrThrow(yield* storage.get(key))
      expect(new TextDecoder().decode(raw.body)).toBe("garbage without header")
      const head = Option.getOrThrow(yield* storage.head(key))
      expect(head.etag).toBe(raw.etag)

      // the queue names the key and keeps working for the others
      const page = yield* queue.list({})
      expect(page.tasks.map((t) => t.id).sort()).toEqual([tasks[0]!.id, tasks[2]!.id].sort())
      expect(page.malformed.map((m) => m.key)).toEqual([key])
      const error = yield* Effect.flip(queue.get(broken.id))
      expect(error._tag).toBe("MalformedObject")
      expect(error.message).toContain(key)

      // a CAS on its ETag replaces it; a stale ETag does not
      const stale = yield* Effect.flip(storage.put(key, utf8("{}"), { ifMatch: "not-its-etag" }))
      expect(stale._tag).toBe("PreconditionFailed")
      yield* storage.put(key, utf8("{}"), { ifMatch: raw.etag })
      expect(new TextDecoder().decode(Option.getOrThrow(yield* storage.get(key)).body)).toBe("{}")
      // and a corrupt file can be deleted
      writeFileSync(fileOf(root, key), "garbage again")
      yield* storage.delete(key)
      expect(Option.isNone(yield* storage.get(key))).toBe(true)
    }).pipe(Effect.provide(QueueLayer.layerOn(FileStorage.layer(root))))
  })
})
