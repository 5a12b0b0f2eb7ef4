/**
 * The scheduler loop (design.md §5.4): fires cron schedules, as a leader-elected fiber inside
 * workers (opt-in) or standalone (`buquet schedule run`).
 *
 * How it spends its time and requests:
 * - It sleeps (Effect `Clock`, so `TestClock` drives it) until the earliest due firing across all
 *   schedules, then runs a pass over just the schedules that are due — each re-read first, so a
 *   disable or delete made since is honoured at that very firing.
 * - At least every `refreshInterval` (default 10 s) it re-reads the whole list (one LIST plus two
 *   GETs per schedule), so creations and updates are seen within one refresh.
 * - A firing that could not be submitted is retried after `retryDelay` (its `last_run` untouched).
 * - Only one instance per bucket is active: the loop runs under the {@link LeaderLease}
 *   `control/leader/scheduler.json`; standbys take over after the leader's lease expires. The
 *   exactly-once property does not depend on the election (see layers/Scheduler.ts):
 *   `leader: false` runs the loop on every instance and still submits each firing once, at the
 *   cost of more requests.
 *
 * @module
 */
import { DateTime, Duration, Effect, Option } from "effect"
import type { InvalidArgument } from "../domain/QueueError.js"
import { Scheduler } from "../services/Scheduler.js"
import type { RunDueReport } from "../services/Scheduler.js"
import { ServerClock } from "../services/ServerClock.js"
import type { Storage } from "../services/Storage.js"
import * as LeaderLease from "./LeaderLease.js"

/** Options of {@link run}. */
export interface SchedulerLoopOptions {
  /** Re-read the whole schedule list at least this often (default 10 s). */
  readonly refreshInterval?: Duration.DurationInput | undefined
  /** Retry a failed firing (or a failed list) after this long (default 2 s). */
  readonly retryDelay?: Duration.DurationInput | undefined
  /**
   * Leader election (default: a lease named `scheduler` with the LeaderLease defaults, 30 s TTL).
   * `false` runs the loop on this instance unconditionally.
   */
  readonly leader?: false | (Omit<LeaderLease.LeaderLeaseOptions, "name"> & { readonly name?: string | undefined }) | undefined
  /** Called after every pass with what it did (for logs, metrics and tests). */
  readonly onPass?: ((report: RunDueReport) => Effect.Effect<void>) | undefined
}

/** The loop itself, without leader election: runs until interrupted. */
export const loop = (options: SchedulerLoopOptions = {}): Effect.Effect<never, never, Scheduler | ServerClock> =>
  Effect.gen(function*() {
    const scheduler = yield* Scheduler
    const clock = yield* ServerClock
    const refreshMillis = Duration.toMillis(Duration.decode(options.refreshInterval ?? Duration.seconds(10)))
    const retryMillis = Duration.toMillis(Duration.decode(options.retryDelay ?? Duration.seconds(2)))
    const onPass = options.onPass ?? (() => Effect.void)
    /** When each known enabled schedule is next due (server epoch millis). */
    const due = new Map<string, number>()
    let refreshAt = 0

    while (true) {
      const now = yield* clock.currentTimeMillis
      const full = now >= refreshAt
      const ids = full ? undefined : [...due].filter(([, at]) => at <= now).map(([id]) => id)
      const pass = yield* Effect.either(scheduler.runDue(ids === undefined ? {} : { ids }))
      if (pass._tag === "Left") {
        yield* Effect.logWarning(`scheduler: could not list schedules, retrying: ${pass.left.message}`)
        refreshAt = now + retryMillis
      } else {
        const report = pass.right
        if (full) {
          due.clear()
          refreshAt = now + refreshMillis
        } else {
          for (const id of ids ?? []) due.delete(id)
        }
        const failed = new Set(report.failed.map((f) => f.scheduleId))
        for (const { dueAt, scheduleId } of report.nextDue) {
          const at = DateTime.toEpochMillis(dueAt)
          due.set(scheduleId, failed.has(scheduleId) ? Math.max(at, now + retryMillis) : at)
        }
        yield* onPass(report)
      }
      const wake = Math.min(refreshAt, ...due.values())
      const after = yield* clock.currentTimeMillis
      if (wake > after) yield* Effect.sleep(Duration.millis(wake - after))
    }
  })

/** The default name of the scheduler's leader lease (`control/leader/scheduler.json`). */
export const schedulerLeaseName = "scheduler"

/**
 * What to tell a user when {@link isRunning} is false (the CLI's schedule commands, the dashboard's
 * schedules page): schedules do not fire, and how to start a scheduler.
 */
export const notRunningAdvice = "no scheduler is running (nobody holds the scheduler lease control/leader/scheduler.json), " +
  "so schedules do not fire; start one with `buquet worker --scheduler` or `buquet schedule run`"

/** Whether a scheduler runs now: someone holds the scheduler's leader lease (default name). */
export const isRunning = Effect.map(LeaderLease.currentHolder(schedulerLeaseName), Option.isSome)

/**
 * Runs the scheduler loop until interrupted: under leader election by default (only one instance
 * per bucket fires; the others stand by), or on this instance alone with `leader: false`.
 */
export const run = (
  options: SchedulerLoopOptions = {}
): Effect.Effect<never, InvalidArgument, Scheduler | ServerClock | Storage> => {
  const leader = options.leader
  return leader === false
    ? loop(options)
    : Effect.scoped(
      Effect.gen(function*() {
        const lease = yield* LeaderLease.make({ ...(leader ?? {}), name: leader?.name ?? schedulerLeaseName })
        return yield* lease.whileLeader(loop(options))
      })
    )
}
