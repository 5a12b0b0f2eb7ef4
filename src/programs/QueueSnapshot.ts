/**
 * The dashboard's view of the bucket: ONE shared server-side refresh, published to every open tab.
 *
 * The reference's dashboard rescans the whole bucket (up to 8 000 GETs) for every open tab every
 * 5 s (reference/buquet.md §3.2). Here one refresh fiber reads the bucket at a bounded cost and
 * publishes an immutable {@link Snapshot} through a `SubscriptionRef`; pages, the JSON API and
 * every SSE client read the snapshot, so the number of tabs does not change the requests made.
 *
 * Cost of one refresh (measured exactly: the refresh runs on a CountingStorage of its own, and
 * the counts are part of the snapshot and shown on the page):
 * - LIST `tasks/` page by page (1 000 keys each), at most `maxListPagesPerRefresh` pages; a bigger
 *   bucket is walked on by the next refreshes from a cursor, so one refresh stays bounded;
 * - GET only the objects whose ETag differs from the one read last time (changed or new), at most
 *   `maxGetsPerRefresh`, the most recently modified first; the others are read by the next refresh
 *   (`unread` says how many wait);
 * - LIST `workers/` and `schedules/`, GET the records whose ETag changed;
 * - while some schedule is enabled, GET the scheduler's leader lease (is a scheduler running?).
 * An idle queue of N tasks without schedules costs ⌈N/1000⌉ + 2 LISTs and no GET per refresh.
 *
 * Refreshes run every `refreshInterval` while someone watches (an SSE client is connected), and
 * on demand when a page is rendered from a snapshot older than that; concurrent demands share one
 * refresh.
 *
 * @module
 */
import { DateTime, Duration, Effect, Either, Option, Ref, Schedule, Schema, Stream, SubscriptionRef } from "effect"
import { decodeObject } from "../domain/Codec.js"
import { nextInstant, parseCron } from "../domain/Schedule.js"
import { allShards } from "../domain/Shard.js"
import { MalformedObject } from "../domain/QueueError.js"
import { parseScheduleKey } from "../domain/Keys.js"
import type { StorageReadError } from "../domain/StorageError.js"
import { decodeTask, Task, Timestamp } from "../domain/Task.js"
import { allStatuses } from "../domain/TaskStatus.js"
import { summarizeTypes } from "../domain/TypeStats.js"
import type { TypeStats } from "../domain/TypeStats.js"
import type { TaskStatus } from "../domain/TaskStatus.js"
import * as CountingStorage from "../layers/CountingStorage.js"
import type { RequestCounts } from "../services/RequestCounter.js"
import { compareKeys } from "../domain/KeyOrder.js"
import { shortIds } from "../protocol/TaskIdPrefix.js"
import { ServerClock } from "../services/ServerClock.js"
import { Storage } from "../services/Storage.js"
import type { ObjectMeta, StorageService } from "../services/Storage.js"
import { field, nullableField as optionalField } from "../domain/SnakeCase.js"
import { decodeWorkerRecordAt, healthyWithin as defaultHealthyWithin, isHealthyAt, WorkerView } from "../domain/WorkerRecord.js"
import { leaderLeaseKey } from "./LeaderLease.js"
import * as SchedulerLoop from "./SchedulerLoop.js"

import { typeCoverage } from "../domain/TypeCoverage.js"
import type { TypeCoverage } from "../domain/TypeCoverage.js"

export { WorkerView } from "../domain/WorkerRecord.js"

// --- records the snapshot reads besides tasks ------------------------------------------------------

/** A schedule record `schedules/{id}.json` as the dashboard reads it (the reference's fields, ours when present). */
export class ScheduleRecordView extends Schema.Class<ScheduleRecordView>("ScheduleRecordView")({
  id: Schema.String,
  taskType: field(Schema.String, "task_type"),
  cron: Schema.String,
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  timezone: optionalField(Schema.String, "timezone"),
  input: Schema.optionalWith(Schema.Unknown, { default: () => null })
}) {}

