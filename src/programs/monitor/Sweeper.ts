/**
 * The index sweeper: repairs the crash windows the write order cannot close and removes stale
 * markers, with its position PERSISTED in the bucket (`control/sweep/cursor.json`), so a sweep
 * makes progress across restarts and leader changes.
 *
 * One pass walks the bucket shard by shard, in key order, with three paged LIST walks that advance
 * together (`tasks/`, `ready/`, `leases/`; every prefix length, without knowing it). For each shard
 * (its markers are taken from their walks first, so the reads below know which tasks they index):
 * 1. every task object is read once (bounded concurrency): a pending task past `expires_at` is
 *    marked expired; a running task whose lease ran out is recovered at once; retention (opt-in)
 *    deletes or archives old terminal tasks; every other task's needed marker is noted. Not read:
 *    a task changed less than `youngAge` ago (by its LIST `LastModified`) that a ready or lease
 *    marker of its id in the shard points at — it is in motion (just submitted, claimed or
 *    settled), a worker or lease recovery reaches it through that marker, and a backlog submitted
 *    just before a pass would otherwise cost a GET per task on top of the claim's. It is left
 *    alone (its markers too) and read by the first pass that finds it older; a young task without
 *    a marker of its id (a crash window) is read and repaired at once, as every other;
 * 2. the shard's ready and lease markers are compared with what the tasks need: missing ones are
 *    written (pending without a ready marker, running without a lease marker) once a HEAD of the
 *    task finds it unchanged and a HEAD of the marker finds it still absent (the markers were
 *    listed before the reads), stale ones deleted by the rule in `Markers.ts` (never a marker a
 *    new attempt may have just re-created; it does not depend on when the marker was listed). No
 *    GET per marker: the tasks were read in step 1.
 * A terminal task whose ETag is unchanged since this process last read it — or wrote it: an
 * embedded monitor learns the tasks its worker finished (`learn`) — is not read again (a bounded
 * in-memory cache), so repeated passes mostly cost LISTs. Behind that cache, each shard's
 * finished tasks are checkpointed in the bucket (`domain/TerminalCheckpoint.ts`, written only when
 * they changed), so a new leader or a bucket with more finished tasks than the cache holds costs
 * one GET per shard, not one per task.
 * 3. at the end of a pass, `payloads/` is LISTed and payloads older than the grace that no task
 *    seen in the pass references are checked against their task (one GET) and deleted if they are
 *    orphans by the rule in `domain/PayloadCollection.ts` (a crashed submit, a lost attempt's
 *    output, an idempotency race's loser).
 *
 * Cost of one pass over N tasks (M markers, S non-empty shards, page size P ≤ 1000):
 * LIST ≈ ⌈N/P⌉ + ⌈M/P⌉ + a few; GET ≤ N (first pass; only changed tasks afterwards; none for the
 * young indexed ones);
 * PUT = repairs + cursor saves (≈ one per P objects); DELETE = one batch per shard with stale markers.
 * The pass's counts (requests by kind included) are kept in the cursor, so a resumed pass
 * reports the whole pass.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { DateTime, Duration, Effect, Option } from "effect"
import { decodeObject, encodeObject } from "../../domain/Codec.js"
import type { MalformedObject } from "../../domain/QueueError.js"
import { readyMarkerKey } from "../../domain/ReadyIndex.js"
import type { StorageReadError } from "../../domain/StorageError.js"
import { SweepCursor, sweepCursorKey, SweepTotals } from "../../domain/SweepCursor.js"
import type { TaskStatus } from "../../domain/TaskStatus.js"
import { isTerminal } from "../../domain/TaskStatus.js"
import * as Tr from "../../domain/Transitions.js"
import * as CountingStorage from "../../layers/CountingStorage.js"
import type { RequestCounts } from "../../services/RequestCounter.js"
import { keep, putPlain, readTask, updateTask, write, writeMarker } from "../../protocol/TaskObjects.js"
import { retryTransient } from "../../protocol/TransientRetry.js"
import * as LeaseManagerLayer from "../../layers/LeaseManager.js"
import { compareKeys } from "../../domain/KeyOrder.js"
import * as Metrics from "../../services/Metrics.js"
import { ServerClock } from "../../services/ServerClock.js"
import { type ObjectMeta, Storage, type StorageService } from "../../services/Storage.js"
import { isDeletable, type MarkerOwner, neededMarker } from "../../domain/Markers.js"
import { defaultPayloadGrace, isOrphanPayload, parsePayloadKey } from "../../domain/PayloadCollection.js"
import { fingerprint, TerminalCheckpoint, terminalCheckpointKey, TerminalEntry } from "../../domain/TerminalCheckpoint.js"
import { taskKey } from "../../domain/Keys.js"
import { isRecoverableAt, unmaterialized } from "../../domain/FollowUps.js"
import { materialize } from "../../protocol/FollowUps.js"
import { flowRecoverAt } from "../../domain/Flows.js"
import { runFlowWork } from "../../protocol/Flows.js"
import { shardOf } from "../../domain/Shard.js"
import type { Task } from "../../domain/Task.js"
import { archiveTerminal, deleteTerminal, heldUntilOf, parentStillNeeds, retentionDecision, type RetentionOptions } from "./Retention.js"

/** Options of the sweeper (the CLI maps `[monitor] max_objects_per_sweep` to `pageSize`). */
export interface SweeperOptions {
  /** LIST page size, and task objects per step in continuous mode (default 1000, max 1000). */
  readonly pageSize?: number | undefined
  /** Task GETs in flight (default 16). */
  readonly concurrency?: number | undefined
  /** Opt-in retention of old terminal tasks. */
  readonly retention?: RetentionOptions | undefined
  /** Terminal tasks remembered by ETag so later passes skip their GET (default 100,000; 0 = off). */
  readonly terminalCacheSize?: number | undefined
  /** Payloads younger than this are never collected (default 1 hour). */
  readonly payloadGrace?: Duration.DurationInput | undefined
  /**
   * A task changed less than this long ago that a marker of its shard points at is left for a
   * later pass, unread (default 1 minute; 0 reads every task in every pass).
   */
  readonly youngAge?: Duration.DurationInput | undefined
}

