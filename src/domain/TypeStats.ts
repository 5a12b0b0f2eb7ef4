/**
 * The per-type overview (issue 20): for each task type, what waits, what runs, what failed in the
 * last hour, how fast it completes, how long the oldest due task has waited, how long runs take,
 * and which live workers handle it. One pure computation over tasks already read, shared by the
 * dashboard's first page, its JSON API and `buquet stats`, so they always agree.
 *
 * Where each number comes from (no request of its own: the caller has read the tasks):
 * - pending / running: the tasks' statuses;
 * - failed in the last hour: transitions to `failed` in the transition log within the hour (a task
 *   without a log counts when it is failed and was updated within the hour);
 * - completed per minute: completions within the last {@link rateWindowMinutes} minutes, divided
 *   by that many minutes (log entries, else `completed_at`);
 * - oldest pending: the longest a due pending task has waited since its `available_at` (the same
 *   rule as `buquet_oldest_pending_age_seconds`);
 * - p50 / p95 run time: nearest-rank percentiles over the last {@link runTimeSampleSize}
 *   completions of the type, each from its last claim (`→ running`) to its completion in the
 *   transition log (tasks without a log have no start and are not sampled);
 * - workers: healthy workers whose record lists the type in `task_types`.
 *
 * @module
 */
import { DateTime } from "effect"
import { compareKeys } from "./KeyOrder.js"
import type { Task } from "./Task.js"

/**
 * Minutes over which "completed per minute" is averaged.
 *
 * @since 0.1.0
 * @category constants
 */
export const rateWindowMinutes = 10

/**
 * The window of "failed in the last hour", in minutes.
 *
 * @since 0.1.0
 * @category constants
 */
export const failedWindowMinutes = 60

/**
 * How many of a type's most recent completions the run-time percentiles are taken over.
 *
 * @since 0.1.0
 * @category constants
 */
export const runTimeSampleSize = 200

/**
 * One task type's row of the overview.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypeStats {
  readonly taskType: string
  readonly pending: number
  readonly running: number
  /** Transitions to `failed` within the last {@link failedWindowMinutes} minutes. */
  readonly failedLastHour: number
  /** Completions within the last {@link rateWindowMinutes} minutes. */
  readonly completedRecently: number
  /** {@link TypeStats.completedRecently} per minute. */
  readonly completedPerMinute: number
  /** How long the oldest due pending task has waited, in milliseconds (undefined: none waits). */
  readonly oldestPendingMillis: number | undefined
  /** Median run time in milliseconds (undefined: no completion with a transition log). */
  readonly runTimeP50Millis: number | undefined
  /** 95th-percentile run time in milliseconds. */
  readonly runTimeP95Millis: number | undefined
  /** How many completions the percentiles are over. */
  readonly runTimeSamples: number
  /** Healthy workers whose record lists this type, sorted. */
  readonly workers: ReadonlyArray<string>
}

/**
 * A worker as the overview needs it: its id, whether it is healthy, and the types it handles.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypeWorker {
  readonly workerId: string
  readonly healthy: boolean
  readonly taskTypes: ReadonlyArray<string> | undefined
}

/**
 * The nearest-rank percentile `p` (0–100) of ascending `sorted` values (undefined when empty).
 *
 * @since 0.1.0
 * @category utils
 */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number | undefined =>
  sorted.length === 0 ? undefined : sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]

/**
 * A completed task's last run: from its last claim to its completion, both from the transition
 * log (undefined when the log lacks either).
 *
 * @since 0.1.0
 * @category utils
 */
export const lastRun = (task: Task): { readonly endedAt: number; readonly millis: number } | undefined => {
  const events = task.events ?? []
  let end: number | undefined = undefined
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!
    if (end === undefined) {
      if (e.to === "completed") end = DateTime.toEpochMillis(e.at)
    } else if (e.to === "running") {
      return { endedAt: end, millis: Math.max(0, end - DateTime.toEpochMillis(e.at)) }
    }
  }
  return undefined
}

interface Acc {
  pending: number
  running: number
  failed: number
  completed: number
  oldestAvailable: number | undefined
  runs: Array<{ readonly endedAt: number; readonly millis: number }>
}

/**
 * The overview of `tasks` at `now`: one row per task type that has a task or a healthy worker
 * handling it, sorted by type.
 *
 * @since 0.1.0
 * @category utils
 */
