/**
 * The published JSON Schemas of a task type (`schemas/{type}.json`), read and compiled: what a
 * submit and a follow-up (`ctx.enqueue`) check an input against. A stored schema that does not
 * decode or compile is the stored object's fault: a `MalformedObject` naming its key and how to
 * repair it.
 *
 * @since 0.1.0
 * @module
 */
import { Effect, Option } from "effect"
import { decodeObject } from "../domain/Codec.js"
import { schemaKey } from "../domain/Keys.js"
import { MalformedObject } from "../domain/QueueError.js"
import { compileSchemas, TaskJsonSchemas } from "../domain/TaskSchemas.js"
import type { CompiledSchemas } from "../domain/TaskSchemas.js"
import { Storage } from "../services/Storage.js"

const repair = (taskType: string) =>
  `publish a fixed one (buquet schema publish ${taskType} FILE) or remove it (buquet schema delete ${taskType})`

/**
 * A task type's published schemas as stored; none when it has none.
 *
 * @since 0.1.0
 * @category schemas
 */
export const readSchemas = (taskType: string) =>
  Effect.gen(function*() {
    const key = schemaKey(taskType)
    const found = yield* (yield* Storage).get(key)
    if (Option.isNone(found)) return Option.none<TaskJsonSchemas>()
    return Option.some(
      yield* decodeObject(TaskJsonSchemas, key, found.value.body).pipe(
        Effect.mapError((e) => new MalformedObject({ key, message: `${e.message}; ${repair(taskType)}` }))
      )
    )
  })

/**
 * A task type's published schemas, compiled (no validator for a side without one).
 *
 * @since 0.1.0
 * @category schemas
 */
export const readCompiledSchemas = (taskType: string) =>
  Effect.gen(function*() {
    const schemas = yield* readSchemas(taskType)
    if (Option.isNone(schemas)) return { input: undefined, output: undefined } satisfies CompiledSchemas as CompiledSchemas
    const key = schemaKey(taskType)
    // A stored schema that does not compile (written by hand, by another tool, or with a pattern
    // that may take exponential time) is the stored object's fault: name its key.
    return yield* compileSchemas(taskType, schemas.value).pipe(
      Effect.mapError((e) => new MalformedObject({ key, message: `${key} is malformed: ${e.message}; ${repair(taskType)}` }))
    )
  })
