/**
 * Worker health: the monitor LISTs `workers/` at a bounded cadence and judges each worker by the
 * Last-Modified of its record, i.e. the server's time of its last heartbeat (a heartbeat is a PUT
 * of the record), so it costs no GET per worker and no worker's clock is trusted.
 *
 * - stale: no heartbeat within `staleAfter` (default three idle heartbeat intervals = 3 min, the
 *   dashboard's "healthy" rule); reported, and logged once when a worker turns stale. Its running
 *   tasks need nothing from here: their leases run out and lease recovery takes them back.
 * - gone: no heartbeat for `deleteAfter` (default 1 day): the record is deleted, after a HEAD
 *   right before the DELETE shows it unchanged (a worker that came back has a newer record).
 *   A worker that stops gracefully deletes its own record; these are the ones that crashed.
 *   Their cancel signal (`control/cancel/{worker_id}`) is deleted with them.
 * - malformed: a record whose key names no valid worker id (domain/Names.ts) is no worker; it is
 *   logged once (its key JSON-escaped) and deleted by the same age rule.
 *
 * Cost per check: ⌈workers/1000⌉ LIST + one HEAD and two DELETEs per record deleted.
 *
 * @module
 */
import { DateTime, Duration, Effect, Option } from "effect"
import { cancelSignalKey, parseWorkerKey, workersPrefix } from "../../domain/Keys.js"
import type { StorageReadError } from "../../domain/StorageError.js"
import { healthyWithin } from "../../domain/WorkerRecord.js"
import * as CountingStorage from "../../layers/CountingStorage.js"
import type { RequestCounts } from "../../services/RequestCounter.js"
import { ServerClock } from "../../services/ServerClock.js"
import { Storage } from "../../services/Storage.js"

// Where worker records live (re-exported: other programs import it from here).
export { workersPrefix }

/** Options of the worker health check. */
export interface WorkerHealthOptions {
  /** No heartbeat for this long → stale (default 3 minutes: three idle heartbeat intervals). */
  readonly staleAfter?: Duration.DurationInput | undefined
  /** No heartbeat for this long → the record is deleted (default 1 day; must exceed `staleAfter`). */
  readonly deleteAfter?: Duration.DurationInput | undefined
}

/** A worker that has missed its heartbeats. */
export interface StaleWorker {
  readonly workerId: string
  /** Server time of its last heartbeat (its record's Last-Modified). */
  readonly lastHeartbeat: DateTime.Utc
}

/** What one check found and did. */
export interface WorkerHealthReport {
  readonly _tag: "Workers"
  /** Worker records listed. */
  readonly total: number
  /** Workers with a heartbeat within `staleAfter`. */
  readonly healthy: number
  /** Workers without one (deleted ones excluded). */
  readonly stale: ReadonlyArray<StaleWorker>
  /** Ids of the records deleted in this check. */
  readonly deleted: ReadonlyArray<string>
  readonly requests: RequestCounts
}

/** A short human line for a report. */
export const describeWorkerHealth = (r: WorkerHealthReport): string =>
  `workers: ${r.healthy} healthy of ${r.total}` +
  (r.stale.length > 0 ? `; stale: ${r.stale.map((w) => `${w.workerId} (last heartbeat ${DateTime.formatIso(w.lastHeartbeat)})`).join(", ")}` : "") +
  (r.deleted.length > 0 ? `; deleted records of ${r.deleted.join(", ")}` : "") +
  `; requests LIST ${r.requests.LIST} HEAD ${r.requests.HEAD} DELETE ${r.requests.DELETE}`

/** The health check of one bucket's workers. */
export interface WorkerHealth {
  /** One check: LIST `workers/`, report stale workers, delete long-gone records. */
  readonly check: Effect.Effect<WorkerHealthReport, StorageReadError>
}

/** Makes the check on the Storage and ServerClock in context (it counts its own requests). */
export const make = Effect.fn("WorkerHealth.make")(function*(options: WorkerHealthOptions = {}) {
  const underlying = yield* Storage
  const clock = yield* ServerClock
  const { counter, storage } = yield* CountingStorage.make(underlying)
  const staleMillis = Duration.toMillis(Duration.decode(options.staleAfter ?? healthyWithin))
  const deleteMillis = Math.max(staleMillis, Duration.toMillis(Duration.decode(options.deleteAfter ?? Duration.days(1))))
  // workers already reported stale: log a worker once when it turns stale, not every check
  const known = new Set<string>()

  const check = Effect.gen(function*() {
    yield* counter.take
    let total = 0
    let healthy = 0
    const stale: Array<StaleWorker> = []
    const deleted: Array<string> = []
    const seen = new Set<string>()
    let token: string | undefined
    do {
      const page = yield* storage.list(workersPrefix, token === undefined ? {} : { continuationToken: token })
      const now = yield* clock.currentTimeMillis
      for (const meta of page.objects) {
        if (!meta.key.endsWith(".json")) continue
        const age = now - DateTime.toEpochMillis(meta.lastModified)
        const parsed = parseWorkerKey(meta.key)
        // a key no valid worker id makes: not a worker, and its text is hostile until proven otherwise
        const workerId = parsed ?? meta.key
        seen.add(workerId)
        if (parsed === undefined && !known.has(workerId)) {
          known.add(workerId)
          yield* Effect.logWarning(
            `malformed worker record ${JSON.stringify(meta.key)}: its key names no valid worker id; ` +
              `it is deleted once it is older than the worker-record retention`
          )
        }
        if (parsed !== undefined) total++
        if (parsed === undefined && age < deleteMillis) continue
        if (age < staleMillis) {
          healthy++
          known.delete(workerId)
          continue
        }
        if (age >= deleteMillis) {
          const again = yield* storage.head(meta.key)
          if (Option.isSome(again) && again.value.etag === meta.etag) {
            yield* storage.delete(meta.key)
            // a cancel may have touched the crashed worker's signal; nobody else would remove it
            if (parsed !== undefined) yield* storage.delete(cancelSignalKey(parsed))
            deleted.push(workerId)
            known.delete(workerId)
            continue
          }
        }
        if (parsed === undefined) continue
        stale.push({ workerId, lastHeartbeat: meta.lastModified })
        if (!known.has(workerId)) {
          known.add(workerId)
          yield* Effect.logWarning(
            `worker ${workerId} has sent no heartbeat for ${Math.round(age / 1000)} s (since ${DateTime.formatIso(meta.lastModified)}); ` +
              `its running tasks return to the queue when their leases run out`
          )
        }
      }
      token = page.nextContinuationToken
    } while (token !== undefined)
    for (const id of known) if (!seen.has(id)) known.delete(id)
    const requests = yield* counter.take
    return { _tag: "Workers", total, healthy, stale, deleted, requests } satisfies WorkerHealthReport
  }).pipe(Effect.withSpan("WorkerHealth.check"))

  return { check } satisfies WorkerHealth
})
