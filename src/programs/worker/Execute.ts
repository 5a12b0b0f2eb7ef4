/**
 * Running one claimed task: load and decode its input, run the handler as a fiber, and settle.
 *
 * Around the handler (all stopped when the attempt ends):
 * - the timer, in the worker's deadline wheel (worker/DeadlineWheel.ts: one fiber for every
 *   running task): the handler is interrupted before its lease runs out (lease end minus the
 *   ServerClock's uncertainty and a safety margin, invariant 5; extending the lease moves it),
 *   and every `cancelFallbackInterval` (5 min) the task is checked for a cancel whose signal never
 *   landed, the check forked so a slow request never delays the deadline;
 * - the signal watch: a check of the task (a HEAD; only when its ETag is not the one we hold, a
 *   GET: `cancel_requested` interrupts the handler, its finalizers run, and the task ends
 *   `cancelled`; another `lease_id` means the lease is lost and nothing is written) each time the
 *   worker's cancel signal changed (worker/CancelWatch.ts forks it then: no fiber waits meanwhile);
 * - automatic lease renewal for handlers that ask for it;
 * - the progress writer (at most one CAS per `progressInterval`, latest value wins), started at
 *   the handler's first progress report (most handlers never report any).
 * Every write to the task goes through one semaphore, so the held ETag is always the latest.
 *
 * A transient storage error costs neither a retry nor a finished result: extending the lease is
 * retried until the local deadline, settling until the lease's end (at least a few seconds), and
 * an ambiguous write is resolved by re-reading within the same time — never by writing again.
 *
 * Failure routing is by type (design.md §6): PermanentError → failed; RescheduleError → pending
 * after its delay (no retry consumed); anything else (RetryableError, other failures, defects,
 * the local timeout) → retry while retries remain.
 *
 * @module
 */
import { Cause, Data, DateTime, Deferred, Duration, Effect, Fiber, Option, Queue, Ref, Schema } from "effect"
import type { Scope } from "effect"
import { describeParseError } from "../../domain/Codec.js"
import type { FollowUp } from "../../domain/FollowUps.js"
import { type FollowUpOptions, makeFollowUp } from "../../domain/FollowUpRequest.js"
import { QueueConfig } from "../../domain/QueueConfig.js"
import { MalformedObject } from "../../domain/QueueError.js"
import type { ChildResult } from "../../domain/FlowRequest.js"
import { readChildren } from "../../protocol/Flows.js"
import { SchemaValidationFailed } from "../../domain/TaskErrors.js"
import { validateAgainst } from "../../domain/TaskSchemas.js"
import type { CompiledSchemas } from "../../domain/TaskSchemas.js"
import type { TaskType } from "../../domain/TaskType.js"
import { PermanentError, RescheduleError } from "../../domain/HandlerErrors.js"
import type { Task } from "../../domain/Task.js"
import * as Tr from "../../domain/Transitions.js"
import { loadInput, offloadOutput } from "../../protocol/Payloads.js"
import { casTask, deleteMarkers, keyOfTask, keyOfTaskId, readTask, writeMarker } from "../../protocol/TaskObjects.js"
import { readCompiledSchemas } from "../../protocol/PublishedSchemas.js"
import type { VersionedTask } from "../../protocol/TaskObjects.js"
import { ServerClock } from "../../services/ServerClock.js"
import { Storage } from "../../services/Storage.js"
import { leaseMarkerOf } from "../../domain/Markers.js"
import type { DeadlineWheel, TaskTimer } from "./DeadlineWheel.js"
import { LeaseLost } from "./Errors.js"
import type { HandlerDefinition, TaskContext } from "./Handler.js"
import * as Tracing from "../../protocol/Tracing.js"
import { isTransient, transientWithin } from "../../protocol/TransientRetry.js"
import { localDeadline } from "./Deadline.js"
import { settle } from "./Settle.js"
import type { SettleResult, Settlement } from "./Settle.js"

/** The least time a settle keeps retrying transient errors, even when the lease has ended. */
const minSettleWindowMillis = 5_000

/** Why the worker stopped a handler. */
export type StopReason = Data.TaggedEnum<{
  Timeout: {}
  Cancelled: {}
  LeaseLost: { readonly reason: string }
  /** Shutdown: give the task back without consuming a retry. */
  Released: {}
}>

/** Constructors of {@link StopReason}. */
export const StopReason = Data.taggedEnum<StopReason>()

