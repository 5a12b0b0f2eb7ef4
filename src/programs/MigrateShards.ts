/**
 * `buquet migrate-shards`: moves every task from one shard prefix length to another. For each task
 * stored under a shard of the old length:
 *
 * 1. GET it (body + ETag) and rewrite its own `shard` field (the reference left it stale);
 * 2. write the marker that makes it findable at the new shard (ready marker of a pending task,
 *    lease marker of a running one) — before the task, as every protocol does;
 * 3. create-only PUT of the task at the new key (an existing copy from an interrupted run is
 *    brought up to date by CAS);
 * 4. re-read the old object: if it changed meanwhile (a worker settled it), go back to 1;
 *    otherwise delete it, then its old markers.
 *
 * Every step is idempotent, so an interrupted run is finished by running it again, and a run with
 * nothing under the old length finds nothing to do. Old-length markers whose task is already gone
 * are deleted too.
 *
 * @module
 */
import { Chunk, Effect, Either, Option, Stream } from "effect"
import { decodeObject, encodeObject } from "../domain/Codec.js"
import { taskKey } from "../domain/Keys.js"
import { leaseMarkerKey, readyMarkerKey } from "../domain/ReadyIndex.js"
import { shardOf } from "../domain/Shard.js"
import { Task } from "../domain/Task.js"
import { Storage } from "../services/Storage.js"

/** One planned move. */
export interface ShardMove {
  readonly taskId: string
  readonly fromKey: string
  readonly toKey: string
}

/** What a migration would do (dry run) or did. */
export interface MigrationPlan {
  readonly from: number
  readonly to: number
  /** Tasks stored under a shard of the old length. */
  readonly moves: ReadonlyArray<ShardMove>
  /** Ready/lease markers under old-length shards. */
  readonly oldMarkers: ReadonlyArray<string>
}

/** The result of an executed migration. */
export interface MigrationResult {
  readonly moved: number
  /** Tasks that vanished between the listing and the move (deleted by someone else). */
  readonly vanished: number
  readonly markersDeleted: number
  /** Tasks that could not be moved, with why (run again to retry them). */
  readonly failed: ReadonlyArray<{ readonly taskId: string; readonly message: string }>
}

const taskKeyPattern = /^tasks\/([0-9a-f]{1,4})\/([0-9a-f-]{36})\.json$/
const markerPattern = /^(ready|leases)\/([0-9a-f]{1,4})\/(?:!\d{4}\/)?\d{10}\/([0-9a-f-]{36})$/

const keysUnder = (prefix: string) =>
  Effect.flatMap(Storage, (s) => Stream.runCollect(s.listAll(prefix))).pipe(
    Effect.map((c) => Chunk.toReadonlyArray(c).map((m) => m.key))
  )

/** Lists what would move from prefix length `from` to `to`. */
export const plan = Effect.fn("MigrateShards.plan")(function*(from: number, to: number) {
  const moves: Array<ShardMove> = []
  for (const key of yield* keysUnder("tasks/")) {
    const m = taskKeyPattern.exec(key)
    if (m === null || m[1]!.length !== from) continue
    const id = m[2]!
    moves.push({ taskId: id, fromKey: key, toKey: taskKey(shardOf(id, to), id) })
  }
  const markers = [...(yield* keysUnder("ready/")), ...(yield* keysUnder("leases/"))].filter((k) => {
    const m = markerPattern.exec(k)
    return m !== null && m[2]!.length === from
  })
  return { from, to, moves, oldMarkers: markers } satisfies MigrationPlan
})

/** Most times one task is re-copied because it kept changing under the move. */
const maxRounds = 20

/** Moves one task; Right(true) moved, Right(false) vanished, Left(message) failed. */
const moveOne = (move: ShardMove, to: number, oldMarkers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    for (let round = 0; round < maxRounds; round++) {
      const current = yield* storage.get(move.fromKey)
      if (Option.isNone(current)) return Either.right(false)
      const task = yield* decodeObject(Task, move.fromKey, current.value.body)
      const moved = new Task({ ...task, shard: shardOf(task.id, to) })
      // findable first: the marker the task's status needs at its new shard
      const marker = moved.status === "pending" ? readyMarkerKey(moved) : moved.status === "running" ? leaseMarkerKey(moved) : undefined
      if (marker !== undefined) yield* storage.put(marker, new Uint8Array(0))
      const body = encodeObject(Task, moved)
      const created = yield* Effect.either(storage.put(move.toKey, body, { ifNoneMatch: "*" }))
      if (Either.isLeft(created)) {
        if (created.left._tag !== "PreconditionFailed") return yield* created.left
        // a copy from an interrupted run: bring it up to date
        const existing = yield* storage.get(move.toKey)
        if (Option.isSome(existing)) {
          const cas = yield* Effect.either(storage.put(move.toKey, body, { ifMatch: existing.value.etag }))
          if (Either.isLeft(cas)) continue
        }
      }
      // the old object must not have changed since we read it, else copy again
      const after = yield* storage.head(move.fromKey)
      if (Option.isSome(after) && after.value.etag !== current.value.etag) continue
      yield* storage.delete(move.fromKey)
      const old = oldMarkers.filter((k) => k.endsWith(`/${task.id}`))
      if (old.length > 0) yield* storage.deleteMany(old)
      return Either.right(true)
    }
    return Either.left(`task ${move.taskId} kept changing during the move; run the migration again`)
  }).pipe(Effect.catchAll((e) => Effect.succeed(Either.left(`task ${move.taskId}: ${e.message}`))))

/**
 * Executes a plan with bounded concurrency, calling `onProgress(done, total)` after each task.
 * Markers under old-length shards whose task no longer exists there are deleted at the end.
 */
export const execute = Effect.fn("MigrateShards.execute")(function*(
  migration: MigrationPlan,
  options: { readonly concurrency?: number | undefined; readonly onProgress?: ((done: number, total: number) => Effect.Effect<void>) | undefined } = {}
) {
  const storage = yield* Storage
  let done = 0
  let moved = 0
  let vanished = 0
  const failed: Array<{ taskId: string; message: string }> = []
  yield* Effect.forEach(
    migration.moves,
    (move) =>
      Effect.gen(function*() {
        const r = yield* moveOne(move, migration.to, migration.oldMarkers)
        if (Either.isLeft(r)) failed.push({ taskId: move.taskId, message: r.left })
        else if (r.right) moved++
        else vanished++
        done++
        if (options.onProgress !== undefined) yield* options.onProgress(done, migration.moves.length)
      }),
    { concurrency: options.concurrency ?? 16, discard: true }
  )
  // leftovers: old-length markers of tasks that are not (or no longer) stored at the old length
  const stillOld = new Set(failed.map((f) => f.taskId))
  const leftovers = migration.oldMarkers.filter((k) => !stillOld.has(markerPattern.exec(k)?.[3] ?? ""))
  for (let i = 0; i < leftovers.length; i += 1000) yield* storage.deleteMany(leftovers.slice(i, i + 1000))
  return { moved, vanished, markersDeleted: leftovers.length, failed } satisfies MigrationResult
})
