/**
 * `repair` on the real server (Ceph RGW, which ignores If-Match on DELETE, so repair re-reads the
 * ETag before its DELETE): a corrupt control object is removed, a valid one and a changed one are
 * left alone; a corrupt schema fails only its own type's submits (issue 15 fix 12).
 */
import { expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { utf8 } from "../../src/domain/Codec.js"
import { pauseKey } from "../../src/domain/Pause.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import { repair } from "../../src/programs/Repair.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { describeS3, s3Layer } from "../support/s3.js"

describeS3("repair on RGW", () => {
  it.effect("removes a corrupt pause.json and schema; keeps a valid one; submits of other types go on meanwhile", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const queue = yield* Queue
      expect((yield* storage.capabilities).conditionalDelete).toBe(false)
      yield* storage.put(pauseKey, utf8("garbage"))
      yield* storage.put("schemas/report.json", utf8("{ not json"))
      expect((yield* Effect.flip(queue.submit("report", {})))._tag).toBe("MalformedObject")
      yield* queue.submit("other", {})
      expect(yield* repair(pauseKey)).toMatchObject({ _tag: "Removed", key: pauseKey })
      expect(yield* repair("schemas/report.json")).toMatchObject({ _tag: "Removed" })
      expect(Option.isNone(yield* storage.head(pauseKey))).toBe(true)
      yield* queue.submit("report", {})
      yield* queue.pause("report")
      expect(yield* repair(pauseKey)).toMatchObject({ _tag: "Valid" })
      expect((yield* queue.pauseState).taskTypes).toEqual(["report"])
    }).pipe(Effect.provide(QueueLayer.layerOn(s3Layer()))), 60_000)
})