/** A last-run record `schedules/{id}/last_run.json` as the dashboard reads it. */
export class LastRunView extends Schema.Class<LastRunView>("LastRunView")({
  lastRunAt: field(Timestamp, "last_run_at"),
  lastTaskId: optionalField(Schema.String, "last_task_id")
}) {}

/** A worker as shown: its record and whether it is healthy at the snapshot's time. */
export interface WorkerState {
  readonly record: WorkerView
  /** A heartbeat within `healthyWithin` (three idle heartbeat intervals) of the snapshot's server time. */
  readonly healthy: boolean
  /** Every task it runs (ours), else the reference's single current task. */
  readonly currentTasks: ReadonlyArray<string>
}

/** A schedule as shown: definition, last run, and the next cron instant. */
export interface ScheduleState {
  readonly record: ScheduleRecordView
  readonly lastRun: LastRunView | undefined
  readonly nextRun: DateTime.Utc | undefined
  /**
   * The first cron instant after the last run (absent when it never ran or is disabled): when it
   * is in the past, the firing is that late (a scheduler is behind, or none runs).
   */
  readonly firstUnfired?: DateTime.Utc | undefined
  /** Why the next run is unknown (a cron this runtime cannot parse). */
  readonly problem: string | undefined
}

/** Completions and failures in one minute (for the charts). */
export interface MinuteCounts {
  /** Start of the minute, epoch milliseconds (server time). */
  readonly minute: number
  readonly completed: number
  readonly failed: number
  readonly retried: number
}

/** Queue depth of one shard. */
export interface ShardDepth {
  readonly shard: string
  readonly pending: number
  readonly running: number
}

/** An object the refresh could not decode (skipped, never hidden). */
export interface MalformedEntry {
  readonly key: string
  readonly message: string
}

/** What the dashboard shows: one immutable view of the bucket, shared by every tab. */
export interface Snapshot {
  /** Refreshes done so far (0: nothing read yet). */
  readonly refreshes: number
  /** Server time of the last refresh (none before the first). */
  readonly refreshedAt: Option.Option<DateTime.Utc>
  /** How long the last refresh took. */
  readonly refreshMillis: number
  /** Every task read, most recently updated first. */
  readonly tasks: ReadonlyArray<Task>
  /** Tasks by id. */
  readonly byId: ReadonlyMap<string, Task>
  /** Each task's short id: its shortest unique prefix of 6+ characters, as `buquet get` takes it. */
  readonly shortIds: ReadonlyMap<string, string>
  /** Tasks per status. */
  readonly counts: Readonly<Record<TaskStatus, number>>
  /** The per-type overview (pending, running, failures, rate, oldest wait, run times, workers). */
  readonly types: ReadonlyArray<TypeStats>
  /** Pending and running tasks per shard. */
  readonly depth: ReadonlyArray<ShardDepth>
  /** The last `chartMinutes` minutes, oldest first. */
  readonly throughput: ReadonlyArray<MinuteCounts>
  readonly workers: ReadonlyArray<WorkerState>
  /** Which task types the live workers handle (domain/TypeCoverage.ts): pending tasks of others are flagged. */
  readonly coverage: TypeCoverage
  readonly schedules: ReadonlyArray<ScheduleState>
  /**
   * Whether a scheduler holds its leader lease (`SchedulerLoop.isRunning`): read only while some
   * schedule is enabled; undefined when not read or unreadable (then `malformed` names the lease).
   */
  readonly schedulerRunning: boolean | undefined
  /** Requests of the last refresh, by kind. */
  readonly lastCost: RequestCounts
  /** Requests of all refreshes since start, by kind. */
  readonly totalCost: RequestCounts
  /** Changed objects not read yet (the GET budget ran out; the next refresh reads them). */
  readonly unread: number
  /** Whether the last refresh walked all of `tasks/` (false: a bounded walk goes on next time). */
  readonly complete: boolean
  readonly malformed: ReadonlyArray<MalformedEntry>
  /** Why the last refresh failed, if it did (the previous data stays). */
  readonly error: Option.Option<string>
}

