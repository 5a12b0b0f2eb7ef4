/**
 * The monitor (design.md §5.4): recovers expired task leases, repairs the indexes (the sweeper)
 * and applies retention. It is embedded in every worker by default, but only ONE instance per
 * bucket is active: the instances elect a leader through the LeaderLease `control/leader/monitor.json`
 * (CAS acquire, renewal from a fiber, conditional release, takeover after expiry), so the cost does
 * not grow with the number of workers. Standbys cost about one GET per leader poll.
 *
 * While leader, two loops run, each on a `Schedule`:
 * - lease recovery, every `checkInterval` (one walk of `leases/`; see LeaseManager);
 * - the sweeper, whose position is persisted in `control/sweep/cursor.json`:
 *   `sweepMode: "on_demand"` runs a full pass every `sweepInterval`; `"continuous"` (default)
 *   advances the pass by `maxObjectsPerSweep` task objects every `checkInterval`, and starts a new
 *   pass no sooner than `sweepInterval` after the previous one began. Retention (opt-in) rides on
 *   the sweep. `sweepInterval: 0` turns the sweeper off.
 * - the idempotency sweep, every `idempotency.interval` (default 5 min): one page of
 *   `idempotency/` per step, deleting records whose `expires_at` has passed (cursor persisted in
 *   `control/sweep/idempotency.json`);
 * - worker health, every `workers.interval` (default 5 min): one LIST of `workers/`, stale workers
 *   reported, records silent for `workers.deleteAfter` (default 1 day) deleted.
 * - the DAG workflow sweeper, every `workflows.interval` (default 1 min): recovers stuck workflow
 *   runs (`DagSweeper.ts`; one LIST page of runs and one GET per run); the quiet bucket does not
 *   stretch its period while its last pass saw runs too young to judge or recovered some. It needs the `Queue` in
 *   context (a worker's, or the `Buquet` layers'); without one it is off and says so once.
 * Quiet bucket (on by default, see `monitor/Quiet.ts`): when a lease walk finds nothing running
 * anywhere, every loop stretches its period (recovery and continuous sweep steps every
 * `quiet.checkInterval`, 10 min; sweep passes, idempotency and health checks at most every
 * `quiet.maintenanceInterval`, 1 h) and the
 * leader lease is written with `quiet.leaderTtl` (15 min), until activity: a change of the wake-up
 * object (watched by the embedding worker, or by the monitor itself with a HEAD per
 * `checkInterval` when it runs alone), a claim by the embedding worker, a walk that finds leases.
 * That keeps an idle worker with its embedded monitor within ~120 PUT+LIST per hour.
 * When lease recovery or the sweeper makes a task claimable again, the monitor touches the
 * wake-up object (`control/wakeup`), so idle workers pick it up within about a second instead of
 * at their next safety-net pass. Recovered leases and expired tasks are counted in the metrics
 * (`buquet_tasks_timeout_recovered_total`, `buquet_tasks_expired_total`, …).
 * Every period's and every finished pass's report (requests by kind included) is logged and
 * published on {@link MonitorHandle.reports}. Losing leadership interrupts every loop at once.
 *
 * ```ts
 * yield* Monitor.run({ checkInterval: "30 seconds" })            // `buquet monitor`
 * const m = yield* Monitor.make({})                              // embedded, in the worker's Scope
 * ```
 *
 * @module
 */
