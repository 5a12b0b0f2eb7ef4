/**
 * The LeaseManager layer: task-lease recovery and shard leases on Storage and ServerClock
 * (see `services/LeaseManager.ts` for the contract).
 *
 * Lease recovery is ONE walk of `leases/` in key order, which covers every shard of every prefix
 * length (the reference LISTs 16 hard-coded shards: trap 5.2 #6). Keys of one shard are contiguous
 * and sorted by bucket, so the first marker of a shard in a future bucket means the rest of that
 * shard is future too: those are skipped without a GET, and when a page ends inside such a region
 * the next LIST jumps past the shard with `startAfter = leases/{shard}/~`. Only markers in buckets
 * that have begun to expire (past buckets and the current one) cost a GET: the current bucket is
 * included so that a lease is recovered within one period of its expiry, not one minute later.
 *
 * Shard leases are conditional writes only. Liveness of group members comes from the
 * Last-Modified of their announcement objects in one LIST (no GET per member).
 *
 * @module
 */
import { DateTime, Duration, Effect, Layer, Option, Random, Schema } from "effect"
import { decodeObject, encodeObject } from "../domain/Codec.js"
import { controlKey, leasesPrefix, parseIndexKey, shardLeaseKey, taskKey } from "../domain/Keys.js"
import { InvalidArgument } from "../domain/QueueError.js"
import { readyMarkerKey } from "../domain/ReadyIndex.js"
import { isShardLeaseExpired, isValidWorkerId, ShardLease } from "../domain/ShardLease.js"
import { Task, Timestamp } from "../domain/Task.js"
import * as Tr from "../domain/Transitions.js"
import { bucketEndMillis, bucketMarginMillis, isBucketClosed, isDeletable, leaseMarkerOf, neededMarker, orphanGraceMillis, ownerOf, recoveryDueAt } from "../domain/Markers.js"
import {
  type AcquireResult,
  type HeldShardLease,
  LeaseManager,
  type LeaseManagerService,
  type RecoveryOptions,
  type RecoveryReport,
  type ReleaseOutcome,
  type ShardMember,
  type TaskRecoveryOutcome
} from "../services/LeaseManager.js"
import * as Metrics from "../services/Metrics.js"
import { ServerClock } from "../services/ServerClock.js"
import * as NewTask from "../protocol/NewTask.js"
import { Storage } from "../services/Storage.js"
import { retryTransient } from "../protocol/TransientRetry.js"
import { isRecoverableAt, unmaterialized } from "../domain/FollowUps.js"
import { materialize } from "../protocol/FollowUps.js"
import { flowRecoverAt } from "../domain/Flows.js"
import { runFlowWork } from "../protocol/Flows.js"
import { touchOnce } from "../protocol/WakeUp.js"
import {
  casTask,
  deleteMarkers,
  keep,
  putConditional,
  putPlain,
  readTask,
  updateTask,
  type VersionedTask,
  write,
  writeMarker
} from "../protocol/TaskObjects.js"

/** Prefix of the shard-leasing group's announcements: `control/shard-members/{worker_id}.json`. */
export const shardMembersPrefix: string = controlKey("shard-members/")

/** The announcement key of a member. */
export const shardMemberKey = (workerId: string): string => `${shardMembersPrefix}${workerId}.json`

/**
 * A member's announcement: liveness is read from its Last-Modified; the body says which task types
 * it handles (so the split can cover every type). The body stays the same from one renewal to the
 * next (no timestamp in it), so its ETag does too and members are read only when one changes.
 */
export class ShardMemberRecord extends Schema.Class<ShardMemberRecord>("ShardMemberRecord")({
  workerId: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("worker_id")),
  /** Written by earlier versions only. */
  updatedAt: Schema.optionalWith(Timestamp, { exact: true }).pipe(Schema.fromKey("updated_at")),
  ttlSeconds: Schema.propertySignature(Schema.Number).pipe(Schema.fromKey("ttl_seconds")),
  taskTypes: Schema.optionalWith(Schema.Array(Schema.String), { exact: true }).pipe(Schema.fromKey("task_types"))
}) {}

const clampPage = (n: number | undefined, fallback: number): number =>
  Math.max(1, Math.min(1000, Math.floor(n ?? fallback)))

