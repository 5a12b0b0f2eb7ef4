/**
 * Metrics (design.md §8): Effect `Metric` counters and histograms with the reference's metric
 * names (reference/buquet.md §3.3) adapted to Prometheus (`buquet.tasks.submitted` →
 * `buquet_tasks_submitted_total`), and recording helpers the Queue, the worker and the monitor call.
 *
 * The metrics live in Effect's process-wide registry, so recording needs no service in context:
 * a one-line `yield* Metrics.recordSubmitted(task.taskType)` anywhere. The {@link Metrics} tag is
 * the read side (the Prometheus text exposition); its layer and the small `/metrics` HTTP endpoint
 * for workers are in `layers/Metrics.ts`.
 *
 * @module
 */
import { Context, Effect, Metric, MetricBoundaries } from "effect"

// --- the metrics ---------------------------------------------------------------------------------

/** `buquet_tasks_submitted_total{task_type}`: tasks submitted by this process. */
export const tasksSubmitted = Metric.counter("buquet_tasks_submitted_total", {
  description: "Tasks submitted",
  incremental: true
})

/** `buquet_tasks_completed_total{task_type}`: tasks this process's workers completed. */
export const tasksCompleted = Metric.counter("buquet_tasks_completed_total", {
  description: "Tasks completed",
  incremental: true
})

/** `buquet_tasks_failed_total{task_type,reason}`: tasks failed for good (reason: permanent | retries_exhausted | timeout | no_handler). */
export const tasksFailed = Metric.counter("buquet_tasks_failed_total", {
  description: "Tasks failed for good, by reason",
  incremental: true
})

/** `buquet_tasks_retried_total{task_type}`: failed attempts sent back to pending with a backoff. */
export const tasksRetried = Metric.counter("buquet_tasks_retried_total", {
  description: "Failed attempts retried after a backoff",
  incremental: true
})

/** `buquet_tasks_rescheduled_total{task_type}`: handlers that asked to run later (no retry consumed). */
export const tasksRescheduled = Metric.counter("buquet_tasks_rescheduled_total", {
  description: "Tasks rescheduled by their handler",
  incremental: true
})

/** `buquet_tasks_cancelled_total{task_type}`: tasks cancelled. */
export const tasksCancelled = Metric.counter("buquet_tasks_cancelled_total", {
  description: "Tasks cancelled",
  incremental: true
})

/** `buquet_tasks_expired_total{task_type}`: pending tasks whose TTL passed. */
export const tasksExpired = Metric.counter("buquet_tasks_expired_total", {
  description: "Tasks expired before they ran",
  incremental: true
})

/** `buquet_tasks_timeout_recovered_total`: running tasks whose lease the monitor recovered. */
export const tasksTimeoutRecovered = Metric.counter("buquet_tasks_timeout_recovered_total", {
  description: "Expired leases recovered by the monitor",
  incremental: true
})

/** `buquet_claims_success_total`: claims won. */
export const claimsSuccess = Metric.counter("buquet_claims_success_total", {
  description: "Claims won",
  incremental: true
})

/** `buquet_claims_conflict_total`: claims lost to another worker (412, or a lost ambiguous write). */
export const claimsConflict = Metric.counter("buquet_claims_conflict_total", {
  description: "Claims lost to another worker",
  incremental: true
})

/** Bucket bounds of the task duration histogram, in seconds (5 ms … 1 h; +Inf is added by Effect). */
export const durationBoundaries: ReadonlyArray<number> = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600
]

/** `buquet_task_duration_seconds{task_type}`: handler run time of completed tasks. */
export const taskDuration = Metric.histogram(
  "buquet_task_duration_seconds",
  MetricBoundaries.fromIterable(durationBoundaries),
  "Handler run time of completed tasks, in seconds"
)

/** `buquet_s3_requests_total{kind}`: storage requests made by this process (PUT, GET, HEAD, LIST, LIST-VERSIONS, DELETE). */
export const s3Requests = Metric.counter("buquet_s3_requests_total", {
  description: "Storage requests, by kind",
  incremental: true
})

// --- recording -----------------------------------------------------------------------------------

/** Why a task failed for good (the reference's `reason` label, plus `retries_exhausted`). */
export type FailureReason = "permanent" | "retries_exhausted" | "timeout" | "no_handler"

/** The most tagged metrics {@link taggedOnce} keeps (beyond it the cache starts over: task types and kinds are few). */
const maxTagged = 1_000

/** Tagged metrics by their metric and tag values: `Metric.tagged` builds a new metric and key on every call. */
const taggedCache = new Map<unknown, Map<string, unknown>>()

/** `Metric.tagged(metric, key, value)`, built once per (metric, key, value) and then reused. */
const taggedOnce = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>, key: string, value: string): Metric.Metric<Type, In, Out> => {
  let byTag = taggedCache.get(metric)
  if (byTag === undefined) {
    if (taggedCache.size >= maxTagged) taggedCache.clear()
    byTag = new Map()
    taggedCache.set(metric, byTag)
  }
  const id = `${key}\u0000${value}`
  const cached = byTag.get(id)
  if (cached !== undefined) return cached as Metric.Metric<Type, In, Out>
  if (byTag.size >= maxTagged) byTag.clear()
  const tagged = Metric.tagged(metric, key, value)
  byTag.set(id, tagged)
  return tagged
}