import { DateTime, Duration, Effect, Fiber, Option, PubSub, Ref, Schedule, Stream, SubscriptionRef } from "effect"
import type { InvalidArgument, MalformedObject } from "../domain/QueueError.js"
import type { StorageReadError } from "../domain/StorageError.js"
import type { Task } from "../domain/Task.js"
import { makeSignal, wakeUpKey, watchedEtag } from "../protocol/WakeUp.js"
import { ServerClock } from "../services/ServerClock.js"
import { Storage } from "../services/Storage.js"
import * as LeaderLease from "./LeaderLease.js"
import * as IdempotencySweep from "./monitor/Idempotency.js"
import type { IdempotencyStepReport } from "./monitor/Idempotency.js"
import * as Quiet from "./monitor/Quiet.js"
import type { QuietState } from "./monitor/Quiet.js"
import * as LeaseRecovery from "./monitor/LeaseRecovery.js"
import type { RecoveryPeriodReport } from "./monitor/LeaseRecovery.js"
import type { RetentionOptions } from "./monitor/Retention.js"
import * as Sweeper from "./monitor/Sweeper.js"
import type { SweepReport } from "./monitor/Sweeper.js"
import { Queue } from "../services/Queue.js"
import * as DagSweeper from "./DagSweeper.js"
import * as WorkerHealth from "./monitor/WorkerHealth.js"
import type { WorkerHealthReport } from "./monitor/WorkerHealth.js"

/**
 * Options of the monitor. The CLI maps the `[monitor]` section onto them:
 * `check_interval_secs` → `checkInterval`, `sweep_interval_secs` → `sweepInterval` (0 = off),
 * `max_tasks_per_scan` → `maxTasksPerScan`, `max_objects_per_sweep` → `maxObjectsPerSweep`,
 * `sweep_mode` (`"continuous"` | `"on_demand"`) → `sweepMode`; retention and leader settings are ours.
 */
export interface MonitorOptions {
  /** Lease-recovery period (default 30 s). */
  readonly checkInterval?: Duration.DurationInput | undefined
  /** Time between the starts of two full sweep passes (default 300 s; 0 turns the sweeper off). */
  readonly sweepInterval?: Duration.DurationInput | undefined
  /** LIST page size of the `leases/` walk (default 100). */
  readonly maxTasksPerScan?: number | undefined
  /** Sweeper LIST page size and task objects per continuous step (default 1000). */
  readonly maxObjectsPerSweep?: number | undefined
  /** `"continuous"` (default): a bounded step per `checkInterval`; `"on_demand"`: a whole pass per `sweepInterval`. */
  readonly sweepMode?: "continuous" | "on_demand" | undefined
  /** Task GETs in flight while sweeping (default 16). */
  readonly sweepConcurrency?: number | undefined
  /** Opt-in: delete or archive terminal tasks older than an age. */
  readonly retention?: RetentionOptions | undefined
  /** The sweep of expired idempotency records (on by default). */
  readonly idempotency?: {
    /** Time between two steps (default 5 min; 0 turns it off). */
    readonly interval?: Duration.DurationInput | undefined
    /** Keys per step (default 1000). */
    readonly pageSize?: number | undefined
    /** How long past `expires_at` before a record is deleted (default 1 min). */
    readonly grace?: Duration.DurationInput | undefined
  } | undefined
  /** The DAG workflow sweeper (on by default when a `Queue` is in context). */
  readonly workflows?: {
    /** Time between two passes (default 1 min; 0 turns it off). */
    readonly interval?: Duration.DurationInput | undefined
    /** Runs changed less than this long ago are left alone (default 30 s). */
    readonly minAge?: Duration.DurationInput | undefined
  } | undefined
  /** Worker health (on by default). */
  readonly workers?: {
    /** Time between two checks (default 5 min; 0 turns it off). */
    readonly interval?: Duration.DurationInput | undefined
    /** No heartbeat for this long → reported stale (default 3 min = three idle heartbeat intervals). */
    readonly staleAfter?: Duration.DurationInput | undefined
    /** No heartbeat for this long → the worker record is deleted (default 1 day). */
    readonly deleteAfter?: Duration.DurationInput | undefined
  } | undefined
  /**
   * The quiet-bucket mode (on by default; `false` turns it off): the periods while nothing runs.
   * A crash of a task claimed during the quiet without visible activity is noticed up to
   * `checkInterval` later; a dead quiet leader is replaced within `leaderTtl`.
   */
  readonly quiet?: false | {
    /** Lease-recovery period while quiet (default 10 min). */
    readonly checkInterval?: Duration.DurationInput | undefined
    /** Leader-lease ttl written while quiet (default 1.5 × `checkInterval`). */
    readonly leaderTtl?: Duration.DurationInput | undefined
    /** Sweep passes, idempotency steps and worker-health checks while quiet: at most this often (default 6 × `checkInterval`). */
    readonly maintenanceInterval?: Duration.DurationInput | undefined
  } | undefined
  /** Leader election: lease TTL (default 30 s; a dead leader is replaced within it), renew interval, this instance's id. */
  readonly leader?: {
    readonly ttl?: Duration.DurationInput | undefined
    readonly renewInterval?: Duration.DurationInput | undefined
    readonly holderId?: string | undefined
  } | undefined
}

