/**
 * `buquet repair KEY`: removes one stored control object that no longer decodes, where its absence
 * is a well-defined state (issue 15 fix 12: one corrupt object must not stop its subsystem for
 * good). It never touches an object that decodes, and never a task (its data would be lost):
 *
 * - `control/pause.json`: missing means nothing is paused;
 * - `control/leader/{name}.json`: missing means the role is free (the next instance takes it);
 * - `schemas/{task_type}.json`: missing means the type's tasks are not validated.
 *
 * Where the store honours `If-Match` on DELETE, the object is removed only while it is the
 * version that was judged; elsewhere (Ceph RGW) it is re-read just before the DELETE.
 *
 * @module
 */
import { Effect, Option, Schema } from "effect"
import { decodeObject } from "../domain/Codec.js"
import { controlKey } from "../domain/Keys.js"
import { TaskTypeName } from "../domain/Names.js"
import { pauseKey, PauseState } from "../domain/Pause.js"
import { InvalidArgument } from "../domain/QueueError.js"
import { StorageUnavailable } from "../domain/StorageError.js"
import { compileSchemas, TaskJsonSchemas } from "../domain/TaskSchemas.js"
import { Storage } from "../services/Storage.js"
import { LeaderLeaseRecord } from "./LeaderLease.js"

/**
 * What `repair` did with a key.
 *
 * @since 0.1.0
 * @category models
 */
export type RepairOutcome =
  /** Nothing is stored at the key. */
  | { readonly _tag: "Missing"; readonly key: string }
  /** It decodes: left alone. */
  | { readonly _tag: "Valid"; readonly key: string }
  /** It did not decode (`problem`) and was removed; `meaning` says what its absence means. */
  | { readonly _tag: "Removed"; readonly key: string; readonly problem: string; readonly meaning: string }

/**
 * The keys `repair` handles, for help texts and errors.
 *
 * @since 0.1.0
 * @category constants
 */
export const repairableKeys: ReadonlyArray<string> = [pauseKey, "control/leader/NAME.json", "schemas/TASK_TYPE.json"]

interface Kind {
  /** Why it does not decode, or undefined when it does. */
  readonly check: (body: Uint8Array) => Effect.Effect<string | undefined>
  readonly meaning: string
}

const problemOf = <A, E extends { readonly message: string }>(self: Effect.Effect<A, E>): Effect.Effect<string | undefined> =>
  self.pipe(Effect.match({ onFailure: (e) => e.message, onSuccess: () => undefined }))

const kindOf = (key: string): Kind | undefined => {
  if (key === pauseKey) {
    return {
      check: (body) => problemOf(decodeObject(PauseState, key, body)),
      meaning: "nothing is paused now; pause again what should stay paused (buquet pause [TYPE])"
    }
  }
  const leader = /^control\/leader\/([^/]+)\.json$/.exec(key)
  if (leader !== null && key === controlKey(`leader/${leader[1]!}.json`)) {
    return {
      check: (body) => problemOf(decodeObject(LeaderLeaseRecord, key, body)),
      meaning: `the ${leader[1]!} role is free: the next instance that competes for it takes it`
    }
  }
  const schema = /^schemas\/([^/]+)\.json$/.exec(key)
  if (schema !== null && Schema.is(TaskTypeName)(schema[1]!)) {
    const taskType = schema[1]!
    return {
      check: (body) =>
        problemOf(Effect.flatMap(decodeObject(TaskJsonSchemas, key, body), (s) => compileSchemas(taskType, s))),
      meaning: `tasks of ${taskType} are not validated now; publish a fixed schema with buquet schema publish ${taskType} FILE`
    }
  }
  return undefined
}

/**
 * Removes the object at `key` if it is one `repair` handles and it does not decode.
 *
 * @since 0.1.0
 * @category programs
 */
export const repair = Effect.fn("Repair.repair")(function*(key: string) {
  const kind = kindOf(key)
  if (kind === undefined) {
    return yield* new InvalidArgument({
      argument: "key",
      message: `repair handles ${repairableKeys.join(", ")}; not ${JSON.stringify(key)}`
    })
  }
  const storage = yield* Storage
  const found = yield* storage.get(key)
  if (Option.isNone(found)) return { _tag: "Missing", key } satisfies RepairOutcome
  const problem = yield* kind.check(found.value.body)
  if (problem === undefined) return { _tag: "Valid", key } satisfies RepairOutcome
  const changed = new StorageUnavailable({
    operation: "DeleteObject",
    key,
    message: `${key} changed while it was being judged; run repair again`
  })
  if ((yield* storage.capabilities).conditionalDelete) {
    yield* storage.deleteIfMatch(key, found.value.etag).pipe(
      Effect.catchTag("PreconditionFailed", () => Effect.fail(changed))
    )
  } else {
    const again = yield* storage.head(key)
    if (Option.isNone(again) || again.value.etag !== found.value.etag) return yield* changed
    yield* storage.delete(key)
  }
  return { _tag: "Removed", key, problem, meaning: kind.meaning } satisfies RepairOutcome
})
