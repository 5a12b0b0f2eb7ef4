/**
 * Cron schedules (design.md §5.4): the records in the bucket and the pure rules of when a schedule
 * fires.
 *
 * Records, in the reference's JSON (reference/buquet.md §2.3) plus optional fields of ours the
 * reference ignores:
 * - `schedules/{id}.json`: `id, task_type, input, cron, enabled, timeout_seconds?, max_retries?,
 *   created_at, updated_at` + ours: `timezone`, `missed`, `missed_limit`, `jitter_seconds`,
 *   `priority`, `ttl_seconds`, `max_reschedules`, `tags`, `active_since`.
 * - `schedules/{id}/last_run.json`: `schedule_id, last_run_at, last_task_id, next_run_at` + ours:
 *   `submitted_at`. We store the firing's *cron instant* in `last_run_at` (the reference stores the
 *   wall time of the submit, which is never earlier): the next instant after it is exactly the next
 *   firing, for the reference's scheduler as for ours.
 *
 * Firing rules:
 * - The baseline of a schedule is its last fired instant, or — when it never ran — the time it
 *   became active (`active_since`, else `created_at`): a new schedule first fires at its first cron
 *   instant *after* creation, never "immediately because it has never run" (the reference's bug).
 * - Instants after the baseline whose due time (instant + deterministic jitter) is at most
 *   {@link defaultLateAfter} old are *on time* and all fire. Older ones were *missed* (no scheduler
 *   was running) and follow the schedule's policy: `skip` → none; `once` (the default) → one
 *   catch-up firing, identified by the latest missed instant; `all` → every missed instant, at
 *   most `missed_limit` (default {@link defaultMissedLimit}, at most {@link maxMissedLimit}) of the
 *   most recent ones per catch-up; older ones are dropped and counted.
 * - Each firing has a deterministic identity, {@link firingKey} `schedule:{id}:{epoch_seconds}`,
 *   used as the submit's idempotency key, so any number of schedulers make one task per firing.
 *
 * @module
 */
import { createHash } from "node:crypto"
import { missedPolicies } from "./ScheduleSpec.js"
import type { ScheduleSpec, ScheduleUpdate } from "./ScheduleSpec.js"
import { Cron, DateTime, Duration, Effect, Either, Option, Schema } from "effect"
import { ScheduleId, TaskTypeName } from "./Names.js"
import { InvalidArgument } from "./QueueError.js"
import { isValidPriority, maxPriority } from "./ReadyIndex.js"
import { Timestamp } from "./Task.js"
import { field, nullableField as optionalField } from "./SnakeCase.js"

// --- errors -----------------------------------------------------------------------------------

/**
 * A cron expression was refused. Names the bad field, what it holds and what is allowed.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCron extends Schema.TaggedError<InvalidCron>()("InvalidCron", {
  cron: Schema.String,
  /** `expression` (wrong number of fields, never fires) or the field: `second`, `minute`, … */
  field: Schema.String,
  value: Schema.String,
  message: Schema.String
}) {}

/**
 * A timezone that is not an IANA zone name this runtime knows.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownTimezone extends Schema.TaggedError<UnknownTimezone>()("UnknownTimezone", {
  timezone: Schema.String,
  message: Schema.String
}) {}

/**
 * No schedule with this id exists.
 *
 * @since 0.1.0
 * @category errors
 */
export class ScheduleNotFound extends Schema.TaggedError<ScheduleNotFound>()("ScheduleNotFound", {
  scheduleId: Schema.String,
  message: Schema.String
}) {
  /** A ScheduleNotFound with the standard message. */
  static of(scheduleId: string): ScheduleNotFound {
    return new ScheduleNotFound({
      scheduleId,
      message: `schedule ${scheduleId} does not exist; check the id (list them with \`buquet schedule list\`)`
    })
  }
}

/**
 * A schedule with this id already exists (create never overwrites).
 *
 * @since 0.1.0
 * @category errors
 */