/** A report of the monitor: one lease-recovery period, or one sweep pass (finished) / step (continuous). */
export type MonitorReport =
  | RecoveryPeriodReport
  | { readonly _tag: "Sweep"; readonly report: SweepReport }
  | IdempotencyStepReport
  | WorkerHealthReport
  | { readonly _tag: "WorkflowSweep"; readonly report: DagSweeper.SweepReport }

/** A running monitor instance. */
export interface MonitorHandle {
  /** This instance's id in the leader election. */
  readonly holderId: string
  /** Whether this instance is the active monitor now. */
  readonly isLeader: SubscriptionRef.SubscriptionRef<boolean>
  /** Whether this instance, as the leader, sees the bucket quiet (nothing running; stretched periods). */
  readonly quiet: SubscriptionRef.SubscriptionRef<boolean>
  /** Reports of this instance's periods and passes (only while it is the leader). */
  readonly reports: Stream.Stream<MonitorReport>
  /** The stored monitor leader lease, whoever holds it. */
  readonly leader: Effect.Effect<Option.Option<LeaderLease.LeaderLeaseRecord>, StorageReadError | MalformedObject>
  /**
   * A task this process just wrote (key, the ETag its PUT returned, the body): while this instance
   * leads, its sweeper does not GET a finished one again (an embedded monitor's worker calls it).
   */
  readonly learnSettled: (key: string, etag: string, task: Task) => void
  /** Steps down and stops (also done when the Scope closes). */
  readonly stop: Effect.Effect<void>
}

/** A short human line for a sweep report. */
export const describeSweep = (r: SweepReport): string =>
  `sweep pass ${r.passId}${r.finishedAt !== undefined ? " finished" : " in progress"}${r.resumed ? " (resumed)" : ""}: ` +
  `${r.totals.tasks} tasks in ${r.totals.shards} shards; ${r.totals.readyMarkersWritten} ready and ` +
  `${r.totals.leaseMarkersWritten} lease markers written, ${r.totals.staleMarkersDeleted} stale deleted, ` +
  `${r.totals.expired} expired, ${r.totals.leasesRecovered} recovered, ${r.totals.followUpsCreated} given their follow-ups, ${r.totals.flowsRecovered} flow step(s) recovered, retention ${r.totals.retentionDeleted} deleted / ` +
  `${r.totals.retentionArchived} archived, ${r.totals.leftYoung} young indexed left for a later pass; requests ${JSON.stringify(r.totals.requests)}`

/** At most this many not-yet-expired lease markers are read per walk to decide the quiet (more: busy). */
const QUIET_PROBE_MARKERS = 16

/** The periods of one monitor, normal and quiet (`quiet` undefined: never quiet). */
interface Periods {
  readonly check: Duration.Duration
  readonly quiet: { readonly check: Duration.Duration; readonly leaderTtl: Duration.Duration; readonly maintenance: Duration.Duration } | undefined
}