/** The report of a pass (or of the part of it done so far). */
export interface SweepReport {
  readonly passId: string
  readonly startedAt: DateTime.Utc
  /** Set once the pass has covered every shard. */
  readonly finishedAt: DateTime.Utc | undefined
  /** Whether this process resumed a pass another process (or an earlier run) had begun. */
  readonly resumed: boolean
  readonly totals: SweepTotals
}

/** A sweeper bound to one bucket; its walk position lives in the bucket and in memory. */
export interface Sweeper {
  /** Processes up to `budget` task objects (default: the page size) and their shards' markers; saves the cursor. */
  readonly step: (budget?: number) => Effect.Effect<SweepReport, StorageReadError | MalformedObject>
  /** Runs steps until the current pass (resumed or new) has covered every shard. */
  readonly fullSweep: Effect.Effect<SweepReport, StorageReadError | MalformedObject>
  /** The persisted cursor, if any. */
  readonly cursor: Effect.Effect<Option.Option<SweepCursor>, StorageReadError | MalformedObject>
  /**
   * Tells the sweeper a task this process wrote, with the ETag the write returned: a finished one
   * is remembered as if it had been read, so a pass does not GET it again while that ETag lists.
   */
  readonly learn: (key: string, etag: string, task: Task) => void
}

const shardOfKey = (key: string, prefix: string): string => {
  const rest = key.slice(prefix.length)
  const slash = rest.indexOf("/")
  return slash < 0 ? rest : rest.slice(0, slash)
}

const compareShards = (a: string, b: string): number => compareKeys(`${a}/`, `${b}/`)

/** The task id a marker key names (its last segment). */
const markerTaskId = (key: string): string => key.slice(key.lastIndexOf("/") + 1)

/** A paged LIST walk of one prefix that can be peeked at. */
const makeWalker = (storage: StorageService, prefix: string, startAfter: string | undefined, pageSize: number) => {
  let buffer: ReadonlyArray<ObjectMeta> = []
  let index = 0
  let token: string | undefined
  let started = false
  let done = false
  let fetchedAt = 0
  const fill = (now: Effect.Effect<number>) =>
    Effect.gen(function*() {
      while (index >= buffer.length && !done) {
        const page = yield* retryTransient(storage.list(prefix, started && token !== undefined
          ? { continuationToken: token, maxKeys: pageSize }
          : { ...(startAfter !== undefined ? { startAfter } : {}), maxKeys: pageSize }))
        fetchedAt = yield* now
        started = true
        buffer = page.objects
        index = 0
        token = page.nextContinuationToken
        if (token === undefined) done = true
      }
    })
  return {
    prefix,
    peek: (now: Effect.Effect<number>) => Effect.map(fill(now), () => buffer[index]),
    skip: () => {
      index++
    },
    fetchedAt: () => fetchedAt
  }
}