/** How an attempt ended: the handler's result, or a stop. */
type Ended =
  | { readonly _tag: "Done"; readonly output: unknown }
  | { readonly _tag: "Failed"; readonly settlement: Settlement }
  | { readonly _tag: "Stopped"; readonly reason: StopReason }

/**
 * What completes a running task's `stop`: a reason to stop its handler (the worker's shutdown, the
 * timer, a cancel, a lost lease), or, from the handler's own fiber, its end. The first wins.
 */
export type StopSignal = StopReason | { readonly _tag: "HandlerEnded"; readonly ended: Ended }

/** Settings of execution. */
export interface ExecuteSettings {
  readonly workerId: string
  /** Kept between the local deadline and the lease end, on top of the clock's uncertainty. */
  readonly safetyMargin: Duration.Duration
  /** The worker's cancel signal: `since` is its change count read before this task's claim. */
  readonly cancelSignal: {
    readonly since: number
    /** Runs the check at each change after `since` while the attempt's Scope is open (CancelWatch.onChange). */
    readonly onChange: (seen: number, check: Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
  }
  /** How often a running task checks itself without a signal (a cancel whose touch was lost). */
  readonly cancelFallbackInterval: Duration.Duration
  /** The worker's timers: the task's deadline and fallback check are registered there. */
  readonly deadlines: DeadlineWheel
  /** At most one progress write per this interval. */
  readonly progressInterval: Duration.Duration
  /** Outputs above this many bytes of JSON go to `payloads/`. */
  readonly payloadThresholdBytes: number
  /** The defaults a follow-up's options are resolved with (the queue's; all defaults without one). */
  readonly queueConfig?: QueueConfig | undefined
  /** Run once a completion's follow-ups exist (touches the wake-up signal). */
  readonly onFollowUps?: Effect.Effect<void> | undefined
  /** Run after a transition back to pending, with the task as written (touches the wake-up signal). */
  readonly onPending: (task: Task) => Effect.Effect<void>
  /** Run on every progress report of the handler (the worker publishes a Progress event). */
  readonly onProgress?: ((taskId: string, progress: unknown) => Effect.Effect<void>) | undefined
  /**
   * Awaited before the settle writes anything: the claim's ready-marker DELETE, which runs beside
   * the handler (a retry's new marker can have the same key and must land after it).
   */
  readonly beforeSettle?: Effect.Effect<void> | undefined
}

/** What the attempt came to. */
export interface ExecuteResult {
  readonly result: SettleResult
  readonly durationMillis: number
}

const messageOf = (error: unknown): string => {
  if (typeof error === "string") return error
  if (typeof error === "object" && error !== null) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : undefined
    const message = "message" in error && typeof error.message === "string" ? error.message : undefined
    if (message !== undefined) return tag !== undefined && tag !== "RetryableError" ? `${tag}: ${message}` : message
    try {
      return JSON.stringify(error)
    } catch {
      return String(error)
    }
  }
  return String(error)
}

/** The stack trace of a thrown value, when it has one (an Error's; a plain value has none). */
const stackOf = (error: unknown): { readonly stack?: string } =>
  typeof error === "object" && error !== null && "stack" in error && typeof error.stack === "string" && error.stack !== ""
    ? { stack: error.stack }
    : {}

/** The settlement for a handler's failure: by the failure's type, never its text. */
export const route = (cause: Cause.Cause<unknown>): Settlement => {
  const failures = [...Cause.failures(cause)]
  const permanent = failures.find((e) => e instanceof PermanentError)
  if (permanent !== undefined) return { _tag: "Fail", error: messageOf(permanent), ...stackOf(permanent) }
  const reschedule = failures.find((e): e is RescheduleError => e instanceof RescheduleError)
  if (reschedule !== undefined) return { _tag: "Reschedule", delay: reschedule.delay, reason: reschedule.message }
  if (failures.length > 0) return { _tag: "Retry", error: messageOf(failures[0]), ...stackOf(failures[0]) }
  const defects = [...Cause.defects(cause)]
  if (defects.length > 0) {
    const d = defects[0]
    return { _tag: "Retry", error: `handler crashed: ${d instanceof Error ? d.message : messageOf(d)}`, ...stackOf(d) }
  }
  return { _tag: "Retry", error: "handler was interrupted" }
}