const periodsOf = (options: MonitorOptions): Periods => {
  const check = Duration.decode(options.checkInterval ?? Duration.seconds(30))
  if (options.quiet === false) return { check, quiet: undefined }
  const quietCheck = Duration.max(check, Duration.decode(options.quiet?.checkInterval ?? Duration.minutes(10)))
  return {
    check,
    quiet: {
      check: quietCheck,
      leaderTtl: Duration.decode(options.quiet?.leaderTtl ?? Duration.times(quietCheck, 1.5)),
      maintenance: Duration.decode(options.quiet?.maintenanceInterval ?? Duration.times(quietCheck, 6))
    }
  }
}

const sweepLoop = (
  options: MonitorOptions,
  periods: Periods,
  quiet: QuietState,
  publish: (r: MonitorReport) => Effect.Effect<void>,
  onClaimable: Effect.Effect<void>,
  live: { sweeper: Sweeper.Sweeper | undefined }
) =>
  Effect.gen(function*() {
    const clock = yield* ServerClock
    const interval = Duration.decode(options.sweepInterval ?? Duration.seconds(300))
    if (Duration.toMillis(interval) <= 0) return yield* Effect.never
    const sweeper = yield* Sweeper.make({
      pageSize: options.maxObjectsPerSweep,
      concurrency: options.sweepConcurrency,
      retention: options.retention
    })
    live.sweeper = sweeper
    // The pass this tenure last saw (no GET of the cursor per step once known).
    let last: { readonly startedAt: DateTime.Utc; readonly finished: boolean } | undefined
    /** Waits until a new pass is due: `sweepInterval` (quiet: the maintenance interval) after the last finished pass began. */
    const waitForNextPass = Effect.gen(function*() {
      if (last === undefined) {
        const cursor = yield* sweeper.cursor
        if (Option.isSome(cursor)) last = { startedAt: cursor.value.startedAt, finished: cursor.value.finishedAt !== undefined }
      }
      for (;;) {
        if (last === undefined || !last.finished) return
        const isQuiet = periods.quiet !== undefined && (yield* SubscriptionRef.get(quiet.quiet))
        const every = isQuiet ? Duration.max(interval, periods.quiet!.maintenance) : interval
        const due = DateTime.toEpochMillis(last.startedAt) + Duration.toMillis(every)
        const now = yield* clock.currentTimeMillis
        if (due <= now) return
        const sleep = Effect.sleep(Duration.millis(due - now))
        // the quiet ending shortens the wait: look again
        yield* isQuiet ? Effect.raceFirst(sleep, quiet.awaitActive) : sleep
      }
    })
    // Wake idle workers when a step made tasks claimable (ready markers repaired, leases recovered).
    let seen = { passId: "", claimable: 0 }
    const afterStep = (report: SweepReport) => {
      last = { startedAt: report.startedAt, finished: report.finishedAt !== undefined }
      const claimable = report.totals.readyMarkersWritten + report.totals.leasesRecovered + report.totals.followUpsCreated + report.totals.flowsRecovered
      const more = claimable > (seen.passId === report.passId ? seen.claimable : 0)
      seen = { passId: report.passId, claimable }
      return more ? Effect.zipRight(quiet.activity, onClaimable) : Effect.void
    }
    // a pass that repaired nothing is routine: debug; one that changed the bucket is worth a line
    const logSweep = (report: SweepReport) => {
      const t = report.totals
      const changed = t.readyMarkersWritten + t.leaseMarkersWritten + t.staleMarkersDeleted + t.expired + t.leasesRecovered + t.followUpsCreated + t.flowsRecovered +
          t.retentionDeleted + t.retentionArchived + t.malformed + t.skipped + t.payloadsDeleted > 0
      return changed ? Effect.logInfo(describeSweep(report)) : Effect.logDebug(describeSweep(report))
    }
    const onDemand = Effect.gen(function*() {
      yield* waitForNextPass
      const report = yield* sweeper.fullSweep
      yield* afterStep(report)
      yield* logSweep(report)
      yield* publish({ _tag: "Sweep", report })
    })
    // While quiet, steps inside a pass are paced like the lease walks (every quiet check interval,
    // not every checkInterval): a big bucket's pass would otherwise cost a LIST and a cursor PUT
    // every 30 s for hours. The quiet ending cuts the wait short.
    const stepGate = periods.quiet === undefined
      ? Effect.void
      : quiet.gate(Duration.max(periods.check, periods.quiet.check), periods.check)
    let steps = 0
    const continuous = Effect.gen(function*() {
      if (steps++ > 0) yield* stepGate
      yield* waitForNextPass
      const report = yield* sweeper.step()
      yield* afterStep(report)
      if (report.finishedAt !== undefined) yield* logSweep(report)
      yield* publish({ _tag: "Sweep", report })
    })
    const period = options.sweepMode === "on_demand" ? Duration.seconds(1) : periods.check
    const once = (options.sweepMode === "on_demand" ? onDemand : continuous).pipe(
      Effect.catchAll((e) => Effect.logWarning(`sweeper failed (it resumes from its cursor next time): ${e.message}`))
    )
    return yield* Effect.repeat(once, Schedule.spaced(period)).pipe(Effect.zipRight(Effect.never))
  }).pipe(Effect.ensuring(Effect.sync(() => {
    live.sweeper = undefined
  })))

