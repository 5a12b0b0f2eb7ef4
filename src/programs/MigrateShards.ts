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
 * are deleted too. Tasks that appear at the old length while the run goes on (an old-layout
 * producer) are picked up by planning again until a plan comes back empty, and idempotency records
 * naming an old-length task key are rewritten (CAS) to the new key, so a same-key resubmit finds
 * the moved task.
 *
 * **The fleet must be stopped.** Step 4 is a re-read then a DELETE; a worker settling the task in
 * between would be undone (the new copy keeps the earlier state), and RGW ignores a conditional
 * DELETE, so the tool cannot close that window itself. `execute` therefore refuses while a worker
 * record has been written within the health window (3 min) or a leader lease (monitor, scheduler)
 * is held, naming them; `force` overrides that for an operator who knows they are dead.
 *
 * @module
 */
import { Chunk, DateTime, Duration, Effect, Either, Option, Schema, Stream } from "effect"
import { decodeObject, encodeObject } from "../domain/Codec.js"
import { IdempotencyRecord } from "../domain/Idempotency.js"
import { taskKey } from "../domain/Keys.js"
import { neededMarker } from "../domain/Markers.js"
import { shardOf } from "../domain/Shard.js"
import { decodeTask, Task } from "../domain/Task.js"
import { healthyWithin } from "../domain/WorkerRecord.js"
import { ServerClock } from "../services/ServerClock.js"
import { retryTransient } from "../protocol/TransientRetry.js"
import { Storage } from "../services/Storage.js"
import { LeaderLeaseRecord } from "./LeaderLease.js"
import { workersPrefix } from "./monitor/WorkerHealth.js"

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

/**
 * `execute` refused: workers or leaders look alive, and moving tasks under them can undo their
 * transitions. The message names them and says what to do.
 *
 * @since 0.1.0
 * @category errors
 */
export class FleetRunning extends Schema.TaggedError<FleetRunning>()("FleetRunning", {
  /** Workers whose record was written within the health window. */
  workers: Schema.Array(Schema.String),
  /** Leader elections (`monitor`, `scheduler`, …) whose lease is held. */
  leaders: Schema.Array(Schema.String),
  message: Schema.String
}) {}

/** The result of an executed migration. */
export interface MigrationResult {
  readonly moved: number
  /** Tasks that vanished between the listing and the move (deleted by someone else). */
  readonly vanished: number
  readonly markersDeleted: number
  /** Idempotency records rewritten to name the task's new key. */
  readonly recordsRewritten: number
  /** Tasks that could not be moved, with why (run again to retry them). */
  readonly failed: ReadonlyArray<{ readonly taskId: string; readonly message: string }>
}

const leaderPrefix = "control/leader/"

/**
 * Who looks alive: workers whose record was written within the health window (by server time, from
 * the LIST's Last-Modified), and leader leases not released and not yet expired. Unreadable lease
 * records count as held (we cannot tell, so we do not guess).
 */
export const liveFleet = Effect.fn("MigrateShards.liveFleet")(function*() {
  const storage = yield* Storage
  const clock = yield* ServerClock
  const now = yield* clock.currentTimeMillis
  const workers: Array<string> = []
  for (const meta of yield* Stream.runCollect(storage.listAll(workersPrefix)).pipe(Effect.map(Chunk.toReadonlyArray))) {
    if (!meta.key.endsWith(".json")) continue
    if (now - DateTime.toEpochMillis(meta.lastModified) < Duration.toMillis(healthyWithin)) {
      workers.push(meta.key.slice(workersPrefix.length, -".json".length))
    }
  }
  const leaders: Array<string> = []
  for (const meta of yield* Stream.runCollect(storage.listAll(leaderPrefix)).pipe(Effect.map(Chunk.toReadonlyArray))) {
    if (!meta.key.endsWith(".json")) continue
    const name = meta.key.slice(leaderPrefix.length, -".json".length)
    const got = yield* storage.get(meta.key)
    if (Option.isNone(got)) continue
    const rec = yield* Effect.option(decodeObject(LeaderLeaseRecord, meta.key, got.value.body))
    if (Option.isSome(rec) && (rec.value.released || DateTime.toEpochMillis(rec.value.expiresAt) <= now)) continue
    leaders.push(name)
  }
  return { workers, leaders }
})

const taskKeyPattern = /^tasks\/([0-9a-f]{1,4})\/([0-9a-f-]{36})\.json$/
const markerPattern = /^(ready|leases)\/([0-9a-f]{1,4})\/(?:!\d{4}\/)?\d{10}\/([0-9a-f-]{36})$/

const keysUnder = (prefix: string) =>
  Effect.flatMap(Storage, (s) => retryTransient(Stream.runCollect(s.listAll(prefix)))).pipe(
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
      const current = yield* retryTransient(storage.get(move.fromKey))
      if (Option.isNone(current)) return Either.right(false)
      const task = yield* decodeTask(move.fromKey, current.value.body)
      const moved = new Task({ ...task, shard: shardOf(task.id, to) })
      // findable first: the one marker the task needs at its new shard (a pending task's ready marker,
      // a running one's lease marker, and the lease-bucket marker recovery needs for an ended task's
      // follow-ups or flow report; none for a flow's waiting parent)
      const marker = neededMarker(moved)
      if (marker !== undefined) yield* retryTransient(storage.put(marker, new Uint8Array(0)))
      const body = encodeObject(Task, moved)
      // a resend that finds its own first copy there gets PreconditionFailed: brought up to date below
      const created = yield* Effect.either(retryTransient(storage.put(move.toKey, body, { ifNoneMatch: "*" })))
      if (Either.isLeft(created)) {
        if (created.left._tag !== "PreconditionFailed") return yield* created.left
        // a copy from an interrupted run: bring it up to date
        const existing = yield* retryTransient(storage.get(move.toKey))
        if (Option.isSome(existing)) {
          const cas = yield* Effect.either(retryTransient(storage.put(move.toKey, body, { ifMatch: existing.value.etag })))
          if (Either.isLeft(cas)) continue
        }
      }
      // the old object must not have changed since we read it, else copy again
      const after = yield* retryTransient(storage.head(move.fromKey))
      if (Option.isSome(after) && after.value.etag !== current.value.etag) continue
      yield* retryTransient(storage.delete(move.fromKey))
      const old = oldMarkers.filter((k) => k.endsWith(`/${task.id}`))
      if (old.length > 0) yield* retryTransient(storage.deleteMany(old))
      return Either.right(true)
    }
    return Either.left(`task ${move.taskId} kept changing during the move; run the migration again`)
  }).pipe(Effect.catchAll((e) => Effect.succeed(Either.left(`task ${move.taskId}: ${e.message}`))))