/** Options of {@link make}. */
export interface SnapshotOptions {
  /** How often to refresh while someone watches (default 5 s). */
  readonly refreshInterval?: Duration.DurationInput | undefined
  /** Most GETs one refresh makes (default 500). */
  readonly maxGetsPerRefresh?: number | undefined
  /** Most LIST pages of `tasks/` one refresh reads (default 50, i.e. 50 000 tasks). */
  readonly maxListPagesPerRefresh?: number | undefined
  /** Heartbeat age beyond which a worker is unhealthy (default 3 min: three idle heartbeat intervals). */
  readonly healthyWithin?: Duration.DurationInput | undefined
  /** Minutes of history in the charts (default 60). */
  readonly chartMinutes?: number | undefined
  /** The queue's shard prefix length, to show every shard's depth (default 1). */
  readonly shardPrefixLen?: number | undefined
  /** Whether to read `schedules/` (default true; `buquet stats` does not show schedules). */
  readonly readSchedules?: boolean | undefined
}

/** The shared snapshot source. */
export interface QueueSnapshot {
  /** The latest snapshot (no request). */
  readonly current: Effect.Effect<Snapshot>
  /** The latest snapshot, refreshed first when older than the refresh interval (shared by concurrent callers). */
  readonly fresh: Effect.Effect<Snapshot>
  /** Refreshes now (waits for a refresh in progress, then makes one), and returns the result. */
  readonly refreshNow: Effect.Effect<Snapshot>
  /**
   * The snapshots from now on, starting with the current one: one subscription of an SSE client.
   * While it is consumed, the periodic refresh runs.
   */
  readonly watch: Stream.Stream<Snapshot>
  /** How many watchers are connected. */
  readonly watchers: Effect.Effect<number>
  /** The refresh interval. */
  readonly interval: Duration.Duration
}

const zeroCounts: RequestCounts = {
  PUT: 0,
  GET: 0,
  HEAD: 0,
  LIST: 0,
  "LIST-VERSIONS": 0,
  DELETE: 0,
  deletedKeys: 0,
  total: 0
}

const addCounts = (a: RequestCounts, b: RequestCounts): RequestCounts => ({
  PUT: a.PUT + b.PUT,
  GET: a.GET + b.GET,
  HEAD: a.HEAD + b.HEAD,
  LIST: a.LIST + b.LIST,
  "LIST-VERSIONS": a["LIST-VERSIONS"] + b["LIST-VERSIONS"],
  DELETE: a.DELETE + b.DELETE,
  deletedKeys: a.deletedKeys + b.deletedKeys,
  total: a.total + b.total
})

const emptySnapshot: Snapshot = {
  refreshes: 0,
  refreshedAt: Option.none(),
  refreshMillis: 0,
  tasks: [],
  byId: new Map(),
  shortIds: new Map(),
  counts: Object.fromEntries(allStatuses.map((s) => [s, 0])) as Record<TaskStatus, number>,
  types: [],
  depth: [],
  throughput: [],
  workers: [],
  // nothing read yet: nothing is known, so nothing is flagged
  coverage: { live: 0, handlers: new Map(), unlisted: ["(not read yet)"] },
  schedules: [],
  schedulerRunning: undefined,
  lastCost: zeroCounts,
  totalCost: zeroCounts,
  unread: 0,
  complete: false,
  malformed: [],
  error: Option.none()
}

interface Cached<A> {
  readonly etag: string
  readonly value: A | undefined
}

const decodeWith = <A, I>(schema: Schema.Schema<A, I>) => (key: string, body: Uint8Array) => decodeObject(schema, key, body)

