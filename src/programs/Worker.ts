/**
 * The Worker runtime (design.md §6): discovers ready tasks, claims them, runs their handlers as
 * fibers with a concurrency limit, settles them by type of outcome, and shuts down gracefully.
 * Everything long-running is a fiber in the caller's Scope.
 *
 * ```ts
 * const program = Worker.run(
 *   { concurrency: 8 },
 *   [
 *     Worker.handler(SendEmail, (input, ctx) => sendEmail(input)),
 *     Worker.handler("resize", (input) => Effect.fail(new RetryableError({ message: "busy" })))
 *   ]
 * ) // Effect<void, InvalidWorkerOptions, Storage | ServerClock>: returns after SIGINT/SIGTERM or maxTasks
 *
 * // or, for tests and embedding: a handle with events and stop
 * const worker = yield* Worker.make({ concurrency: 4 }, handlers)   // needs a Scope
 * yield* worker.events.pipe(Stream.take(3), Stream.runCollect)
 * yield* worker.stop                                               // graceful
 * ```
 *
 * Fibers under the scope: the main loop (discovery passes paced by the polling Schedule or, when
 * idle, by the wake-up watch), one fiber per running task (with its handler's, and lease renewal
 * and progress fibers when used), the heartbeat, the running tasks' deadlines
 * (worker/DeadlineWheel.ts) and the watch of the worker's cancel signal (one HEAD per 2 s while
 * tasks run, worker/CancelWatch.ts). Closing the scope is a graceful shutdown:
 * stop claiming, let running handlers finish within `shutdownGracePeriod`, then interrupt them and
 * give their tasks back without consuming a retry, deregister.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { Clock, DateTime, Deferred, Duration, Effect, Either, ExecutionStrategy, Exit, ParseResult, Schema, Fiber, Option, PubSub, Queue, Ref, Schedule, Scope, Stream, SubscriptionRef } from "effect"
import { decodeObject } from "../domain/Codec.js"
import { WorkerId } from "../domain/Names.js"
import { isPaused, pauseKey, PauseState } from "../domain/Pause.js"
import { allShards, isShard } from "../domain/Shard.js"
import * as DeleteBatcher from "../protocol/DeleteBatcher.js"
import { keyOfTask } from "../protocol/TaskObjects.js"
import { makeSignal } from "../protocol/WakeUp.js"
import type { Task } from "../domain/Task.js"
import type { LeaseManager } from "../services/LeaseManager.js"
import { Queue as QueueService } from "../services/Queue.js"
import { Scheduler as SchedulerService } from "../services/Scheduler.js"
import { ServerClock } from "../services/ServerClock.js"
import { Storage } from "../services/Storage.js"
import * as Monitor from "./Monitor.js"
import * as SchedulerLoop from "./SchedulerLoop.js"
import * as ShardLeasing from "./ShardLeasing.js"
import { tryClaim } from "./worker/Claim.js"
import { defaultSafetyMargin } from "./worker/Deadline.js"
import type { ClaimEnv, ClaimOutcome } from "./worker/Claim.js"
import * as Discovery from "./worker/Discovery.js"
import { InvalidWorkerOptions } from "./worker/Errors.js"
import { resolveLayout } from "./worker/Layout.js"
import * as Events from "./worker/Events.js"
import type { WorkerEvent, WorkerHooks } from "./worker/Events.js"
import { execute, StopReason } from "./worker/Execute.js"
import type { StopSignal } from "./worker/Execute.js"
import type { HandlerDefinition } from "./worker/Handler.js"
import * as Heartbeat from "./worker/Heartbeat.js"
import * as Fleet from "./worker/Fleet.js"
import * as Polling from "./worker/Polling.js"
import { awaitSignal, defaultSignals } from "./worker/Shutdown.js"
import * as WakeUp from "./worker/WakeUp.js"
import * as CancelWatch from "./worker/CancelWatch.js"
import * as DeadlineWheel from "./worker/DeadlineWheel.js"

export { handler } from "./worker/Handler.js"
export type { HandlerDefinition, HandlerOptions, TaskContext } from "./worker/Handler.js"
export { LeaseLost, InvalidWorkerOptions } from "./worker/Errors.js"
export { WorkerEvent } from "./worker/Events.js"
export type { WorkerEventTag, WorkerHooks } from "./worker/Events.js"
export type { PollingOptions } from "./worker/Polling.js"
export type { WakeUpOptions } from "./worker/WakeUp.js"

/**
 * Options of a worker; every one has a default.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerOptions {
  /** The worker's id (default: a fresh UUID). Names `workers/{id}.json`. */
  readonly id?: string | undefined
  /** How many tasks run at once (default 1). */
  readonly concurrency?: number | undefined
  /**
   * The queue's shard prefix length (1–4). Default: the `Queue` in context's, else that of the
   * queue the `Scheduler` submits with (`layerWorkerServices(config)`). The option, the Queue and
   * the Scheduler's queue must agree: a worker whose parts disagree is refused (InvalidWorkerOptions).
   */
  readonly shardPrefixLen?: number | undefined
  /** The shards to poll (default all). */
  readonly shards?: ReadonlyArray<string> | undefined
  /** Pacing of discovery passes (default adaptive 100 ms → 5 s × 2, jittered). */
  readonly polling?: Polling.PollingOptions | undefined
  /** The wake-up signal (default on); `false` polls on the schedule only. */
  readonly wakeUp?: boolean | WakeUp.WakeUpOptions | undefined
  /** How long running handlers may finish after a stop before they are interrupted and released (default 30 s). */
  readonly shutdownGracePeriod?: Duration.DurationInput | undefined
  /** Stop after claiming this many tasks (and finishing them). */
  readonly maxTasks?: number | undefined
  /** Hooks run for each event of their kind. */
  readonly hooks?: WorkerHooks | undefined
  /** Heartbeat intervals (default 10 s busy, 60 s idle). */
  readonly heartbeat?: { readonly busy?: Duration.DurationInput; readonly idle?: Duration.DurationInput } | undefined
  /** Kept between a handler's local deadline and its lease end, on top of clock uncertainty (default 500 ms). */
  readonly leaseSafetyMargin?: Duration.DurationInput | undefined
  /**
   * How often the worker's cancel signal (`control/cancel/{id}`) is checked while tasks run: one
   * HEAD however many run (default 2 s: a cancel is noticed within 5 s).
   */
  readonly cancelCheckInterval?: Duration.DurationInput | undefined
  /**
   * How often each running task is checked on its own (a HEAD), for a cancel whose signal never
   * landed (a crash between the cancel and the signal, the reference's cancel) (default 5 min).
   */
  readonly cancelFallbackInterval?: Duration.DurationInput | undefined
  /** At most one progress write per task per this interval (default 2 s). */
  readonly progressInterval?: Duration.DurationInput | undefined
  /** Outputs larger than this many bytes of JSON go to `payloads/` (default: the queue's, as for `shardPrefixLen`). */
  readonly payloadThresholdBytes?: number | undefined
  /** Keys per discovery LIST (default 1000). */
  readonly pageSize?: number | undefined
  /**
   * The embedded monitor (design.md §6; lease recovery, index repair, opt-in retention): ON by
   * default. It is leader-elected (`control/leader/monitor.json`), so one instance per bucket works
   * and the others cost about one GET per leader poll. `false` turns it off (e.g. when `buquet
   * monitor` runs elsewhere); `MonitorOptions` tune it (its leader id defaults to the worker id).
   * It stops when the worker stops.
   */
  readonly monitor?: boolean | Monitor.MonitorOptions | undefined
  /**
   * The embedded cron scheduler loop: OFF by default; `true` or `SchedulerLoopOptions` turn it on
   * (leader-elected: one instance per bucket fires). It needs the `Scheduler` service (the `Buquet`
   * layers provide it). It stops when the worker stops.
   */
  readonly scheduler?: boolean | SchedulerLoop.SchedulerLoopOptions | undefined
  /**
   * Shard leasing (opt-in, for large fleets): the worker polls only the shards it owns through
   * `shard-leases/`, renewed by its own fiber, so N workers split the shards about evenly. `true`
   * uses the defaults; `workerId`, `shardPrefixLen` and `shards` default to the worker's own. Its
   * leases are released when the worker stops (after its running tasks are settled). It needs the
   * `LeaseManager` service (the `Buquet` layers provide it).
   */
  readonly shardLeasing?: boolean | Partial<ShardLeasing.ShardLeasingOptions> | undefined
}