type Walker = ReturnType<typeof makeWalker>

interface Noted {
  readonly owner: MarkerOwner
  readonly readAt: number
  /** Changed by this sweep (recovered): its markers are left for the next pass. */
  readonly changed: boolean
  /** The task object as read (key, ETag): a missing marker is written only if it is unchanged since. */
  readonly version?: { readonly key: string; readonly etag: string } | undefined
}

interface Pass {
  cursor: SweepCursor
  readonly resumed: boolean
  readonly tasks: Walker
  readonly ready: Walker
  readonly leases: Walker
  shard: string | undefined
  /** The current shard's ready and lease markers, taken from their walks before its tasks are read. */
  markers: ReadonlyArray<ObjectMeta>
  /** The ids those markers name. */
  readonly indexed: Set<string>
  missingReadAt: number
  readonly noted: Map<string, Noted>
  /** Payload keys referenced by the tasks this process saw in the pass. */
  readonly referenced: Set<string>
  /** Shard name lengths seen in the pass (where to look for a payload's task). */
  readonly shardLengths: Set<number>
  /** The current shard's finished tasks: as checkpointed (loaded on the first cache miss) and as seen now. */
  ckpt: { stored: Map<string, TerminalEntry> | undefined; readonly seen: Map<string, TerminalEntry> }
  totals: Mutable<SweepTotals>
  sinceSave: number
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const addRequests = (into: Record<string, number>, counts: RequestCounts): Record<string, number> => {
  const out = { ...into }
  for (const kind of ["PUT", "GET", "HEAD", "LIST", "LIST-VERSIONS", "DELETE"] as const) {
    if (counts[kind] > 0) out[kind] = (out[kind] ?? 0) + counts[kind]
  }
  return out
}

const payloadRefs = (task: Task): ReadonlyArray<string> | undefined =>
  task.inputRef === undefined && task.outputRef === undefined
    ? undefined
    : [task.inputRef, task.outputRef].filter((r): r is string => r !== undefined)

/** Makes a sweeper on the Storage and ServerClock in context (it counts its own requests). */
export const make = Effect.fn("Sweeper.make")(function*(options: SweeperOptions = {}) {
  const underlying = yield* Storage
  const clock = yield* ServerClock
  const { counter, storage } = yield* CountingStorage.make(underlying)
  const lm = yield* LeaseManagerLayer.make.pipe(Effect.provideService(Storage, storage))
  const provide = <A, E>(self: Effect.Effect<A, E, Storage>) => Effect.provideService(self, Storage, storage)
  const pageSize = Math.max(1, Math.min(1000, Math.floor(options.pageSize ?? 1000)))
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 16))
  const cacheSize = Math.max(0, Math.floor(options.terminalCacheSize ?? 100_000))
  const graceMillis = Duration.toMillis(Duration.decode(options.payloadGrace ?? defaultPayloadGrace))
  const youngMillis = Duration.toMillis(Duration.decode(options.youngAge ?? Duration.minutes(1)))
  const terminalCache = new Map<
    string,
    {
      readonly etag: string
      readonly status: TaskStatus
      readonly updatedAt: number
      readonly heldUntil: number | undefined
      readonly refs: ReadonlyArray<string> | undefined
    }
  >()
  const nowMillis = clock.currentTimeMillis
  let pass: Pass | undefined
  /** Per shard, the fingerprint of its stored checkpoint as this process last wrote or read it. */
  const printed = new Map<string, string>()
  let evictions = 0
  const checkpointLock = yield* Effect.makeSemaphore(1)

  const loadCheckpoint = (shard: string) =>
    Effect.gen(function*() {
      const key = terminalCheckpointKey(shard)
      const found = yield* retryTransient(storage.get(key))
      const entries = new Map<string, TerminalEntry>()
      if (Option.isSome(found)) {
        const decoded = yield* Effect.either(decodeObject(TerminalCheckpoint, key, found.value.body))
        if (decoded._tag === "Left") yield* Effect.logWarning(`sweeper: ignoring (and rewriting) a malformed checkpoint: ${decoded.left.message}`)
        else if (decoded.right.shard === shard) for (const e of decoded.right.entries) entries.set(e.i, e)
      }
      printed.set(shard, fingerprint(entries.values()))
      return entries
    })