export class ScheduleExists extends Schema.TaggedError<ScheduleExists>()("ScheduleExists", {
  scheduleId: Schema.String,
  message: Schema.String
}) {
  /** A ScheduleExists with the standard message. */
  static of(scheduleId: string): ScheduleExists {
    return new ScheduleExists({
      scheduleId,
      message: `schedule ${scheduleId} already exists; update it, or delete it first`
    })
  }
}

// --- records ----------------------------------------------------------------------------------

/**
 * What happens to instants missed while no scheduler ran: see the module doc.
 *
 * @since 0.1.0
 * @category models
 */
export const MissedPolicy = Schema.Literal(...missedPolicies)
/**
 * What happens to instants missed while no scheduler ran.
 *
 * @since 0.1.0
 * @category models
 */
export type MissedPolicy = typeof MissedPolicy.Type

/**
 * The default missed-window policy: one catch-up run, then resume.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMissedPolicy: MissedPolicy = "once"
/**
 * Default bound of the `all` policy: the most recent 100 missed instants.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMissedLimit = 100
/**
 * Largest `missed_limit` a schedule may set.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxMissedLimit = 1000
/**
 * An instant whose due time is older than this was missed (not merely picked up a little late).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultLateAfter: Duration.Duration = Duration.seconds(60)
/**
 * Largest `jitter_seconds` (one day).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxJitterSeconds = 86_400

/**
 * A schedule, as stored at `schedules/{id}.json`.
 *
 * @since 0.1.0
 * @category models
 */
export class Schedule extends Schema.Class<Schedule>("Schedule")({
  id: Schema.String,
  taskType: field(Schema.String, "task_type"),
  input: Schema.optionalWith(Schema.Unknown, { default: () => ({}) }),
  /** 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first. */
  cron: Schema.String,
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  timeoutSeconds: optionalField(Schema.NonNegativeInt, "timeout_seconds"),
  maxRetries: optionalField(Schema.NonNegativeInt, "max_retries"),
  createdAt: field(Timestamp, "created_at"),
  updatedAt: field(Timestamp, "updated_at"),
  // ours (the reference ignores them)
  /** IANA zone the cron is read in (default UTC). */
  timezone: optionalField(Schema.String, "timezone"),
  /** Missed-window policy (default `once`). */
  missed: optionalField(MissedPolicy, "missed"),
  /** Bound of the `all` policy (default 100). */
  missedLimit: optionalField(Schema.NonNegativeInt, "missed_limit"),
  /** Each firing is due up to this many seconds after its instant (deterministic per firing). */
  jitterSeconds: optionalField(Schema.NonNegativeInt, "jitter_seconds"),
  priority: optionalField(Schema.Int, "priority"),
  ttlSeconds: optionalField(Schema.NonNegativeInt, "ttl_seconds"),
  maxReschedules: optionalField(Schema.NonNegativeInt, "max_reschedules"),
  tags: optionalField(Schema.Array(Schema.String), "tags"),
  /** When the schedule last became active (created, re-enabled, cron changed): the firing baseline. */
  activeSince: optionalField(Timestamp, "active_since")
}) {}

/**
 * The scheduler's record of a schedule's last firing, at `schedules/{id}/last_run.json`.
 *
 * @since 0.1.0
 * @category models
 */
export class LastRun extends Schema.Class<LastRun>("LastRun")({
  scheduleId: field(Schema.String, "schedule_id"),
  /** The cron instant of the last firing (see the module doc). */
  lastRunAt: field(Timestamp, "last_run_at"),
  lastTaskId: field(Schema.String, "last_task_id"),
  nextRunAt: field(Timestamp, "next_run_at"),
  /** Server time the last firing was submitted (ours). */
  submittedAt: optionalField(Timestamp, "submitted_at")
}) {}

// --- cron -------------------------------------------------------------------------------------

