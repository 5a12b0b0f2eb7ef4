/**
 * The Queue layer: the producer and operator protocols of design.md §5.4 on `Storage` and
 * `ServerClock` only.
 *
 * Write orders (invariant 2: a pending task is never unfindable):
 * - submit: payload (if offloaded) → ready marker → create-only PUT of the task. A crash before the
 *   task PUT leaves a marker pointing at nothing: a harmless stale marker the sweeper removes. A
 *   create that lands more than `Markers.submitWindowMillis` after the task was built, once its
 *   marker's bucket is over, may find that marker deleted as an orphan: the task is then moved to
 *   a fresh marker (ready marker, then CAS to due-now, then the old marker deleted).
 * - replay: ready marker → CAS. cancel / expire / archive: CAS → delete the marker they no longer need.
 *   That DELETE (and a claim's) may land late, so a replay never writes the key a cancel, expiry or
 *   claim removes: one in the same minute is due at the next (`Markers.replayDueAt`).
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { Cause, Clock, DateTime, Deferred, Effect, Layer, Option, ParseResult, Ref, Schema, Stream } from "effect"
import { decodeObject, describeParseError, encodeObject, toPlainJson } from "../domain/Codec.js"
import * as Idem from "../domain/Idempotency.js"
import { schemaKey, taskKey, taskShardPrefix, taskTypeMarkerKey } from "../domain/Keys.js"
import { IdempotencyScope, TaskId, TaskTypeName } from "../domain/Names.js"
import { isPaused as _isPaused, pauseKey, PauseState, withPause } from "../domain/Pause.js"
import { QueueConfig, TypeCheck } from "../domain/QueueConfig.js"
import { InvalidArgument } from "../domain/QueueError.js"
import { MalformedObject } from "../domain/QueueError.js"
import { neededMarker, replayDueAt } from "../domain/Markers.js"
import { flowRecoverAt, type FlowNode, maxFlowChildren, maxFlowTasks } from "../domain/Flows.js"
import type { FlowIds, FlowSpec } from "../domain/FlowRequest.js"
import { makeFollowUp } from "../domain/FollowUpRequest.js"
import { createChildren, runFlowWork } from "../protocol/Flows.js"
import { leaseMarkerKey, readyMarkerKey, scanReadyKey } from "../domain/ReadyIndex.js"
import type { ReadyEntry } from "../domain/ReadyIndex.js"
import { bucketOf, isShard, shardOf } from "../domain/Shard.js"
import { StorageUnavailable } from "../domain/StorageError.js"
import { resolveSubmitOptions } from "../domain/SubmitOptions.js"
import type { ResolvedSubmit, SubmitOptions } from "../domain/SubmitOptions.js"
import { decodeTask, isExpiredAt, Task } from "../domain/Task.js"
import { IdempotencyConflict, IllegalTransition, SchemaValidationFailed, TaskNotFound, UnhandledTaskType } from "../domain/TaskErrors.js"
import { compileSchemas, TaskJsonSchemas, validateAgainst } from "../domain/TaskSchemas.js"
import * as PublishedSchemas from "../protocol/PublishedSchemas.js"
import type { CompiledSchemas } from "../domain/TaskSchemas.js"
import { comparePositions, compareTasks, sortMillis } from "../domain/TaskOrder.js"
import { allStatuses } from "../domain/TaskStatus.js"
import type { TaskStatus } from "../domain/TaskStatus.js"
import * as Tr from "../domain/Transitions.js"
import { listSorts, Queue } from "../services/Queue.js"
import type {
  ListSort,
  CancelManyResult,
  CancelOptions,
  CancelOutcome,
  CancelResult,
  ExpireResult,
  FlowCreated,
  ListTasksOptions,
  QueueService,
  SubmitItem,
  SubmitManyResult,
  TaskPage,
  TaskVersion
} from "../services/Queue.js"
import { ServerClock } from "../services/ServerClock.js"
import { Storage } from "../services/Storage.js"
import type { StorageReadError } from "../domain/StorageError.js"
import * as ServerClockLayer from "./ServerClock.js"
import type { ListPage } from "../services/Storage.js"
import { deletePayloads, loadInput, loadOutput, offloadInput } from "../protocol/Payloads.js"
import { makeSignal } from "../protocol/WakeUp.js"
import { createPending, keepFindable } from "../protocol/NewTask.js"
import { touchCancelSignal } from "../protocol/CancelSignal.js"
import { taskTypeRegistered } from "../protocol/TaskTypeMarkers.js"
import {
  createTask,
  keep,
  keyOfTask,
  putConditional,
  putPlain,
  readTask,
  updateTask,
  write,
  writeMarker
} from "../protocol/TaskObjects.js"
import type { VersionedTask } from "../protocol/TaskObjects.js"
import * as Tracing from "../protocol/Tracing.js"
import * as Metrics from "../services/Metrics.js"

/**
 * What the layer is built from: any subset of {@link QueueConfig}'s fields.
 *
 * @since 0.1.0
 * @category models
 */
export type QueueConfigInput = ConstructorParameters<typeof QueueConfig>[0]

const invalid = (argument: string) => (error: ParseResult.ParseError) =>
  new InvalidArgument({ argument, message: `${argument}: ${describeParseError(error).replace(/^the document: /, "")}` })

const checkTaskId = (taskId: string) => Schema.decodeUnknown(TaskId)(taskId).pipe(Effect.mapError(invalid("task id")))
const checkTaskType = (taskType: string) =>
  Schema.decodeUnknown(TaskTypeName)(taskType).pipe(Effect.mapError(invalid("task type")))

/** How long submit's type check trusts a missing `control/types/{type}.json` before it HEADs again. */
const typeMissCacheMillis = 10_000

/** A stored task key the idempotency record may point at (never trust a path from an object body). */
const taskKeyPattern = /^tasks\/([0-9a-f]{1,4})\/([0-9a-f-]{36})\.json$/

/** Normalises an input to plain JSON (what will be stored and what the worker will see). */
const toJson = (input: unknown) => toPlainJson("input", input)

