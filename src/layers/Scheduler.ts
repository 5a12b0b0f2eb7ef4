/**
 * The {@link Scheduler} on `Storage`, `ServerClock` and `Queue`.
 *
 * Exactly once per firing, with any number of schedulers: a pass reads the schedule and its
 * `last_run` (with its ETag), plans the due instants (domain/Schedule.ts `planFirings`), submits
 * each with the idempotency key `schedule:{id}:{epoch_seconds}` in the `schedules` scope — so
 * concurrent submits of one firing make one task — and only then advances `last_run` by
 * compare-and-swap on the ETag it read (`If-None-Match: *` the first time). A submit failure
 * leaves `last_run` where it was, so the firing is retried by the next pass; a lost CAS means
 * another scheduler recorded the same (or a later) firing, and `last_run` only ever moves forward.
 *
 * @module
 */
import { Chunk, DateTime, Duration, Effect, Either, Layer, Option, Schema, Stream } from "effect"
import { decodeObject, encodeObject } from "../domain/Codec.js"
import type { MalformedObject } from "../domain/QueueError.js"
import { scheduleKey, scheduleLastRunKey } from "../domain/Keys.js"
import {
  applyUpdate,
  checkOptions,
  checkScheduleId,
  cronOf,
  dueAt,
  firingKey,
  firingKeyTtlSeconds,
  firingScope,
  firingTags,
  fromSpec,
  LastRun,
  nextInstant,
  nextRuns,
  parseCron,
  planFirings,
  Schedule,
  ScheduleExists,
  ScheduleNotFound
} from "../domain/Schedule.js"
import type { ScheduleSpec, ScheduleUpdate } from "../domain/Schedule.js"
import { StorageUnavailable } from "../domain/StorageError.js"
import type { StorageReadError } from "../domain/StorageError.js"
import type { SubmitOptions } from "../domain/SubmitOptions.js"
import type { Task } from "../domain/Task.js"
import { Queue } from "../services/Queue.js"
import { Scheduler } from "../services/Scheduler.js"
import type {
  Firing,
  FiringFailure,
  RunDueOptions,
  RunDueReport,
  ScheduleListing,
  SchedulerService,
  ScheduleWithRuns
} from "../services/Scheduler.js"
import { ServerClock } from "../services/ServerClock.js"
import { Storage } from "../services/Storage.js"

/**
 * Settings of the Scheduler layer.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchedulerConfig {
  /** A firing due longer ago than this was missed and follows the schedule's policy (default 60 s). */
  readonly lateAfter?: Duration.DurationInput | undefined
  /** How many next runs `create` and `update` return (default 5). */
  readonly previewRuns?: number | undefined
  /** How many schedules one pass works on at once (default 8). */
  readonly concurrency?: number | undefined
}

const scheduleObjectKey = /^schedules\/([^/]+)\.json$/

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

interface Versioned<A> {
  readonly value: A
  readonly etag: string
}

type CasOutcome = { readonly _tag: "Written"; readonly etag: string } | { readonly _tag: "Lost" }