const fields6 = [
  { name: "second", allowed: "0–59, * , - /" },
  { name: "minute", allowed: "0–59, * , - /" },
  { name: "hour", allowed: "0–23, * , - /" },
  { name: "day-of-month", allowed: "1–31, * , - /" },
  { name: "month", allowed: "1–12 or jan–dec, * , - /" },
  { name: "day-of-week", allowed: "0–7 (0 and 7 are Sunday) or sun–sat, * , - /" }
] as const

/**
 * Resolves an IANA timezone name (default UTC), or fails with {@link UnknownTimezone}.
 *
 * @since 0.1.0
 * @category codecs
 */
export const parseTimezone = (timezone: string | undefined): Effect.Effect<DateTime.TimeZone.Named, UnknownTimezone> => {
  const zone = DateTime.zoneMakeNamed(timezone ?? "UTC")
  return Option.isSome(zone)
    ? Effect.succeed(zone.value)
    : Effect.fail(
      new UnknownTimezone({
        timezone: String(timezone),
        message: `timezone ${JSON.stringify(timezone)} is not an IANA time zone; use a name such as ` +
          `"Europe/Berlin", "America/New_York" or "UTC"`
      })
    )
}

const never = (cron: string) =>
  new InvalidCron({
    cron,
    field: "expression",
    value: cron,
    message: `cron ${JSON.stringify(cron)} never fires (e.g. 30 February); check the day-of-month and month fields`
  })

/**
 * `Cron.next`, which throws when it finds no instant; here a typed failure.
 *
 * @since 0.1.0
 * @category utils
 */
export const nextInstant = (cron: Cron.Cron, after: DateTime.Utc, source = ""): Either.Either<DateTime.Utc, InvalidCron> =>
  Either.try({
    try: () => DateTime.unsafeFromDate(Cron.next(cron, DateTime.toDate(after))),
    catch: () => never(source)
  })

/** `Cron.prev`, which throws when it finds no instant; here none. */
const prevInstant = (cron: Cron.Cron, before: DateTime.Utc): Option.Option<DateTime.Utc> =>
  Either.getRight(Either.try(() => DateTime.unsafeFromDate(Cron.prev(cron, DateTime.toDate(before)))))

/**
 * The cron macros (as in Vixie cron and the reference's parser) and the 5-field expressions they stand for.
 *
 * @since 0.1.0
 * @category constants
 */
export const cronMacros: Readonly<Record<string, string>> = {
  "@hourly": "0 * * * *",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@weekly": "0 0 * * 0",
  "@monthly": "0 0 1 * *",
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *"
}

/**
 * Parses a cron expression (a macro such as `@hourly`, 5 fields, or 6 with seconds first) in an IANA timezone (default UTC)
 * with effect's `Cron`. A bad field fails with {@link InvalidCron} naming the field, its value
 * and the allowed range; a cron that can never fire is refused too.
 *
 * @since 0.1.0
 * @category codecs
 */
