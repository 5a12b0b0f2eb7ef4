/**
 * `@effect/workflow`'s `WorkflowEngine` on buquet (design.md §10, issue 18): an execution is a task
 * of the reserved type `workflow:{name}` whose handler (run by an ordinary buquet Worker, see
 * `programs/WorkflowWorker.ts`) runs the workflow body. Everything that must survive a crash is a
 * write-once object (`protocol/WorkflowObjects.ts`): the payload, each activity attempt's result,
 * each DurableDeferred's result and the final result. A run that crashes is retried by the queue
 * (lease expiry); the retry re-runs the body, and activities already recorded return their result
 * instead of running again. A run that waits for a DurableDeferred ends as "suspended"; whoever
 * completes the deferred submits a wake-up task (idempotency key per deferred), and a DurableClock
 * is a wake-up task delayed by its duration: nothing polls.
 *
 * @module
 */
import { Workflow, WorkflowEngine } from "@effect/workflow"
import { Context, Deferred, Duration, Effect, Either, Exit, Fiber, Layer, Option, ParseResult, Ref, Schema } from "effect"
import { PermanentError } from "../domain/HandlerErrors.js"
import { TaskTypeName } from "../domain/Names.js"
import {
  activityKey,
  deferredKey,
  executionKey,
  interruptKey,
  leaseKey,
  resultKey,
  workflowTaskType
} from "../domain/WorkflowKeys.js"
import { ExecutionRecord, OutcomeRecord, readExecution, readOutcome, storedExit, writeOnce } from "../protocol/WorkflowObjects.js"
import { putPlain } from "../protocol/TaskObjects.js"
import * as WorkflowLease from "../protocol/WorkflowLease.js"
import { Queue } from "../services/Queue.js"
import { ServerClock } from "../services/ServerClock.js"
import { Storage } from "../services/Storage.js"
import { WorkflowRunner } from "../services/WorkflowRunner.js"
import type { RunLease, WorkflowRunOutcome } from "../services/WorkflowRunner.js"

type Execute = (payload: object, executionId: string) => Effect.Effect<unknown, unknown, WorkflowEngine.WorkflowInstance | WorkflowEngine.WorkflowEngine>

/** The input of every `workflow:{name}` task: which execution, and the DurableClock it wakes (if any). */
const RunInput = Schema.Struct({
  executionId: Schema.String,
  clock: Schema.optional(Schema.String)
})

const encodeJson = <A>(schema: Schema.Schema<A, unknown>, value: A) => Effect.orDie(Schema.encodeUnknown(schema)(value))

// What a value looks like once its own schema encoded it: how activity and deferred exits are stored.
const encodedOf = (schema: Schema.Schema.All): Schema.Schema.All => Schema.encodedSchema(schema as unknown as Schema.Schema<unknown>)

// Kept between the execution lease's end and the moment its body is cut off, on top of the clock's uncertainty.
const leaseSafetyMarginMillis = 500

// A run task's failure is never the workflow's (a body's failure is recorded as its result; a run
// that cannot work is a PermanentError, failed at once): it is the bucket failing, or a lease lost.
// So it is retried as long as that lasts — the most retries a task may have, the backoff capped at
// a minute (about a week) — not the queue's default 3, after which the execution was stranded.
const runMaxRetries = 10_000

// A Void exit, encoded: what a DurableClock's deferred is completed with.
const voidExit = Schema.encodeSync(storedExit(Schema.Unknown, Schema.Unknown))(Exit.void)

