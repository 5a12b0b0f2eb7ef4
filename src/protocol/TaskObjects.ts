/**
 * Reading and writing task objects and their index markers, shared by the Queue, the worker and
 * the monitor. Small on purpose: read a task with its ETag, create it, CAS it, write/delete
 * markers, and one read–decide–CAS loop ({@link updateTask}) that resolves lost preconditions and
 * ambiguous outcomes by re-reading (design.md §5.3 invariants 3 and 4), never by assuming.
 *
 * Typical use (a protocol step):
 * ```ts
 * const result = yield* updateTask(key, (current) =>
 *   Option.isNone(current) ? keep("not_found")
 *   : write(Transitions.cancel(current.value.task, { now }), "cancelled", {
 *       after: [readyMarkerKey(current.value.task)]          // stale marker deleted after the CAS
 *     }))
 * ```
 *
 * @module
 */
import { Effect, Option, Schedule } from "effect"
import { taskKey } from "../domain/Keys.js"
import type { MalformedObject } from "../domain/QueueError.js"
import { shardOf } from "../domain/Shard.js"
import { OutcomeUnknown, PreconditionFailed, StorageUnavailable } from "../domain/StorageError.js"
import type { StorageReadError } from "../domain/StorageError.js"
import { flowRecoverAt } from "../domain/Flows.js"
import { neededMarker } from "../domain/Markers.js"
import type { Task } from "../domain/Task.js"
import { decodeTaskBody, encodeTaskBody } from "../domain/TaskJson.js"
import { Storage } from "../services/Storage.js"
import { retryOnFailure } from "./TransientRetry.js"

/** A task with the ETag it was read (or written) with: what a CAS needs. */
export interface VersionedTask {
  readonly task: Task
  readonly etag: string
}

/** The key of a task object, from its stored shard. */
export const keyOfTask = (task: Task): string => taskKey(task.shard, task.id)

/** The key of a task object, from its id and the queue's shard prefix length. */
export const keyOfTaskId = (taskId: string, shardPrefixLen: number): string =>
  taskKey(shardOf(taskId, shardPrefixLen), taskId)

const empty = new Uint8Array(0)

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** The JSON body a task is stored with (its Schema's encoding, without the interpreter: domain/TaskJson.ts). */
export const encodeTask = (task: Task): Uint8Array => encodeTaskBody(task)

/**
 * Reads and decodes the task at `key`; none if missing, `MalformedObject` (naming the key) if it
 * does not decode or its body does not belong to the key (another id or shard, foreign payload refs).
 */
export const readTask = Effect.fnUntraced(function*(key: string) {
  const storage = yield* Storage
  const found = yield* storage.get(key)
  if (Option.isNone(found)) return Option.none<VersionedTask>()
  const task = yield* decodeTaskBody(key, found.value.body)
  return Option.some<VersionedTask>({ task, etag: found.value.etag })
})

/** Options of a conditional write. */
export interface ConditionalWriteOptions {
  /**
   * How to retry the re-read that resolves an ambiguous outcome when that read fails transiently
   * (default: not at all — the write then fails with `StorageUnavailable`, its outcome unknown).
   * Only the read is repeated, never the write: a write that may have landed is not sent again.
   */
  readonly resolveRetry?: Schedule.Schedule<unknown, unknown> | undefined
}

/**
 * How many times a create whose answer was lost and which did not land is sent again before it is
 * `StorageUnavailable`.
 */
const createResends = 2

/**
 * After an ambiguous write: did our body land? Re-read and compare bytes. Returns the ETag if
 * it did; fails with `PreconditionFailed` if someone else's body is there, or (a CAS) nothing.
 * A create that finds nothing did not land: no one wrote anything, so it is not a lost race
 * (callers take that for "the id exists" and drop the write). It is sent again (If-None-Match
 * still guards it; a delayed first copy landing later loses to it or is it, the same bytes), and
 * `StorageUnavailable` if it still does not land.
 */
const resolveAmbiguous = (
  key: string,
  body: Uint8Array,
  condition: { readonly ifNoneMatch: "*" } | { readonly ifMatch: string },
  retry: Schedule.Schedule<unknown, unknown> | undefined,
  resends: number
): Effect.Effect<string, PreconditionFailed | StorageReadError, Storage> =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const read = storage.get(key)
    const now = yield* (retry === undefined ? read : Effect.retry(read, { schedule: retry, while: (e) => e._tag === "StorageUnavailable" }))
    if (Option.isSome(now) && sameBytes(now.value.body, body)) return now.value.etag
    if (Option.isSome(now) || !("ifNoneMatch" in condition)) {
      return yield* new PreconditionFailed({ key, message: `${key}: an ambiguous write did not land (re-read shows other content)` })
    }
    if (resends === 0) {
      return yield* new StorageUnavailable({ operation: "PutObject", key, message: `${key}: a create whose answer was lost did not land; try again` })
    }
    return yield* storage.put(key, body, condition).pipe(
      Effect.catchTags({
        OutcomeUnknown: () => resolveAmbiguous(key, body, condition, retry, resends - 1),
        // something is there now: ours (the first copy, landed late) or another writer's
        PreconditionFailed: () => resolveAmbiguous(key, body, condition, retry, resends - 1)
      })
    )
  })

/**
 * A conditional PUT whose ambiguous outcome (`OutcomeUnknown`) is resolved by re-reading: the
 * result is the new ETag, or `PreconditionFailed` if the condition lost.
 */
export const putConditional = Effect.fnUntraced(function*(
  key: string,
  body: Uint8Array,
  condition: { readonly ifNoneMatch: "*" } | { readonly ifMatch: string },
  options?: ConditionalWriteOptions
) {
  const storage = yield* Storage
  return yield* storage.put(key, body, condition).pipe(
    Effect.catchTag("OutcomeUnknown", () => resolveAmbiguous(key, body, condition, options?.resolveRetry, createResends))
  )
})