export const parseCron = (
  cron: string,
  timezone?: string | undefined
): Effect.Effect<Cron.Cron, InvalidCron | UnknownTimezone> =>
  Effect.gen(function*() {
    const zone = yield* parseTimezone(timezone)
    const trimmed = cron.trim()
    const macro = trimmed.startsWith("@") ? cronMacros[trimmed.toLowerCase()] : undefined
    if (trimmed.startsWith("@") && macro === undefined) {
      return yield* new InvalidCron({
        cron,
        field: "expression",
        value: cron,
        message: `cron ${JSON.stringify(cron)} is not a known macro; use one of ${Object.keys(cronMacros).join(", ")}, or 5 fields`
      })
    }
    const segments = (macro ?? trimmed).split(/\s+/).filter((s) => s.length > 0)
    if (segments.length !== 5 && segments.length !== 6) {
      return yield* new InvalidCron({
        cron,
        field: "expression",
        value: cron,
        message: `cron ${JSON.stringify(cron)} has ${segments.length} field${segments.length === 1 ? "" : "s"}; ` +
          `give 5 (minute hour day-of-month month day-of-week, e.g. "0 9 * * 1-5") or 6 with seconds first`
      })
    }
    const six = segments.length === 6 ? segments : ["0", ...segments]
    // Parse each field alone (the others wildcards), so the error names the field that is wrong.
    for (let i = 0; i < 6; i++) {
      if (segments.length === 5 && i === 0) continue
      const probe = six.map((s, j) => (j === i ? s : "*")).join(" ")
      if (Either.isLeft(Cron.parse(probe, zone))) {
        const f = fields6[i]!
        return yield* new InvalidCron({
          cron,
          field: f.name,
          value: six[i]!,
          message: `cron ${JSON.stringify(cron)}: the ${f.name} field ${JSON.stringify(six[i])} is invalid; ` +
            `allowed: ${f.allowed}`
        })
      }
    }
    const parsed = Cron.parse(six.join(" "), zone)
    if (Either.isLeft(parsed)) {
      return yield* new InvalidCron({ cron, field: "expression", value: cron, message: `cron ${JSON.stringify(cron)}: ${parsed.left.message}` })
    }
    // Refuse crons that never fire (30 February) now rather than at every tick.
    yield* nextInstant(parsed.right, DateTime.unsafeMake(0), cron)
    return parsed.right
  })

/**
 * The cron of a stored schedule.
 *
 * @since 0.1.0
 * @category utils
 */
export const cronOf = (schedule: Schedule) => parseCron(schedule.cron, schedule.timezone)

/**
 * The next `count` cron instants strictly after `after` (fewer if the cron runs out).
 *
 * @since 0.1.0
 * @category utils
 */
export const nextRuns = (cron: Cron.Cron, after: DateTime.Utc, count: number): ReadonlyArray<DateTime.Utc> => {
  const out: Array<DateTime.Utc> = []
  let at = after
  for (let i = 0; i < count; i++) {
    const n = nextInstant(cron, at)
    if (Either.isLeft(n)) break
    out.push(n.right)
    at = n.right
  }
  return out
}

// --- firing identity and jitter -----------------------------------------------------------------

/**
 * The idempotency scope schedule firings are submitted in (apart from user keys).
 *
 * @since 0.1.0
 * @category constants
 */
export const firingScope = "schedules"

/**
 * How long a firing's idempotency record de-duplicates (far longer than any scheduler's tick).
 *
 * @since 0.1.0
 * @category constants
 */
export const firingKeyTtlSeconds = 86_400

/**
 * The deterministic identity of one firing: `schedule:{id}:{instant_epoch_seconds}`.
 *
 * @since 0.1.0
 * @category utils
 */
export const firingKey = (scheduleId: string, instant: DateTime.Utc): string =>
  `schedule:${scheduleId}:${Math.floor(DateTime.toEpochMillis(instant) / 1000)}`

/**
 * The tags a firing's task carries (the schedule's own, then which schedule and instant made it).
 *
 * @since 0.1.0
 * @category utils
 */
export const firingTags = (schedule: Schedule, instant: DateTime.Utc): ReadonlyArray<string> => [
  ...(schedule.tags ?? []),
  `schedule:${schedule.id}`.slice(0, 200),
  `firing:${Math.floor(DateTime.toEpochMillis(instant) / 1000)}`
]

/**
 * The jitter of one firing: the same on every scheduler (a hash of id and instant), in [0, jitter).
 *
 * @since 0.1.0
 * @category utils
 */
export const jitterMillis = (schedule: Schedule, instant: DateTime.Utc): number => {
  const jitter = schedule.jitterSeconds ?? 0
  if (jitter <= 0) return 0
  const digest = createHash("sha256").update(firingKey(schedule.id, instant)).digest()
  return digest.readUInt32BE(0) % (jitter * 1000)
}

/**
 * When a firing is due: its instant plus its jitter.
 *
 * @since 0.1.0
 * @category utils
 */