const byType = (metric: Metric.Metric.Counter<number>, taskType: string): Effect.Effect<void> =>
  Metric.increment(taggedOnce(metric, "task_type", taskType))

/** Counts a submitted task. */
export const recordSubmitted = (taskType: string): Effect.Effect<void> => byType(tasksSubmitted, taskType)

/** Counts a completed task and observes its handler duration. */
export const recordCompleted = (taskType: string, durationMillis: number): Effect.Effect<void> =>
  Effect.zipRight(
    byType(tasksCompleted, taskType),
    Metric.update(taggedOnce(taskDuration, "task_type", taskType), Math.max(0, durationMillis) / 1000)
  )

/** Counts a task failed for good. */
export const recordFailed = (taskType: string, reason: FailureReason): Effect.Effect<void> =>
  Metric.increment(taggedOnce(taggedOnce(tasksFailed, "task_type", taskType), "reason", reason))

/** Counts a retried attempt. */
export const recordRetried = (taskType: string): Effect.Effect<void> => byType(tasksRetried, taskType)

/** Counts a reschedule. */
export const recordRescheduled = (taskType: string): Effect.Effect<void> => byType(tasksRescheduled, taskType)

/** Counts a cancelled task. */
export const recordCancelled = (taskType: string): Effect.Effect<void> => byType(tasksCancelled, taskType)

/** Counts an expired task. */
export const recordExpired = (taskType: string): Effect.Effect<void> => byType(tasksExpired, taskType)

/** Counts a recovered lease. */
export const recordTimeoutRecovered: Effect.Effect<void> = Metric.increment(tasksTimeoutRecovered)

/** Counts a claim: won or lost to another worker. */
export const recordClaim = (outcome: "success" | "conflict"): Effect.Effect<void> =>
  Metric.increment(outcome === "success" ? claimsSuccess : claimsConflict)

/** Counts one storage request of a kind. */
export const recordS3Request = (kind: string): Effect.Effect<void> => Metric.increment(taggedOnce(s3Requests, "kind", kind))

/** The parts of a task the metrics need (structural, so any task record fits). */
export interface MetricTask {
  readonly taskType: string
  readonly retryCount: number
  readonly maxRetries: number
}

/**
 * The shape of the worker's events that carry metrics (structurally the worker's `WorkerEvent`:
 * `Claimed`, `Completed`, `Retried`, `Rescheduled`, `Failed`, `Cancelled`, …). A `Failed` event may
 * carry its `reason`; without one, a task that had used up its retries counts as
 * `retries_exhausted`, any other as `permanent`.
 */
export type MetricWorkerEvent =
  | { readonly _tag: "Claimed"; readonly task: MetricTask }
  | { readonly _tag: "Completed"; readonly task: MetricTask; readonly durationMillis: number }
  | { readonly _tag: "Retried"; readonly task: MetricTask }
  | { readonly _tag: "Rescheduled"; readonly task: MetricTask }
  | { readonly _tag: "Failed"; readonly task: MetricTask; readonly reason?: FailureReason | undefined }
  | { readonly _tag: "Cancelled"; readonly task: MetricTask }
  | { readonly _tag: "Expired"; readonly task: MetricTask }
  | { readonly _tag: "ClaimConflict" }
  | { readonly _tag: "Released" | "LeaseLost" | "Progress" }

/**
 * Records the metrics of one worker event. The worker wires it in one line, e.g. as a subscriber
 * of its event stream or inside `events.publish`.
 */
export const recordWorkerEvent = (event: MetricWorkerEvent): Effect.Effect<void> => {
  switch (event._tag) {
    case "Claimed":
      return recordClaim("success")
    case "ClaimConflict":
      return recordClaim("conflict")
    case "Completed":
      return recordCompleted(event.task.taskType, event.durationMillis)
    case "Retried":
      return recordRetried(event.task.taskType)
    case "Rescheduled":
      return recordRescheduled(event.task.taskType)
    case "Failed":
      return recordFailed(
        event.task.taskType,
        event.reason ?? (event.task.maxRetries > 0 && event.task.retryCount >= event.task.maxRetries ? "retries_exhausted" : "permanent")
      )
    case "Cancelled":
      return recordCancelled(event.task.taskType)
    case "Expired":
      return recordExpired(event.task.taskType)
    default:
      return Effect.void
  }
}

// --- the read side -------------------------------------------------------------------------------

/** The Metrics service's interface: what a `/metrics` endpoint serves. */
export interface MetricsService {
  /** The Prometheus text exposition (format 0.0.4) of this process's metrics. */
  readonly exposition: Effect.Effect<string>
}

/** The Metrics service: `yield* Metrics` gives the exposition (layer: `layers/Metrics.ts`). */
export class Metrics extends Context.Tag("buquet/Metrics")<Metrics, MetricsService>() {}