export const summarizeTypes = (
  tasks: Iterable<Task>,
  workers: ReadonlyArray<TypeWorker>,
  now: DateTime.Utc
): ReadonlyArray<TypeStats> => {
  const nowMillis = DateTime.toEpochMillis(now)
  const failedSince = nowMillis - failedWindowMinutes * 60_000
  const completedSince = nowMillis - rateWindowMinutes * 60_000
  const inWindow = (at: number, since: number) => at > since && at <= nowMillis
  const byType = new Map<string, Acc>()
  const acc = (type: string): Acc => {
    let a = byType.get(type)
    if (a === undefined) {
      a = { pending: 0, running: 0, failed: 0, completed: 0, oldestAvailable: undefined, runs: [] }
      byType.set(type, a)
    }
    return a
  }
  for (const task of tasks) {
    const a = acc(task.taskType)
    if (task.status === "pending") {
      a.pending += 1
      const available = DateTime.toEpochMillis(task.availableAt)
      if (available <= nowMillis) a.oldestAvailable = Math.min(a.oldestAvailable ?? available, available)
    } else if (task.status === "running") {
      a.running += 1
    }
    if (task.events === undefined) {
      // written without a transition log (another producer): its current state is all there is
      if (task.status === "failed" && inWindow(DateTime.toEpochMillis(task.updatedAt), failedSince)) a.failed += 1
      if (task.status === "completed" && task.completedAt !== null && inWindow(DateTime.toEpochMillis(task.completedAt), completedSince)) {
        a.completed += 1
      }
    } else {
      for (const e of task.events) {
        const at = DateTime.toEpochMillis(e.at)
        if (e.to === "failed" && inWindow(at, failedSince)) a.failed += 1
        if (e.to === "completed" && inWindow(at, completedSince)) a.completed += 1
      }
    }
    if (task.status === "completed") {
      const run = lastRun(task)
      if (run !== undefined) a.runs.push(run)
    }
  }
  const handlers = new Map<string, Array<string>>()
  for (const w of workers) {
    if (!w.healthy) continue
    for (const type of new Set(w.taskTypes ?? [])) {
      acc(type)
      handlers.set(type, [...(handlers.get(type) ?? []), w.workerId])
    }
  }
  return [...byType.entries()].sort(([a], [b]) => compareKeys(a, b)).map(([taskType, a]): TypeStats => {
    const sample = a.runs.sort((x, y) => y.endedAt - x.endedAt).slice(0, runTimeSampleSize).map((r) => r.millis).sort((x, y) => x - y)
    return {
      taskType,
      pending: a.pending,
      running: a.running,
      failedLastHour: a.failed,
      completedRecently: a.completed,
      completedPerMinute: a.completed / rateWindowMinutes,
      oldestPendingMillis: a.oldestAvailable === undefined ? undefined : nowMillis - a.oldestAvailable,
      runTimeP50Millis: percentile(sample, 50),
      runTimeP95Millis: percentile(sample, 95),
      runTimeSamples: sample.length,
      workers: (handlers.get(taskType) ?? []).sort(compareKeys)
    }
  })
}

/**
 * A row in the JSON form `buquet stats --json` prints and the dashboard's `/api/v1/types` serves
 * (snake_case, seconds for ages, milliseconds for run times, null for "none").
 *
 * @since 0.1.0
 * @category utils
 */
export const typeStatsJson = (t: TypeStats) => ({
  task_type: t.taskType,
  pending: t.pending,
  running: t.running,
  failed_last_hour: t.failedLastHour,
  completed_last_10m: t.completedRecently,
  completed_per_minute: t.completedPerMinute,
  oldest_pending_seconds: t.oldestPendingMillis === undefined ? null : t.oldestPendingMillis / 1000,
  run_time_p50_ms: t.runTimeP50Millis ?? null,
  run_time_p95_ms: t.runTimeP95Millis ?? null,
  run_time_samples: t.runTimeSamples,
  workers: t.workers
})

/**
 * A duration for a table cell: `850 ms`, `4.2 s`, `3 min 20 s`, `2 h 5 min`, `none` (`—`) for undefined.
 *
 * @since 0.1.0
 * @category utils
 */
export const formatMillis = (millis: number | undefined, none = "—"): string => {
  if (millis === undefined) return none
  if (millis < 1000) return `${Math.round(millis)} ms`
  if (millis < 60_000) return `${(millis / 1000).toFixed(1)} s`
  const s = Math.round(millis / 1000)
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`
}