/**
 * The services a worker runs on: the store and its clock, the `LeaseManager` (shard leasing) and
 * the `Scheduler` (the embedded cron loop; the worker follows the settings of the queue it submits
 * with when no `Queue` is in context). The `Buquet` layers provide them all.
 *
 * @since 0.1.0
 * @category models
 */
export type WorkerServices = Storage | ServerClock | LeaseManager | SchedulerService

/**
 * Counters of a worker.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerStats {
  readonly claimed: number
  readonly completed: number
  readonly failed: number
  readonly retried: number
  readonly rescheduled: number
  readonly cancelled: number
  readonly released: number
  readonly leaseLost: number
  readonly running: ReadonlyArray<string>
  readonly passes: number
  readonly lists: number
}

/**
 * A running worker.
 *
 * @since 0.1.0
 * @category models
 */
export interface Worker {
  readonly id: string
  /** Events from the moment of reading (use {@link Worker.subscribe} to not miss any). */
  readonly events: Stream.Stream<WorkerEvent>
  /** A scoped subscription to the events. */
  readonly subscribe: Effect.Effect<Stream.Stream<WorkerEvent>, never, Scope.Scope>
  /** Counters and the tasks running now. */
  readonly stats: Effect.Effect<WorkerStats>
  /** Graceful stop: stop claiming, finish or release running tasks, deregister. Idempotent. */
  readonly stop: Effect.Effect<void>
  /** Completes when the worker has stopped (after `stop`, scope close, or `maxTasks` done). */
  readonly await: Effect.Effect<void>
}