/**
 * Runs `step` every `interval` (0 = never), logging failures: the next period tries again. Each
 * report is logged (info when `notable`, else debug) and published. `gate` runs before every run
 * but the first (the quiet mode waits there).
 */
const every = <R extends MonitorReport, E extends { readonly message: string }>(
  name: string,
  interval: Duration.DurationInput,
  gate: (active: Duration.Duration) => Effect.Effect<void>,
  step: Effect.Effect<R, E, Storage | ServerClock>,
  report: { readonly describe: (r: R) => string; readonly notable: (r: R) => boolean; readonly publish: (r: MonitorReport) => Effect.Effect<void> }
) => {
  const period = Duration.decode(interval)
  const run = step.pipe(
    Effect.flatMap((r) =>
      Effect.zipRight(report.notable(r) ? Effect.logInfo(report.describe(r)) : Effect.logDebug(report.describe(r)), report.publish(r))),
    Effect.catchAll((e) => Effect.logWarning(`${name} failed (trying again next period): ${e.message}`))
  )
  return Duration.toMillis(period) <= 0
    ? Effect.never
    : Effect.zipRight(run, Effect.repeat(Effect.zipRight(gate(period), run), Schedule.spaced(period))).pipe(Effect.zipRight(Effect.never))
}

const idempotencyLoop = (
  options: MonitorOptions,
  gate: (active: Duration.Duration) => Effect.Effect<void>,
  publish: (r: MonitorReport) => Effect.Effect<void>
) =>
  Effect.flatMap(
    IdempotencySweep.make({ pageSize: options.idempotency?.pageSize, grace: options.idempotency?.grace }),
    (sweep) =>
      every("idempotency sweep", options.idempotency?.interval ?? Duration.minutes(5), gate, sweep.step, {
        describe: IdempotencySweep.describeIdempotency,
        notable: (r) => r.deleted > 0,
        publish
      })
  )

const workersLoop = (
  options: MonitorOptions,
  gate: (active: Duration.Duration) => Effect.Effect<void>,
  publish: (r: MonitorReport) => Effect.Effect<void>
) =>
  Effect.flatMap(
    WorkerHealth.make({ staleAfter: options.workers?.staleAfter, deleteAfter: options.workers?.deleteAfter }),
    (health) =>
      every("worker health check", options.workers?.interval ?? Duration.minutes(5), gate, health.check, {
        describe: WorkerHealth.describeWorkerHealth,
        notable: (r) => r.stale.length + r.deleted.length > 0,
        publish
      })
  )