  /** Writes the shard's checkpoint if its finished tasks differ from the stored ones. */
  const saveCheckpoint = (p: Pass, shard: string) =>
    Effect.gen(function*() {
      const print = fingerprint(p.ckpt.seen.values())
      const known = printed.get(shard)
      if (print === known) return
      if (p.ckpt.seen.size === 0) {
        if (known !== undefined) yield* retryTransient(storage.delete(terminalCheckpointKey(shard)))
      } else {
        const body = encodeObject(TerminalCheckpoint, new TerminalCheckpoint({ shard, entries: [...p.ckpt.seen.values()] }))
        yield* retryTransient(provide(putPlain(terminalCheckpointKey(shard), body)))
      }
      printed.set(shard, print)
    }).pipe(Effect.catchAll((e) => Effect.logWarning(`sweeper: could not write the checkpoint of shard ${shard} (next pass): ${e.message}`)))

  const entryOf = (taskId: string, etag: string, c: { readonly status: TaskStatus; readonly updatedAt: number; readonly heldUntil: number | undefined; readonly refs: ReadonlyArray<string> | undefined }) =>
    new TerminalEntry({
      i: taskId,
      e: etag,
      s: c.status,
      u: c.updatedAt,
      ...(c.heldUntil === undefined ? {} : { h: c.heldUntil }),
      ...(c.refs === undefined ? {} : { r: c.refs })
    })

  const remember = (key: string, c: { readonly etag: string; readonly status: TaskStatus; readonly updatedAt: number; readonly heldUntil: number | undefined; readonly refs: ReadonlyArray<string> | undefined }) => {
    if (cacheSize <= 0) return
    if (!terminalCache.has(key) && terminalCache.size >= cacheSize) {
      terminalCache.delete(terminalCache.keys().next().value!)
      evictions++
    }
    terminalCache.set(key, c)
  }

  const readCursor = Effect.gen(function*() {
    const found = yield* retryTransient(storage.get(sweepCursorKey))
    if (Option.isNone(found)) return Option.none<SweepCursor>()
    return Option.some(yield* decodeObject(SweepCursor, sweepCursorKey, found.value.body))
  })

  const report = (p: Pass): SweepReport => ({
    passId: p.cursor.passId,
    startedAt: p.cursor.startedAt,
    finishedAt: p.cursor.finishedAt,
    resumed: p.resumed,
    totals: new SweepTotals(p.totals)
  })

  const save = (p: Pass, changes: { readonly finished?: boolean; readonly taskAfter?: string | undefined }) =>
    Effect.gen(function*() {
      const now = yield* clock.now
      p.totals.requests = addRequests(p.totals.requests, yield* counter.take)
      p.totals.requests = { ...p.totals.requests, PUT: (p.totals.requests["PUT"] ?? 0) + 1 } // this save
      const { taskAfter: _t, finishedAt: _f, ...base } = p.cursor
      p.cursor = new SweepCursor({
        ...base,
        ...(changes.taskAfter !== undefined ? { taskAfter: changes.taskAfter } : {}),
        ...(changes.finished === true ? { finishedAt: now } : {}),
        updatedAt: now,
        totals: new SweepTotals(p.totals)
      })
      p.sinceSave = 0
      yield* retryTransient(provide(putPlain(sweepCursorKey, encodeObject(SweepCursor, p.cursor))))
      yield* counter.take // the save itself is already counted above
    })

  /** The pass in progress: this process's, or the persisted one (resumed after its last finished shard), or a new one. */
  const currentPass = Effect.gen(function*() {
    if (pass !== undefined && pass.cursor.finishedAt === undefined) return pass
    const stored = yield* readCursor
    const now = yield* clock.now
    const resume = Option.filter(stored, (c) => c.finishedAt === undefined && pass?.cursor.passId !== c.passId)
    const cursor = Option.getOrElse(resume, () =>
      new SweepCursor({ passId: randomUUID(), startedAt: now, updatedAt: now, totals: SweepTotals.zero }))
    const after = (prefix: string) => (cursor.doneShard !== undefined ? `${prefix}${cursor.doneShard}/~` : undefined)
    const totals: Mutable<SweepTotals> = { ...cursor.totals }
    totals.requests = addRequests(totals.requests, yield* counter.take)
    pass = {
      cursor,
      resumed: Option.isSome(resume),
      tasks: makeWalker(storage, "tasks/", after("tasks/"), pageSize),
      ready: makeWalker(storage, "ready/", after("ready/"), pageSize),
      leases: makeWalker(storage, "leases/", after("leases/"), pageSize),
      shard: undefined,
      markers: [],
      indexed: new Set(),
      missingReadAt: 0,
      noted: new Map(),
      referenced: new Set(),
      shardLengths: new Set(),
      ckpt: { stored: undefined, seen: new Map() },
      totals,
      sinceSave: 0
    }
    return pass
  })