const emptyStats: WorkerStats = {
  claimed: 0,
  completed: 0,
  failed: 0,
  retried: 0,
  rescheduled: 0,
  cancelled: 0,
  released: 0,
  leaseLost: 0,
  running: [],
  passes: 0,
  lists: 0
}

/** How long a busy worker goes on with the pause switches it read (see `typePaused`). */
const pauseMaxAgeMillis = 1_000

const invalid = (option: string, message: string) => new InvalidWorkerOptions({ option, message })

/**
 * Starts a worker in the current Scope and returns its handle. The scope's close is a graceful
 * shutdown. `handlers` are built with {@link handler}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <R>(
  options: WorkerOptions,
  handlers: ReadonlyArray<HandlerDefinition<R>>
): Effect.Effect<Worker, InvalidWorkerOptions, WorkerServices | Scope.Scope | R> =>
  Effect.gen(function*() {
    const workerId = options.id ?? randomUUID()
    // the id names workers/{id}.json, lease records and log lines: the same rule as every other name in a key
    const badId = Schema.validateEither(WorkerId)(workerId)
    if (Either.isLeft(badId)) {
      const why = ParseResult.ArrayFormatter.formatErrorSync(badId.left)[0]?.message ?? "not a valid worker id"
      return yield* invalid("id", `worker id ${JSON.stringify(workerId.slice(0, 80))} is refused: ${why}`)
    }
    const concurrency = options.concurrency ?? 1
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      return yield* invalid("concurrency", `concurrency must be a positive integer, got ${concurrency}`)
    }
    if (options.shardPrefixLen !== undefined && !(Number.isInteger(options.shardPrefixLen) && options.shardPrefixLen >= 1 && options.shardPrefixLen <= 4)) {
      return yield* invalid("shardPrefixLen", "shardPrefixLen must be an integer from 1 to 4 (the queue's setting)")
    }
    // The queue's settings apply (the Queue in context's, else the one the Scheduler submits with):
    // the worker polls the shards its queue writes to, and parts that disagree are refused.
    const { config: queueConfig, shardPrefixLen: prefixLen } = yield* resolveLayout({
      option: options.shardPrefixLen,
      queue: Option.map(yield* Effect.serviceOption(QueueService), (q) => q.config),
      scheduler: (yield* SchedulerService).queueConfig
    })
    const shards = [...(options.shards ?? allShards(prefixLen))].sort()
    const badShard = shards.find((s) => !isShard(s, prefixLen))
    if (badShard !== undefined) {
      return yield* invalid("shards", `"${badShard}" is not a shard for prefix length ${prefixLen} (${prefixLen} hex digits)`)
    }
    const byType = new Map<string, HandlerDefinition<R>>()
    for (const h of handlers) {
      if (byType.has(h.taskType)) return yield* invalid("handlers", `two handlers for task type "${h.taskType}"; register one`)
      byType.set(h.taskType, h)
    }
    if (byType.size === 0) return yield* invalid("handlers", "a worker needs at least one handler (Worker.handler(type, fn))")
    // a submit through this process's queue right after this start knows the types are handled
    const queueService = yield* Effect.serviceOption(QueueService)
    if (Option.isSome(queueService)) yield* queueService.value.noteHandledTypes([...byType.keys()])
    const maxTasks = options.maxTasks ?? Number.POSITIVE_INFINITY
    const grace = Duration.decode(options.shutdownGracePeriod ?? Duration.seconds(30))
    const wakeOptions = options.wakeUp === false ? undefined : options.wakeUp === true || options.wakeUp === undefined ? {} : options.wakeUp

    const storage = yield* Storage
    const clock = yield* ServerClock
    const parentScope = yield* Effect.scope
    // Fibers live in a child scope that closes AFTER the graceful-shutdown finalizer below.
    const scope = yield* Scope.fork(parentScope, ExecutionStrategy.sequential)
    const events = yield* Events.make(options.hooks)
    // The per-task bookkeeping in plain variables, not Refs: every change is one synchronous step of
    // the fiber that makes it (a Ref.update copied the running Map, or the stats, per task).
    let counters: Omit<WorkerStats, "running"> = emptyStats
    const running = new Map<string, Deferred.Deferred<StopSignal>>()
    const slotFreed = yield* Queue.sliding<void>(1)
    // a task settled: the heartbeat writes the new counters soon (Heartbeat.loop)
    const settled = yield* Queue.sliding<void>(1)
    const stopping = yield* Deferred.make<void>()
    const stopped = yield* Deferred.make<void>()
    let claimedCount = 0
    /** Set where `stopping` completes: `free` reads it without an effect of its own. */
    let isStopping = false
    const wakeSignal = yield* makeSignal(storage)
    const startedAt = yield* clock.now

    // --- per-type rate limits (sliding window of claim times) ------------------------------------
    const claimTimes = new Map<string, Array<number>>()
    const admit = (taskType: string): Effect.Effect<true | number> =>
      Effect.map(clock.currentTimeMillis, (now) => {
        const limit = byType.get(taskType)?.options.rateLimit
        if (limit === undefined) return true as const
        const window = Duration.toMillis(limit.interval)
        const times = (claimTimes.get(taskType) ?? []).filter((t) => t > now - window)
        if (times.length >= limit.limit) {
          claimTimes.set(taskType, times)
          return times[0]! + window
        }
        times.push(now)
        claimTimes.set(taskType, times)
        return true as const
      })

    // --- pause switches: one GET per second at most, only when a candidate is ours ---------------
    /**
     * The last switches that decoded. A corrupt `control/pause.json` must not stop the whole queue
     * (nor silently resume what was paused): the worker goes on with what it last read (nothing
     * paused if it never read any: whoever can write garbage there could as well write "nothing
     * paused"), and says so once per bad version, with the repair.
     */
    const lastGoodPause = yield* Ref.make(PauseState.none)
    const warnedBadPause = yield* Ref.make<string | undefined>(undefined)
    const readPause = Effect.gen(function*() {
      const found = yield* storage.get(pauseKey)
      if (Option.isNone(found)) return yield* Ref.setAndGet(lastGoodPause, PauseState.none)
      const etag = found.value.etag
      return yield* decodeObject(PauseState, pauseKey, found.value.body).pipe(
        Effect.tap((state) => Ref.set(lastGoodPause, state)),
        Effect.catchTag("MalformedObject", (e) =>
          Effect.gen(function*() {
            const last = yield* Ref.get(lastGoodPause)
            if ((yield* Ref.getAndSet(warnedBadPause, etag)) !== etag) {
              const paused = last.global ? "everything" : last.taskTypes.length === 0 ? "nothing" : last.taskTypes.join(", ")
              yield* Effect.logWarning(
                `${e.message}; going on with the switches last read (paused: ${paused}); remove it with \`buquet repair ${pauseKey}\`, then pause again what should stay paused`
              )
            }
            return last
          }))
      )
    }).pipe(
      Effect.catchAll((e) =>
        Effect.as(Effect.logWarning(`could not read the pause switches; claiming nothing this poll: ${e.message}`), new PauseState({ global: true, taskTypes: [] }))
      )
    )
    /**
     * The switches last read, used until `until` (Clock millis: the read's start plus
     * {@link pauseMaxAgeMillis}). A busy worker runs a pass for every freed slot; reading the
     * switches on each cost a GET per pass (~0.15–0.25 per task). Kept at most a second: a pause
     * still stops claiming within a second (within one poll at the idle cap), and an idle worker
     * woken by a change of the switches reads them afresh. The claims of a batch that find them
     * stale share ONE read (each used to GET them). Plain variables, not
     * `Effect.cachedInvalidateWithTTL` (a semaphore-guarded Ref: ~30 fiber-runtime steps per look,
     * and a claim looks twice).
     */
    let pauseCache: { readonly state: PauseState; readonly until: number } | undefined
    let pauseReading: Deferred.Deferred<PauseState> | undefined
    /** Bumped by `forgetPause`: a read started before it does not fill the cache. */
    let pauseGeneration = 0
    const workerFiberId = yield* Effect.fiberId
    const pauseState: Effect.Effect<PauseState> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (pauseCache !== undefined && now < pauseCache.until) return Effect.succeed(pauseCache.state)
      if (pauseReading !== undefined) return Deferred.await(pauseReading)
      const reading = Deferred.unsafeMake<PauseState>(workerFiberId)
      const generation = pauseGeneration
      pauseReading = reading
      return readPause.pipe(
        Effect.tap((state) =>
          Effect.sync(() => {
            if (generation === pauseGeneration) pauseCache = { state, until: now + pauseMaxAgeMillis }
          })
        ),
        Effect.onExit((exit) => {
          if (pauseReading === reading) pauseReading = undefined
          return Deferred.done(reading, exit)
        })
      )
    })
    const forgetPause = Effect.sync(() => {
      pauseCache = undefined
      pauseReading = undefined
      pauseGeneration++
    })
    /** The read of the switches to run beside a claim's GET, when they are not at hand. */
    const pauseWarmUp = Effect.map(Clock.currentTimeMillis, (now) =>
      pauseCache !== undefined && now < pauseCache.until ? undefined : Effect.asVoid(pauseState))
    const typePaused = (taskType: string) => Effect.map(pauseState, (state) => isPaused(state, taskType))

    const leaseSafetyMargin = Duration.decode(options.leaseSafetyMargin ?? defaultSafetyMargin)
    // the claims' ready-marker DELETEs that overlap share one DeleteObjects (DeleteBatcher.ts)
    const readyDeletes = yield* DeleteBatcher.make.pipe(Scope.extend(scope))
    const claimEnv: ClaimEnv = {
      workerId,
      handles: (t) => byType.has(t),
      isPaused: typePaused,
      warmUp: pauseWarmUp,
      admit,
      leaseSafetyMargin,
      deferReadyDelete: true,
      deleteReady: readyDeletes.delete
    }
    const context = yield* Effect.context<R | Storage | ServerClock>()
    const provideAll = <A, E>(self: Effect.Effect<A, E, R | Storage | ServerClock>) => Effect.provide(self, context)

    // --- shard leasing: poll the shards owned now, and those no capable owner covers -----------
    const leasingOptions = options.shardLeasing === undefined || options.shardLeasing === false
      ? undefined
      : options.shardLeasing === true ? {} : options.shardLeasing
    const leasing = leasingOptions === undefined ? undefined : yield* ShardLeasing.make({
      workerId,
      shardPrefixLen: prefixLen,
      shards,
      taskTypes: [...byType.keys()],
      ...leasingOptions
    }).pipe(Scope.extend(scope), Effect.mapError((e) => invalid("shardLeasing", e.message)))
    /** Offered when the polled shards change, so an idle worker looks at new shards at once. */
    const shardsChanged = yield* Queue.sliding<void>(1)
    if (leasing !== undefined) {
      yield* Effect.forkIn(
        leasing.polled.changes.pipe(Stream.drop(1), Stream.runForEach(() => Queue.offer(shardsChanged, undefined))),
        scope
      )
    }
    const ownedShards = leasing === undefined ? undefined : SubscriptionRef.get(leasing.owned)
    // the owned shards plus those whose owner cannot run one of our types (or that have no owner)
    const polledShards = leasing === undefined ? undefined : SubscriptionRef.get(leasing.polled)

    // Start the rotation at a worker-specific shard, so a fleet does not race for the same markers.
    const startOffset = [...workerId].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7)
    const discovery = Discovery.make({
      shards,
      currentShards: polledShards,
      pageSize: options.pageSize,
      startOffset,
      pausedTypes: Effect.map(pauseState, (state) => (taskType: string) => isPaused(state, taskType)),
      // this worker's slice of the live workers: tried first, so a fleet seldom races for one task
      slice: Fleet.make({ workerId, storage, now: clock.currentTimeMillis })
    })

    // made below, beside the registration (its first HEAD and the registration PUT are independent)
    const makeCancelWatch = CancelWatch.make({
      workerId,
      storage,
      checkInterval: Duration.decode(options.cancelCheckInterval ?? Duration.seconds(2)),
      busy: Effect.sync(() => running.size > 0)
    }).pipe(Scope.extend(scope))
    // every running task's deadline and fallback check, in one fiber
    const deadlines = yield* DeadlineWheel.make(clock.currentTimeMillis).pipe(Scope.extend(scope))
    const executeSettings = {
      workerId,
      safetyMargin: leaseSafetyMargin,
      cancelFallbackInterval: Duration.decode(options.cancelFallbackInterval ?? Duration.minutes(5)),
      deadlines,
      progressInterval: Duration.decode(options.progressInterval ?? Duration.seconds(2)),
      payloadThresholdBytes: options.payloadThresholdBytes ?? queueConfig.payloadThresholdBytes,
      // Our own task is claimable again: forget what discovery remembered about its marker (a pass
      // may have read it mid-settle, still running) and tell idle workers.
      onPending: (task: Task) => Effect.zipRight(discovery.forgetTask(task.id), wakeSignal.touch),
      onProgress: (taskId: string, progress: unknown) => events.publish(Events.WorkerEvent.Progress({ taskId, progress })),
      // a handler's follow-ups resolve their options with the queue's defaults, and wake idle workers once created
      queueConfig,
      onFollowUps: wakeSignal.touch
    }

    const bump = (f: (s: typeof counters) => typeof counters) =>
      Effect.sync(() => {
        counters = f(counters)
      })

    /** `cancelSeen`: the cancel signal's change count read before the claim was sent (CancelWatch.ts). */
    const started = (cancelSeen: number) => (claim: Extract<ClaimOutcome, { readonly _tag: "Claimed" }>) =>
      Effect.gen(function*() {
        const task = claim.held.task
        const definition = byType.get(task.taskType)!
        const stop = Deferred.unsafeMake<StopSignal>(workerFiberId)
        running.set(task.id, stop)
        claimedCount++
        counters = { ...counters, claimed: counters.claimed + 1 }
        yield* events.publish(Events.WorkerEvent.Claimed({ task }))
        const finished = Effect.gen(function*() {
          // the claim's ready-marker DELETE runs beside the handler; the settle waits for it
          const readyDeleted = claim.readyDeleted === undefined ? undefined : yield* Effect.fork(claim.readyDeleted)
          const outcome = yield* execute(claim.held, definition, {
            ...executeSettings,
            cancelSignal: { since: cancelSeen, onChange: cancelWatch.onChange },
            beforeSettle: readyDeleted === undefined ? undefined : Fiber.join(readyDeleted)
          }, stop)
          if (outcome === undefined) return
          const r = outcome.result
          if (r._tag === "LeaseLost") {
            yield* bump((s) => ({ ...s, leaseLost: s.leaseLost + 1 }))
            return yield* events.publish(Events.WorkerEvent.LeaseLost({ taskId: task.id, reason: r.reason }))
          }
          // our embedded monitor's sweeper need not read a task we just finished (it has its ETag)
          monitor?.learnSettled(keyOfTask(r.task), r.etag, r.task)
          const error = r.error ?? r.task.lastError ?? ""
          switch (r.kind) {
            case "completed":
              yield* bump((s) => ({ ...s, completed: s.completed + 1 }))
              return yield* events.publish(Events.WorkerEvent.Completed({ task: r.task, durationMillis: outcome.durationMillis }))
            case "failed":
              yield* Effect.logWarning(`task ${task.id} (${task.taskType}) attempt ${task.attempt} failed: ${error}; failed for good`)
              yield* bump((s) => ({ ...s, failed: s.failed + 1 }))
              return yield* events.publish(Events.WorkerEvent.Failed({ task: r.task, error, reason: r.reason ?? "permanent" }))
            case "retried":
              yield* Effect.logWarning(
                `task ${task.id} (${task.taskType}) attempt ${task.attempt} failed: ${error}; retrying after ${DateTime.formatIso(r.task.availableAt)}`
              )
              yield* bump((s) => ({ ...s, retried: s.retried + 1 }))
              return yield* events.publish(Events.WorkerEvent.Retried({ task: r.task, error }))
            case "rescheduled":
              yield* bump((s) => ({ ...s, rescheduled: s.rescheduled + 1 }))
              return yield* events.publish(Events.WorkerEvent.Rescheduled({ task: r.task }))
            case "cancelled":
              yield* bump((s) => ({ ...s, cancelled: s.cancelled + 1 }))
              return yield* events.publish(Events.WorkerEvent.Cancelled({ task: r.task }))
            case "released":
              yield* bump((s) => ({ ...s, released: s.released + 1 }))
              return yield* events.publish(Events.WorkerEvent.Released({ task: r.task }))
          }
        }).pipe(
          Effect.ensuring(
            Effect.suspend(() => {
              running.delete(task.id)
              return Effect.zipRight(Queue.offer(slotFreed, undefined), Queue.offer(settled, undefined))
            })
          )
        )
        // Forked from the pass's fiber, which runs with the worker's services: the task's fiber
        // inherits them (a provide per task copied the whole context for nothing).
        yield* Effect.forkIn(finished, scope)
      })

    // read before every claim of a pass: combinators, not a generator
    const free = Effect.sync(() => isStopping ? 0 : Math.min(concurrency - running.size, maxTasks - claimedCount))

    // --- the main loop ---------------------------------------------------------------------------
    const watch = wakeOptions === undefined ? undefined : yield* WakeUp.make(wakeOptions)
    const idleAfter = wakeOptions?.idleAfter ?? 3
    const driver = yield* Schedule.driver(Polling.schedule(options.polling))
    const untilStopping = <A>(self: Effect.Effect<A, never, Storage | ServerClock>) =>
      Effect.raceFirst(Effect.asVoid(self), Deferred.await(stopping))

    // What the embedded monitor learns from this worker: work is flowing (see monitor/Quiet.ts).
    const activity = yield* PubSub.sliding<void>(1)
    const mainLoop = Effect.gen(function*() {
      let empty = 0
      while (!(yield* Deferred.isDone(stopping))) {
        if (claimedCount >= maxTasks) break
        if ((yield* free) <= 0) {
          // a stop offers `slotFreed` too: no race with `stopping` (two fibers per freed slot)
          yield* Queue.take(slotFreed)
          continue
        }
        const cancelSeen = yield* cancelWatch.seen
        const result = yield* discovery.pass(free, (entry) => tryClaim(entry, claimEnv), started(cancelSeen))
        yield* bump((s) => ({ ...s, passes: s.passes + 1, lists: s.lists + result.lists }))
        // Work found, or a page of skipped markers with more behind it: look again at once.
        if (result.claimed > 0) yield* PubSub.publish(activity, undefined)
        if (result.claimed > 0 || result.more) {
          empty = 0
          yield* driver.reset
          continue
        }
        empty++
        if (watch !== undefined && empty >= idleAfter) {
          const woke = yield* Effect.raceAll([
            Effect.map(watch.waitForWork(result.nextDueAt, result.sawPaused), Option.some),
            Effect.as(Queue.take(shardsChanged), Option.some("shards" as const)),
            Effect.as(Deferred.await(stopping), Option.none())
          ])
          // A signal means someone changed the queue: markers seen busy elsewhere may be pending now.
          if (Option.isSome(woke) && woke.value === "signal") yield* discovery.forgetBusy
          // the switches changed (or may have: a resume touches the signal): read them afresh
          if (Option.isSome(woke) && (woke.value === "pause" || woke.value === "signal")) yield* forgetPause
          if (Option.isSome(woke) && (woke.value === "signal" || woke.value === "due")) yield* PubSub.publish(activity, undefined)
          yield* driver.reset
        } else {
          yield* untilStopping(Effect.raceFirst(Effect.ignore(driver.next(undefined)), Queue.take(shardsChanged)))
        }
      }
    })

    const snapshot = Effect.gen(function*() {
      const s = counters
      return {
        currentTasks: [...running.keys()],
        completed: s.completed,
        failed: s.failed,
        retried: s.retried,
        rescheduled: s.rescheduled,
        cancelled: s.cancelled,
        stopping: yield* Deferred.isDone(stopping),
        shards: ownedShards === undefined ? undefined : yield* ownedShards
      } satisfies Heartbeat.WorkerSnapshot
    })
    const heartbeatSettings: Heartbeat.HeartbeatSettings = {
      workerId,
      shards,
      concurrency,
      taskTypes: [...byType.keys()].sort(),
      startedAt,
      busyInterval: Duration.decode(options.heartbeat?.busy ?? Duration.seconds(10)),
      idleInterval: Duration.decode(options.heartbeat?.idle ?? Duration.seconds(60))
    }

    // Register before claiming anything: a worker that runs tasks is always visible.
    // (the heartbeat loop's first beat then waits its interval instead of writing it again)
    const register = provideAll(Heartbeat.beat(heartbeatSettings, yield* snapshot)).pipe(
      Effect.zipRight(clock.currentTimeMillis),
      Effect.catchAll((e) => Effect.as(Effect.logWarning(`could not register the worker: ${e.message}`), undefined))
    )
    // The registration PUT, the cancel signal's first HEAD and the wake-up prime (the ETag a later
    // change is compared with) are independent: sent together, one round trip before the first
    // pass instead of three. All three complete before the main loop starts, so nothing is claimed
    // unregistered, and a change of either signal after this start is still seen.
    const [registeredAt, cancelWatch] = yield* Effect.all([
      register,
      makeCancelWatch,
      watch === undefined ? Effect.void : provideAll(watch.prime)
    ], { concurrency: "unbounded" })
    const heartbeatFiber = yield* Effect.forkIn(provideAll(Heartbeat.loop(heartbeatSettings, snapshot, settled, registeredAt)), scope)
    // "some worker handles this type", for submit's type check (one PUT per type, ever)
    yield* Effect.forkIn(provideAll(Heartbeat.registerTypes(heartbeatSettings)), scope)

    // --- the embedded monitor (on by default) and scheduler loop (off by default) ----------------
    const monitorOptions = options.monitor === false ? undefined : options.monitor === true || options.monitor === undefined ? {} : options.monitor
    const monitor = monitorOptions === undefined ? undefined : yield* Monitor.make({
      ...monitorOptions,
      leader: { ...monitorOptions.leader, holderId: monitorOptions.leader?.holderId ?? workerId }
    }, { activity: Stream.fromPubSub(activity) }).pipe(Scope.extend(scope), Effect.mapError((e) => invalid("monitor", e.message)))
    const schedulerOptions = options.scheduler === undefined || options.scheduler === false
      ? undefined
      : options.scheduler === true ? {} : options.scheduler
    const schedulerFiber = schedulerOptions === undefined ? undefined : yield* Effect.forkIn(
      SchedulerLoop.run(schedulerOptions).pipe(
        Effect.catchAll((e) => Effect.logError(`the embedded scheduler could not start: ${e.message}`))
      ),
      scope
    )

    const mainFiber = yield* Effect.forkIn(provideAll(mainLoop), scope)

    const awaitIdle = Effect.gen(function*() {
      while (running.size > 0) yield* Queue.take(slotFreed)
    })

    const shutdown = Effect.gen(function*() {
      isStopping = true
      yield* Deferred.succeed(stopping, undefined)
      // the main loop may be waiting for a free slot (awaitIdle below takes a spare offer harmlessly)
      yield* Queue.offer(slotFreed, undefined)
      yield* Fiber.await(mainFiber)
      // Only this wait is interruptible: the race must be able to interrupt its losing sleep (a scope
      // finalizer runs uninterruptibly, and an uninterruptible loser would be awaited for the whole
      // grace period), and a stop that is itself interrupted still gives the tasks back and
      // deregisters below instead of leaving them to lease expiry.
      const finishedInTime = yield* Effect.raceFirst(Effect.as(awaitIdle, true), Effect.as(Effect.sleep(grace), false)).pipe(
        Effect.interruptible,
        Effect.exit,
        Effect.map((exit) => Exit.isSuccess(exit) && exit.value)
      )
      if (!finishedInTime) {
        const stops = [...running.values()]
        yield* Effect.forEach(stops, (stop) => Deferred.succeed(stop, StopReason.Released()), { discard: true })
        yield* awaitIdle
      }
      yield* Fiber.interrupt(heartbeatFiber)
      yield* provideAll(Heartbeat.deregister(workerId)).pipe(
        Effect.catchAll((e) => Effect.logWarning(`could not deregister the worker: ${e.message}`))
      )
      yield* cancelWatch.remove
      // Its tasks are settled: give the shards, the monitor's and the scheduler's leadership back.
      if (leasing !== undefined) yield* leasing.stop
      if (monitor !== undefined) yield* monitor.stop
      if (schedulerFiber !== undefined) yield* Fiber.interrupt(schedulerFiber)
    }).pipe(Effect.uninterruptible, Effect.withSpan("Worker.shutdown"))

    const stopOnce = yield* Effect.cached(Effect.ensuring(shutdown, Deferred.succeed(stopped, undefined)))
    yield* Scope.addFinalizer(parentScope, stopOnce)

    // maxTasks: once every claimed task is done, stop by itself.
    if (Number.isFinite(maxTasks)) {
      yield* Effect.forkIn(
        Effect.gen(function*() {
          yield* Fiber.await(mainFiber)
          yield* awaitIdle
          yield* stopOnce
        }),
        scope
      )
    }

    return {
      id: workerId,
      events: events.stream,
      subscribe: events.subscribe,
      stats: Effect.sync((): WorkerStats => ({ ...counters, running: [...running.keys()] })),
      stop: stopOnce,
      await: Deferred.await(stopped)
    } satisfies Worker
  })

/**
 * Options of {@link run}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions extends WorkerOptions {
  /** Stop gracefully on these signals (default SIGINT and SIGTERM; `[]` for none). */
  readonly signals?: ReadonlyArray<NodeJS.Signals> | undefined
}

/**
 * Runs a worker until SIGINT/SIGTERM, `maxTasks`, or interruption, then shuts it down gracefully
 * (the effect completes once running tasks finished or were given back and the worker deregistered).
 *
 * @since 0.1.0
 * @category utils
 */
export const run = <R>(
  options: RunOptions,
  handlers: ReadonlyArray<HandlerDefinition<R>>
): Effect.Effect<void, InvalidWorkerOptions, WorkerServices | R> =>
  Effect.scoped(
    Effect.gen(function*() {
      const worker = yield* make(options, handlers)
      const signals = options.signals ?? defaultSignals
      yield* signals.length === 0 ? worker.await : Effect.raceFirst(worker.await, Effect.asVoid(awaitSignal(signals)))
    })
  )

/**
 * Exit of a worker program, for embedding: `Exit.isSuccess` after a graceful stop.
 *
 * @since 0.1.0
 * @category models
 */
export type WorkerExit = Exit.Exit<void, InvalidWorkerOptions>