/** Rewrites every live idempotency record naming an old-length task key; returns how many. */
const rewriteRecords = (from: number, to: number) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    let rewritten = 0
    for (const key of yield* keysUnder("idempotency/")) {
      for (let round = 0; round < maxRounds; round++) {
        const got = yield* retryTransient(storage.get(key))
        if (Option.isNone(got)) break
        // an unreadable record is not ours to fix here (the submit path treats it as free)
        const rec = yield* Effect.option(decodeObject(IdempotencyRecord, key, got.value.body))
        if (Option.isNone(rec)) break
        const m = taskKeyPattern.exec(rec.value.taskKey)
        if (m === null || m[1]!.length !== from || m[2] !== rec.value.taskId) break
        const updated = new IdempotencyRecord({ ...rec.value, taskKey: taskKey(shardOf(rec.value.taskId, to), rec.value.taskId) })
        const cas = yield* Effect.either(retryTransient(storage.put(key, encodeObject(IdempotencyRecord, updated), { ifMatch: got.value.etag })))
        if (Either.isRight(cas)) {
          rewritten++
          break
        }
        if (cas.left._tag !== "PreconditionFailed") return yield* cas.left
      }
    }
    return rewritten
  })

/** Most plans made in one run: later ones pick up tasks that old-layout producers wrote meanwhile. */
const maxPlans = 5

/**
 * Executes a plan with bounded concurrency, calling `onProgress(done, total)` after each task.
 * Markers under old-length shards whose task no longer exists there are deleted at the end of each
 * pass; the old length is planned again until nothing is left there (at most {@link maxPlans}
 * passes); idempotency records are rewritten last. Fails with {@link FleetRunning} while workers or
 * leaders look alive, unless `force`.
 */
export const execute = Effect.fn("MigrateShards.execute")(function*(
  migration: MigrationPlan,
  options: {
    readonly concurrency?: number | undefined
    readonly onProgress?: ((done: number, total: number) => Effect.Effect<void>) | undefined
    /** Move although workers or leaders look alive (the operator knows they are dead). */
    readonly force?: boolean | undefined
  } = {}
) {
  const storage = yield* Storage
  if (options.force !== true) {
    const fleet = yield* liveFleet()
    if (fleet.workers.length > 0 || fleet.leaders.length > 0) {
      const who = [
        ...(fleet.workers.length > 0 ? [`worker(s) ${fleet.workers.join(", ")} sent a heartbeat within the last ${Duration.format(healthyWithin)}`] : []),
        ...(fleet.leaders.length > 0 ? [`leader lease(s) ${fleet.leaders.join(", ")} are held`] : [])
      ]
      return yield* new FleetRunning({
        workers: fleet.workers,
        leaders: fleet.leaders,
        message: `refusing to migrate while the fleet runs: ${who.join("; ")}. A worker settling a task while it moves ` +
          `would be undone. Stop every worker, monitor and scheduler (and producers at the old prefix length), then run ` +
          `again; if they are already dead (killed without deregistering), pass --force`
      })
    }
  }
  let done = 0
  let total = migration.moves.length
  let moved = 0
  let vanished = 0
  let markersDeleted = 0
  const failed: Array<{ taskId: string; message: string }> = []
  let current = migration
  for (let pass = 0; pass < maxPlans; pass++) {
    const failedBefore = failed.length
    yield* Effect.forEach(
      current.moves,
      (move) =>
        Effect.gen(function*() {
          const r = yield* moveOne(move, migration.to, current.oldMarkers)
          if (Either.isLeft(r)) failed.push({ taskId: move.taskId, message: r.left })
          else if (r.right) moved++
          else vanished++
          done++
          if (options.onProgress !== undefined) yield* options.onProgress(done, total)
        }),
      { concurrency: options.concurrency ?? 16, discard: true }
    )
    // leftovers: old-length markers of tasks that are not (or no longer) stored at the old length
    const stillOld = new Set(failed.slice(failedBefore).map((f) => f.taskId))
    const leftovers = current.oldMarkers.filter((k) => !stillOld.has(markerPattern.exec(k)?.[3] ?? ""))
    for (let i = 0; i < leftovers.length; i += 1000) yield* retryTransient(storage.deleteMany(leftovers.slice(i, i + 1000)))
    markersDeleted += leftovers.length
    if (failed.length > failedBefore) break // the caller re-runs; planning again would retry them at once
    // anything written at the old length meanwhile (an old-layout producer) is moved by another pass
    const again = yield* plan(migration.from, migration.to)
    if (again.moves.length === 0 && again.oldMarkers.length === 0) break
    current = again
    total += again.moves.length
  }
  const recordsRewritten = yield* rewriteRecords(migration.from, migration.to)
  return { moved, vanished, markersDeleted, recordsRewritten, failed } satisfies MigrationResult
})
