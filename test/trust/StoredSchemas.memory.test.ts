/**
 * A published JSON Schema is stored data too (issue 15 fix 12): a corrupt one, or one whose
 * `pattern` may take exponential time (`^(a|a)*$`: seconds per extra character), must neither
 * hang submits nor stop other task types. Publishing such a pattern is refused; a stored one
 * (written by hand or another tool) makes submits of its type fail at once with a typed error
 * naming the key and saying how to repair it; `schema publish` / `schema delete` repair it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { utf8 } from "../../src/domain/Codec.js"
import { TaskJsonSchemas } from "../../src/domain/TaskSchemas.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"

const layer = QueueLayer.layerOn(MemoryStorage.layer(), { schemaCacheSeconds: 0 })

const redos = { type: "object", properties: { s: { type: "string", pattern: "^(a|a)*$" } } }
const hostileInput = { s: `${"a".repeat(40)}b` }

describe("published JSON Schemas that cannot be trusted", () => {
  it.effect("publishing a pattern that may take exponential time is refused with what to do", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const error = yield* Effect.flip(queue.publishSchema("redos", new TaskJsonSchemas({ input: redos })))
      expect(error._tag).toBe("InvalidArgument")
      expect(error.message).toContain("^(a|a)*$")
      expect(error.message).toContain("exponentially")
      // patternProperties run on property names: the same rule
      const keys = { type: "object", patternProperties: { "^(x+)+$": { type: "string" } } }
      expect((yield* Effect.flip(queue.publishSchema("redos", new TaskJsonSchemas({ input: keys }))))._tag).toBe("InvalidArgument")
      // an ordinary pattern is fine and is applied
      yield* queue.publishSchema("plain", new TaskJsonSchemas({ input: { type: "object", properties: { s: { type: "string", pattern: "^(a|b)*$" } } } }))
      expect((yield* Effect.flip(queue.submit("plain", { s: "abc" })))._tag).toBe("SchemaValidationFailed")
      yield* queue.submit("plain", { s: "abab" })
    }).pipe(Effect.provide(layer)))

  it.effect("a stored one fails its type's submits at once, naming the key; other types and the repair work", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      yield* storage.put("schemas/redos.json", utf8(JSON.stringify({ input: redos })))
      const error = yield* Effect.flip(queue.submit("redos", hostileInput))
      expect(error._tag).toBe("MalformedObject")
      expect(error.message).toContain("schemas/redos.json")
      expect(error.message).toContain("buquet schema delete redos")
      yield* queue.submit("other", hostileInput)
      yield* queue.deleteSchema("redos")
      yield* queue.submit("redos", hostileInput)
    }).pipe(Effect.provide(layer)))

  it.effect("a corrupt one: the same, and publishing a good schema over it repairs it", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      yield* storage.put("schemas/good.json", utf8("{ not json"))
      const error = yield* Effect.flip(queue.submit("good", {}))
      expect(error._tag).toBe("MalformedObject")
      expect(error.message).toContain("schemas/good.json")
      expect(error.message).toContain("buquet schema publish good FILE")
      yield* queue.submit("other", {})
      yield* queue.publishSchema("good", new TaskJsonSchemas({ input: { type: "object" } }))
      yield* queue.submit("good", {})
    }).pipe(Effect.provide(layer)))
})