interface AnyTaskType {
  readonly name: string
  readonly input: Schema.Schema<unknown, unknown>
}

/**
 * Builds the Queue service on the current Storage and ServerClock.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("Queue.make")(function*(configInput: QueueConfigInput = {}) {
  const config = yield* Schema.decodeUnknown(QueueConfig)(configInput).pipe(Effect.mapError(invalid("queue config")))
  const storage = yield* Storage
  // Idle workers watch control/wakeup instead of LISTing: a submit touches it (≤ 1 PUT/s per process).
  const wakeUp = yield* makeSignal(storage)
  const clock = yield* ServerClock
  const provide = <A, E>(self: Effect.Effect<A, E, Storage>): Effect.Effect<A, E> =>
    Effect.provideService(self, Storage, storage)

  const keyOfId = (taskId: string) => taskKey(shardOf(taskId, config.shardPrefixLen), taskId)

  // --- JSON Schemas, cached briefly so a submit does not always cost a GET -------------------
  const schemaCache = yield* Ref.make(new Map<string, { readonly at: number; readonly compiled: CompiledSchemas }>())

  /** How an operator repairs a stored schema that cannot be used. */
  const readSchemas = (taskType: string) => provide(PublishedSchemas.readSchemas(taskType))

  const compiledSchemas = (taskType: string) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const cached = (yield* Ref.get(schemaCache)).get(taskType)
      if (cached !== undefined && now - cached.at < config.schemaCacheSeconds * 1000) return cached.compiled
      const compiled = yield* provide(PublishedSchemas.readCompiledSchemas(taskType))
      yield* Ref.update(schemaCache, (m) => new Map(m).set(taskType, { at: now, compiled }))
      return compiled
    })

  const forgetSchema = (taskType: string) =>
    Ref.update(schemaCache, (m) => {
      const next = new Map(m)
      next.delete(taskType)
      return next
    })

  // --- has any worker ever handled the type? (control/types/{type}.json, one HEAD, cached) ----
  // A marker, once seen, stays (markers are never deleted); a missing one is looked at again after
  // typeMissCacheMillis, so a worker started meanwhile is noticed. A type warned about is not
  // checked again: one warning per type per process is enough.
  const typeSeen = new Set<string>()
  const typeWarned = new Set<string>()
  const typeMissedAt = new Map<string, number>()
  // The HEAD in flight per type: concurrent submits of one type (submitMany) wait for its answer
  // instead of each sending its own (and each warning).
  const typeAsking = new Map<string, Deferred.Deferred<boolean, StorageReadError>>()

  const registered = (taskType: string): Effect.Effect<boolean, StorageReadError> =>
    Effect.gen(function*() {
      if (typeSeen.has(taskType)) return true
      const now = yield* Clock.currentTimeMillis
      const missed = typeMissedAt.get(taskType)
      if (missed !== undefined && now - missed < typeMissCacheMillis) return false
      const asking = typeAsking.get(taskType)
      // an asker interrupted before its answer leaves the question to the next one
      if (asking !== undefined) {
        return yield* Deferred.await(asking).pipe(
          Effect.catchAllCause((cause) => Cause.isInterruptedOnly(cause) ? registered(taskType) : Effect.failCause(cause))
        )
      }
      const answer = yield* Deferred.make<boolean, StorageReadError>()
      typeAsking.set(taskType, answer)
      return yield* provide(taskTypeRegistered(taskType)).pipe(
        Effect.tap((found) =>
          Effect.sync(() => {
            if (found) typeSeen.add(taskType)
            else typeMissedAt.set(taskType, now)
          })
        ),
        Effect.onExit((exit) => Effect.zipRight(Effect.sync(() => typeAsking.delete(taskType)), Deferred.done(answer, exit)))
      )
    })

  const unhandledMessage = (taskType: string) =>
    `no worker has ever registered a handler for task type ${JSON.stringify(taskType)} (no ${taskTypeMarkerKey(taskType)}): ` +
    "its tasks stay pending until a worker that handles it starts; check the type's spelling " +
    "(workers older than this buquet and the reference's do not register their types: with them, turn the check off: " +
    "typeCheck \"off\", [queue] type_check or --type-check)"

  const checkHandled = (taskType: string, mode: TypeCheck) =>
    mode === "off" || (mode === "warn" && (typeSeen.has(taskType) || typeWarned.has(taskType)))
      ? Effect.void
      : mode === "strict"
      ? Effect.flatMap(registered(taskType), (ok) => ok ? Effect.void : Effect.fail(new UnhandledTaskType({ taskType, message: unhandledMessage(taskType) })))
      : registered(taskType).pipe(
        Effect.flatMap((ok) =>
          // (checked again: the submits that waited for the same answer warn once between them)
          ok || typeWarned.has(taskType)
            ? Effect.void
            : Effect.zipRight(Effect.sync(() => typeWarned.add(taskType)), Effect.logWarning(unhandledMessage(taskType)))
        ),
        // only a warning: a failed check never fails the submit
        Effect.catchAll((e) => Effect.logDebug(`submit: could not check whether task type ${taskType} has a worker: ${e.message}`))
      )

  // --- submit -------------------------------------------------------------------------------

  /** Writes a new task: payload → ready marker → create-only PUT. Fails with PreconditionFailed if the id exists. */
  const createObjects = (task: Task, inputJson: unknown) =>
    provide(Effect.gen(function*() {
      const placed = yield* offloadInput(task.id, inputJson, config.payloadThresholdBytes)
      const stored = placed.ref === undefined ? task : Tr.withInputRef(task, placed.ref)
      const final = yield* Effect.provideService(createPending(stored), ServerClock, clock)
      yield* wakeUp.touch
      return final
    }))

  const buildTask = (
    id: string,
    shard: string,
    taskType: string,
    input: unknown,
    resolved: ResolvedSubmit,
    now: DateTime.Utc,
    idempotencyExpiresAt?: DateTime.Utc
  ): Task =>
    Tr.newTask({
      idempotencyExpiresAt,
      id,
      shard,
      taskType,
      input,
      now,
      availableAt: resolved.availableAt,
      timeoutSeconds: resolved.timeoutSeconds,
      maxRetries: resolved.maxRetries,
      retryPolicy: resolved.retryPolicy,
      maxReschedules: resolved.maxReschedules,
      expiresAt: resolved.expiresAt,
      priority: resolved.priority,
      tags: resolved.tags,
      traceparent: resolved.traceparent
    })

  /**
   * Creates the task with this (fixed) id, or returns the one that exists already. Used by the
   * idempotency protocol, where several submitters may race to create the same id: exactly one
   * create-only PUT wins and everyone returns its task.
   */
  const createOrGet = (task: Task, inputJson: unknown) =>
    createObjects(task, inputJson).pipe(
      Effect.catchTag("PreconditionFailed", () =>
        Effect.gen(function*() {
          const existing = yield* provide(readTask(keyOfTask(task)))
          if (Option.isNone(existing)) {
            return yield* new StorageUnavailable({
              operation: "PutObject",
              key: keyOfTask(task),
              message: `${keyOfTask(task)} was reported to exist but cannot be read; try again`
            })
          }
          // Our ready marker may point at another bucket than the winner's. It is left to the
          // workers and the sweeper (deleted once provably stale): deleting it now could remove the
          // same key written meanwhile for the winner (a late create moving its task to a fresh
          // marker, a release or retry due this minute), leaving a pending task no one can find.
          return existing.value.task
        }))
    )

  const idempotentSubmit = (
    taskType: string,
    inputJson: unknown,
    resolved: ResolvedSubmit,
    idem: NonNullable<ResolvedSubmit["idempotency"]>,
    now: DateTime.Utc
  ) =>
    Effect.gen(function*() {
      const recKey = Idem.recordKey(idem.scope, taskType, idem.key)
      const hash = Idem.inputHash(taskType, inputJson)
      for (let round = 0; round < 20; round++) {
        const id = randomUUID()
        const shard = shardOf(id, config.shardPrefixLen)
        const record = Idem.makeRecord({
          key: idem.key,
          scope: idem.scope,
          taskType,
          input: inputJson,
          taskId: id,
          taskKey: taskKey(shard, id),
          now,
          ttlSeconds: idem.ttlSeconds
        })
        const body = encodeObject(Idem.IdempotencyRecord, record)
        // 1. Claim the key: the record fixes the task id.
        const created = yield* provide(putConditional(recKey, body, { ifNoneMatch: "*" })).pipe(
          Effect.as(true),
          Effect.catchTag("PreconditionFailed", () => Effect.succeed(false))
        )
        if (created) return yield* createOrGet(buildTask(id, shard, taskType, inputJson, resolved, now, record.expiresAt), inputJson)

        // 2. The key is taken: read the record.
        const found = yield* storage.get(recKey)
        if (Option.isNone(found)) continue // deleted meanwhile: claim it again
        const existing = yield* decodeObject(Idem.IdempotencyRecord, recKey, found.value.body).pipe(Effect.option)
        if (Option.isNone(existing) || Idem.isRecordExpired(existing.value, now)) {
          // Expired (or unreadable): the key is free again. Take it over by CAS so only one submitter does.
          const took = yield* provide(putConditional(recKey, body, { ifMatch: found.value.etag })).pipe(
            Effect.as(true),
            Effect.catchTag("PreconditionFailed", () => Effect.succeed(false))
          )
          if (took) return yield* createOrGet(buildTask(id, shard, taskType, inputJson, resolved, now, record.expiresAt), inputJson)
          continue
        }
        const rec = existing.value
        if (rec.inputHash !== hash) {
          return yield* new IdempotencyConflict({
            idempotencyKey: idem.key,
            scope: Idem.scopeDirectory(idem.scope, taskType),
            existingTaskId: rec.taskId,
            message: `idempotency key "${idem.key}" was already used for task ${rec.taskId} with a different ` +
              `task type or input; use a new key, or wait until it expires at ${DateTime.formatIso(rec.expiresAt)}`
          })
        }
        // 3. Same request: return the record's task, creating exactly that id if the first submitter
        //    has not (yet) written it. A crashed submit is thereby finished, never blocking the key.
        const m = taskKeyPattern.exec(rec.taskKey)
        const recShard = m !== null && m[2] === rec.taskId ? m[1]! : shardOf(rec.taskId, config.shardPrefixLen)
        const task = yield* provide(readTask(taskKey(recShard, rec.taskId)))
        if (Option.isSome(task)) return task.value.task
        // A record written before a shard migration names the old layout: the task may have moved to
        // ours, and if it must be created, it goes where this queue's workers look.
        const ours = shardOf(rec.taskId, config.shardPrefixLen)
        if (ours !== recShard) {
          const moved = yield* provide(readTask(taskKey(ours, rec.taskId)))
          if (Option.isSome(moved)) return moved.value.task
        }
        // (Retention keeps a task while its record lives, so a missing task was never created, or was deleted by hand.)
        return yield* createOrGet(buildTask(rec.taskId, ours, taskType, inputJson, resolved, now, rec.expiresAt), inputJson)
      }
      return yield* new StorageUnavailable({
        operation: "PutObject",
        key: recKey,
        message: `idempotency record ${recKey} kept changing under us; try again`
      })
    })

  const submitJson = (taskType: string, input: unknown, options: SubmitOptions) =>
    Effect.gen(function*() {
      yield* checkTaskType(taskType)
      if (options.idempotencyScope !== undefined && options.idempotencyScope !== "task_type" && options.idempotencyScope !== "queue") {
        yield* Schema.decodeUnknown(IdempotencyScope)(options.idempotencyScope).pipe(Effect.mapError(invalid("idempotencyScope")))
      }
      const inputJson = yield* toJson(input)
      const now = yield* clock.now
      const resolved = yield* resolveSubmitOptions(options, now, config)
      const schemas = yield* compiledSchemas(taskType)
      yield* validateAgainst(taskType, "input", schemas.input, inputJson)
      if (options.typeCheck !== undefined && !Schema.is(TypeCheck)(options.typeCheck)) {
        return yield* new InvalidArgument({ argument: "typeCheck", message: `typeCheck must be "warn", "strict" or "off", got ${JSON.stringify(options.typeCheck)}` })
      }
      yield* checkHandled(taskType, options.typeCheck ?? config.typeCheck)
      if (resolved.idempotency !== undefined) {
        return yield* idempotentSubmit(taskType, inputJson, resolved, resolved.idempotency, now)
      }
      const id = randomUUID()
      const task = buildTask(id, shardOf(id, config.shardPrefixLen), taskType, inputJson, resolved, now)
      return yield* createObjects(task, inputJson).pipe(
        // A fresh random UUID cannot exist unless our own ambiguous create landed; read it back.
        Effect.catchTag("PreconditionFailed", (e) =>
          provide(readTask(keyOfTask(task))).pipe(
            Effect.flatMap(Option.match({
              onNone: () => Effect.fail(new StorageUnavailable({ operation: "PutObject", key: e.key, message: e.message })),
              onSome: (vt) => Effect.succeed(vt.task)
            }))
          ))
      )
    })

  const encodeTyped = (type: AnyTaskType, input: unknown) =>
    Schema.encodeUnknown(type.input)(input).pipe(
      Effect.mapError((error) =>
        new SchemaValidationFailed({
          taskType: type.name,
          which: "input",
          message: `input of ${type.name} is invalid: ${describeParseError(error)}`
        })
      )
    )

  const submitAny = (type: string | AnyTaskType, input: unknown, untraced: SubmitOptions = {}) =>
    // the task remembers the producer's trace (W3C traceparent), so the worker's spans join it
    Effect.flatMap(Tracing.withTraceparent(untraced), (options) =>
      typeof type === "string"
        ? submitJson(type, input, options)
        : Effect.flatMap(encodeTyped(type, input), (json) => submitJson(type.name, json, options))).pipe(
        Effect.tap((task) => Metrics.recordSubmitted(task.taskType))
      )

  const submit = Effect.fn("Queue.submit")(function*(type: string | AnyTaskType, input: unknown, options?: SubmitOptions) {
    return yield* submitAny(type, input, options)
  })

  const submitMany = Effect.fn("Queue.submitMany")(function*(
    first: AnyTaskType | Iterable<SubmitItem>,
    second?: Iterable<unknown> | { readonly concurrency?: number | undefined },
    third?: SubmitOptions & { readonly concurrency?: number | undefined }
  ) {
    const typed = typeof first === "object" && first !== null && "name" in first && "input" in first &&
      !(Symbol.iterator in first)
    const items: ReadonlyArray<{ readonly type: string | AnyTaskType; readonly input: unknown; readonly options?: SubmitOptions | undefined }> = typed
      ? [...(second as Iterable<unknown>)].map((input) => ({ type: first as AnyTaskType, input, options: third }))
      : [...(first as Iterable<SubmitItem>)].map((item) => ({ type: item.taskType, input: item.input, options: item.options }))
    const concurrency = (typed ? third?.concurrency : (second as { readonly concurrency?: number } | undefined)?.concurrency) ??
      config.bulkConcurrency
    return yield* Effect.forEach(
      items,
      (item, index) => {
        const { concurrency: _c, ...options } = (item.options ?? {}) as SubmitOptions & { readonly concurrency?: number }
        return submitAny(item.type, item.input, options).pipe(
          Effect.match({
            onSuccess: (task): SubmitManyResult => ({ index, _tag: "Submitted", task }),
            onFailure: (error): SubmitManyResult => ({ index, _tag: "Failed", error })
          })
        )
      },
      { concurrency }
    )
  })

  // --- flows (domain/Flows.ts) -------------------------------------------------------------------

  /** A node's input as JSON: a typed contract's encoded by its Schema. */
  const nodeInput = (spec: FlowSpec) =>
    typeof spec.type === "string" ? toJson(spec.input) : Effect.flatMap(encodeTyped(spec.type, spec.input), toJson)

  const nodeType = (spec: FlowSpec): string => typeof spec.type === "string" ? spec.type : spec.type.name

  /** Checks and resolves the children of `parentId` (ids fixed by position), depth first, counting every node. */
  const flowChildren = (
    specs: ReadonlyArray<FlowSpec> | undefined,
    parentId: string,
    now: DateTime.Utc,
    count: { n: number }
  ): Effect.Effect<ReadonlyArray<FlowNode>, InvalidArgument | SchemaValidationFailed> =>
    Effect.gen(function*() {
      const list = specs ?? []
      if (!Array.isArray(list)) return yield* new InvalidArgument({ argument: "children", message: "children must be an array of flow nodes" })
      if (list.length > maxFlowChildren) {
        return yield* new InvalidArgument({
          argument: "children",
          message: `a flow's task may have at most ${maxFlowChildren} children (it lists them in its body); nest flows for more`
        })
      }
      return yield* Effect.forEach(list, (spec, index) =>
        Effect.gen(function*() {
          if (++count.n > maxFlowTasks) {
            return yield* new InvalidArgument({ argument: "children", message: `a flow may create at most ${maxFlowTasks} tasks in all` })
          }
          const taskType = nodeType(spec)
          yield* checkTaskType(taskType)
          const input = yield* nodeInput(spec)
          const task = yield* makeFollowUp({ parentId, index, taskType, input, options: spec.options ?? {}, now, config })
          const children = yield* flowChildren(spec.children, task.id, now, count)
          return {
            task,
            ...(spec.failParentOnFailure === true ? { failParent: true } : {}),
            ...(children.length > 0 ? { children } : {})
          } satisfies FlowNode
        }))
    })

  const idsOf = (node: FlowNode): FlowIds => ({ id: node.task.id, taskType: node.task.taskType, children: (node.children ?? []).map(idsOf) })

  const flow = Effect.fn("Queue.flow")(function*(spec: FlowSpec) {
    const taskType = nodeType(spec)
    yield* checkTaskType(taskType)
    const refused = (["idempotencyKey", "idempotencyScope", "idempotencyTtlSeconds"] as const)
      .find((k) => (spec.options as Record<string, unknown> | undefined)?.[k] !== undefined)
    if (refused !== undefined) {
      return yield* new InvalidArgument({ argument: refused, message: `${refused} does not apply to a flow: each of its tasks is created exactly once by construction` })
    }
    const inputJson = yield* nodeInput(spec)
    const options = yield* Tracing.withTraceparent(spec.options ?? {})
    const now = yield* clock.now
    const resolved = yield* resolveSubmitOptions(options, now, config)
    const schemas = yield* compiledSchemas(taskType)
    yield* validateAgainst(taskType, "input", schemas.input, inputJson)
    const id = randomUUID()
    const children = yield* flowChildren(spec.children, id, now, { n: 1 })
    const root = Tr.flowTask(buildTask(id, shardOf(id, config.shardPrefixLen), taskType, inputJson, resolved, now), { children }, { now, child: false })
    const ids: FlowIds = { id, taskType, children: children.map(idsOf) }
    // A fresh random UUID cannot exist unless our own ambiguous create landed: go on with what is stored.
    const readBack = (key: string) =>
      provide(readTask(key)).pipe(Effect.flatMap(Option.match({
        onNone: () => Effect.fail(new StorageUnavailable({ operation: "PutObject", key, message: `${key}: the create was refused but nothing is there; try again` })),
        onSome: (vt) => Effect.succeed(vt)
      })))
    if (root.flow === undefined) {
      const task = yield* createObjects(root, inputJson).pipe(
        Effect.catchTag("PreconditionFailed", (e) => Effect.map(readBack(e.key), (vt) => vt.task))
      )
      yield* Metrics.recordSubmitted(taskType)
      return { ...ids, task } satisfies FlowCreated
    }
    const task = yield* provide(Effect.gen(function*() {
      const placed = yield* offloadInput(root.id, inputJson, config.payloadThresholdBytes)
      const stored = placed.ref === undefined ? root : Tr.withInputRef(root, placed.ref)
      // the recovery marker first: a creator that dies before the children exist leaves it for lease recovery
      yield* writeMarker(neededMarker(stored)!)
      const held = yield* createTask(stored).pipe(
        Effect.map((etag): VersionedTask => ({ task: stored, etag })),
        Effect.catchTag("PreconditionFailed", (e) => readBack(e.key))
      )
      const done = yield* Effect.provideService(createChildren(held, wakeUp.touch), ServerClock, clock)
      yield* wakeUp.touch
      return done.task
    }))
    yield* Metrics.recordSubmitted(taskType)
    return { ...ids, task } satisfies FlowCreated
  })

  // --- reads --------------------------------------------------------------------------------

  const get = Effect.fn("Queue.get")(function*(taskId: string) {
    yield* checkTaskId(taskId)
    const found = yield* provide(readTask(keyOfId(taskId)))
    return Option.map(found, (vt) => vt.task)
  })

  const encodeCursor = (key: string) => Buffer.from(key, "utf8").toString("base64url")
  const decodeCursor = (cursor: string) =>
    Effect.suspend(() => {
      const key = Buffer.from(cursor, "base64url").toString("utf8")
      return key.startsWith("tasks/")
        ? Effect.succeed(key)
        : Effect.fail(new InvalidArgument({ argument: "cursor", message: "cursor is not one returned by list; start without a cursor" }))
    })

  // A sorted list's cursor: the sort and the last task's sort value and id, so the next page starts after it.
  const encodeSortCursor = (sort: ListSort, task: Task) =>
    Buffer.from(`${sort}:${sortMillis(sort, task)}:${task.id}`, "utf8").toString("base64url")
  const decodeSortCursor = (cursor: string, sort: ListSort) =>
    Effect.suspend(() => {
      const m = /^([a-z-]+):(\d+):([0-9a-f-]{36})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"))
      return m !== null && m[1] === sort
        ? Effect.succeed({ millis: Number(m[2]), id: m[3]! })
        : Effect.fail(new InvalidArgument({ argument: "cursor", message: `cursor is not one returned by list with sort ${sort}; start without a cursor` }))
    })

  const list = Effect.fn("Queue.list")(function*(options: ListTasksOptions = {}) {
    const limit = options.limit ?? 100
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      return yield* new InvalidArgument({ argument: "limit", message: `limit must be a whole number from 1 to 1000, got ${limit}` })
    }
    const statuses = options.status === undefined ? undefined : new Set<TaskStatus>(
      typeof options.status === "string" ? [options.status] : options.status
    )
    for (const s of statuses ?? []) {
      if (!allStatuses.includes(s)) {
        return yield* new InvalidArgument({ argument: "status", message: `status must be one of ${allStatuses.join(", ")}, got ${String(s)}` })
      }
    }
    if (options.taskType !== undefined) yield* checkTaskType(options.taskType)
    if (options.shard !== undefined && !isShard(options.shard, options.shard.length)) {
      return yield* new InvalidArgument({ argument: "shard", message: `shard must be 1–4 lower-case hex characters, got ${options.shard}` })
    }
    if (options.sort !== undefined && !listSorts.includes(options.sort)) {
      return yield* new InvalidArgument({ argument: "sort", message: `sort must be one of ${listSorts.join(", ")}, got ${String(options.sort)}` })
    }
    const prefix = options.shard === undefined ? "tasks/" : taskShardPrefix(options.shard)
    const scanned = yield* Ref.make(0)
    const malformed = yield* Ref.make<ReadonlyArray<MalformedObject>>([])
    const matches = (task: Task) =>
      (statuses === undefined || statuses.has(task.status)) &&
      (options.taskType === undefined || task.taskType === options.taskType)

    const readMatching = (from: string | undefined) =>
      storage.listAll(prefix, { startAfter: from }).pipe(
        Stream.filter((meta) => meta.key.endsWith(".json")),
        Stream.mapEffect(
          (meta) =>
            provide(readTask(meta.key)).pipe(
              Effect.tap(() => Ref.update(scanned, (n) => n + 1)),
              Effect.catchTag("MalformedObject", (e) =>
                Ref.update(malformed, (all) => [...all, e]).pipe(Effect.as(Option.none<VersionedTask>())))
            ),
          { concurrency: config.listConcurrency }
        ),
        Stream.filterMap((found) => Option.filter(Option.map(found, (vt) => vt.task), matches))
      )
    const sort = options.sort ?? "key"
    if (sort !== "key") {
      // every match is read to sort them: the order is over the whole prefix, not one page
      const after = options.cursor === undefined ? undefined : yield* decodeSortCursor(options.cursor, sort)
      const all = [...yield* Stream.runCollect(readMatching(undefined))].sort(compareTasks(sort))
      const start = after === undefined ? 0 : all.findIndex((t) => comparePositions(sort)({ millis: sortMillis(sort, t), id: t.id }, after) > 0)
      const tasks = start < 0 ? [] : all.slice(start, start + limit)
      const last = tasks.at(-1)
      return {
        tasks,
        cursor: last !== undefined && start + limit < all.length ? encodeSortCursor(sort, last) : undefined,
        scanned: yield* Ref.get(scanned),
        malformed: yield* Ref.get(malformed),
        matched: all.length
      } satisfies TaskPage
    }
    const startAfter = options.cursor === undefined ? undefined : yield* decodeCursor(options.cursor)
    const found = yield* readMatching(startAfter).pipe(Stream.take(limit), Stream.runCollect)
    const tasks = [...found]
    const last = tasks.at(-1)
    return {
      tasks,
      cursor: tasks.length === limit && last !== undefined ? encodeCursor(keyOfTask(last)) : undefined,
      scanned: yield* Ref.get(scanned),
      malformed: yield* Ref.get(malformed)
    } satisfies TaskPage
  })

  /**
   * One walk over `ready/` (or one shard's part of it) in key order, jumping over what cannot be
   * due: the rest of a priority rank after its first future marker, and the rest of a shard after
   * its first future default marker. The cost follows the shards that hold markers, not the
   * number of shards (65,536 at prefix length 4).
   */
  const walkReady = (prefix: string, nowBucket: number, limit: number) =>
    Effect.gen(function*() {
      const entries: Array<ReadyEntry> = []
      let startAfter: string | undefined = undefined
      let token: string | undefined = undefined
      for (;;) {
        const page: ListPage = yield* storage.list(prefix, {
          startAfter,
          continuationToken: token,
          maxKeys: Math.min(1000, limit - entries.length + 1)
        })
        let jump: string | undefined = undefined
        for (const object of page.objects) {
          const stepped = scanReadyKey(object.key, nowBucket)
          if (stepped._tag === "Due") {
            entries.push(stepped.entry)
            if (entries.length >= limit) return entries
          } else if (stepped._tag === "SkipRank") {
            jump = stepped.startAfter
            break
          } else if (stepped._tag === "Stop") {
            // Everything after the first future default marker of a shard is future: go to the next shard.
            const shard = object.key.slice("ready/".length).split("/")[0]!
            jump = `ready/${shard}/~`
            break
          }
        }
        if (jump !== undefined) {
          startAfter = jump
          token = undefined
          continue
        }
        if (page.nextContinuationToken === undefined) return entries
        token = page.nextContinuationToken
      }
    })

  const listReady = Effect.fn("Queue.listReady")(function*(
    options: { readonly shard?: string | undefined; readonly limit?: number | undefined } = {}
  ) {
    const limit = options.limit ?? 100
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      return yield* new InvalidArgument({ argument: "limit", message: `limit must be a whole number from 1 to 10000, got ${limit}` })
    }
    if (options.shard !== undefined && !isShard(options.shard, options.shard.length)) {
      return yield* new InvalidArgument({ argument: "shard", message: `shard must be 1–4 lower-case hex characters, got ${options.shard}` })
    }
    const nowBucket = bucketOf(yield* clock.currentTimeMillis)
    return yield* walkReady(options.shard === undefined ? "ready/" : `ready/${options.shard}/`, nowBucket, limit)
  })

  const history = Effect.fn("Queue.history")(function*(taskId: string) {
    yield* checkTaskId(taskId)
    const key = keyOfId(taskId)
    const current = yield* provide(readTask(key))
    if (Option.isNone(current)) return yield* TaskNotFound.of(taskId)
    const capabilities = yield* storage.capabilities
    const versions: Array<TaskVersion> = []
    if (capabilities.versioning === "enabled" || capabilities.versioning === "suspended") {
      for (const v of yield* storage.listVersions(key)) {
        let task: Task | undefined = undefined
        if (!v.isDeleteMarker) {
          const body = yield* storage.getVersion(key, v.versionId)
          if (Option.isSome(body)) {
            task = yield* decodeTask(key, body.value.body).pipe(Effect.orElseSucceed(() => undefined))
          }
        }
        versions.push({ versionId: v.versionId, lastModified: v.lastModified, isLatest: v.isLatest, task })
      }
    }
    return { taskId, events: current.value.task.events ?? [], versions }
  })

  // --- lifecycle ----------------------------------------------------------------------------

  const cancelOne: (taskId: string, options?: CancelOptions) => Effect.Effect<CancelResult, InvalidArgument | StorageReadError | MalformedObject> = Effect.fn("Queue.cancel")(function*(taskId: string, options: CancelOptions = {}) {
    yield* checkTaskId(taskId)
    const now = yield* clock.now
    const params = { now, reason: options.reason, cancelledBy: options.cancelledBy }
    const { current, result } = yield* provide(updateTask<CancelOutcome>(keyOfId(taskId), (found) => {
      if (Option.isNone(found)) return keep("not_found")
      const task = found.value.task
      switch (task.status) {
        case "pending":
          return write(Tr.cancel(task, params), "cancelled", { after: [readyMarkerKey(task)] })
        case "running":
          return task.cancelRequested ? keep("cancel_requested") : write(Tr.requestCancel(task, params), "cancel_requested")
        default:
          return keep("already_terminal")
      }
    }))
    // Tell the worker running it (again, on a repeated cancel: the first touch may have been lost).
    if (result === "cancel_requested" && Option.isSome(current)) yield* touchCancelSignal(storage, current.value.task, now)
    let task = Option.getOrUndefined(Option.map(current, (vt) => vt.task))
    if (Option.isSome(current) && current.value.task.status === "cancelled") {
      // a flow's child tells its parent; a flow's parent cancels its children (again on a repeated cancel)
      if (flowRecoverAt(current.value.task) !== undefined) {
        task = (yield* provide(Effect.provideService(runFlowWork(current.value, wakeUp.touch), ServerClock, clock))).task
      }
      const children = current.value.task.flow?.children ?? []
      if (children.length > 0 && (result === "cancelled" || result === "already_terminal")) {
        yield* Effect.forEach(children, (c) =>
          cancelOne(c.id, { ...options, reason: options.reason ?? `its flow's parent ${taskId} was cancelled` }).pipe(
            Effect.catchAll((e) => Effect.logWarning(`cancel of flow ${taskId}: child ${c.id} not cancelled: ${e.message}`))
          ), { concurrency: 8, discard: true })
      }
    }
    return { taskId, outcome: result, task } satisfies CancelResult
  })

  const cancelEach = (taskIds: Iterable<string>, options: CancelOptions & { readonly concurrency?: number | undefined }) =>
    Effect.forEach(
      [...taskIds],
      (taskId) =>
        cancelOne(taskId, options).pipe(
          Effect.match({
            onSuccess: (r): CancelManyResult => ({ _tag: "Done", ...r }),
            onFailure: (error): CancelManyResult => ({ _tag: "Failed", taskId, error })
          })
        ),
      { concurrency: options.concurrency ?? config.bulkConcurrency }
    )

  const cancelMany = Effect.fn("Queue.cancelMany")(function*(
    taskIds: Iterable<string>,
    options: CancelOptions & { readonly concurrency?: number | undefined } = {}
  ) {
    return yield* cancelEach(taskIds, options)
  })

  const cancelByType = Effect.fn("Queue.cancelByType")(function*(
    taskType: string,
    options: CancelOptions & { readonly concurrency?: number | undefined } = {}
  ) {
    yield* checkTaskType(taskType)
    const ids: Array<string> = []
    let cursor: string | undefined = undefined
    do {
      const page: TaskPage = yield* list({ taskType, status: ["pending", "running"], limit: 1000, cursor })
      for (const t of page.tasks) ids.push(t.id)
      cursor = page.cursor
    } while (cursor !== undefined)
    return yield* cancelEach(ids, options)
  })

  const markExpired = Effect.fn("Queue.markExpired")(function*(taskId: string) {
    yield* checkTaskId(taskId)
    const now = yield* clock.now
    const { current, result } = yield* provide(updateTask<ExpireResult["outcome"]>(keyOfId(taskId), (found) => {
      if (Option.isNone(found)) return keep("not_found")
      const task = found.value.task
      if (task.status !== "pending") return keep("not_pending")
      if (!isExpiredAt(task, now)) return keep("not_due")
      return write(Tr.expire(task, { now }), "expired", { after: [readyMarkerKey(task)] })
    }))
    if (result === "expired" && Option.isSome(current) && flowRecoverAt(current.value.task) !== undefined) {
      yield* provide(Effect.provideService(runFlowWork(current.value, wakeUp.touch), ServerClock, clock))
    }
    return { taskId, outcome: result, task: Option.getOrUndefined(Option.map(current, (vt) => vt.task)) } satisfies ExpireResult
  })

  const illegal = (task: Task, action: "replay" | "archive") =>
    new IllegalTransition({
      taskId: task.id,
      action,
      status: task.status,
      message: `cannot ${action} task ${task.id}: it is ${task.status}; ${action} needs ${Tr.allowedFrom[action].join(", ")}` +
        (action === "replay" && task.status === "pending" ? " (it is already waiting to run)" : "")
    })

  const replay = Effect.fn("Queue.replay")(function*(taskId: string) {
    yield* checkTaskId(taskId)
    const now = yield* clock.now
    const { current, result } = yield* provide(updateTask<Task, TaskNotFound | IllegalTransition | StorageReadError>(keyOfId(taskId), (found) => {
      if (Option.isNone(found)) return Effect.fail(TaskNotFound.of(taskId))
      const task = found.value.task
      if (!Tr.canReplay(task)) return Effect.fail(illegal(task, "replay"))
      // Due now, or in the next minute if now would reuse the key of the marker the cancel or
      // expiry that ended it deleted (that DELETE may still land).
      const next = Tr.replay(task, { now, availableAt: replayDueAt(task, now) })
      // The ready marker first: the replayed task is pending the moment the CAS lands. The old
      // output (if offloaded) is not deleted here: output.json has one key for every run, and a
      // replay's DELETE that lands late (a paused replay that then loses its CAS to another one)
      // would remove the new run's output. The sweeper collects it once nothing references it.
      return Effect.succeed(write(next, next, { before: [readyMarkerKey(next)] }))
    }))
    // A CAS that landed after its marker's minute was over (a paused replay): a sweeper that read
    // the task still ended may be deleting that marker.
    const replayed = Option.isSome(current)
      ? (yield* provide(Effect.provideService(keepFindable(current.value), ServerClock, clock))).task
      : result
    // Claimable again: idle workers look within a second.
    yield* wakeUp.touch
    return replayed
  })

  const archive = Effect.fn("Queue.archive")(function*(taskId: string) {
    yield* checkTaskId(taskId)
    const now = yield* clock.now
    const { result } = yield* provide(updateTask<Task, TaskNotFound | IllegalTransition>(keyOfId(taskId), (found) => {
      if (Option.isNone(found)) return Effect.fail(TaskNotFound.of(taskId))
      const task = found.value.task
      if (task.status === "archived") return Effect.succeed(keep(task))
      if (!Tr.canArchive(task)) return Effect.fail(illegal(task, "archive"))
      const next = Tr.archive(task, { now })
      return Effect.succeed(write(next, next))
    }))
    return result
  })

  const deleteTask = Effect.fn("Queue.delete")(function*(taskId: string) {
    yield* checkTaskId(taskId)
    const key = keyOfId(taskId)
    const found = yield* provide(readTask(key)).pipe(
      Effect.catchTag("MalformedObject", () => Effect.succeed(Option.none<VersionedTask>()))
    )
    const markers = Option.match(found, {
      onNone: () => [],
      onSome: ({ task }) => [readyMarkerKey(task), ...(leaseMarkerKey(task) === undefined ? [] : [leaseMarkerKey(task)!])]
    })
    const exists = Option.isSome(found) || Option.isSome(yield* storage.head(key))
    // Task and markers first, payloads last: a crash in between leaves only an orphan payload, never a task without its input.
    yield* storage.deleteMany([key, ...markers])
    yield* provide(deletePayloads(taskId, Option.getOrUndefined(Option.map(found, (f) => f.task))))
    return exists
  })

  // --- pause --------------------------------------------------------------------------------

  const readPause = Effect.gen(function*() {
    const found = yield* storage.get(pauseKey)
    if (Option.isNone(found)) return { state: PauseState.none, etag: Option.none<string>() }
    const state = yield* decodeObject(PauseState, pauseKey, found.value.body).pipe(
      Effect.mapError((e) =>
        new MalformedObject({
          key: pauseKey,
          message: `${e.message}; remove it with \`buquet repair ${pauseKey}\` (nothing is paused then), then pause again what should stay paused`
        })
      )
    )
    return { state, etag: Option.some(found.value.etag) }
  })

  const setPause = (paused: boolean, taskType: string | undefined) =>
    Effect.gen(function*() {
      if (taskType !== undefined) yield* checkTaskType(taskType)
      for (let round = 0; round < 50; round++) {
        const { state, etag } = yield* readPause
        const now = yield* clock.now
        const next = new PauseState({ ...withPause(state, paused, taskType), updatedAt: now })
        const written = yield* provide(
          putConditional(
            pauseKey,
            encodeObject(PauseState, next),
            Option.match(etag, { onNone: () => ({ ifNoneMatch: "*" as const }), onSome: (ifMatch) => ({ ifMatch }) })
          )
        ).pipe(Effect.as(true), Effect.catchTag("PreconditionFailed", () => Effect.succeed(false)))
        if (written) {
          // A resume makes waiting work claimable: idle workers look within a second.
          if (!paused) yield* wakeUp.touch
          return next
        }
      }
      return yield* new StorageUnavailable({ operation: "PutObject", key: pauseKey, message: `${pauseKey} kept changing; try again` })
    })

  // --- schemas ------------------------------------------------------------------------------

  const publishSchema = Effect.fn("Queue.publishSchema")(function*(taskType: string, schemas: TaskJsonSchemas) {
    yield* checkTaskType(taskType)
    const value = schemas instanceof TaskJsonSchemas ? schemas : new TaskJsonSchemas(schemas)
    yield* compileSchemas(taskType, value)
    yield* provide(putPlain(schemaKey(taskType), encodeObject(TaskJsonSchemas, value)))
    yield* forgetSchema(taskType)
  })

  const getSchema = Effect.fn("Queue.getSchema")(function*(taskType: string) {
    yield* checkTaskType(taskType)
    return yield* readSchemas(taskType)
  })

  const listSchemas = storage.listAll("schemas/").pipe(
    Stream.map((meta) => meta.key.slice("schemas/".length)),
    Stream.filter((name) => name.endsWith(".json") && !name.includes("/")),
    Stream.map((name) => name.slice(0, -".json".length)),
    Stream.runCollect,
    Effect.map((names) => [...names].sort()),
    Effect.withSpan("Queue.listSchemas")
  )

  const deleteSchema = Effect.fn("Queue.deleteSchema")(function*(taskType: string) {
    yield* checkTaskType(taskType)
    yield* storage.delete(schemaKey(taskType))
    yield* forgetSchema(taskType)
  })

  const service: QueueService = {
    config,
    noteHandledTypes: (taskTypes) => Effect.sync(() => taskTypes.forEach((t) => typeSeen.add(t))),
    submit: submit as QueueService["submit"],
    submitMany: submitMany as QueueService["submitMany"],
    flow,
    get,
    list,
    listReady,
    history,
    now: clock.now,
    cancel: cancelOne,
    cancelMany,
    cancelByType,
    markExpired,
    replay,
    archive,
    delete: deleteTask,
    loadInput: (task) => provide(loadInput(task)),
    loadOutput: (task) => provide(loadOutput(task)),
    pause: Effect.fn("Queue.pause")((taskType?: string) => setPause(true, taskType)),
    resume: Effect.fn("Queue.resume")((taskType?: string) => setPause(false, taskType)),
    pauseState: Effect.map(readPause, (p) => p.state),
    publishSchema,
    getSchema,
    listSchemas,
    deleteSchema
  }
  return service
})

/**
 * The Queue layer: `Queue.layer({ shardPrefixLen, payloadThresholdBytes, … })` on Storage and ServerClock.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: QueueConfigInput = {}): Layer.Layer<Queue, InvalidArgument, Storage | ServerClock> =>
  Layer.scoped(Queue, make(config))

/**
 * The whole stack on one storage layer: Queue + ServerClock + the Storage itself, e.g.
 * `QueueLayer.layerOn(MemoryStorage.layer(), { shardPrefixLen: 2 })` in tests and tools.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerOn = <E>(
  storage: Layer.Layer<Storage, E>,
  config: QueueConfigInput = {}
): Layer.Layer<Queue | ServerClock | Storage, E | InvalidArgument | StorageReadError> =>
  layer(config).pipe(Layer.provideMerge(ServerClockLayer.layer), Layer.provideMerge(storage))

/**
 * Whether tasks of `taskType` are paused (re-exported for workers that import the layer module).
 *
 * @since 0.1.0
 * @category guards
 */
export const isPaused = _isPaused