const workflowsLoop = (
  options: MonitorOptions,
  gate: (active: Duration.Duration) => Effect.Effect<void>,
  publish: (r: MonitorReport) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const queue = yield* Effect.serviceOption(Queue)
    if (Option.isNone(queue)) {
      yield* Effect.logInfo("monitor: the workflow sweeper is off: no Queue in context (run the monitor on the Buquet layers or inside a worker)")
      return yield* Effect.never
    }
    // A stuck run makes the bucket look quiet (nothing runs): while the last pass saw runs too young
    // to judge, or recovered some, the next pass comes after the normal interval, not the quiet one.
    const watching = yield* Ref.make(false)
    const sweep = DagSweeper.sweep({ minAge: options.workflows?.minAge }).pipe(
      Effect.provideService(Queue, queue.value),
      Effect.tap((report) => Ref.set(watching, report.young + report.recovered.length > 0)),
      Effect.map((report) => ({ _tag: "WorkflowSweep" as const, report }))
    )
    const workflowGate = (active: Duration.Duration) => Effect.flatMap(Ref.get(watching), (w) => (w ? Effect.void : gate(active)))
    return yield* every("workflow sweeper", options.workflows?.interval ?? Duration.minutes(1), workflowGate, sweep, {
      describe: (r) => `workflow sweeper: ${r.report.scanned} run(s) read, ${r.report.recovered.length} recovered` +
        r.report.recovered.map((x) => `; ${x.workflowId}: ${x.reason}`).join("") +
        (r.report.malformed.length > 0 ? `; malformed: ${r.report.malformed.map((m) => m.key).join(", ")}` : ""),
      notable: (r) => r.report.recovered.length + r.report.malformed.length > 0,
      publish
    })
  })

/** Watches the wake-up object itself (a HEAD per `every`): the activity source of a monitor that runs without a worker. */
const watchWakeUp = (every: Duration.Duration, onChange: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    let seen: string | undefined
    const look = watchedEtag(storage, wakeUpKey).pipe(
      Effect.flatMap((etag) => {
        const changed = seen !== undefined && seen !== etag
        seen = etag
        return changed ? onChange : Effect.void
      }),
      Effect.catchAll((e) => Effect.logDebug(`monitor: wake-up check failed: ${e.message}`))
    )
    return yield* Effect.repeat(look, Schedule.spaced(every)).pipe(Effect.zipRight(Effect.never))
  })

/** Where the monitor learns of activity (see `monitor/Quiet.ts`). */
export interface MonitorEnvironment {
  /**
   * Activity seen by the embedding worker (a wake-up signal, a claim). Absent: the monitor
   * watches the wake-up object itself.
   */
  readonly activity?: Stream.Stream<unknown> | undefined
}