  /**
   * Reads and handles one task object of the current shard. A task whose read or repair keeps
   * failing is noted as "changed": its markers are neither deleted nor written this pass (it is
   * not known what it needs), and the next pass looks again. Never treated as missing: that would
   * make its live markers look like orphans.
   */
  const handleTask = (p: Pass, meta: ObjectMeta) => {
    const name = meta.key.slice(meta.key.lastIndexOf("/") + 1)
    const taskId = name.endsWith(".json") ? name.slice(0, -".json".length) : name
    return handleTaskOnce(p, meta, taskId).pipe(
      retryTransient,
      Effect.catchAll((e) =>
        Effect.gen(function*() {
          p.totals.skipped++
          p.noted.set(taskId, { owner: { exists: true, needed: undefined }, readAt: yield* nowMillis, changed: true })
          yield* Effect.logWarning(`sweeper: skipping ${meta.key} until the next pass: ${e.message}`)
        })
      )
    )
  }

  const handleTaskOnce = (p: Pass, meta: ObjectMeta, taskId: string) =>
    Effect.gen(function*() {
      const key = meta.key
      const readAt = yield* nowMillis
      const keeps = (c: { readonly status: TaskStatus; readonly updatedAt: number; readonly heldUntil: number | undefined }) =>
        options.retention === undefined || retentionDecision(c.status, c.updatedAt, readAt, options.retention, c.heldUntil) === "keep"
      let cached = terminalCache.get(key)
      if (
        (cached === undefined || cached.etag !== meta.etag) && youngMillis > 0 && p.indexed.has(taskId) &&
        DateTime.toEpochMillis(meta.lastModified) + youngMillis > readAt
      ) {
        // in motion and indexed: left, with its markers, for the first pass that finds it older
        p.totals.leftYoung++
        p.noted.set(taskId, { owner: { exists: true, needed: undefined }, readAt, changed: true })
        return
      }
      if ((cached === undefined || cached.etag !== meta.etag) && p.shard !== undefined) {
        // behind the memory cache: the shard's checkpoint (one GET per shard and pass, on the first miss)
        // (not needed while the memory cache holds everything this process checkpointed itself)
        // under a lock: the tasks of a page are handled concurrently, and every fiber that misses
        // before the first load lands would otherwise GET the same checkpoint again
        const shard = p.shard
        const stored = yield* checkpointLock.withPermits(1)(Effect.gen(function*() {
          if (p.ckpt.stored === undefined) {
            p.ckpt.stored = printed.has(shard) && evictions === 0 ? new Map() : yield* loadCheckpoint(shard)
          }
          return p.ckpt.stored
        }))
        const e = stored.get(taskId)
        if (e !== undefined && e.e === meta.etag) {
          cached = { etag: e.e, status: e.s, updatedAt: e.u, heldUntil: e.h, refs: e.r }
          remember(key, cached)
        }
      }
      if (cached !== undefined && cached.etag === meta.etag && keeps(cached)) {
        p.noted.set(taskId, { owner: { exists: true, needed: undefined }, readAt, changed: false })
        for (const ref of cached.refs ?? []) p.referenced.add(ref)
        p.ckpt.seen.set(taskId, entryOf(taskId, meta.etag, cached))
        return
      }
      const found = yield* provide(readTask(key)).pipe(
        Effect.catchTag("MalformedObject", (e) =>
          Effect.as(Effect.logWarning(`sweeper: leaving a malformed task alone: ${e.message}`), "malformed" as const))
      )
      if (found === "malformed") {
        p.totals.malformed++
        p.noted.set(taskId, { owner: { exists: true, needed: undefined }, readAt, changed: true })
        return
      }
      if (Option.isNone(found)) return // deleted since the LIST: its markers are orphans
      const { task } = found.value
      const refs = payloadRefs(task)
      for (const ref of refs ?? []) p.referenced.add(ref)
      const now = DateTime.unsafeMake(readAt)
      const outbox = unmaterialized(task)
      if (outbox !== undefined && isRecoverableAt(outbox, now)) {
        // completed, but its worker died before creating the follow-ups (before retention may remove it)
        const stored = yield* provide(Effect.provideService(materialize(found.value), ServerClock, clock))
        p.totals.followUpsCreated++
        if (flowRecoverAt(stored.task) !== undefined) {
          yield* provide(Effect.provideService(runFlowWork(stored), ServerClock, clock))
          p.totals.flowsRecovered++
        }
        p.noted.set(taskId, { owner: { exists: true, needed: undefined }, readAt, changed: true })
        return
      }
      const flowAt = flowRecoverAt(task)
      if (outbox === undefined && flowAt !== undefined && DateTime.greaterThan(now, flowAt)) {
        // a flow's work its process left: children to create, or a parent to tell (domain/Flows.ts)
        yield* provide(Effect.provideService(runFlowWork(found.value), ServerClock, clock))
        p.totals.flowsRecovered++
        p.noted.set(taskId, { owner: { exists: true, needed: undefined }, readAt, changed: true })
        return
      }
      if (options.retention !== undefined) {
        const decided = retentionDecision(task.status, DateTime.toEpochMillis(task.updatedAt), readAt, options.retention, heldUntilOf(task))
        // a flow's child is kept while its parent has not ended: the parent's handler reads it
        const action = decided === "delete" && (yield* provide(parentStillNeeds(task))) ? "keep" : decided
        if (action === "delete" && (yield* provide(deleteTerminal(found.value, now)))) {
          p.totals.retentionDeleted++
          terminalCache.delete(key)
          return
        }
        if (action === "archive" && (yield* provide(archiveTerminal(found.value, now)))) {
          p.totals.retentionArchived++
          p.noted.set(taskId, { owner: { exists: true, needed: undefined }, readAt, changed: true })
          return
        }
      }
      if (Tr.canExpire(task, now)) {
        const { current: expired, result } = yield* provide(updateTask<boolean>(key, (current) =>
          Option.isSome(current) && Tr.canExpire(current.value.task, now)
            ? write(Tr.expire(current.value.task, { now }), true, { after: [readyMarkerKey(current.value.task)] })
            : keep(false)))
        if (result) {
          p.totals.expired++
          yield* Metrics.recordExpired(task.taskType)
          // a flow's child tells its parent now (else lease recovery does, through the marker just written)
          if (Option.isSome(expired) && flowRecoverAt(expired.value.task) !== undefined) {
            yield* provide(Effect.provideService(runFlowWork(expired.value), ServerClock, clock))
          }
        }
        p.noted.set(taskId, { owner: { exists: true, needed: undefined }, readAt, changed: true })
        return
      }
      if (Tr.canRecoverLease(task, now)) {
        const outcome = yield* lm.recoverTask(key)
        if (outcome === "retried" || outcome === "failed" || outcome === "cancelled") p.totals.leasesRecovered++
        p.noted.set(taskId, { owner: { exists: true, needed: undefined }, readAt, changed: true })
        return
      }
      if (isTerminal(task.status)) {
        const c = { etag: found.value.etag, status: task.status, updatedAt: DateTime.toEpochMillis(task.updatedAt), heldUntil: heldUntilOf(task), refs }
        remember(key, c)
        p.ckpt.seen.set(taskId, entryOf(taskId, found.value.etag, c))
      }
      p.noted.set(taskId, {
        owner: { exists: true, needed: neededMarker(task) },
        readAt,
        changed: false,
        version: { key, etag: found.value.etag }
      })
    })

