/**
 * Which task types the live workers handle (issue 20: a misspelled `sned_email` stays pending
 * forever, and nothing said so). Judged from the worker records alone: a worker is live by the
 * health rule of `WorkerRecord.ts`, and handles the types its record lists in `task_types`.
 * A live worker whose record does not list its types (an older buquet, the reference) might
 * handle anything, so while one is live a type no record lists is "unknown", never "unhandled":
 * no false alarm from a mixed fleet.
 *
 * @since 0.1.0
 * @module
 */
import type { DateTime, Duration } from "effect"
import { healthyWithin, isHealthyAt } from "./WorkerRecord.js"

/**
 * Whether a live worker handles a task type: `handled` (a live worker lists it), `unhandled` (no
 * live worker does, and every live worker lists its types), or `unknown` (no live record lists it,
 * but a live worker's record does not say what it handles).
 *
 * @since 0.1.0
 * @category models
 */
export type Handling = "handled" | "unhandled" | "unknown"

/**
 * What the live workers handle, at one instant.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypeCoverage {
  /** How many workers are live. */
  readonly live: number
  /** Task type → the live workers whose records list it. */
  readonly handlers: ReadonlyMap<string, ReadonlyArray<string>>
  /** Live workers whose records do not list their types. */
  readonly unlisted: ReadonlyArray<string>
}

/** The part of a worker record the coverage reads (any reader's view of `workers/{id}.json`). */
export interface CoverageRecord {
  readonly workerId: string
  readonly lastHeartbeat: DateTime.Utc
  readonly status?: string | undefined
  readonly taskTypes?: ReadonlyArray<string> | undefined
}

/**
 * The coverage of `records` at `now`: only live workers (the health rule) count.
 *
 * @since 0.1.0
 * @category constructors
 */
export const typeCoverage = (
  records: Iterable<CoverageRecord>,
  now: DateTime.Utc,
  within: Duration.DurationInput = healthyWithin
): TypeCoverage => {
  const handlers = new Map<string, Array<string>>()
  const unlisted: Array<string> = []
  let live = 0
  for (const r of records) {
    if (!isHealthyAt(r, now, within)) continue
    live += 1
    if (r.taskTypes === undefined) {
      unlisted.push(r.workerId)
      continue
    }
    for (const t of r.taskTypes) handlers.set(t, [...(handlers.get(t) ?? []), r.workerId])
  }
  return { live, handlers, unlisted }
}

/**
 * Whether a live worker handles `taskType` (see {@link Handling}).
 *
 * @since 0.1.0
 * @category utils
 */
export const handlingOf = (coverage: TypeCoverage, taskType: string): Handling =>
  coverage.handlers.has(taskType) ? "handled" : coverage.unlisted.length > 0 ? "unknown" : "unhandled"

/**
 * The pending tasks whose type no live worker handles, counted by type (`unknown` types are left
 * out: they are not known to be unhandled).
 *
 * @since 0.1.0
 * @category utils
 */
export const unhandledPending = (
  coverage: TypeCoverage,
  tasks: Iterable<{ readonly taskType: string; readonly status: string }>
): ReadonlyMap<string, number> => {
  const out = new Map<string, number>()
  for (const t of tasks) {
    if (t.status === "pending" && handlingOf(coverage, t.taskType) === "unhandled") out.set(t.taskType, (out.get(t.taskType) ?? 0) + 1)
  }
  return out
}

/**
 * A one-line explanation of a type's handling, for people (CLI, dashboard).
 *
 * @since 0.1.0
 * @category utils
 */
export const describeHandling = (handling: Handling, taskType: string): string =>
  handling === "handled"
    ? `a live worker handles ${taskType}`
    : handling === "unhandled"
    ? `no live worker handles ${taskType}: it stays pending until one that does starts (check the type's spelling and the workers' handlers with \`buquet workers\`)`
    : `unknown whether a live worker handles ${taskType}: a live worker's record does not list its task types (an older buquet or the reference)`
