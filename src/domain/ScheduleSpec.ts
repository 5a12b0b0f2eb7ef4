/**
 * What creates and changes a cron schedule, as plain types with no Effect in them: the Effect API
 * and the Promise facade (`buquet/promise`, whose declarations must not name Effect) take the same
 * spec. The rules that check a spec live in ./Schedule.ts.
 *
 * @module
 */

/**
 * The missed-window policies, in the order the docs list them.
 *
 * @since 0.1.0
 * @category constants
 */
export const missedPolicies = ["skip", "once", "all"] as const

/**
 * What creates a cron schedule (camelCase; stored as snake_case). The Effect API and the Promise
 * facade take the same spec.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduleSpec {
  /** Letters, digits and `_ . : @ -`, such as `nightly-report`. */
  readonly id: string
  /** The task type every firing submits. */
  readonly taskType: string
  /** The input of every firing's task (default `{}`). */
  readonly input?: unknown
  /** 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first. */
  readonly cron: string
  /** IANA zone the cron is read in (default UTC), e.g. `"Europe/Paris"`. */
  readonly timezone?: string | undefined
  /** Default true. */
  readonly enabled?: boolean | undefined
  /** Of every firing's task. */
  readonly timeoutSeconds?: number | undefined
  /** Of every firing's task. */
  readonly maxRetries?: number | undefined
  /** Of every firing's task. */
  readonly maxReschedules?: number | undefined
  /** Of every firing's task, 0–9999. */
  readonly priority?: number | undefined
  /** Every firing's task expires if not claimed within this many seconds. */
  readonly ttlSeconds?: number | undefined
  /** Of every firing's task. */
  readonly tags?: ReadonlyArray<string> | undefined
  /** Missed windows: `"skip"`, `"once"` (default: run once, then resume) or `"all"` (bounded by `missedLimit`). */
  readonly missed?: (typeof missedPolicies)[number] | undefined
  /** Bound of the `all` policy (default 100, at most 1000). */
  readonly missedLimit?: number | undefined
  /** Spread each firing up to this many seconds after its instant (default 0). */
  readonly jitterSeconds?: number | undefined
}

/**
 * The fields {@link ScheduleSpec} may change on update (`null` clears an optional one).
 *
 * @since 0.1.0
 * @category models
 */
export type ScheduleUpdate = {
  readonly [K in Exclude<keyof ScheduleSpec, "id" | "taskType" | "cron" | "input" | "enabled">]?: ScheduleSpec[K] | null
} & {
  readonly taskType?: string | undefined
  readonly cron?: string | undefined
  readonly input?: unknown
  readonly enabled?: boolean | undefined
}