  /** Compares the shard's markers with what its tasks need: writes the missing, deletes the stale. */
  const finishShard = (p: Pass, shard: string) =>
    Effect.gen(function*() {
      const existing = new Set<string>()
      const stale: Array<string> = []
      for (const head of p.markers) {
        existing.add(head.key)
        const noted = p.noted.get(markerTaskId(head.key))
        if (noted?.changed === true) continue
        const marker = { key: head.key, lastModifiedMillis: DateTime.toEpochMillis(head.lastModified) }
        const owner: MarkerOwner = noted?.owner ?? { exists: false }
        if (isDeletable(marker, owner, noted?.readAt ?? p.missingReadAt)) stale.push(head.key)
      }
      const candidates: Array<{ readonly marker: string; readonly version: Noted["version"] }> = []
      for (const noted of p.noted.values()) {
        if (noted.changed || !noted.owner.exists || noted.owner.needed === undefined) continue
        if (!existing.has(noted.owner.needed)) candidates.push({ marker: noted.owner.needed, version: noted.version })
      }
      // A task claimed (or finished) since it was read no longer needs the marker it lacks: write
      // it only if the task is unchanged (one HEAD). And the markers were listed before the reads:
      // a task that changed between that LIST and its read may have written the marker it now
      // needs after the LIST, so it is written only if a HEAD of the marker still finds none.
      const absent = (key: string) =>
        retryTransient(storage.head(key)).pipe(Effect.map(Option.isNone), Effect.catchAll(() => Effect.succeed(false)))
      const missing = yield* Effect.filter(candidates, ({ marker, version }) =>
        (version === undefined
          ? Effect.succeed(true)
          : retryTransient(storage.head(version.key)).pipe(
            Effect.map((meta) => Option.isSome(meta) && meta.value.etag === version.etag),
            Effect.catchAll(() => Effect.succeed(false))
          )).pipe(Effect.flatMap((unchanged) => (unchanged ? absent(marker) : Effect.succeed(false)))), { concurrency }).pipe(
          Effect.map((kept) => kept.map((c) => c.marker))
        )
      yield* Effect.forEach(missing, (key) => retryTransient(provide(writeMarker(key))), { concurrency, discard: true })
      for (const key of missing) {
        if (key.startsWith("ready/")) p.totals.readyMarkersWritten++
        else p.totals.leaseMarkersWritten++
      }
      if (stale.length > 0) {
        yield* retryTransient(storage.deleteMany(stale))
        p.totals.staleMarkersDeleted += stale.length
      }
      if (missing.length > 0 || stale.length > 0) {
        yield* Effect.logInfo(`sweeper: shard ${shard}: wrote ${missing.length} missing marker(s), deleted ${stale.length} stale marker(s)`)
      }
      yield* saveCheckpoint(p, shard)
      p.totals.shards++
      p.cursor = new SweepCursor({ ...p.cursor, doneShard: shard })
      p.shard = undefined
      p.noted.clear()
      p.markers = []
      p.indexed.clear()
      p.ckpt = { stored: undefined, seen: new Map() }
    })