/** Creates the task object with `If-None-Match: *`; `PreconditionFailed` if the id exists. */
export const createTask = (task: Task) => putConditional(keyOfTask(task), encodeTask(task), { ifNoneMatch: "*" })

/** CASes the task object with `If-Match: etag`; `PreconditionFailed` if it changed since. */
export const casTask = (task: Task, etag: string, options?: ConditionalWriteOptions) =>
  putConditional(keyOfTask(task), encodeTask(task), { ifMatch: etag }, options)

/** `{ times: 3 }` of `Effect.retry`: three more sends, at once. */
const plainPutResends = Schedule.recurs(3)

const isOutcomeUnknown = (e: { readonly _tag: string }): boolean => e._tag === "OutcomeUnknown"

/**
 * An unconditional PUT (markers, payloads, schemas): repeating it is harmless, so an ambiguous
 * outcome is simply retried; a backend that keeps answering that way is unavailable.
 */
export const putPlain = Effect.fnUntraced(function*(key: string, body: Uint8Array) {
  const storage = yield* Storage
  return yield* retryOnFailure(storage.put(key, body), { schedule: plainPutResends, while: isOutcomeUnknown }).pipe(
    Effect.catchTags({
      OutcomeUnknown: (e) => Effect.fail(new StorageUnavailable({ operation: "PutObject", key, message: e.message })),
      PreconditionFailed: (e) => Effect.fail(new StorageUnavailable({ operation: "PutObject", key, message: e.message }))
    })
  )
})

/** Writes an empty index marker (ready or lease). Markers are hints; a stale one is harmless. */
export const writeMarker = (key: string) => putPlain(key, empty)

/** Deletes index markers (missing ones are fine). */
export const deleteMarkers = Effect.fnUntraced(function*(keys: ReadonlyArray<string>) {
  const unique = [...new Set(keys)]
  if (unique.length === 0) return
  const storage = yield* Storage
  yield* unique.length === 1 ? storage.delete(unique[0]!) : storage.deleteMany(unique)
})

/** What a decision in {@link updateTask} does. */
export type TaskUpdate<A> =
  /** No write: return `result`. */
  | { readonly _tag: "Keep"; readonly result: A }
  /** CAS `task`; write marker keys `before` first (so the task is findable), delete `after` once it landed. */
  | {
    readonly _tag: "Write"
    readonly task: Task
    readonly result: A
    readonly before: ReadonlyArray<string>
    readonly after: ReadonlyArray<string>
  }

/** Decide not to write. */
export const keep = <A>(result: A): TaskUpdate<A> => ({ _tag: "Keep", result })

/** Decide to CAS `task`, with markers to write before and delete after. */
export const write = <A>(
  task: Task,
  result: A,
  markers: { readonly before?: ReadonlyArray<string>; readonly after?: ReadonlyArray<string> } = {}
): TaskUpdate<A> => ({ _tag: "Write", task, result, before: markers.before ?? [], after: markers.after ?? [] })

/** How many lost CAS rounds {@link updateTask} tolerates before giving up (heavy contention on one task). */
export const maxUpdateRounds = 50

/**
 * Read → decide → CAS, repeated with fresh data when the CAS loses (someone else changed the task),
 * so a concurrent update is never lost and never overwritten. `decide` is pure and may run several
 * times; it sees the task and its ETag (or none). Markers in `before` are written before the CAS;
 * markers in `after` (those the old state needed and the new one does not) are deleted after it.
 * Returns the decision's result and the task as stored afterwards.
 */
export const updateTask = <A, E = never>(
  key: string,
  decide: (current: Option.Option<VersionedTask>) => TaskUpdate<A> | Effect.Effect<TaskUpdate<A>, E>
): Effect.Effect<
  { readonly result: A; readonly current: Option.Option<VersionedTask> },
  E | StorageReadError | MalformedObject,
  Storage
> =>
  Effect.gen(function*() {
    for (let round = 0; round < maxUpdateRounds; round++) {
      const current = yield* readTask(key)
      const decided = decide(current)
      const decision = Effect.isEffect(decided) ? yield* decided : decided
      if (decision._tag === "Keep") return { result: decision.result, current }
      if (Option.isNone(current)) {
        return yield* Effect.dieMessage(`updateTask(${key}): a decision wrote a task that does not exist; use createTask`)
      }
      // A transition that leaves a flow's work owed (a child ended; domain/Flows.ts) writes the
      // recovery marker that work now needs first, whichever protocol made it (invariant 2).
      const flowMarker = flowRecoverAt(decision.task) !== undefined ? neededMarker(decision.task) : undefined
      const before = flowMarker === undefined || flowMarker === neededMarker(current.value.task) || decision.before.includes(flowMarker)
        ? decision.before
        : [...decision.before, flowMarker]
      for (const marker of before) yield* writeMarker(marker)
      const etag = yield* casTask(decision.task, current.value.etag).pipe(
        Effect.map(Option.some),
        Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<string>()))
      )
      if (Option.isNone(etag)) continue
      const stillNeeded = neededMarker(decision.task)
      const stale = decision.after.filter((m) => !before.includes(m) && m !== stillNeeded)
      yield* deleteMarkers(stale)
      return { result: decision.result, current: Option.some<VersionedTask>({ task: decision.task, etag: etag.value }) }
    }
    return yield* new StorageUnavailable({
      operation: "PutObject",
      key,
      message: `${key} changed ${maxUpdateRounds} times while we tried to update it; try again later`
    })
  })

// Re-exported so callers can match on the storage failures without another import.
export { OutcomeUnknown, PreconditionFailed }
