/**
 * Reading DAG workflow runs for the surfaces (CLI, dashboard, Promise API): which runs exist (one
 * LIST of `workflow/` grouped by `/`, so a run's steps and signals are never listed), each run's
 * state (GET + validation against its key), and a run's signal inbox (its keys only). A run whose
 * state cannot be read is reported, named by its key, and the rest of a listing goes on.
 *
 * @module
 */
import { Chunk, Effect, Either, Option, Schema, Stream } from "effect"
import { MalformedObject } from "../domain/QueueError.js"
import type { StorageReadError } from "../domain/StorageError.js"
import { parseSignalKey, runPrefix, WorkflowRunId, workflowRunsPrefix, workflowStateKey } from "../domain/workflow/RunKeys.js"
import { decodeWorkflowState } from "../domain/workflow/WorkflowState.js"
import type { WorkflowState } from "../domain/workflow/WorkflowState.js"
import { Storage } from "../services/Storage.js"

/** GETs in flight while a listing reads the runs' states. */
const concurrency = 16

/** A stored run: its state and the ETag it was read at. */
export interface StoredRun {
  readonly state: WorkflowState
  readonly etag: string
}

/** What {@link listRuns} found: the readable runs (in key order) and the unreadable ones. */
export interface RunListing {
  readonly runs: ReadonlyArray<StoredRun>
  readonly malformed: ReadonlyArray<MalformedObject>
  /** More runs exist than the `limit` read (their ids sort after the last one read). */
  readonly truncated: boolean
}

/** The run id of a `workflow/{id}/` prefix, or the error naming it when it is not an id's form. */
const idOfPrefix = (prefix: string): Either.Either<string, MalformedObject> => {
  const id = prefix.slice(workflowRunsPrefix.length, -1)
  return Either.mapLeft(
    Schema.decodeUnknownEither(WorkflowRunId)(id),
    () => new MalformedObject({ key: prefix, message: `${prefix} is not a workflow run: its name is not a run id` })
  )
}

/**
 * Reads the run `id`'s state: none when it does not exist; a `MalformedObject` naming the key when
 * it is not a valid state of that run.
 */
export const readRun = (id: string): Effect.Effect<Option.Option<StoredRun>, MalformedObject | StorageReadError, Storage> =>
  Effect.gen(function*() {
    const key = workflowStateKey(id)
    const found = yield* (yield* Storage).get(key)
    if (Option.isNone(found)) return Option.none()
    const state = yield* decodeWorkflowState(key, found.value.body)
    return Option.some({ state, etag: found.value.etag })
  })

/**
 * The runs in the bucket, in id order, up to `limit` (default 1000): one LIST per 1000 run ids and
 * one GET per run read. A prefix that is not a run id and a state that does not decode are in
 * `malformed`; a run prefix without a state (being created or deleted) is left out.
 */
export const listRuns = (options: { readonly limit?: number | undefined } = {}): Effect.Effect<RunListing, StorageReadError, Storage> =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const limit = options.limit ?? 1000
    const prefixes: Array<string> = []
    let token: string | undefined
    do {
      const page = yield* storage.list(workflowRunsPrefix, { delimiter: "/", continuationToken: token })
      prefixes.push(...page.commonPrefixes)
      token = page.nextContinuationToken
    } while (token !== undefined && prefixes.length <= limit)
    const chosen = prefixes.slice(0, limit)
    type Read = Option.Option<Either.Either<StoredRun, MalformedObject>>
    const read = yield* Effect.forEach(chosen, (prefix): Effect.Effect<Read, StorageReadError, Storage> =>
      Either.match(idOfPrefix(prefix), {
        onLeft: (e) => Effect.succeed(Option.some(Either.left(e))),
        onRight: (id) =>
          readRun(id).pipe(
            Effect.map(Option.map((run) => Either.right(run))),
            Effect.catchTag("MalformedObject", (e) => Effect.succeed(Option.some(Either.left(e))))
          )
      }), { concurrency })
    const present = read.flatMap((o) => (Option.isSome(o) ? [o.value] : []))
    return {
      runs: present.flatMap((e) => (Either.isRight(e) ? [e.right] : [])),
      malformed: present.flatMap((e) => (Either.isLeft(e) ? [e.left] : [])),
      truncated: prefixes.length > limit || token !== undefined
    }
  })

/** One signal of a run's inbox, as its key names it. */
export interface SignalEntry {
  readonly key: string
  readonly name: string
  /** The key's timestamp part (when it was sent). */
  readonly ts: string
  readonly signalId: string
  /** The key after `signals/{name}/`: what the run's cursor for `name` is compared with. */
  readonly suffix: string
}

/**
 * The signals of run `id`, in key order (by name, then by time): LISTs only, no bodies read. A
 * key that is not a signal's form is in `malformed`.
 */
export const listSignals = (
  id: string
): Effect.Effect<{ readonly signals: ReadonlyArray<SignalEntry>; readonly malformed: ReadonlyArray<MalformedObject> }, StorageReadError, Storage> =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const objects = yield* storage.listAll(`${runPrefix(id)}signals/`).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
    const signals: Array<SignalEntry> = []
    const malformed: Array<MalformedObject> = []
    for (const o of objects) {
      const parsed = parseSignalKey(o.key)
      if (parsed === undefined || parsed.workflowId !== id) {
        malformed.push(new MalformedObject({ key: o.key, message: `${o.key} is not a signal of run ${id} (workflow/{id}/signals/{name}/{ts}_{uuid}.json)` }))
        continue
      }
      signals.push({ key: o.key, name: parsed.name, ts: parsed.ts, signalId: parsed.signalId, suffix: `${parsed.ts}_${parsed.signalId}.json` })
    }
    return { signals, malformed }
  })