export const dueAt = (schedule: Schedule, instant: DateTime.Utc): DateTime.Utc =>
  DateTime.add(instant, { millis: jitterMillis(schedule, instant) })

// --- when to fire -------------------------------------------------------------------------------

/**
 * Where a schedule's firings start from: the last fired instant, else when it became active.
 *
 * @since 0.1.0
 * @category utils
 */
export const baselineOf = (schedule: Schedule, lastRun: Option.Option<LastRun>): DateTime.Utc => {
  const active = schedule.activeSince ?? schedule.createdAt
  return Option.match(lastRun, {
    onNone: () => active,
    onSome: (r) => DateTime.max(r.lastRunAt, active)
  })
}

/**
 * What is due for one schedule at one moment.
 *
 * @since 0.1.0
 * @category models
 */
export interface DuePlan {
  /** Instants to fire now, oldest first (each one a firing identity). */
  readonly firings: ReadonlyArray<DateTime.Utc>
  /** Missed instants (older than the lateness bound) that the policy does not fire. */
  readonly skipped: number
  /** Whether the missed window was longer than the walk could see (more were skipped than counted). */
  readonly truncated: boolean
  /** When the next firing after these is due (instant + jitter); none if the cron runs out. */
  readonly nextDueAt: Option.Option<DateTime.Utc>
}

/**
 * Inputs of {@link planFirings}.
 *
 * @since 0.1.0
 * @category models
 */
export interface PlanInput {
  readonly schedule: Schedule
  readonly cron: Cron.Cron
  readonly lastRun: Option.Option<LastRun>
  readonly now: DateTime.Utc
  /** Default {@link defaultLateAfter}. */
  readonly lateAfter?: Duration.Duration | undefined
}

/**
 * The firings due at `now` for a schedule under its missed-window policy (see the module doc).
 * Pure and deterministic: every scheduler that reads the same records at about the same time
 * computes the same firing instants, hence the same identities.
 *
 * @since 0.1.0
 * @category utils
 */
export const planFirings = (input: PlanInput): DuePlan => {
  const { cron, now, schedule } = input
  const baseline = baselineOf(schedule, input.lastRun)
  const policy = schedule.missed ?? defaultMissedPolicy
  const limit = Math.min(schedule.missedLimit ?? defaultMissedLimit, maxMissedLimit)
  const lateMillis = Duration.toMillis(input.lateAfter ?? defaultLateAfter)
  const nowMillis = DateTime.toEpochMillis(now)
  const baseMillis = DateTime.toEpochMillis(baseline)

  // Walk back from the latest instant ≤ now to the baseline: the on-time ones, then up to `limit`
  // missed ones (enough for every policy), so the cost is bounded whatever the outage.
  const onTime: Array<DateTime.Utc> = []
  const missed: Array<DateTime.Utc> = []
  let truncated = false
  // Cron.prev is strictly before its argument at whole seconds: start one second after now.
  let cursor = prevInstant(cron, DateTime.unsafeMake(Math.floor(nowMillis / 1000) * 1000 + 1000))
  while (Option.isSome(cursor) && DateTime.toEpochMillis(cursor.value) > baseMillis) {
    const instant = cursor.value
    const due = DateTime.toEpochMillis(dueAt(schedule, instant))
    if (due <= nowMillis) {
      if (nowMillis - due <= lateMillis) {
        if (onTime.length >= maxMissedLimit) {
          truncated = true
          break
        }
        onTime.push(instant)
      } else {
        if (missed.length >= limit) {
          truncated = true
          break
        }
        missed.push(instant)
        if (policy !== "all") {
          // `skip` and `once` need only the latest missed instant: stop walking, note if there were more.
          const before = prevInstant(cron, instant)
          truncated = Option.isSome(before) && DateTime.toEpochMillis(before.value) > baseMillis
          break
        }
      }
    } else if (onTime.length > 0 || missed.length > 0) {
      // jitter put a later instant due before this earlier one: keep order, fire neither yet
      onTime.length = 0
      missed.length = 0
    }
    cursor = prevInstant(cron, instant)
  }
  onTime.reverse()
  missed.reverse()

  const catchUp = policy === "all" ? missed : policy === "once" ? missed.slice(-1) : []
  const skipped = missed.length - catchUp.length
  const firings = [...catchUp, ...onTime]

  // The next firing: the first instant after everything handled (fired, or skipped as missed).
  const last = firings.length > 0 ? firings[firings.length - 1]! : baseline
  let from = DateTime.max(last, baseline)
  // Instants ≤ now not yet due (jitter) come first; otherwise the next instant after now.
  const pending = nextInstant(cron, from)
  let nextDueAt = Option.none<DateTime.Utc>()
  if (Either.isRight(pending)) {
    if (DateTime.toEpochMillis(pending.right) <= nowMillis && DateTime.toEpochMillis(dueAt(schedule, pending.right)) > nowMillis) {
      nextDueAt = Option.some(dueAt(schedule, pending.right))
    } else {
      from = DateTime.max(from, now)
      nextDueAt = Either.getRight(nextInstant(cron, from)).pipe(Option.map((i) => dueAt(schedule, i)))
    }
  }
  return { firings, skipped, truncated, nextDueAt }
}