const make = Effect.gen(function*() {
  const context = yield* Effect.context<Queue | Storage | ServerClock>()
  const provide = <A, E>(effect: Effect.Effect<A, E, Queue | Storage | ServerClock>) => Effect.provide(effect, context)

  const registry = new Map<string, { readonly workflow: Workflow.Any; readonly execute: Execute }>()
  // Bucket failures met inside a running body, by execution: the run suspends and its task is retried,
  // so a storage hiccup never becomes the workflow's recorded result.
  const infraFailures = new Map<string, unknown>()

  /** Inside a body: record the failure and suspend; outside: a defect for the caller. */
  const guard = <A>(what: string, onInside: A) => <E>(effect: Effect.Effect<A, E, Queue | Storage>): Effect.Effect<A> =>
    provide(effect).pipe(
      Effect.catchAll((error) =>
        Effect.flatMap(Effect.serviceOption(WorkflowEngine.WorkflowInstance), (instance) => {
          if (Option.isNone(instance)) return Effect.dieMessage(`${what}: ${describe(error)}`)
          infraFailures.set(instance.value.executionId, error)
          return Effect.succeed(onInside)
        })
      )
    )

  const submitRun = (workflow: string, input: typeof RunInput.Type, idempotencyKey: string | undefined, delay?: Duration.Duration) =>
    Effect.flatMap(Queue, (queue) =>
      queue.submit(workflowTaskType(workflow), Schema.encodeSync(RunInput)(input), {
        maxRetries: runMaxRetries,
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
        ...(delay === undefined ? {} : { delay })
      }))

  const readResult = (workflow: Workflow.Any, executionId: string) =>
    readOutcome(resultKey(workflow.name, executionId), { workflow: workflow.name, executionId, name: "result" }, storedExit(workflow.successSchema, workflow.errorSchema))

  const engine: WorkflowEngine.WorkflowEngine["Type"] = WorkflowEngine.makeUnsafe({
    register: (workflow, execute) =>
      Effect.suspend(() => {
        const bad = Schema.validateEither(TaskTypeName)(workflowTaskType(workflow.name))
        if (Either.isLeft(bad)) {
          const why = ParseResult.ArrayFormatter.formatErrorSync(bad.left)[0]?.message ?? "not a valid task type"
          return Effect.dieMessage(`workflow name ${JSON.stringify(workflow.name)} cannot name a buquet task type: ${why}`)
        }
        registry.set(workflow.name, { workflow, execute })
        return Effect.void
      }),

    // Records the payload (once), submits the first run (idempotent on the execution id), and
    // reports the result if one is recorded: `execute` repeats this on its suspendedRetrySchedule.
    execute: ((workflow: Workflow.Any, options: {
      readonly executionId: string
      readonly payload: object
      readonly discard: boolean
      readonly parent?: WorkflowEngine.WorkflowInstance["Type"] | undefined
    }) =>
      provide(Effect.gen(function*() {
        const done = yield* readResult(workflow, options.executionId)
        if (Option.isSome(done)) return options.discard ? undefined : new Workflow.Complete({ exit: done.value })
        const payload = yield* encodeJson(workflow.payloadSchema as unknown as Schema.Schema<unknown, unknown>, options.payload)
        yield* writeOnce(executionKey(workflow.name, options.executionId), ExecutionRecord, {
          workflow: workflow.name,
          executionId: options.executionId,
          payload,
          // a child: the run that records its result wakes the parent (nothing polls)
          ...(options.parent === undefined ? {} : { parent: { workflow: options.parent.workflow.name, executionId: options.parent.executionId } })
        })
        yield* submitRun(workflow.name, { executionId: options.executionId }, options.executionId)
        return options.discard ? undefined : new Workflow.Suspended({})
      })).pipe(Effect.catchAll((e) => Effect.dieMessage(`${workflow.name}.execute(${options.executionId}): ${describe(e)}`)))) as WorkflowEngine.Encoded["execute"],

    poll: (workflow, executionId) =>
      readResult(workflow, executionId).pipe(
        provide,
        Effect.map(Option.match({ onNone: () => undefined, onSome: (exit) => new Workflow.Complete({ exit }) })),
        Effect.catchAll((e) => Effect.dieMessage(`${workflow.name}.poll(${executionId}): ${describe(e)}`))
      ),

    // The request is a marker; the wake-up run sees it and ends the body at its next suspension,
    // which runs the compensations (Workflow.withCompensation) and records the interrupt as the result.
    interrupt: (workflow, executionId) =>
      provide(Effect.gen(function*() {
        if (Option.isSome(yield* readResult(workflow, executionId))) return
        yield* putPlain(interruptKey(workflow.name, executionId), new TextEncoder().encode(JSON.stringify({ workflow: workflow.name, executionId })))
        yield* submitRun(workflow.name, { executionId }, `${executionId}:interrupt`)
      })).pipe(Effect.catchAll((e) => Effect.dieMessage(`${workflow.name}.interrupt(${executionId}): ${describe(e)}`))),

    resume: (workflow, executionId) =>
      submitRun(workflow.name, { executionId }, undefined).pipe(
        provide,
        Effect.asVoid,
        Effect.catchAll((e) => Effect.dieMessage(`${workflow.name}.resume(${executionId}): ${describe(e)}`))
      ),

    activityExecute: (activity, attempt) =>
      Effect.gen(function*() {
        const instance = yield* WorkflowEngine.WorkflowInstance
        const name = instance.workflow.name
        const identity = { workflow: name, executionId: instance.executionId, name: activity.name, attempt }
        const key = activityKey(name, instance.executionId, activity.name, attempt)
        const exitSchema = storedExit(encodedOf(activity.successSchema), encodedOf(activity.errorSchema))
        const recorded = yield* guard("activity", Option.none<Exit.Exit<unknown, unknown>>())(readOutcome(key, identity, exitSchema))
        if (Option.isSome(recorded)) return new Workflow.Complete({ exit: recorded.value })
        if (infraFailures.has(instance.executionId)) return new Workflow.Suspended({})
        const activityInstance = WorkflowEngine.WorkflowInstance.initial(instance.workflow, instance.executionId)
        activityInstance.interrupted = instance.interrupted
        const result = yield* activity.executeEncoded.pipe(
          Workflow.intoResult,
          Effect.provideService(WorkflowEngine.WorkflowInstance, activityInstance)
        ) as Effect.Effect<Workflow.Result<unknown, unknown>>
        if (result._tag === "Suspended") return result
        const exit = yield* encodeJson(exitSchema, result.exit)
        const first = yield* guard("activity", true)(writeOnce(key, OutcomeRecord, { ...identity, exit }))
        if (first) return infraFailures.has(instance.executionId) ? new Workflow.Suspended({}) : result
        // another run recorded this attempt first: its result is the one
        const theirs = yield* guard("activity", Option.none<Exit.Exit<unknown, unknown>>())(readOutcome(key, identity, exitSchema))
        return Option.isSome(theirs) ? new Workflow.Complete({ exit: theirs.value }) : new Workflow.Suspended({})
      }),

    deferredResult: (deferred) =>
      Effect.gen(function*() {
        const instance = yield* WorkflowEngine.WorkflowInstance
        const name = instance.workflow.name
        const found = yield* guard("deferred", Option.none<Exit.Exit<unknown, unknown>>())(readOutcome(
          deferredKey(name, instance.executionId, deferred.name),
          { workflow: name, executionId: instance.executionId, name: deferred.name },
          storedExit(encodedOf(deferred.successSchema), encodedOf(deferred.errorSchema))
        ))
        return Option.getOrUndefined(found)
      }),

    // Records the result once, then wakes the execution with a run whose idempotency key names the
    // deferred: repeating deferredDone (or crashing between the two writes and retrying) wakes it once.
    deferredDone: (options) =>
      guard<void>("deferredDone", undefined)(Effect.gen(function*() {
        const exit = yield* encodeJson(storedExit(Schema.Unknown, Schema.Unknown), options.exit)
        yield* writeOnce(deferredKey(options.workflowName, options.executionId, options.deferredName), OutcomeRecord, {
          workflow: options.workflowName,
          executionId: options.executionId,
          name: options.deferredName,
          exit
        })
        yield* submitRun(options.workflowName, { executionId: options.executionId }, `${options.executionId}:deferred:${options.deferredName}`)
      })),

    // A run delayed by the clock's duration that completes the clock's deferred before replaying.
    scheduleClock: (workflow, options) =>
      guard<void>("scheduleClock", undefined)(
        submitRun(
          workflow.name,
          { executionId: options.executionId, clock: options.clock.deferred.name },
          `${options.executionId}:clock:${options.clock.deferred.name}`,
          options.clock.duration
        ).pipe(Effect.asVoid)
      )
  })

  /** One pass of the body under `instance`, cut off (suspended, nothing compensated) when `stop` fails first. */
  const runBody = <E, R>(
    entry: { readonly workflow: Workflow.Any; readonly execute: Execute },
    payload: object,
    executionId: string,
    interrupted: boolean,
    stop: Effect.Effect<never, E, R>
  ) =>
    Effect.gen(function*() {
      const instance = WorkflowEngine.WorkflowInstance.initial(entry.workflow, executionId)
      instance.interrupted = interrupted
      let cut = false
      const fiber = yield* entry.execute(payload, executionId).pipe(
        // An interrupted execution ends at its next suspension point instead of suspending, so
        // intoResult closes its scope (the compensations) with the interrupt (as the in-memory engine).
        Effect.onExit(() => {
          if (!instance.interrupted || cut) return Effect.void
          instance.suspended = false
          return Effect.withFiberRuntime<void>((fiber) => Effect.interruptible(Fiber.interrupt(fiber)))
        }),
        Workflow.intoResult,
        Effect.provideService(WorkflowEngine.WorkflowInstance, instance),
        Effect.provideService(WorkflowEngine.WorkflowEngine, engine),
        Effect.fork
      )
      // Cut off (the execution's lease is ending, or the worker stops the task): the body is
      // interrupted as a suspension, so its scope stays open and no compensation runs; the next
      // run replays it.
      const cutOff = Effect.suspend(() => {
        cut = true
        instance.suspended = true
        return Fiber.interrupt(fiber)
      })
      return yield* Effect.raceFirst(Fiber.join(fiber), stop).pipe(
        Effect.onInterrupt(() => cutOff),
        Effect.tapError(() => cutOff)
      )
    })

  /** Renews the execution's lease every half lease; signals `lost` when someone else holds it now. */
  const keepLease = (request: WorkflowLease.LeaseRequest, held: Ref.Ref<WorkflowLease.HeldLease>, writes: Effect.Semaphore, lost: Deferred.Deferred<void>) =>
    Effect.gen(function*() {
      while (true) {
        const { now } = yield* WorkflowLease.serverNow
        const current = yield* Ref.get(held)
        yield* Effect.sleep(Duration.millis(Math.max(100, (current.expiresAt - now) / 2)))
        const kept = yield* writes.withPermits(1)(
          Effect.flatMap(Ref.get(held), (h) => WorkflowLease.extend(request, h)).pipe(
            Effect.tap(Option.match({ onNone: () => Effect.void, onSome: (next) => Ref.set(held, next) }))
          )
        ).pipe(
          // a failed renewal is tried again at the next half; the deadline below still holds
          Effect.catchAll((e) => Effect.as(Effect.logWarning(`could not renew ${request.executionId}'s lease: ${describe(e)}`), Option.some(current)))
        )
        if (Option.isNone(kept)) return yield* Deferred.succeed(lost, void 0)
      }
    })

  /** Fails when the held lease is about to run out (its uncertainty and a margin kept) or was lost. */
  const leaseDeadline = (request: WorkflowLease.LeaseRequest, held: Ref.Ref<WorkflowLease.HeldLease>, lost: Deferred.Deferred<void>) =>
    Effect.raceFirst(
      Effect.gen(function*() {
        while (true) {
          const { now, uncertainty } = yield* WorkflowLease.serverNow
          const due = (yield* Ref.get(held)).expiresAt - uncertainty - leaseSafetyMarginMillis
          if (now >= due) break
          yield* Effect.sleep(Duration.millis(due - now))
        }
      }),
      Deferred.await(lost)
    ).pipe(
      Effect.zipRight(Effect.fail(new WorkflowLease.WorkflowLeaseLost({
        key: leaseKey(request.workflow, request.executionId),
        message: `the lease of ${request.workflow}/${request.executionId} ran out or was taken over: the run stopped; the next one replays it`
      })))
    )

  const run = (name: string, rawInput: unknown, lease: RunLease): Effect.Effect<WorkflowRunOutcome, unknown> =>
    provide(Effect.gen(function*() {
      const entry = registry.get(name)
      if (entry === undefined) return yield* new PermanentError({ message: `workflow ${JSON.stringify(name)} is not registered in this process` })
      const { workflow } = entry
      const input = yield* Schema.decodeUnknown(RunInput)(rawInput).pipe(
        Effect.mapError((e) => new PermanentError({ message: `the input of a ${workflowTaskType(name)} task is malformed: ${e.message}` }))
      )
      const executionId = input.executionId
      const completed = Option.isSome(yield* readResult(workflow, executionId))
      const record = yield* readExecution(executionKey(name, executionId), { workflow: name, executionId })
      if (Option.isNone(record)) {
        return yield* new PermanentError({ message: `${executionKey(name, executionId)} is missing: the execution was never started` })
      }
      // A child's completion wakes its parent; idempotent per child, so a run that recorded the
      // result and died before this is made good by its retry (which finds the result).
      const parent = record.value.parent
      const wakeParent = parent === undefined
        ? Effect.void
        : Effect.asVoid(submitRun(parent.workflow, { executionId: parent.executionId }, `${parent.executionId}:child:${name}:${executionId}`))
      if (completed) return yield* Effect.as(wakeParent, { executionId, state: "complete" as const })
      const payload = yield* Schema.decodeUnknown(workflow.payloadSchema as unknown as Schema.Schema<object, unknown>)(record.value.payload).pipe(
        Effect.mapError((e) => new PermanentError({ message: `${executionKey(name, executionId)} holds a payload its workflow refuses: ${e.message}` }))
      )
      // Recorded before the lease is asked for: a holder that replays on this run's behalf sees it.
      if (input.clock !== undefined) {
        yield* writeOnce(deferredKey(name, executionId, input.clock), OutcomeRecord, { workflow: name, executionId, name: input.clock, exit: voidExit })
      }
      const request = { workflow: name, executionId, holder: lease.holder, leaseMillis: Math.max(1, lease.leaseSeconds) * 1000 }
      const taken = yield* WorkflowLease.acquire(request)
      if (taken._tag === "HandedOver") return { executionId, state: "handed-over" as const }
      const storage = yield* Storage
      return yield* Effect.scoped(Effect.gen(function*() {
        const held = yield* Ref.make<WorkflowLease.HeldLease>(taken.lease)
        const writes = yield* Effect.makeSemaphore(1)
        const lost = yield* Deferred.make<void>()
        yield* Effect.forkScoped(keepLease(request, held, writes, lost))
        for (let pass = 1; ; pass++) {
          // a replay on another run's behalf: that run may have completed it meanwhile
          if (pass > 1 && Option.isSome(yield* readResult(workflow, executionId))) return { executionId, state: "complete" as const }
          const interrupted = Option.isSome(yield* storage.head(interruptKey(name, executionId)))
          infraFailures.delete(executionId)
          const result = yield* runBody(entry, payload, executionId, interrupted, leaseDeadline(request, held, lost))
          const failure = infraFailures.get(executionId)
          infraFailures.delete(executionId)
          if (failure !== undefined) return yield* Effect.fail(failure)
          if (result._tag === "Complete") {
            // An interrupt asked for while this pass ran ends the execution as interrupted (and
            // compensated), as in the in-memory engine: replay it so before recording anything.
            if (!interrupted && Option.isSome(yield* storage.head(interruptKey(name, executionId)))) continue
            const exit = yield* encodeJson(storedExit(workflow.successSchema, workflow.errorSchema), result.exit)
            yield* writeOnce(resultKey(name, executionId), OutcomeRecord, { workflow: name, executionId, name: "result", exit })
            yield* wakeParent
          }
          const released = yield* writes.withPermits(1)(Effect.flatMap(Ref.get(held), (h) => WorkflowLease.release(request, h)))
          if (released._tag !== "Rerun") {
            return { executionId, state: result._tag === "Complete" ? "complete" as const : "suspended" as const }
          }
          yield* Ref.set(held, released.lease)
        }
      }))
    }))

  return { engine, runner: WorkflowRunner.of({ workflows: Effect.sync(() => [...registry.keys()].sort()), run }) }
})

const describe = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error ? String((error as { message: unknown }).message) : String(error)

/**
 * The engine: provides `@effect/workflow`'s `WorkflowEngine` (for `Workflow.toLayer`, `execute`,
 * `poll`, `interrupt`, `DurableDeferred.done`) and the `WorkflowRunner` the worker's handlers use.
 * Needs a `Queue`, its `Storage` and the `ServerClock` (the `Buquet` layers provide them).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<WorkflowEngine.WorkflowEngine | WorkflowRunner, never, Queue | Storage | ServerClock> = Layer.effectContext(
  Effect.map(make, ({ engine, runner }) =>
    Context.make(WorkflowEngine.WorkflowEngine, engine).pipe(Context.add(WorkflowRunner, runner)))
)
