/**
 * Reading every worker record `workers/{id}.json` (one LIST, one GET per record), as
 * `buquet workers`, `buquet list` / `get` and the Queue's `typeCoverage` see them. A record that
 * does not decode is reported with its key and left out; a failed read fails the whole read.
 *
 * @module
 */
import { Chunk, Effect, Either, Option, Stream } from "effect"
import { workersPrefix } from "../domain/Keys.js"
import type { MalformedObject } from "../domain/QueueError.js"
import type { StorageReadError } from "../domain/StorageError.js"
import { decodeWorkerRecordAt, WorkerView } from "../domain/WorkerRecord.js"
import { Storage } from "../services/Storage.js"

/** The decodable records and the keys of those that are not. */
export interface WorkerRecords {
  readonly records: ReadonlyArray<WorkerView>
  readonly malformed: ReadonlyArray<MalformedObject>
}

/** Reads every worker record (eight GETs at a time). */
export const readWorkerRecords: Effect.Effect<WorkerRecords, StorageReadError, Storage> = Effect.gen(function*() {
  const storage = yield* Storage
  const metas = Chunk.toReadonlyArray(yield* Stream.runCollect(storage.listAll(workersPrefix)))
  const read = yield* Effect.forEach(
    metas.filter((m) => m.key.endsWith(".json")),
    (m) =>
      storage.get(m.key).pipe(
        Effect.flatMap(Option.match({
          // deleted between the LIST and the GET: the worker stopped
          onNone: () => Effect.succeed(Option.none<Either.Either<WorkerView, MalformedObject>>()),
          onSome: (obj) => decodeWorkerRecordAt(WorkerView, (w) => w.workerId)(m.key, obj.body).pipe(Effect.either, Effect.map(Option.some))
        }))
      ),
    { concurrency: 8 }
  ).pipe(Effect.map((xs) => xs.flatMap(Option.toArray)))
  return {
    records: read.flatMap((r) => (Either.isRight(r) ? [r.right] : [])),
    malformed: read.flatMap((r) => (Either.isLeft(r) ? [r.left] : []))
  }
})