// --- specs ------------------------------------------------------------------------------------

export type { ScheduleSpec, ScheduleUpdate } from "./ScheduleSpec.js"

const bad = (argument: string, message: string) => Effect.fail(new InvalidArgument({ argument, message }))

const checkInt = (name: string, value: number | null | undefined, min: number, max: number) =>
  value === undefined || value === null || (Number.isInteger(value) && value >= min && value <= max)
    ? Effect.void
    : bad(name, `${name} must be a whole number from ${min} to ${max}, got ${String(value)}`)

// eslint-disable-next-line no-control-regex
const controlChars = /[\u0000-\u001f\u007f]/

/**
 * Checks the fields of a spec or an update that are not the cron (id, names, options).
 *
 * @since 0.1.0
 * @category utils
 */
export const checkOptions = (spec: Omit<ScheduleUpdate, "cron" | "timezone">) =>
  Effect.gen(function*() {
    if (spec.taskType !== undefined) {
      yield* Schema.decodeUnknown(TaskTypeName)(spec.taskType).pipe(
        Effect.mapError(() => new InvalidArgument({ argument: "taskType", message: `task type ${JSON.stringify(spec.taskType)} is not allowed: use letters, digits and _ . : @ -` }))
      )
    }
    yield* checkInt("timeoutSeconds", spec.timeoutSeconds, 1, 7 * 24 * 3600)
    yield* checkInt("maxRetries", spec.maxRetries, 0, 10_000)
    yield* checkInt("maxReschedules", spec.maxReschedules, 0, 1_000_000)
    yield* checkInt("ttlSeconds", spec.ttlSeconds, 1, Number.MAX_SAFE_INTEGER)
    yield* checkInt("missedLimit", spec.missedLimit, 1, maxMissedLimit)
    yield* checkInt("jitterSeconds", spec.jitterSeconds, 0, maxJitterSeconds)
    if (spec.priority !== undefined && spec.priority !== null && !isValidPriority(spec.priority)) {
      return yield* bad("priority", `priority must be a whole number from 0 (default) to ${maxPriority}, got ${spec.priority}`)
    }
    if (spec.missed !== undefined && spec.missed !== null && !["skip", "once", "all"].includes(spec.missed)) {
      return yield* bad("missed", `missed must be "skip", "once" (default) or "all", got ${JSON.stringify(spec.missed)}`)
    }
    if (spec.tags !== undefined && spec.tags !== null) {
      if (spec.tags.length > 40) return yield* bad("tags", `at most 40 tags, got ${spec.tags.length}`)
      for (const tag of spec.tags) {
        if (typeof tag !== "string" || tag.length === 0 || tag.length > 200 || controlChars.test(tag)) {
          return yield* bad("tags", "each tag must be 1–200 characters without control characters")
        }
      }
    }
    if (spec.input !== undefined) {
      const text = yield* Effect.try({
        try: () => JSON.stringify(spec.input),
        catch: (e) => new InvalidArgument({ argument: "input", message: `input must be JSON-serialisable: ${(e as Error).message}` })
      })
      if (text === undefined) return yield* bad("input", "input must be a JSON value")
    }
  })