  /** The task a payload belongs to, looked for at every shard length seen in the pass (all four if none). */
  const payloadTask = (p: Pass, taskId: string) =>
    Effect.gen(function*() {
      const lengths = p.shardLengths.size > 0 ? [...p.shardLengths] : [1, 2, 3, 4]
      for (const length of lengths) {
        const found = yield* retryTransient(provide(readTask(taskKey(shardOf(taskId, length), taskId))))
        if (Option.isSome(found)) return found.value.task
      }
      return undefined
    })

  /** Step 3: deletes orphaned payloads (LIST `payloads/`; a GET + HEAD per candidate only). */
  const collectPayloads = (p: Pass) =>
    Effect.gen(function*() {
      let token: string | undefined
      do {
        const page = yield* retryTransient(storage.list("payloads/", token === undefined ? { maxKeys: pageSize } : { continuationToken: token, maxKeys: pageSize }))
        const now = yield* nowMillis
        for (const meta of page.objects) {
          const parsed = parsePayloadKey(meta.key)
          const payload = { key: meta.key, lastModifiedMillis: DateTime.toEpochMillis(meta.lastModified) }
          if (parsed === undefined || p.referenced.has(meta.key) || !isOrphanPayload(payload, undefined, now, graceMillis)) continue
          const orphan = yield* payloadTask(p, parsed.taskId).pipe(
            Effect.map((task) => isOrphanPayload(payload, task, now, graceMillis)),
            Effect.catchAll((e) => Effect.as(Effect.logWarning(`sweeper: keeping payload ${meta.key}: its task could not be read: ${e.message}`), false))
          )
          if (!orphan) continue
          // rewritten since the LIST (a replayed task's new attempt): not the orphan we judged
          const again = yield* retryTransient(storage.head(meta.key))
          if (Option.isNone(again) || again.value.etag !== meta.etag) continue
          yield* retryTransient(storage.delete(meta.key))
          p.totals.payloadsDeleted++
          yield* Effect.logInfo(`sweeper: deleted orphaned payload ${meta.key}`)
        }
        token = page.nextContinuationToken
      } while (token !== undefined)
    })