/** A schedule record checked against its key: a body naming another id is malformed (its actions would act on that id). */
const decodeScheduleAt = (key: string, body: Uint8Array): Effect.Effect<ScheduleRecordView, MalformedObject> => {
  const id = parseScheduleKey(key)
  if (id === undefined) {
    return Effect.fail(new MalformedObject({ key, message: `${key} is malformed: its key does not name a valid schedule id (schedules/{id}.json)` }))
  }
  return Effect.flatMap(decodeObject(ScheduleRecordView, key, body), (record) =>
    record.id === id
      ? Effect.succeed(record)
      : Effect.fail(
        new MalformedObject({ key, message: `${key} is malformed: its id ${JSON.stringify(record.id.slice(0, 80))} is not the id its key names (${id})` })
      ))
}

const taskKeyPattern = /^tasks\/[0-9a-f]{1,4}\/[^/]+\.json$/
// every .json under workers/, so a record with a hostile key is reported as malformed, not hidden
const workerKeyPattern = /^workers\/.+\.json$/s
const scheduleKeyPattern = /^schedules\/[^/]+\.json$/
const lastRunKeyPattern = /^schedules\/([^/]+)\/last_run\.json$/

const minuteMillis = 60_000

/** Summaries of the tasks: counts, depth per shard, per-minute completions and failures. */
const summarize = (
  tasks: ReadonlyArray<Task>,
  now: DateTime.Utc,
  chartMinutes: number,
  shardPrefixLen: number
): Pick<Snapshot, "counts" | "depth" | "throughput"> => {
  const counts = Object.fromEntries(allStatuses.map((s) => [s, 0])) as Record<TaskStatus, number>
  const depth = new Map<string, { pending: number; running: number }>()
  // every shard when there are few (the chart shows empty ones too), else only those with work
  if (shardPrefixLen <= 2) for (const shard of allShards(shardPrefixLen)) depth.set(shard, { pending: 0, running: 0 })
  const nowMinute = Math.floor(DateTime.toEpochMillis(now) / minuteMillis) * minuteMillis
  const first = nowMinute - (chartMinutes - 1) * minuteMillis
  const minutes = Array.from({ length: chartMinutes }, (_, i) => ({ minute: first + i * minuteMillis, completed: 0, failed: 0, retried: 0 }))
  for (const task of tasks) {
    counts[task.status] += 1
    if (task.status === "pending" || task.status === "running") {
      const d = depth.get(task.shard) ?? { pending: 0, running: 0 }
      d[task.status] += 1
      depth.set(task.shard, d)
    }
    for (const event of task.events ?? []) {
      const at = DateTime.toEpochMillis(event.at)
      if (at < first || at >= nowMinute + minuteMillis) continue
      const slot = minutes[Math.floor((at - first) / minuteMillis)]
      if (slot === undefined) continue
      if (event.to === "completed") slot.completed += 1
      else if (event.to === "failed") slot.failed += 1
      else if (event.from === "running" && event.to === "pending" && event.error !== undefined) slot.retried += 1
    }
  }
  return {
    counts,
    depth: [...depth.entries()].sort(([a], [b]) => compareKeys(a, b)).map(([shard, d]) => ({ shard, ...d })),
    throughput: minutes
  }
}

/**
 * Builds the shared snapshot source and starts its refresh fiber in the scope. Reads through its
 * own CountingStorage over the Storage in context, so its cost is exactly what it asked for.
 */