/**
 * Checks a schedule id.
 *
 * @since 0.1.0
 * @category utils
 */
export const checkScheduleId = (id: string) =>
  Schema.decodeUnknown(ScheduleId)(id).pipe(
    Effect.mapError(() =>
      new InvalidArgument({
        argument: "id",
        message: `schedule id ${JSON.stringify(id)} is not allowed: use 1–200 letters, digits and _ . : @ - (no slashes or "..")`
      })
    )
  )

/** The record's fields without the absent optional ones (the Schema's optional fields are exact). */
const present = <A extends object>(fields: A): A =>
  Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as A

const jsonValue = (input: unknown): unknown => (input === undefined ? {} : JSON.parse(JSON.stringify(input)))

/**
 * Builds a new schedule from a checked spec at server time `now`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSpec = (spec: ScheduleSpec, now: DateTime.Utc): Schedule =>
  new Schedule(present({
    id: spec.id,
    taskType: spec.taskType,
    input: jsonValue(spec.input),
    cron: spec.cron.trim(),
    enabled: spec.enabled ?? true,
    timeoutSeconds: spec.timeoutSeconds,
    maxRetries: spec.maxRetries,
    createdAt: now,
    updatedAt: now,
    timezone: spec.timezone,
    missed: spec.missed,
    missedLimit: spec.missedLimit,
    jitterSeconds: spec.jitterSeconds,
    priority: spec.priority,
    ttlSeconds: spec.ttlSeconds,
    maxReschedules: spec.maxReschedules,
    tags: spec.tags,
    activeSince: now
  }))

/**
 * Applies an update at `now`. The firing baseline moves to `now` when the schedule is re-enabled
 * or its cron or timezone changes, so neither the disabled period nor the old cron's instants are
 * "caught up".
 *
 * @since 0.1.0
 * @category utils
 */
export const applyUpdate = (schedule: Schedule, update: ScheduleUpdate, now: DateTime.Utc): Schedule => {
  const pick = <A>(value: A | null | undefined, current: A | undefined): A | undefined =>
    value === null ? undefined : value === undefined ? current : value
  const cron = update.cron?.trim() ?? schedule.cron
  const timezone = pick(update.timezone, schedule.timezone)
  const enabled = update.enabled ?? schedule.enabled
  const reactivated = (enabled && !schedule.enabled) || cron !== schedule.cron || timezone !== schedule.timezone
  return new Schedule(present({
    ...schedule,
    taskType: update.taskType ?? schedule.taskType,
    input: update.input === undefined ? schedule.input : jsonValue(update.input),
    cron,
    enabled,
    timeoutSeconds: pick(update.timeoutSeconds, schedule.timeoutSeconds),
    maxRetries: pick(update.maxRetries, schedule.maxRetries),
    updatedAt: now,
    timezone,
    missed: pick(update.missed, schedule.missed),
    missedLimit: pick(update.missedLimit, schedule.missedLimit),
    jitterSeconds: pick(update.jitterSeconds, schedule.jitterSeconds),
    priority: pick(update.priority, schedule.priority),
    ttlSeconds: pick(update.ttlSeconds, schedule.ttlSeconds),
    maxReschedules: pick(update.maxReschedules, schedule.maxReschedules),
    tags: pick(update.tags, schedule.tags),
    activeSince: reactivated ? now : schedule.activeSince
  }))
}