  const stepOnce = Effect.fn("Sweeper.step")(function*(budget?: number) {
    const p = yield* currentPass
    const limit = Math.max(1, budget ?? pageSize)
    let processed = 0
    for (;;) {
      if (p.shard === undefined) {
        const heads: Array<string> = []
        for (const walker of [p.tasks, p.ready, p.leases]) {
          const head = yield* walker.peek(nowMillis)
          if (head !== undefined) heads.push(shardOfKey(head.key, walker.prefix))
        }
        if (heads.length === 0) {
          yield* collectPayloads(p)
          yield* save(p, { finished: true })
          const done = report(p)
          yield* Effect.logDebug(
            `sweeper: pass ${p.cursor.passId} finished: ${p.totals.tasks} tasks in ${p.totals.shards} shards; requests ${JSON.stringify(p.totals.requests)}`
          )
          return done
        }
        p.shard = heads.sort(compareShards)[0]!
        p.shardLengths.add(p.shard.length)
        p.missingReadAt = p.tasks.fetchedAt() || (yield* nowMillis)
        p.noted.clear()
        p.ckpt = { stored: undefined, seen: new Map() }
        // the shard's markers first: the reads below skip the young tasks they index
        const markers: Array<ObjectMeta> = []
        p.indexed.clear()
        for (const walker of [p.ready, p.leases]) {
          for (;;) {
            const head = yield* walker.peek(nowMillis)
            if (head === undefined || shardOfKey(head.key, walker.prefix) !== p.shard) break
            walker.skip()
            markers.push(head)
            p.indexed.add(markerTaskId(head.key))
          }
        }
        p.markers = markers
      }
      const shard = p.shard
      // 1. The shard's tasks, in batches of at most a page.
      let lastKey: string | undefined
      while (processed < limit) {
        const batch: Array<ObjectMeta> = []
        while (batch.length < Math.min(pageSize, limit - processed)) {
          const head = yield* p.tasks.peek(nowMillis)
          if (head === undefined || shardOfKey(head.key, p.tasks.prefix) !== shard) break
          p.tasks.skip()
          batch.push(head)
        }
        if (batch.length === 0) break
        yield* Effect.forEach(batch, (meta) => handleTask(p, meta), { concurrency, discard: true })
        processed += batch.length
        p.totals.tasks += batch.length
        p.sinceSave += batch.length
        lastKey = batch[batch.length - 1]!.key
      }
      const more = yield* p.tasks.peek(nowMillis)
      if (more !== undefined && shardOfKey(more.key, p.tasks.prefix) === shard) {
        // Budget spent inside the shard: its markers wait for the next step (this process keeps what it read).
        yield* save(p, { taskAfter: lastKey })
        return report(p)
      }
      // 2. The shard's markers.
      yield* finishShard(p, shard)
      if (p.sinceSave >= pageSize) yield* save(p, {})
      if (processed >= limit) {
        yield* save(p, {})
        return report(p)
      }
    }
  })

  /**
   * A step that fails (or is interrupted: leadership lost) forgets the pass in memory: its walkers
   * may have moved past objects it never handled, so the next step resumes from the persisted
   * cursor (the last saved finished shard) and redoes the shard instead of judging its markers
   * with half the tasks unread.
   */
  const step = (budget?: number) =>
    stepOnce(budget).pipe(Effect.onError(() =>
      Effect.sync(() => {
        pass = undefined
      })
    ))

  const fullSweep = Effect.gen(function*() {
    for (;;) {
      const r = yield* step(Number.MAX_SAFE_INTEGER)
      if (r.finishedAt !== undefined) return r
    }
  })

  // The body behind an ETag is fixed, so what the writer knew is what a GET would answer.
  const learn = (key: string, etag: string, task: Task) => {
    if (!isTerminal(task.status)) return
    remember(key, { etag, status: task.status, updatedAt: DateTime.toEpochMillis(task.updatedAt), heldUntil: heldUntilOf(task), refs: payloadRefs(task) })
  }

  return { step, fullSweep, cursor: readCursor, learn } satisfies Sweeper
})