export const make = Effect.fn("QueueSnapshot.make")(function*(options: SnapshotOptions = {}) {
  const interval = Duration.decode(options.refreshInterval ?? "5 seconds")
  const maxGets = Math.max(1, options.maxGetsPerRefresh ?? 500)
  const maxPages = Math.max(1, options.maxListPagesPerRefresh ?? 50)
  const healthyWithin = options.healthyWithin ?? defaultHealthyWithin
  const chartMinutes = Math.max(1, options.chartMinutes ?? 60)
  const shardPrefixLen = options.shardPrefixLen ?? 1
  const clock = yield* ServerClock
  const { counter, storage } = yield* CountingStorage.make(yield* Storage)

  const ref = yield* SubscriptionRef.make(emptySnapshot)
  const watcherCount = yield* Ref.make(0)
  // the local monotonic instant of the last refresh, for "is it stale?" (ServerClock is for display)
  const lastRefreshLocal = yield* Ref.make<number | undefined>(undefined)
  const lock = yield* Effect.makeSemaphore(1)

  // caches live only in the refresh fiber (under the lock)
  const taskCache = new Map<string, Cached<Task>>()
  const workerCache = new Map<string, Cached<WorkerView>>()
  const scheduleCache = new Map<string, Cached<ScheduleRecordView>>()
  const lastRunCache = new Map<string, Cached<LastRunView>>()
  const malformed = new Map<string, string>()
  let taskCursor: string | undefined = undefined
  let walkedAll = false
  // worker records listed but not read yet (GET budget): until they are, coverage is not known
  let workersUnread = 0

  /** GETs the changed objects among `listed` (newest first, within `budget`); returns how many waited. */
  const readChanged = <A>(
    store: StorageService,
    listed: ReadonlyArray<ObjectMeta>,
    cache: Map<string, Cached<A>>,
    decode: (key: string, body: Uint8Array) => Effect.Effect<A, MalformedObject>,
    budget: Ref.Ref<number>
  ) =>
    Effect.gen(function*() {
      const changed = listed.filter((o) => cache.get(o.key)?.etag !== o.etag)
        .sort((a, b) => DateTime.toEpochMillis(b.lastModified) - DateTime.toEpochMillis(a.lastModified))
      const allowed = yield* Ref.modify(budget, (left) => {
        const n = Math.min(left, changed.length)
        return [n, left - n] as const
      })
      yield* Effect.forEach(
        changed.slice(0, allowed),
        (meta) =>
          Effect.gen(function*() {
            const found = yield* store.get(meta.key)
            if (Option.isNone(found)) {
              cache.delete(meta.key)
              return
            }
            const decoded = yield* Effect.either(decode(meta.key, found.value.body))
            if (Either.isLeft(decoded)) malformed.set(meta.key, decoded.left.message)
            else malformed.delete(meta.key)
            // remember the ETag even when malformed, so a bad object is not re-read every time
            cache.set(meta.key, { etag: found.value.etag, value: Either.getOrUndefined(decoded) })
          }),
        { concurrency: 8, discard: true }
      )
      return changed.length - allowed
    })

  /** Removes cached keys of `prefix` that a full listing no longer has. */
  const forget = <A>(cache: Map<string, Cached<A>>, listed: ReadonlyArray<ObjectMeta>) => {
    const keep = new Set(listed.map((o) => o.key))
    for (const key of cache.keys()) {
      if (!keep.has(key)) {
        cache.delete(key)
        malformed.delete(key)
      }
    }
  }

  const listAll = (store: StorageService, prefix: string) =>
    Stream.runCollect(store.listAll(prefix)).pipe(Effect.map((chunk) => [...chunk]))

  /** One bounded walk of `tasks/` from the cursor; GETs the changed tasks within the budget. */
  const syncTasks = (store: StorageService, budget: Ref.Ref<number>) =>
    Effect.gen(function*() {
      const start = taskCursor
      const listed: Array<ObjectMeta> = []
      let token: string | undefined = undefined
      let pages = 0
      let reachedEnd = false
      while (pages < maxPages) {
        const page: { objects: ReadonlyArray<ObjectMeta>; nextContinuationToken: string | undefined } = yield* store.list(
          "tasks/",
          token === undefined ? { startAfter: start } : { continuationToken: token }
        )
        pages += 1
        for (const o of page.objects) if (taskKeyPattern.test(o.key)) listed.push(o)
        token = page.nextContinuationToken
        if (token === undefined) {
          reachedEnd = true
          break
        }
      }
      const last = listed.length === 0 ? undefined : listed[listed.length - 1]!.key
      // keys in the walked range that the listing no longer has were deleted
      const seen = new Set(listed.map((o) => o.key))
      for (const key of taskCache.keys()) {
        const afterStart = start === undefined || compareKeys(key, start) > 0
        const beforeEnd = reachedEnd || (last !== undefined && compareKeys(key, last) <= 0)
        if (afterStart && beforeEnd && !seen.has(key)) {
          taskCache.delete(key)
          malformed.delete(key)
        }
      }
      taskCursor = reachedEnd ? undefined : last
      walkedAll = reachedEnd && start === undefined
      return yield* readChanged(store, listed, taskCache, decodeTask, budget)
    })

  const syncWorkers = (store: StorageService, budget: Ref.Ref<number>) =>
    Effect.gen(function*() {
      const listed = (yield* listAll(store, "workers/")).filter((o) => workerKeyPattern.test(o.key))
      forget(workerCache, listed)
      const waiting = yield* readChanged(store, listed, workerCache, decodeWorkerRecordAt(WorkerView, (w) => w.workerId), budget)
      workersUnread = waiting
      return waiting
    })

  const syncSchedules = (store: StorageService, budget: Ref.Ref<number>) =>
    Effect.gen(function*() {
      const all = yield* listAll(store, "schedules/")
      const records = all.filter((o) => scheduleKeyPattern.test(o.key))
      const lastRuns = all.filter((o) => lastRunKeyPattern.test(o.key))
      forget(scheduleCache, records)
      forget(lastRunCache, lastRuns)
      const a = yield* readChanged(store, records, scheduleCache, decodeScheduleAt, budget)
      const b = yield* readChanged(store, lastRuns, lastRunCache, decodeWith(LastRunView), budget)
      return a + b
    })

  /** Whether a scheduler runs, asked only when a schedule could fire (the lease is one GET). */
  const syncScheduler = (store: StorageService): Effect.Effect<boolean | undefined, StorageReadError> =>
    [...scheduleCache.values()].some((c) => c.value?.enabled === true)
      ? SchedulerLoop.isRunning.pipe(
        Effect.tap(() => Effect.sync(() => malformed.delete(leaderLeaseKey(SchedulerLoop.schedulerLeaseName)))),
        Effect.catchTag("MalformedObject", (e) =>
          Effect.sync(() => {
            malformed.set(e.key, e.message)
            return undefined
          })),
        Effect.provideService(Storage, store),
        Effect.provideService(ServerClock, clock)
      )
      : Effect.succeed(undefined)

  const scheduleStates = (now: DateTime.Utc): ReadonlyArray<ScheduleState> =>
    [...scheduleCache.entries()].flatMap(([key, c]): Array<ScheduleState> => {
      if (c.value === undefined) return []
      const record = c.value
      const id = key.slice("schedules/".length, -".json".length)
      const lastRun = lastRunCache.get(`schedules/${id}/last_run.json`)?.value
      if (!record.enabled) return [{ record, lastRun, nextRun: undefined, problem: undefined }]
      // the scheduler's own reading of the cron (fields, timezone, never-firing), synchronous and pure
      const cron = Effect.runSync(Effect.either(parseCron(record.cron, record.timezone)))
      if (Either.isLeft(cron)) return [{ record, lastRun, nextRun: undefined, problem: cron.left.message }]
      const after = (t: DateTime.Utc) => Either.getOrUndefined(nextInstant(cron.right, t, record.cron))
      return [{
        record,
        lastRun,
        nextRun: after(now),
        firstUnfired: lastRun === undefined ? undefined : after(lastRun.lastRunAt),
        problem: undefined
      }]
    }).sort((a, b) => compareKeys(a.record.id, b.record.id))

  const doRefresh: Effect.Effect<Snapshot> = Effect.gen(function*() {
    const startedLocal = yield* Effect.clockWith((c) => c.currentTimeMillis)
    yield* counter.reset
    const budget = yield* Ref.make(maxGets)
    const outcome = yield* Effect.either(
      Effect.all([
        syncTasks(storage, budget),
        syncWorkers(storage, budget),
        options.readSchedules === false ? Effect.succeed(0) : syncSchedules(storage, budget)
      ])
    )
    const scheduler = Either.isRight(outcome) ? yield* Effect.either(syncScheduler(storage)) : undefined
    const cost = yield* counter.take
    const now = yield* clock.now
    const finishedLocal = yield* Effect.clockWith((c) => c.currentTimeMillis)
    yield* Ref.set(lastRefreshLocal, finishedLocal)
    const previous = yield* SubscriptionRef.get(ref)
    const tasks = [...taskCache.values()].flatMap((c) => (c.value === undefined ? [] : [c.value]))
      .sort((a, b) => DateTime.toEpochMillis(b.updatedAt) - DateTime.toEpochMillis(a.updatedAt) || compareKeys(a.id, b.id))
    const workers = [...workerCache.values()].flatMap((c) => (c.value === undefined ? [] : [c.value]))
      .sort((a, b) => compareKeys(a.workerId, b.workerId))
      .map((record): WorkerState => ({
        record,
        healthy: isHealthyAt(record, now, healthyWithin),
        currentTasks: record.currentTasks ?? (record.currentTask === undefined ? [] : [record.currentTask])
      }))
    const next: Snapshot = {
      ...summarize(tasks, now, chartMinutes, shardPrefixLen),
      refreshes: previous.refreshes + 1,
      refreshedAt: Option.some(now),
      refreshMillis: finishedLocal - startedLocal,
      tasks,
      byId: new Map(tasks.map((t) => [t.id, t])),
      shortIds: shortIds(tasks.map((t) => t.id)),
      types: summarizeTypes(tasks, workers.map((w) => ({ workerId: w.record.workerId, healthy: w.healthy, taskTypes: w.record.taskTypes })), now),
      workers,
      coverage: workersUnread > 0 || Either.isLeft(outcome)
        ? { ...typeCoverage(workers.map((w) => w.record), now, healthyWithin), unlisted: ["(worker records not all read)"] }
        : typeCoverage(workers.map((w) => w.record), now, healthyWithin),
      schedules: scheduleStates(now),
      schedulerRunning: scheduler === undefined ? previous.schedulerRunning : Either.getOrUndefined(scheduler),
      lastCost: cost,
      totalCost: addCounts(previous.totalCost, cost),
      unread: Either.isRight(outcome) ? outcome.right.reduce((a, b) => a + b, 0) : previous.unread,
      complete: walkedAll,
      malformed: [...malformed.entries()].map(([key, message]) => ({ key, message })),
      error: Either.isLeft(outcome) ? Option.some(outcome.left.message) : Option.none()
    }
    yield* SubscriptionRef.set(ref, next)
    return next
  }).pipe(Effect.withSpan("QueueSnapshot.refresh"))

  const refreshNow: Effect.Effect<Snapshot> = lock.withPermits(1)(doRefresh)

  const isStale = Effect.gen(function*() {
    const last = yield* Ref.get(lastRefreshLocal)
    if (last === undefined) return true
    const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
    return now - last >= Duration.toMillis(interval)
  })

  // concurrent callers queue on the lock; the first refreshes, the rest find it fresh
  const fresh: Effect.Effect<Snapshot> = lock.withPermits(1)(
    Effect.flatMap(isStale, (stale) => (stale ? doRefresh : SubscriptionRef.get(ref)))
  )

  // the one refresh loop: ticks on the schedule, refreshes only while someone watches
  yield* Effect.gen(function*() {
    const watching = (yield* Ref.get(watcherCount)) > 0
    if (watching) yield* fresh
  }).pipe(Effect.repeat(Schedule.spaced(interval)), Effect.interruptible, Effect.forkScoped)

  const watch: Stream.Stream<Snapshot> = Stream.unwrapScoped(
    Effect.gen(function*() {
      yield* Effect.acquireRelease(Ref.update(watcherCount, (n) => n + 1), () => Ref.update(watcherCount, (n) => n - 1))
      yield* fresh
      return ref.changes
    })
  )

  const source: QueueSnapshot = {
    current: SubscriptionRef.get(ref),
    fresh,
    refreshNow,
    watch,
    watchers: Ref.get(watcherCount),
    interval
  }
  return source
})