/** Builds the LeaseManager on the Storage and ServerClock in context. */
export const make = Effect.gen(function*() {
  const storage = yield* Storage
  const clock = yield* ServerClock
  const provide = <A, E>(self: Effect.Effect<A, E, Storage>) => Effect.provideService(self, Storage, storage)
  const uncertaintyMillis = Effect.map(clock.estimate, (e) => Duration.toMillis(e.uncertainty))
  // Follow-ups created by recovery wake idle workers, as a submit does.
  const wakeUp = { touch: touchOnce(storage) }

  /** The earliest the server's time can be, given the estimate `now` and its uncertainty. */
  const earliest = (now: DateTime.Utc, marginMillis: number): DateTime.Utc =>
    DateTime.unsafeMake(DateTime.toEpochMillis(now) - Math.max(0, marginMillis))

  // --- task leases ----------------------------------------------------------------------------

  const outcomeOf = (next: Task): TaskRecoveryOutcome =>
    next.status === "pending" ? "retried" : next.status === "cancelled" ? "cancelled" : "failed"

  /**
   * Whether a running task's lease has surely ended: judged by the earliest the server's time can
   * be (the estimate minus its uncertainty), as the leader and shard leases are, so a monitor whose
   * estimate runs ahead (one slow sample, a stepped host clock) never takes a live worker's lease.
   */
  const surelyExpired = (task: Task, now: DateTime.Utc, marginMillis: number): boolean =>
    Number.isFinite(marginMillis) &&
    Tr.canRecoverLease(task, DateTime.unsafeMake(DateTime.toEpochMillis(now) - Math.max(0, marginMillis)))

  /**
   * The recovery decision on a task as read: the next task, the ready marker to write BEFORE the
   * CAS (so the retried task is claimable the moment it lands), and the old lease marker to
   * delete after it — only once its bucket is closed, so a new claim's marker is never lost.
   */
  const decideRecovery = (current: VersionedTask, now: DateTime.Utc, marginMillis: number, random: number) => {
    const task = current.task
    if (task.status !== "running") return keep<TaskRecoveryOutcome>("not_running")
    if (!surelyExpired(task, now, marginMillis)) return keep<TaskRecoveryOutcome>("not_expired")
    const recovered = Tr.recoverExpiredLease(task, { now, random })
    const next = recovered.status === "pending"
      ? new Task({ ...recovered, availableAt: recoveryDueAt(task, recovered.availableAt) })
      : recovered
    const old = leaseMarkerOf(task)
    const oldBucket = old === undefined ? undefined : parseIndexKey(old)?.bucket
    // (kept when the ended task still needs it: a flow's child whose parent is not told yet)
    const after = old !== undefined && oldBucket !== undefined && isBucketClosed(oldBucket, DateTime.toEpochMillis(now)) &&
        old !== neededMarker(next)
      ? [old]
      : []
    return write<TaskRecoveryOutcome>(next, outcomeOf(next), {
      before: next.status === "pending" ? [readyMarkerKey(next)] : [],
      after
    })
  }

  const drawRandom = (random: Effect.Effect<number> | undefined) => random ?? Random.next

  /**
   * The metrics of a recovery that landed: `buquet_tasks_timeout_recovered_total`, plus what the
   * task became (a retried attempt, failed for good with reason `timeout`, or cancelled).
   */
  const recordRecovery = (taskType: string, outcome: TaskRecoveryOutcome): Effect.Effect<void> => {
    switch (outcome) {
      case "retried":
        return Effect.zipRight(Metrics.recordTimeoutRecovered, Metrics.recordRetried(taskType))
      case "failed":
        return Effect.zipRight(Metrics.recordTimeoutRecovered, Metrics.recordFailed(taskType, "timeout"))
      case "cancelled":
        return Effect.zipRight(Metrics.recordTimeoutRecovered, Metrics.recordCancelled(taskType))
      default:
        return Effect.void
    }
  }

  /**
   * A recovered task that ended a flow's child tells its parent now (domain/Flows.ts); if this
   * fails, the lease marker it still needs brings the next walk back to it.
   */
  const tellParent = (held: VersionedTask) =>
    flowRecoverAt(held.task) === undefined ? Effect.void : provide(Effect.provideService(runFlowWork(held, wakeUp.touch), ServerClock, clock)).pipe(
      Effect.asVoid,
      Effect.catchAll((e) => Effect.logWarning(`lease recovery: flow parent of ${held.task.id} not told yet (the next walk will): ${e.message}`))
    )

  /**
   * A retried task whose CAS landed after its ready marker's minute was over (a paused monitor):
   * a sweeper that read it still running may be deleting that marker (NewTask.keepFindable).
   */
  const keepFindable = (landed: VersionedTask) => provide(Effect.provideService(NewTask.keepFindable(landed), ServerClock, clock))

  const recoverTask = Effect.fn("LeaseManager.recoverTask")(function*(
    key: string,
    options?: { readonly random?: Effect.Effect<number> | undefined }
  ) {
    const now = yield* clock.now
    const margin = yield* uncertaintyMillis
    const r = yield* drawRandom(options?.random)
    const { current, result } = yield* provide(updateTask<TaskRecoveryOutcome>(key, (found) =>
      Option.isNone(found) ? keep<TaskRecoveryOutcome>("missing") : decideRecovery(found.value, now, margin, r)))
    if (Option.isSome(current)) {
      if (result === "retried") yield* keepFindable(current.value)
      yield* recordRecovery(current.value.task.taskType, result)
      yield* tellParent(current.value)
    }
    return result
  })

  /** Recovery from a version we have just read: CAS with its ETag (no second GET); on a lost race, re-read and re-decide. */
  const recoverFrom = (
    current: VersionedTask,
    now: DateTime.Utc,
    marginMillis: number,
    random: Effect.Effect<number> | undefined
  ) =>
    Effect.gen(function*() {
      const r = yield* drawRandom(random)
      const decision = decideRecovery(current, now, marginMillis, r)
      if (decision._tag === "Keep") return decision.result
      for (const marker of decision.before) yield* provide(writeMarker(marker))
      const landed = yield* provide(casTask(decision.task, current.etag)).pipe(
        Effect.catchTag("PreconditionFailed", () => Effect.succeed(undefined))
      )
      if (landed === undefined) return yield* recoverTask(`tasks/${current.task.shard}/${current.task.id}.json`, { random })
      if (decision.result === "retried") yield* keepFindable({ task: decision.task, etag: landed })
      yield* provide(deleteMarkers(decision.after))
      yield* recordRecovery(current.task.taskType, decision.result)
      yield* tellParent({ task: decision.task, etag: landed })
      return decision.result
    })

  const recoverExpired = Effect.fn("LeaseManager.recoverExpired")(function*(options?: RecoveryOptions) {
    const pageSize = clampPage(options?.pageSize, 100)
    const concurrency = Math.max(1, Math.floor(options?.concurrency ?? 8))
    const startedAt = yield* clock.now
    const nowBucket = Math.floor(DateTime.toEpochMillis(startedAt) / 60_000)
    const counts = {
      pages: 0,
      markersListed: 0,
      markersChecked: 0,
      markersIdle: 0,
      retried: 0,
      failed: 0,
      cancelled: 0,
      followUpsCreated: 0,
      flowsRecovered: 0,
      staleDeleted: 0,
      notYetExpired: 0,
      malformed: 0,
      skipped: 0
    }
    const probeFuture = Math.max(0, Math.floor(options?.probeFuture ?? 0))
    // when the idle markers this walk keeps may go (the rule of Markers.isDeletable, at the latest)
    let idleDeletableAtMillis: number | undefined
    const keepIdle = (bucket: number, lastModifiedMillis: number, exists: boolean) => {
      const closes = bucketEndMillis(bucket) + bucketMarginMillis
      const at = exists ? closes : Math.min(closes, lastModifiedMillis + orphanGraceMillis)
      idleDeletableAtMillis = idleDeletableAtMillis === undefined ? at : Math.min(idleDeletableAtMillis, at)
    }
    // future markers listed, kept for the probe while there are few enough and none was jumped over
    const future: Array<{ readonly key: string; readonly shard: string; readonly taskId: string; readonly bucket: number; readonly lastModifiedMillis: number }> = []
    let futureAllListed = true
    let cursor: { readonly startAfter?: string; readonly continuationToken?: string } = {}
    for (;;) {
      const page = yield* retryTransient(storage.list(leasesPrefix, { ...cursor, maxKeys: pageSize }))
      counts.pages++
      const toCheck: Array<{ readonly key: string; readonly shard: string; readonly taskId: string; readonly lastModifiedMillis: number }> = []
      const toDelete: Array<string> = []
      let futureShard: string | undefined
      for (const object of page.objects) {
        counts.markersListed++
        const parsed = parseIndexKey(object.key)
        if (parsed === undefined || parsed.kind !== "leases") {
          toDelete.push(object.key) // nothing can use it
          counts.markersIdle++
          futureShard = undefined
          continue
        }
        if (parsed.bucket > nowBucket) {
          futureShard = parsed.shard // the rest of this shard is future: no GET
          if (future.length <= probeFuture) {
            future.push({ key: object.key, shard: parsed.shard, taskId: parsed.taskId, bucket: parsed.bucket, lastModifiedMillis: DateTime.toEpochMillis(object.lastModified) })
          }
          continue
        }
        futureShard = undefined
        toCheck.push({
          key: object.key,
          shard: parsed.shard,
          taskId: parsed.taskId,
          lastModifiedMillis: DateTime.toEpochMillis(object.lastModified)
        })
      }
      counts.markersChecked += toCheck.length
      yield* Effect.forEach(toCheck, (marker) =>
        Effect.gen(function*() {
          const readAt = yield* clock.now
          const margin = yield* uncertaintyMillis
          const found = yield* provide(readTask(taskKey(marker.shard, marker.taskId))).pipe(
            Effect.catchTag("MalformedObject", (e) =>
              Effect.as(Effect.logWarning(`lease recovery: leaving a malformed task alone: ${e.message}`), "malformed" as const))
          )
          if (found === "malformed") {
            counts.malformed++
            return
          }
          const task = Option.getOrUndefined(found)
          const outbox = task === undefined ? undefined : unmaterialized(task.task)
          if (task !== undefined && outbox !== undefined && neededMarker(task.task) === marker.key) {
            // Completed, but its worker died before creating the follow-ups: create them (once by their ids).
            if (!isRecoverableAt(outbox, earliest(readAt, margin))) {
              counts.notYetExpired++
              return
            }
            const stored = yield* provide(Effect.provideService(materialize(task, wakeUp.touch), ServerClock, clock))
            counts.followUpsCreated++
            if (flowRecoverAt(stored.task) !== undefined) {
              yield* provide(Effect.provideService(runFlowWork(stored, wakeUp.touch), ServerClock, clock))
              counts.flowsRecovered++
            }
            return
          }
          const flowAt = task === undefined ? undefined : flowRecoverAt(task.task)
          if (task !== undefined && flowAt !== undefined && neededMarker(task.task) === marker.key) {
            // A flow's work its process did not finish: children to create, or a parent to tell.
            if (!DateTime.greaterThan(earliest(readAt, margin), flowAt)) {
              counts.notYetExpired++
              return
            }
            yield* provide(Effect.provideService(runFlowWork(task, wakeUp.touch), ServerClock, clock))
            counts.flowsRecovered++
            return
          }
          if (task !== undefined && neededMarker(task.task) === marker.key) {
            if (!surelyExpired(task.task, readAt, margin)) {
              counts.notYetExpired++
              return
            }
            const outcome = yield* recoverFrom(task, readAt, margin, options?.random).pipe(
              Effect.catchTag("MalformedObject", () => Effect.succeed<TaskRecoveryOutcome>("not_running"))
            )
            if (outcome === "retried" || outcome === "failed" || outcome === "cancelled") counts[outcome]++
            return
          }
          counts.markersIdle++
          if (isDeletable(marker, ownerOf(task?.task), DateTime.toEpochMillis(readAt))) toDelete.push(marker.key)
          else keepIdle(parseIndexKey(marker.key)!.bucket, marker.lastModifiedMillis, task !== undefined)
        }).pipe(
          retryTransient,
          // one unreadable task must not cost the walk: it is looked at again next period
          Effect.catchAll((e) =>
            Effect.zipRight(
              Effect.sync(() => counts.skipped++),
              Effect.logWarning(`lease recovery: skipping ${marker.key} until the next walk: ${e.message}`)
            ))
        ), { concurrency, discard: true })
      if (toDelete.length > 0) {
        const deleted = yield* retryTransient(provide(deleteMarkers(toDelete))).pipe(
          Effect.as(true),
          Effect.catchAll((e) => Effect.as(Effect.logWarning(`lease recovery: stale markers left for the next walk: ${e.message}`), false))
        )
        if (deleted) counts.staleDeleted += toDelete.length
      }
      if (page.nextContinuationToken === undefined) break
      if (futureShard !== undefined) futureAllListed = false // the rest of that shard goes unlisted
      cursor = futureShard !== undefined
        ? { startAfter: `${leasesPrefix}${futureShard}/~` } // "~" sorts after every bucket digit
        : { continuationToken: page.nextContinuationToken }
    }
    if (probeFuture > 0 && futureAllListed && future.length > 0 && future.length <= probeFuture) {
      // A few markers whose bucket is ahead: is any still needed by its task? (A read that fails
      // counts as needed: the quiet mode only relaxes on what it saw.)
      const idle = yield* Effect.forEach(future, (marker) =>
        provide(readTask(taskKey(marker.shard, marker.taskId))).pipe(
          retryTransient,
          Effect.map((found) => {
            const isIdle = Option.isNone(found) || neededMarker(found.value.task) !== marker.key
            if (isIdle) keepIdle(marker.bucket, marker.lastModifiedMillis, Option.isSome(found))
            return isIdle
          }),
          Effect.orElseSucceed(() => false)
        ), { concurrency })
      counts.markersIdle += idle.filter((i) => i).length
    }
    return { startedAt, ...counts, idleDeletableAtMillis } satisfies RecoveryReport
  })

  // --- shard leases ---------------------------------------------------------------------------

  const checkWorkerId = (workerId: string) =>
    isValidWorkerId(workerId)
      ? Effect.void
      : Effect.fail(new InvalidArgument({
        argument: "workerId",
        message: `a worker id may contain only letters, digits and _ . : @ - (1–200 characters), got ${JSON.stringify(workerId)}`
      }))

  const readShardLease = Effect.fn("LeaseManager.readShardLease")(function*(shard: string) {
    const key = shardLeaseKey(shard)
    const found = yield* storage.get(key)
    if (Option.isNone(found)) return Option.none<HeldShardLease>()
    const lease = yield* decodeObject(ShardLease, key, found.value.body)
    return Option.some<HeldShardLease>({ lease, etag: found.value.etag })
  })

  const leaseFor = (shard: string, workerId: string, now: DateTime.Utc, ttl: Duration.DurationInput) =>
    new ShardLease({ shard, workerId, leaseExpiresAt: DateTime.addDuration(now, Duration.decode(ttl)), updatedAt: now })

  /** A conditional write of a shard lease: its new ETag, or none if the condition lost (ambiguity settled by re-reading). */
  const writeLease = (lease: ShardLease, condition: { readonly ifNoneMatch: "*" } | { readonly ifMatch: string }) =>
    provide(putConditional(shardLeaseKey(lease.shard), encodeObject(ShardLease, lease), condition)).pipe(
      Effect.map(Option.some),
      Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<string>()))
    )

  const acquireShard = Effect.fn("LeaseManager.acquireShard")(function*(
    shard: string,
    workerId: string,
    ttl: Duration.DurationInput
  ) {
    yield* checkWorkerId(workerId)
    const existing = yield* readShardLease(shard)
    const now = yield* clock.now
    const margin = yield* uncertaintyMillis
    const mine = leaseFor(shard, workerId, now, ttl)
    if (Option.isNone(existing)) {
      const etag = yield* writeLease(mine, { ifNoneMatch: "*" })
      return Option.match(etag, {
        onNone: (): AcquireResult => ({ _tag: "LostRace" }),
        onSome: (e): AcquireResult => ({ _tag: "Acquired", held: { lease: mine, etag: e } })
      })
    }
    const current = existing.value.lease
    // Our own name (e.g. after a restart): take it back and refresh its expiry (the reference did not).
    if (current.workerId !== workerId && !isShardLeaseExpired(current, now, margin)) {
      return { _tag: "HeldByOther", lease: current } satisfies AcquireResult
    }
    const etag = yield* writeLease(mine, { ifMatch: existing.value.etag })
    return Option.match(etag, {
      onNone: (): AcquireResult => ({ _tag: "LostRace" }),
      onSome: (e): AcquireResult => ({ _tag: "Acquired", held: { lease: mine, etag: e } })
    })
  })

  const renewShard = Effect.fn("LeaseManager.renewShard")(function*(held: HeldShardLease, ttl: Duration.DurationInput) {
    const now = yield* clock.now
    const next = leaseFor(held.lease.shard, held.lease.workerId, now, ttl)
    const etag = yield* writeLease(next, { ifMatch: held.etag })
    return Option.map(etag, (e): HeldShardLease => ({ lease: next, etag: e }))
  })

  const releaseShard = Effect.fn("LeaseManager.releaseShard")(function*(held: HeldShardLease) {
    const now = yield* clock.now
    // Expired well in the past (never later than it was), so a taker whose clock is a little
    // behind ours, or who allows for its uncertainty, sees it free at once.
    const past = DateTime.subtract(now, { minutes: 1 })
    const expiresAt = DateTime.lessThan(held.lease.leaseExpiresAt, past) ? held.lease.leaseExpiresAt : past
    const freed = new ShardLease({ ...held.lease, leaseExpiresAt: expiresAt, updatedAt: now })
    const etag = yield* writeLease(freed, { ifMatch: held.etag })
    if (Option.isSome(etag)) return "released" satisfies ReleaseOutcome
    const after = yield* storage.head(shardLeaseKey(held.lease.shard))
    return (Option.isNone(after) ? "gone" : "taken_over") satisfies ReleaseOutcome
  })

  const announce = Effect.fn("LeaseManager.announce")(function*(
    workerId: string,
    ttl: Duration.DurationInput,
    taskTypes?: ReadonlyArray<string>
  ) {
    yield* checkWorkerId(workerId)
    const record = new ShardMemberRecord({
      workerId,
      ttlSeconds: Duration.toSeconds(Duration.decode(ttl)),
      ...(taskTypes === undefined ? {} : { taskTypes: [...taskTypes].sort() })
    })
    yield* provide(putPlain(shardMemberKey(workerId), encodeObject(ShardMemberRecord, record)))
  })

  // announcements by key, as last read: re-read only when the ETag in the LIST differs
  const memberTypes = new Map<string, { readonly etag: string; readonly taskTypes: ReadonlyArray<string> | undefined }>()
  const typesOf = (key: string, etag: string) =>
    Effect.gen(function*() {
      const known = memberTypes.get(key)
      if (known !== undefined && known.etag === etag) return known.taskTypes
      const found = yield* storage.get(key)
      if (Option.isNone(found)) return undefined
      const record = yield* Effect.option(decodeObject(ShardMemberRecord, key, found.value.body))
      const taskTypes = Option.isSome(record) ? record.value.taskTypes : undefined
      if (Option.isNone(record)) yield* Effect.logWarning(`shard leasing: unreadable announcement ${key}; counting that member as handling no task type`)
      memberTypes.set(key, { etag: found.value.etag, taskTypes })
      return taskTypes
    })

  const withdraw = Effect.fn("LeaseManager.withdraw")(function*(workerId: string) {
    if (!isValidWorkerId(workerId)) return
    yield* storage.delete(shardMemberKey(workerId))
  })

  const members = Effect.fn("LeaseManager.members")(function*(ttl: Duration.DurationInput) {
    const ttlMillis = Duration.toMillis(Duration.decode(ttl))
    const nowMillis = yield* clock.currentTimeMillis
    const live: Array<ShardMember> = []
    let token: string | undefined
    do {
      const page = yield* storage.list(shardMembersPrefix, token === undefined ? {} : { continuationToken: token })
      for (const o of page.objects) {
        if (!o.key.endsWith(".json")) continue
        const expires = DateTime.toEpochMillis(o.lastModified) + ttlMillis
        if (expires <= nowMillis) continue
        live.push({
          workerId: o.key.slice(shardMembersPrefix.length, -".json".length),
          expiresAt: DateTime.unsafeMake(expires),
          taskTypes: yield* typesOf(o.key, o.etag)
        })
      }
      token = page.nextContinuationToken
    } while (token !== undefined)
    for (const key of memberTypes.keys()) if (!live.some((m) => shardMemberKey(m.workerId) === key)) memberTypes.delete(key)
    return live
  })

  return {
    recoverExpired,
    recoverTask,
    readShardLease,
    acquireShard,
    renewShard,
    releaseShard,
    announce,
    withdraw,
    members
  } satisfies LeaseManagerService
})

/** The LeaseManager layer (needs Storage and ServerClock). */
export const layer: Layer.Layer<LeaseManager, never, Storage | ServerClock> = Layer.effect(LeaseManager, make)
