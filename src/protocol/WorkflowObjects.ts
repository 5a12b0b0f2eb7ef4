/**
 * The stored objects of a durable workflow execution (keys in `domain/WorkflowKeys.ts`): each is
 * written once (`If-None-Match: *`), so the first writer wins and a replay reads what was recorded
 * instead of doing the work again. Every read is checked against its key (the ids inside must be the
 * ones the key names) and its schema; a bad object is a `MalformedObject` naming the key.
 *
 * @module
 */
import { Effect, Option, Schema } from "effect"
import type { Exit } from "effect"
import { decodeObject, encodeObject } from "../domain/Codec.js"
import { MalformedObject } from "../domain/QueueError.js"
import { StorageUnavailable } from "../domain/StorageError.js"
import { Storage } from "../services/Storage.js"
import { putConditional } from "./TaskObjects.js"

/** An `Exit` whose values are stored as JSON (already encoded by their own schemas, or decoded here). */
export const storedExit = (success: Schema.Schema.All, failure: Schema.Schema.All): Schema.Schema<Exit.Exit<unknown, unknown>, unknown> =>
  Schema.Exit({ success: success as Schema.Schema<unknown>, failure: failure as Schema.Schema<unknown>, defect: Schema.Defect }) as unknown as Schema.Schema<Exit.Exit<unknown, unknown>, unknown>

/**
 * The record of an execution: which workflow, which id, its payload (encoded by the workflow's
 * schema) and, for a child workflow, the execution that started it (woken when the child completes).
 */
export const ExecutionRecord = Schema.Struct({
  workflow: Schema.String,
  executionId: Schema.String,
  payload: Schema.Unknown,
  parent: Schema.optional(Schema.Struct({ workflow: Schema.String, executionId: Schema.String }))
})

/** Any recorded outcome: the ids it belongs to and its Exit (validated by the reader's schema). */
export const OutcomeRecord = Schema.Struct({
  workflow: Schema.String,
  executionId: Schema.String,
  name: Schema.String,
  attempt: Schema.optional(Schema.Int),
  exit: Schema.Unknown
})

/** What identifies a record: the values its key was built from. */
export interface RecordIdentity {
  readonly workflow: string
  readonly executionId: string
  readonly name?: string | undefined
  readonly attempt?: number | undefined
}

const mismatch = (key: string, field: string, found: unknown, expected: unknown) =>
  new MalformedObject({
    key,
    message: `${key} is malformed: field "${field}" is ${JSON.stringify(found)} but the key says ${JSON.stringify(expected)}`
  })

const checkIdentity = (key: string, found: RecordIdentity, expected: RecordIdentity) => {
  for (const field of ["workflow", "executionId", "name", "attempt"] as const) {
    if (found[field] !== expected[field]) return Effect.fail(mismatch(key, field, found[field], expected[field]))
  }
  return Effect.void
}

/** Reads the execution record at `key`; none if missing. */
export const readExecution = Effect.fn("WorkflowObjects.readExecution")(function*(key: string, identity: RecordIdentity) {
  const storage = yield* Storage
  const found = yield* storage.get(key)
  if (Option.isNone(found)) return Option.none<typeof ExecutionRecord.Type>()
  const record = yield* decodeObject(ExecutionRecord, key, found.value.body)
  yield* checkIdentity(key, { workflow: record.workflow, executionId: record.executionId }, identity)
  return Option.some(record)
})

/** Reads a recorded outcome at `key` and decodes its Exit with `exit`; none if missing. */
export const readOutcome = <A>(
  key: string,
  identity: RecordIdentity & { readonly name: string },
  exit: Schema.Schema<A, unknown>
) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const found = yield* storage.get(key)
    if (Option.isNone(found)) return Option.none<A>()
    const record = yield* decodeObject(OutcomeRecord, key, found.value.body)
    yield* checkIdentity(key, record, identity)
    const decoded = yield* Schema.decodeUnknown(exit)(record.exit).pipe(
      Effect.mapError((e) => new MalformedObject({ key, message: `${key} is malformed: its exit does not match the schema: ${e.message}` }))
    )
    return Option.some(decoded)
  }).pipe(Effect.withSpan("WorkflowObjects.readOutcome"))

/**
 * Writes a record once. True if this call wrote it, false if one was there already (the first
 * writer won; the caller reads that one). A write whose answer was lost and which did not land
 * (re-read, nothing there) is `StorageUnavailable`, not a lost race: no one recorded anything,
 * and a caller that went on to read "the winner's" record would find none.
 */
export const writeOnce = <A, I>(key: string, schema: Schema.Schema<A, I>, value: A) =>
  putConditional(key, encodeObject(schema, value), { ifNoneMatch: "*" }).pipe(
    Effect.as(true),
    Effect.catchTag("PreconditionFailed", () =>
      Effect.flatMap(Storage, (storage) => storage.head(key)).pipe(
        Effect.flatMap(Option.match({
          onSome: () => Effect.succeed(false),
          onNone: () =>
            Effect.fail(new StorageUnavailable({ operation: "PutObject", key, message: `${key}: a write whose answer was lost did not land; try again` }))
        }))
      )),
    Effect.withSpan("WorkflowObjects.writeOnce")
  )