/** Starts a monitor instance in the current Scope: it competes for leadership and works while leader. */
export const make = Effect.fn("Monitor.make")(function*(options: MonitorOptions = {}, environment: MonitorEnvironment = {}) {
  const lease = yield* LeaderLease.make({
    name: "monitor",
    ttl: options.leader?.ttl,
    renewInterval: options.leader?.renewInterval,
    holderId: options.leader?.holderId
  })
  const periods = periodsOf(options)
  const pubsub = yield* PubSub.sliding<MonitorReport>(256)
  const publish = (r: MonitorReport) => Effect.asVoid(PubSub.publish(pubsub, r))
  const wakeUp = yield* makeSignal(yield* Storage)
  const clock = yield* ServerClock
  const quietRef = yield* SubscriptionRef.make(false)
  /** The sweeper of this instance's tenure, while it leads. */
  const live: { sweeper: Sweeper.Sweeper | undefined } = { sweeper: undefined }
  const work = Effect.gen(function*() {
    // a fresh tenure starts active, with the configured leader ttl
    const quiet = yield* Quiet.make(quietRef)
    yield* lease.setTtl(undefined)
    /** The quiet gate of a job whose normal period is `active` and quiet period `pick(quiet periods)`. */
    const gate = (pick: (q: NonNullable<Periods["quiet"]>) => Duration.Duration) => (active: Duration.Duration) =>
      periods.quiet === undefined ? Effect.void : quiet.gate(Duration.max(active, pick(periods.quiet)), active)
    // Quiet takes two empty walks in a row with no activity since the first began: a task
    // submitted just before a walk is claimed by the next one, so its lease shows up.
    let walkSeq = 0
    let emptySince: number | undefined
    let walks = 0
    // when the idle markers the last walk had to keep may go: a quiet walk comes then, not a whole
    // quiet period later (an operator listing leases/ would see finished work as running)
    let cleanupAtMillis: number | undefined
    const recoveryGate = Effect.gen(function*() {
      if (walks++ > 0) {
        const at = cleanupAtMillis
        const now = at === undefined ? 0 : yield* clock.currentTimeMillis
        // the gate's period counts from before the normal period just waited (periods.check)
        yield* gate((q) => at === undefined ? q.check : Duration.min(q.check, Duration.sum(periods.check, Duration.millis(Math.max(0, at - now)))))(periods.check)
      }
      walkSeq = yield* quiet.seq
    })
    const updateQuiet = (r: RecoveryPeriodReport) =>
      Effect.gen(function*() {
        cleanupAtMillis = r.report.idleDeletableAtMillis
        if (periods.quiet === undefined) return
        // markers of finished tasks (kept until their bucket is over) do not count: nothing runs
        if (r.report.markersListed > r.report.markersIdle) {
          emptySince = undefined
          return yield* quiet.leave
        }
        if (emptySince !== undefined && (yield* quiet.enter(emptySince))) return
        emptySince = walkSeq
      })
    const onRecovery = (r: RecoveryPeriodReport) =>
      Effect.all([r.report.retried > 0 ? wakeUp.touch : Effect.void, updateQuiet(r), publish(r)], { discard: true })
    const quietJobs = periods.quiet === undefined ? [] : [
      // the leader lease follows the quiet: long while quiet, the configured ttl (written at once) when not
      quietRef.changes.pipe(
        Stream.changes,
        Stream.runForEach((q) => lease.setTtl(q ? periods.quiet!.leaderTtl : undefined))
      ),
      environment.activity === undefined
        ? watchWakeUp(periods.check, quiet.activity)
        : Stream.runForEach(environment.activity, () => quiet.activity)
    ]
    return yield* Effect.all([
      LeaseRecovery.run({
        checkInterval: options.checkInterval,
        maxTasksPerScan: options.maxTasksPerScan,
        // a few GETs per walk tell a finished task's leftover marker from running work
        probeFuture: periods.quiet === undefined ? 0 : QUIET_PROBE_MARKERS
      }, onRecovery, recoveryGate),
      sweepLoop(options, periods, quiet, publish, wakeUp.touch, live),
      idempotencyLoop(options, gate((q) => q.maintenance), publish),
      workersLoop(options, gate((q) => q.maintenance), publish),
      workflowsLoop(options, gate((q) => q.maintenance), publish),
      ...quietJobs
    ], { concurrency: "unbounded", discard: true })
  })
  const fiber = yield* Effect.forkScoped(lease.whileLeader(work))
  return {
    holderId: lease.holderId,
    isLeader: lease.isLeader,
    quiet: quietRef,
    reports: Stream.fromPubSub(pubsub),
    leader: lease.current,
    learnSettled: (key, etag, task) => live.sweeper?.learn(key, etag, task),
    stop: Effect.zipRight(Fiber.interrupt(fiber), lease.release)
  } satisfies MonitorHandle
})

/** Runs a monitor instance until interrupted (`buquet monitor`). */
export const run = (options: MonitorOptions = {}): Effect.Effect<never, InvalidArgument, Storage | ServerClock> =>
  Effect.scoped(Effect.zipRight(make(options), Effect.never))
