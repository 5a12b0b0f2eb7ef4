/**
 * The write-once workflow records: the first writer wins, and a stored record is trusted only if
 * the ids inside are the ones its key names and its Exit matches the reader's schema.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Schema } from "effect"
import { utf8 } from "../../src/domain/Codec.js"
import { activityKey } from "../../src/domain/WorkflowKeys.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import { OutcomeRecord, readOutcome, storedExit, writeOnce } from "../../src/protocol/WorkflowObjects.js"
import { Storage } from "../../src/services/Storage.js"

const identity = { workflow: "order", executionId: "e1", name: "charge", attempt: 1 }
const key = activityKey("order", "e1", "charge", 1)
const exitSchema = storedExit(Schema.String, Schema.Never)
const encode = (exit: Exit.Exit<string>) => Schema.encodeSync(exitSchema)(exit)

describe("WorkflowObjects", () => {
  it.effect("writeOnce: the first writer wins, the second learns it lost and reads the first", () =>
    Effect.gen(function*() {
      expect(yield* writeOnce(key, OutcomeRecord, { ...identity, exit: encode(Exit.succeed("first")) })).toBe(true)
      expect(yield* writeOnce(key, OutcomeRecord, { ...identity, exit: encode(Exit.succeed("second")) })).toBe(false)
      const read = yield* readOutcome(key, identity, exitSchema)
      expect(Option.map(read, (e) => Exit.isSuccess(e) ? e.value : undefined)).toEqual(Option.some("first"))
    }).pipe(Effect.provide(MemoryStorage.layer())))

  it.effect("a record naming another execution than its key is a MalformedObject naming the key", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const body = JSON.stringify({ ...identity, executionId: "e2", exit: encode(Exit.succeed("x")) })
      yield* storage.put(key, utf8(body))
      const error = yield* Effect.flip(readOutcome(key, identity, exitSchema))
      expect(error._tag).toBe("MalformedObject")
      expect(error.message).toContain(key)
      expect(error.message).toContain("executionId")
    }).pipe(Effect.provide(MemoryStorage.layer())))

  it.effect("an exit that does not match the reader's schema, or a body that is not JSON, is a MalformedObject", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      yield* storage.put(key, utf8(JSON.stringify({ ...identity, exit: { _tag: "Success", value: 42 } })))
      const wrongType = yield* Effect.flip(readOutcome(key, identity, exitSchema))
      expect(wrongType._tag).toBe("MalformedObject")
      expect(wrongType.message).toContain("does not match the schema")
      yield* storage.put(key, utf8("{not json"))
      const notJson = yield* Effect.flip(readOutcome(key, identity, exitSchema))
      expect(notJson.message).toContain(key)
    }).pipe(Effect.provide(MemoryStorage.layer())))
})