/**
 * Builds the Scheduler on the current Storage, ServerClock and Queue.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("Scheduler.make")(function*(config: SchedulerConfig = {}) {
  const storage = yield* Storage
  const clock = yield* ServerClock
  const queue = yield* Queue
  const lateAfter = Duration.decode(config.lateAfter ?? Duration.seconds(60))
  const previewRuns = config.previewRuns ?? 5
  const concurrency = config.concurrency ?? 8

  const readAs = <A, I>(schema: Schema.Schema<A, I>, key: string) =>
    Effect.gen(function*() {
      const found = yield* storage.get(key)
      if (Option.isNone(found)) return Option.none<Versioned<A>>()
      const value = yield* decodeObject(schema, key, found.value.body)
      return Option.some<Versioned<A>>({ value, etag: found.value.etag })
    })

  const readSchedule = (id: string) => readAs(Schedule, scheduleKey(id))
  const readLastRun = (id: string) => readAs(LastRun, scheduleLastRunKey(id))

  /** A conditional PUT; an ambiguous answer is settled by re-reading and comparing bytes. */
  const cas = (
    key: string,
    body: Uint8Array,
    condition: { readonly ifNoneMatch: "*" } | { readonly ifMatch: string }
  ): Effect.Effect<CasOutcome, StorageReadError> =>
    storage.put(key, body, condition).pipe(
      Effect.map((etag): CasOutcome => ({ _tag: "Written", etag })),
      Effect.catchTags({
        PreconditionFailed: () => Effect.succeed<CasOutcome>({ _tag: "Lost" }),
        OutcomeUnknown: () =>
          storage.get(key).pipe(
            Effect.map((found): CasOutcome =>
              Option.isSome(found) && sameBytes(found.value.body, body)
                ? { _tag: "Written", etag: found.value.etag }
                : { _tag: "Lost" }
            )
          )
      })
    )

  const create = Effect.fn("Scheduler.create")(function*(
    spec: ScheduleSpec,
    options?: { readonly previewRuns?: number | undefined }
  ) {
    yield* checkScheduleId(spec.id)
    yield* checkOptions(spec)
    const cron = yield* parseCron(spec.cron, spec.timezone)
    const now = yield* clock.now
    const schedule = fromSpec(spec, now)
    const outcome = yield* cas(scheduleKey(spec.id), encodeObject(Schedule, schedule), { ifNoneMatch: "*" })
    if (outcome._tag === "Lost") return yield* ScheduleExists.of(spec.id)
    return {
      schedule,
      nextRuns: schedule.enabled ? nextRuns(cron, now, options?.previewRuns ?? previewRuns) : []
    } satisfies ScheduleWithRuns
  })

  const get = Effect.fn("Scheduler.get")(function*(id: string) {
    yield* checkScheduleId(id)
    return Option.map(yield* readSchedule(id), (v) => v.value)
  })

  const listIds: Effect.Effect<ReadonlyArray<string>, StorageReadError> = storage.listAll("schedules/").pipe(
    Stream.filterMap((o) => Option.fromNullable(scheduleObjectKey.exec(o.key)?.[1])),
    Stream.runCollect,
    Effect.map(Chunk.toReadonlyArray)
  )

  const listDetailed: Effect.Effect<ScheduleListing, StorageReadError> = Effect.gen(function*() {
    const ids = yield* listIds
    const found = yield* Effect.forEach(ids, (id) =>
      readSchedule(id).pipe(
        Effect.map(Option.map((v): Either.Either<Schedule, MalformedObject> => Either.right(v.value))),
        Effect.catchTag("MalformedObject", (e) => Effect.succeed(Option.some(Either.left<MalformedObject>(e))))
      ), { concurrency })
    const present = found.flatMap((o) => (Option.isSome(o) ? [o.value] : []))
    return {
      schedules: present.flatMap((e) => (Either.isRight(e) ? [e.right] : [])),
      malformed: present.flatMap((e) => (Either.isLeft(e) ? [e.left] : []))
    } satisfies ScheduleListing
  }).pipe(Effect.withSpan("Scheduler.list"))

  // the caller of listDetailed reports what it skipped (the CLI names it once); here nobody else would
  const list: Effect.Effect<ReadonlyArray<Schedule>, StorageReadError> = Effect.flatMap(
    listDetailed,
    (l) => Effect.as(Effect.forEach(l.malformed, (e) => Effect.logWarning(e.message), { discard: true }), l.schedules)
  )

  const update = Effect.fn("Scheduler.update")(function*(id: string, change: ScheduleUpdate) {
    yield* checkScheduleId(id)
    yield* checkOptions(change)
    for (let round = 0; round < 20; round++) {
      const current = yield* readSchedule(id)
      if (Option.isNone(current)) return yield* ScheduleNotFound.of(id)
      const now = yield* clock.now
      const next = applyUpdate(current.value.value, change, now)
      const cron = yield* parseCron(next.cron, next.timezone)
      const outcome = yield* cas(scheduleKey(id), encodeObject(Schedule, next), { ifMatch: current.value.etag })
      if (outcome._tag === "Written") {
        return { schedule: next, nextRuns: next.enabled ? nextRuns(cron, now, previewRuns) : [] } satisfies ScheduleWithRuns
      }
    }
    return yield* new StorageUnavailable({
      operation: "PutObject",
      key: scheduleKey(id),
      message: `schedule ${id} kept changing under us; try again`
    })
  })

  const setEnabled = (enabled: boolean) => (id: string) =>
    update(id, { enabled }).pipe(
      Effect.map((r) => r.schedule),
      // the stored cron was valid when written; a definition error here means someone stored a bad one
      Effect.catchTags({
        InvalidCron: (e) => Effect.die(e),
        UnknownTimezone: (e) => Effect.die(e)
      })
    )

  const remove = Effect.fn("Scheduler.delete")(function*(id: string) {
    yield* checkScheduleId(id)
    const existed = Option.isSome(yield* storage.head(scheduleKey(id)))
    // Schedule first: a pass that reads it from now on sees nothing to fire.
    yield* storage.delete(scheduleKey(id))
    yield* storage.delete(scheduleLastRunKey(id))
    return existed
  })

  const submitOptions = (schedule: Schedule, tags: ReadonlyArray<string>): SubmitOptions => ({
    timeoutSeconds: schedule.timeoutSeconds,
    maxRetries: schedule.maxRetries,
    maxReschedules: schedule.maxReschedules,
    priority: schedule.priority,
    ttlSeconds: schedule.ttlSeconds,
    tags
  })

  const triggerNow = Effect.fn("Scheduler.triggerNow")(function*(id: string) {
    yield* checkScheduleId(id)
    const found = yield* readSchedule(id)
    if (Option.isNone(found)) return yield* ScheduleNotFound.of(id)
    const schedule = found.value.value
    const tags = [...(schedule.tags ?? []), `schedule:${id}`.slice(0, 200), "trigger:manual"]
    return yield* queue.submit(schedule.taskType, schedule.input, submitOptions(schedule, tags))
  })

  const lastRun = Effect.fn("Scheduler.lastRun")(function*(id: string) {
    yield* checkScheduleId(id)
    return Option.map(yield* readLastRun(id), (v) => v.value)
  })

  const status = Effect.fn("Scheduler.status")(function*(id: string) {
    yield* checkScheduleId(id)
    const found = yield* readSchedule(id)
    if (Option.isNone(found)) return yield* ScheduleNotFound.of(id)
    const schedule = found.value.value
    // a corrupt last-run record must not hide the schedule: show it as never run, and say why
    const lastRead = yield* Effect.either(readLastRun(id))
    const last = Either.isRight(lastRead) ? Option.map(lastRead.right, (v) => v.value) : Option.none<LastRun>()
    const lastRunMalformed = Either.isLeft(lastRead) && lastRead.left._tag === "MalformedObject"
      ? Option.some(lastRead.left)
      : Option.none<MalformedObject>()
    if (Either.isLeft(lastRead) && lastRead.left._tag !== "MalformedObject") return yield* lastRead.left
    if (!schedule.enabled) return { schedule, lastRun: last, lastRunMalformed, nextRun: Option.none<DateTime.Utc>() }
    const cron = yield* cronOf(schedule)
    const now = yield* clock.now
    const plan = planFirings({ schedule, cron, lastRun: last, now, lateAfter })
    const first = plan.firings[0]
    const nextRun = first !== undefined ? Option.some(dueAt(schedule, first)) : plan.nextDueAt
    return { schedule, lastRun: last, lastRunMalformed, nextRun }
  })

  const nextRun = Effect.fn("Scheduler.nextRun")(function*(id: string) {
    return (yield* status(id)).nextRun
  })

  // --- the pass ---------------------------------------------------------------------------------

  interface Outcome {
    readonly seen: boolean
    readonly fired: ReadonlyArray<Firing>
    readonly failed: ReadonlyArray<FiringFailure>
    readonly skipped: number
    readonly lostRace: boolean
    readonly nextDue: Option.Option<DateTime.Utc>
  }
  const nothing: Outcome = { seen: false, fired: [], failed: [], skipped: 0, lostRace: false, nextDue: Option.none() }

  /** Submits one firing; a conflicting earlier submit of the same firing (older definition) counts as done. */
  const submitFiring = (schedule: Schedule, instant: DateTime.Utc): Effect.Effect<Task | string, FiringFailure["error"]> =>
    queue.submit(schedule.taskType, schedule.input, {
      ...submitOptions(schedule, firingTags(schedule, instant)),
      idempotencyKey: firingKey(schedule.id, instant),
      idempotencyScope: firingScope,
      idempotencyTtlSeconds: firingKeyTtlSeconds
    }).pipe(
      // The firing was submitted before the schedule's input changed: that task is this firing.
      Effect.catchTag("IdempotencyConflict", (e) => Effect.succeed(e.existingTaskId))
    )

  const processOne = (id: string): Effect.Effect<Outcome> =>
    Effect.gen(function*() {
      const read = yield* Effect.either(Effect.all([readSchedule(id), readLastRun(id)]))
      const now0 = yield* clock.now
      if (Either.isLeft(read)) {
        return { ...nothing, seen: true, failed: [{ scheduleId: id, instant: now0, error: read.left }] }
      }
      const [found, last] = read.right
      if (Option.isNone(found)) return nothing
      const schedule = found.value.value
      if (!schedule.enabled) return { ...nothing, seen: true }
      const cronE = yield* Effect.either(cronOf(schedule))
      if (Either.isLeft(cronE)) {
        yield* Effect.logWarning(`schedule ${id} cannot fire: ${cronE.left.message}`)
        return { ...nothing, seen: true, failed: [{ scheduleId: id, instant: now0, error: cronE.left }] }
      }
      const cron = cronE.right
      const now = yield* clock.now
      const plan = planFirings({ schedule, cron, lastRun: Option.map(last, (l) => l.value), now, lateAfter })
      if (plan.skipped > 0 || plan.truncated) {
        yield* Effect.logInfo(
          `schedule ${id}: skipped ${plan.skipped}${plan.truncated ? "+" : ""} missed firing(s) (policy ${schedule.missed ?? "once"})`
        )
      }
      const fired: Array<Firing> = []
      let failure: FiringFailure | undefined
      const catchUpBefore = DateTime.toEpochMillis(now) - Duration.toMillis(lateAfter)
      for (const instant of plan.firings) {
        const submitted = yield* Effect.either(submitFiring(schedule, instant))
        if (Either.isLeft(submitted)) {
          failure = { scheduleId: id, instant, error: submitted.left }
          yield* Effect.logWarning(`schedule ${id}: firing ${DateTime.formatIso(instant)} failed, will retry: ${submitted.left.message}`)
          break
        }
        const taskId = typeof submitted.right === "string" ? submitted.right : submitted.right.id
        fired.push({
          scheduleId: id,
          instant,
          taskId,
          catchUp: DateTime.toEpochMillis(dueAt(schedule, instant)) < catchUpBefore
        })
      }
      let lostRace = false
      const lastFired = fired[fired.length - 1]
      if (lastFired !== undefined) {
        const after = DateTime.max(lastFired.instant, now)
        const record = new LastRun({
          scheduleId: id,
          lastRunAt: lastFired.instant,
          lastTaskId: lastFired.taskId,
          nextRunAt: Either.getOrElse(nextInstant(cron, after), () => after),
          submittedAt: now
        })
        const condition = Option.isNone(last) ? { ifNoneMatch: "*" as const } : { ifMatch: last.value.etag }
        const written = yield* Effect.either(cas(scheduleLastRunKey(id), encodeObject(LastRun, record), condition))
        if (Either.isLeft(written)) {
          failure ??= { scheduleId: id, instant: lastFired.instant, error: written.left }
        } else if (written.right._tag === "Lost") {
          lostRace = true
        } else if (Option.isNone(last)) {
          // A delete racing with this pass may have removed the schedule after we read it: do not leave an orphan.
          const still = yield* Effect.either(storage.head(scheduleKey(id)))
          if (Either.isRight(still) && Option.isNone(still.right)) {
            yield* Effect.ignore(storage.delete(scheduleLastRunKey(id)))
          }
        }
      }
      const nextDue = failure !== undefined ? Option.some(dueAt(schedule, failure.instant)) : plan.nextDueAt
      return {
        seen: true,
        fired,
        failed: failure === undefined ? [] : [failure],
        skipped: plan.skipped,
        lostRace,
        nextDue
      }
    }).pipe(Effect.withSpan("Scheduler.processOne", { attributes: { scheduleId: id } }))

  const runDue = Effect.fn("Scheduler.runDue")(function*(options?: RunDueOptions) {
    const ids = options?.ids ?? (yield* listIds)
    const outcomes = yield* Effect.forEach(ids, processOne, { concurrency })
    const seen: Array<string> = []
    const nextDue: Array<{ readonly scheduleId: string; readonly dueAt: DateTime.Utc }> = []
    outcomes.forEach((o, i) => {
      if (!o.seen) return
      seen.push(ids[i]!)
      if (Option.isSome(o.nextDue)) nextDue.push({ scheduleId: ids[i]!, dueAt: o.nextDue.value })
    })
    return {
      fired: outcomes.flatMap((o) => o.fired),
      failed: outcomes.flatMap((o) => o.failed),
      skipped: outcomes.reduce((n, o) => n + o.skipped, 0),
      lostRaces: outcomes.filter((o) => o.lostRace).length,
      nextDue,
      seen
    } satisfies RunDueReport
  })

  return {
    create,
    get,
    list,
    listDetailed,
    update,
    enable: setEnabled(true),
    disable: setEnabled(false),
    delete: remove,
    triggerNow,
    lastRun,
    nextRun,
    status,
    runDue,
    queueConfig: queue.config
  } satisfies SchedulerService
})

/**
 * The Scheduler layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: SchedulerConfig = {}): Layer.Layer<Scheduler, never, Storage | ServerClock | Queue> =>
  Layer.effect(Scheduler, make(config))