/**
 * Runs the held task's handler and settles the task. `stop` lets the worker stop it from outside
 * (shutdown → Released). Never fails: storage trouble while settling is logged and the lease runs
 * out (the monitor then recovers the task).
 */
export const execute = <R>(
  claimed: VersionedTask,
  definition: HandlerDefinition<R>,
  settings: ExecuteSettings,
  stop: Deferred.Deferred<StopSignal>
): Effect.Effect<ExecuteResult | undefined, never, R | Storage | ServerClock> =>
  Effect.gen(function*() {
    const clock = yield* ServerClock
    const held = yield* Ref.make(claimed)
    const leaseId = claimed.task.leaseId ?? ""
    const taskId = claimed.task.id
    const writes = yield* Effect.makeSemaphore(1)
    // plain variables, not Refs: set and read by this task's fibers only, one synchronous step each
    let cancelRequested = false
    const startedAt = yield* clock.currentTimeMillis

    const deadlineOf = (leaseEnd: DateTime.Utc | null) =>
      localDeadline(
        clock,
        leaseEnd === null ? startedAt + claimed.task.timeoutSeconds * 1000 : DateTime.toEpochMillis(leaseEnd),
        settings.safetyMargin
      )
    /** The local deadline (server epoch ms); an extension moves it, and the attempt's timer with it. */
    let deadline = yield* deadlineOf(claimed.task.leaseExpiresAt)
    let timer: TaskTimer | undefined
    /** Transient errors are retried while the lease is surely ours (the deadline follows extensions). */
    const untilDeadline = transientWithin(Effect.map(clock.currentTimeMillis, (now) => deadline - now))

    const loseLease = (reason: string) => Deferred.succeed(stop, StopReason.LeaseLost({ reason }))

    /** After a lost CAS: re-read; keep going with the fresh ETag if still ours. */
    const refresh = Effect.gen(function*() {
      const fresh = yield* readTask(keyOfTask(claimed.task))
      if (Option.isNone(fresh) || !Tr.holdsLease(fresh.value.task, leaseId)) {
        yield* loseLease(Option.isNone(fresh) ? "the task was deleted" : `the task is now ${fresh.value.task.status} under another lease`)
        return false
      }
      yield* Ref.set(held, fresh.value)
      if (fresh.value.task.cancelRequested) {
        cancelRequested = true
        yield* Deferred.succeed(stop, StopReason.Cancelled())
      }
      return true
    })

    const extendLease = (by: Duration.DurationInput): Effect.Effect<void, LeaseLost, Storage> =>
      writes.withPermits(1)(Effect.gen(function*() {
        for (let round = 0; round < 10; round++) {
          const current = yield* Ref.get(held)
          const now = yield* clock.now
          const next = Tr.extendLease(current.task, { now, by })
          const oldMarker = leaseMarkerOf(current.task)
          const newMarker = leaseMarkerOf(next)
          // The new lease marker first, so the monitor always finds the running task.
          if (newMarker !== undefined && newMarker !== oldMarker) yield* writeMarker(newMarker)
          const written = yield* casTask(next, current.etag, { resolveRetry: untilDeadline }).pipe(
            Effect.map(Option.some),
            Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<string>()))
          )
          if (Option.isSome(written)) {
            yield* Ref.set(held, { task: next, etag: written.value })
            deadline = yield* deadlineOf(next.leaseExpiresAt)
            if (timer !== undefined) yield* timer.setDeadline(deadline)
            if (oldMarker !== undefined && oldMarker !== newMarker) yield* deleteMarkers([oldMarker]).pipe(Effect.ignore)
            return
          }
          if (!(yield* refresh)) break
        }
        return yield* new LeaseLost({ taskId, message: `task ${taskId} is no longer ours: stop working on it` })
      }).pipe(
        // A request that did not get through is tried again while the lease is surely ours.
        Effect.retry({ schedule: untilDeadline, while: isTransient })
      )).pipe(
        Effect.catchTags({
          StorageUnavailable: (e) =>
            Effect.fail(new LeaseLost({ taskId, message: `could not extend the lease before its deadline: ${e.message}` })),
          AccessDenied: (e) => Effect.fail(new LeaseLost({ taskId, message: `could not extend the lease: ${e.message}` })),
          NoSuchBucket: (e) => Effect.fail(new LeaseLost({ taskId, message: `could not extend the lease: ${e.message}` })),
          InvalidResponse: (e) => Effect.fail(new LeaseLost({ taskId, message: `could not extend the lease: ${e.message}` })),
          MalformedObject: (e) => Effect.fail(new LeaseLost({ taskId, message: `could not extend the lease: ${e.message}` }))
        }),
        Effect.withSpan("Worker.extendLease")
      )

    const storage = yield* Storage

    // --- progress: latest value wins, written at most once per interval ----------------------
    // Built at the first report: most handlers never report any, and a queue and refs per task are not free.
    let progressState: { readonly pending: Ref.Ref<Option.Option<unknown>>; readonly signal: Queue.Queue<void> } | undefined
    const progressOf = Effect.suspend(() =>
      progressState !== undefined
        ? Effect.succeed(progressState)
        : Effect.map(Queue.sliding<void>(1), (signal) => (progressState ??= { pending: Ref.unsafeMake(Option.none<unknown>()), signal }))
    )
    const writeProgress = (value: unknown) =>
      writes.withPermits(1)(Effect.gen(function*() {
        for (let round = 0; round < 3; round++) {
          const current = yield* Ref.get(held)
          const now = yield* clock.now
          const next = Tr.setProgress(current.task, { now, progress: value })
          const written = yield* casTask(next, current.etag).pipe(
            Effect.map(Option.some),
            Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<string>()))
          )
          if (Option.isSome(written)) return yield* Ref.set(held, { task: next, etag: written.value })
          if (!(yield* refresh)) return
        }
      }))
    const progressLoop = (progress: NonNullable<typeof progressState>) => Effect.forever(
      Effect.gen(function*() {
        yield* Queue.take(progress.signal)
        const value = yield* Ref.getAndSet(progress.pending, Option.none())
        if (Option.isSome(value)) {
          yield* writeProgress(value.value).pipe(
            Effect.catchAll((e) => Effect.logDebug(`progress write failed (kept for the next one): ${e.message}`))
          )
        }
        yield* Effect.sleep(settings.progressInterval)
      })
    )
    /** The attempt's scope, once it runs: the progress writer is forked into it at the first report. */
    let attemptScope: Scope.Scope | undefined
    let writerStarted = false
    const startProgressWriter = (progress: NonNullable<typeof progressState>) =>
      Effect.suspend(() => {
        if (writerStarted || attemptScope === undefined) return Effect.void
        writerStarted = true
        return Effect.asVoid(Effect.forkIn(Effect.provideService(progressLoop(progress), Storage, storage), attemptScope))
      })

    // --- watchers ------------------------------------------------------------------------------
    const check = writes.withPermits(1)(Effect.gen(function*() {
      const head = yield* storage.head(keyOfTask(claimed.task))
      if (Option.isNone(head)) return yield* loseLease("the task was deleted")
      const current = yield* Ref.get(held)
      if (head.value.etag === current.etag) return
      yield* refresh
    }))
    const checked = check.pipe(Effect.catchAll((e) => Effect.logDebug(`cancellation check failed: ${e.message}`)))
    const fallbackMillis = Duration.toMillis(settings.cancelFallbackInterval)
    const autoExtend = Effect.gen(function*() {
      while (true) {
        const current = yield* Ref.get(held)
        const now = yield* clock.currentTimeMillis
        const end = current.task.leaseExpiresAt === null ? now : DateTime.toEpochMillis(current.task.leaseExpiresAt)
        yield* Effect.sleep(Duration.millis(Math.max(0, (end - now) / 2)))
        yield* extendLease(Duration.seconds(Math.max(1, current.task.timeoutSeconds)))
      }
    }).pipe(Effect.ignore)

    // --- follow-ups: kept here, written with the completion only ----------------------------------
    // Built at the first enqueue: most handlers enqueue nothing. The list is only changed under the lock.
    let followUps: ReadonlyArray<FollowUp> = []
    let enqueueLock: Effect.Semaphore | undefined
    // a follow-up is checked as a submit is: the published JSON Schemas of its type, read once per attempt
    const publishedSchemas = new Map<string, CompiledSchemas>()
    const checkPublished = (taskType: string, input: unknown) =>
      Effect.gen(function*() {
        const compiled = publishedSchemas.get(taskType) ?? (yield* Effect.provideService(readCompiledSchemas(taskType), Storage, storage))
        publishedSchemas.set(taskType, compiled)
        yield* validateAgainst(taskType, "input", compiled.input, input)
      })
    const enqueue = (type: string | TaskType<unknown, unknown, unknown, unknown>, input: unknown, options: FollowUpOptions = {}) =>
      (enqueueLock ??= Effect.unsafeMakeSemaphore(1)).withPermits(1)(Effect.gen(function*() {
        const encoded = typeof type === "string"
          ? input
          : yield* Schema.encodeUnknown(type.input)(input).pipe(
            Effect.mapError((e) =>
              new SchemaValidationFailed({ taskType: type.name, which: "input", message: `follow-up input of ${type.name} is invalid: ${describeParseError(e)}` })
            )
          )
        const index = followUps.length
        const followUp = yield* makeFollowUp({
          parentId: taskId,
          index,
          taskType: typeof type === "string" ? type : type.name,
          input: encoded,
          options,
          now: yield* clock.now,
          config: settings.queueConfig ?? QueueConfig.default
        })
        yield* checkPublished(followUp.taskType, followUp.input)
        followUps = [...followUps, followUp]
        return followUp.id
      }))

    const ctx: TaskContext = {
      taskId,
      attempt: claimed.task.attempt,
      task: claimed.task,
      workerId: settings.workerId,
      extendLease: (by) => Effect.provideService(extendLease(by), Storage, storage),
      progress: (value) =>
        Effect.zipRight(
          Effect.flatMap(progressOf, (progress) =>
            Effect.zipRight(
              Effect.zipRight(Ref.set(progress.pending, Option.some(value)), Queue.offer(progress.signal, undefined)),
              startProgressWriter(progress)
            )),
          settings.onProgress === undefined ? Effect.void : settings.onProgress(taskId, value)
        ),
      isCancelRequested: Effect.sync(() => cancelRequested),
      enqueue,
      childrenResults: Effect.provideService(readChildren(claimed.task), Storage, storage),
      childResults: <I, O, II, OI>(type: TaskType<I, O, II, OI>) =>
        Effect.provideService(readChildren(claimed.task), Storage, storage).pipe(
          Effect.flatMap((all) =>
            Effect.forEach(all.filter((c) => c.taskType === type.name), (c) =>
              c.output === undefined
                ? Effect.succeed({ ...c, output: undefined } as ChildResult<O>)
                : Schema.decodeUnknown(type.output)(c.output).pipe(
                  Effect.map((output): ChildResult<O> => ({ ...c, output })),
                  Effect.mapError((e) =>
                    new MalformedObject({ key: keyOfTaskId(c.id, claimed.task.shard.length), message: `output of child ${c.id} does not match ${type.name}'s Schema: ${describeParseError(e)}` })
                  )
                )))
        )
    }

    // --- the attempt ----------------------------------------------------------------------------

    const prepareInput = loadInput(claimed.task).pipe(
      Effect.matchEffect({
        onFailure: (e): Effect.Effect<Either<unknown, Settlement>> =>
          Effect.succeed({
            _tag: "Left",
            left: e._tag === "PayloadMissing" || e._tag === "MalformedObject"
              ? { _tag: "Fail", error: e.message }
              : { _tag: "Retry", error: `could not load the input: ${e.message}` }
          }),
        onSuccess: (json) =>
          definition.decodeInput(json).pipe(
            Effect.match({
              onFailure: (message): Either<unknown, Settlement> => ({ _tag: "Left", left: { _tag: "Fail", error: message } }),
              onSuccess: (input): Either<unknown, Settlement> => ({ _tag: "Right", right: input })
            })
          )
      })
    )

    const attempt: Effect.Effect<Ended, never, R | Storage> = Effect.gen(function*() {
      const input = yield* prepareInput
      if (input._tag === "Left") return { _tag: "Failed", settlement: input.left } satisfies Ended
      // A claim (or input) answered after the lease's deadline — a pause, a slow response — must not
      // start the handler: the lease may already be recovered and the task running elsewhere.
      if ((yield* clock.currentTimeMillis) >= deadline) {
        return { _tag: "Stopped", reason: StopReason.Timeout() } satisfies Ended
      }
      const handlerRun = definition.run(input.right, ctx).pipe(
        Effect.flatMap((output) =>
          definition.encodeOutput(output).pipe(Effect.mapError((message) => new PermanentError({ message })))
        ),
        Effect.exit,
        Effect.map((exit): Ended =>
          exit._tag === "Success" ? { _tag: "Done", output: exit.value } : { _tag: "Failed", settlement: route(exit.cause) }
        )
      )
      attemptScope = yield* Effect.scope
      // the deadline and the fallback check (forked into this scope: a slow check never holds the deadline up)
      timer = yield* settings.deadlines.register({
        deadline,
        onDeadline: Deferred.succeed(stop, StopReason.Timeout()),
        checkEveryMillis: fallbackMillis,
        check: Effect.provideService(checked, Storage, storage)
      })
      // the signal watch: a check at each change of the worker's cancel signal
      yield* settings.cancelSignal.onChange(settings.cancelSignal.since, Effect.provideService(checked, Storage, storage))
      if (definition.options.autoExtendLease === true) yield* Effect.forkScoped(autoExtend)
      // The handler in a fiber of its own that ends the wait on `stop` with its result: a race of
      // the handler and the wait, without a fiber for the wait (a race forks both sides). A stop
      // that comes first interrupts the handler and waits for it: its finalizers have run by now.
      const handlerFiber = yield* Effect.forkScoped(
        Effect.flatMap(handlerRun, (ended) => Deferred.succeed(stop, { _tag: "HandlerEnded", ended }))
      )
      const signal = yield* Deferred.await(stop)
      if (signal._tag === "HandlerEnded") return signal.ended
      yield* Fiber.interrupt(handlerFiber)
      return { _tag: "Stopped", reason: signal } satisfies Ended
    }).pipe(Effect.scoped)

    // buquet.execute / buquet.complete join the producer's trace (the task's traceparent).
    const ended = yield* Tracing.taskSpan("buquet.execute", claimed.task)(attempt)
    const settlement: Settlement | undefined = yield* Effect.gen(function*() {
      switch (ended._tag) {
        case "Failed":
          return ended.settlement
        case "Done": {
          const placed = yield* offloadOutput(taskId, leaseId, ended.output, settings.payloadThresholdBytes)
          return { _tag: "Complete", output: placed.value, outputRef: placed.ref, followUps } satisfies Settlement
        }
        case "Stopped":
          return StopReason.$match(ended.reason, {
            Timeout: (): Settlement => ({
              _tag: "Retry",
              error: `timed out: the handler ran past the task's ${claimed.task.timeoutSeconds} s lease and was interrupted`,
              timeout: true
            }),
            Cancelled: (): Settlement => ({ _tag: "Cancel", reason: "cancelled: the handler was interrupted on request" }),
            LeaseLost: (): Settlement | undefined => undefined,
            Released: (): Settlement => ({ _tag: "Release", reason: "released: the worker shut down before the task finished" })
          })
      }
    })
    const durationMillis = (yield* clock.currentTimeMillis) - startedAt
    if (settlement === undefined) {
      const reason = ended._tag === "Stopped" && ended.reason._tag === "LeaseLost" ? ended.reason.reason : "lease lost"
      return { result: { _tag: "LeaseLost", reason }, durationMillis } satisfies ExecuteResult
    }
    // Settling is fenced by the held ETag, so trying past the lease's end is safe; give it at least a
    // few seconds (a timed-out attempt settles after its deadline).
    const leaseEnd = (yield* Ref.get(held)).task.leaseExpiresAt
    const settleUntil = yield* Effect.map(clock.currentTimeMillis, (now) =>
      Math.max(now + minSettleWindowMillis, leaseEnd === null ? now : DateTime.toEpochMillis(leaseEnd)))
    const untilSettled = transientWithin(Effect.map(clock.currentTimeMillis, (now) => settleUntil - now))
    // the claim's ready-marker DELETE, run beside the handler, lands before the settle's writes
    if (settings.beforeSettle !== undefined) yield* settings.beforeSettle
    const result = yield* writes.withPermits(1)(settle(held, leaseId, settlement, settings.onPending, { retry: untilSettled, onFollowUps: settings.onFollowUps })).pipe(
      Tracing.taskSpan("buquet.complete", claimed.task)
    )
    return { result, durationMillis } satisfies ExecuteResult
  }).pipe(
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.failCause(cause)
        : Effect.as(Effect.logError(`task ${claimed.task.id}: could not settle; its lease will run out and it will be recovered`, cause), undefined)
    ),
    Effect.orDie
  )

type Either<R, L> = { readonly _tag: "Right"; readonly right: R } | { readonly _tag: "Left"; readonly left: L }
