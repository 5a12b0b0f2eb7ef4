/**
 * The monitor's lease-recovery cadence: one walk of `leases/` (LeaseManager.recoverExpired) per
 * period, on a `Schedule`, each walk reported with the requests it cost (counted on a private
 * CountingStorage, so the counts are the monitor's own, not the worker's it is embedded in).
 *
 * @module
 */
import { Duration, Effect, Schedule } from "effect"
import * as CountingStorage from "../../layers/CountingStorage.js"
import type { RequestCounts } from "../../services/RequestCounter.js"
import * as LeaseManagerLayer from "../../layers/LeaseManager.js"
import type { RecoveryReport } from "../../services/LeaseManager.js"
import { Storage } from "../../services/Storage.js"

/** One period's report: what the walk did and the requests it made, by kind. */
export interface RecoveryPeriodReport {
  readonly _tag: "Recovery"
  readonly report: RecoveryReport
  readonly requests: RequestCounts
}

/** Options of the recovery loop. */
export interface LeaseRecoveryOptions {
  /** The period (default 30 s: the reference's `check_interval`). */
  readonly checkInterval?: Duration.DurationInput | undefined
  /** LIST page size of `leases/` (the reference's `max_tasks_per_scan`, default 100). */
  readonly maxTasksPerScan?: number | undefined
  /** Future markers whose tasks a walk reads to tell finished work from running (LeaseManager's `probeFuture`). */
  readonly probeFuture?: number | undefined
}

/** A short human line for a period's report. */
export const describeRecovery = (r: RecoveryPeriodReport): string =>
  `lease recovery: ${r.report.markersListed} marker(s) listed, ${r.report.markersChecked} checked, ${r.report.markersIdle} idle, ` +
  `${r.report.retried} retried, ${r.report.failed} failed, ${r.report.cancelled} cancelled, ` +
  `${r.report.followUpsCreated} completion(s) given their follow-ups, ${r.report.flowsRecovered} flow step(s) recovered, ` +
  `${r.report.staleDeleted} stale deleted; requests LIST ${r.requests.LIST} GET ${r.requests.GET} ` +
  `PUT ${r.requests.PUT} DELETE ${r.requests.DELETE}`

/**
 * Runs lease recovery now and then once per `checkInterval`, forever, handing each report to
 * `publish`. A failing walk (bucket unreachable) is logged and retried next period. `gate` runs
 * before each walk (the monitor's quiet mode waits there).
 */
export const run = Effect.fn("Monitor.leaseRecovery")(function*(
  options: LeaseRecoveryOptions,
  publish: (report: RecoveryPeriodReport) => Effect.Effect<void>,
  gate: Effect.Effect<void> = Effect.void
) {
  const underlying = yield* Storage
  const { counter, storage } = yield* CountingStorage.make(underlying)
  const lm = yield* LeaseManagerLayer.make.pipe(Effect.provideService(Storage, storage))
  const period = Duration.decode(options.checkInterval ?? Duration.seconds(30))
  const once = gate.pipe(Effect.zipRight(lm.recoverExpired({ pageSize: options.maxTasksPerScan ?? 100, probeFuture: options.probeFuture }).pipe(
    Effect.flatMap((report) =>
      Effect.flatMap(counter.take, (requests) => {
        const r: RecoveryPeriodReport = { _tag: "Recovery", report, requests }
        const line = describeRecovery(r)
        const uneventful = report.retried + report.failed + report.cancelled + report.followUpsCreated + report.flowsRecovered + report.staleDeleted === 0
        return Effect.zipRight(uneventful ? Effect.logDebug(line) : Effect.logInfo(line), publish(r))
      })),
    Effect.catchAll((e) => Effect.logWarning(`lease recovery failed (retrying next period): ${e.message}`))
  )))
  return yield* Effect.repeat(once, Schedule.spaced(period)).pipe(Effect.zipRight(Effect.never))
})
