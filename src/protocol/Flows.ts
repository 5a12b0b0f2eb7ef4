/**
 * The writes of flows (domain/Flows.ts): creating a waiting parent's children, and telling a
 * parent that a child ended (the last one makes it due). Each step is idempotent — a create-only
 * PUT of a fixed id, a CAS that records what is not recorded yet — so the process that did the
 * transition, lease recovery and the sweeper may all run it, in any order, any number of times.
 *
 * @module
 */
import { DateTime, Effect, Option } from "effect"
import { flowDecision, type FlowNode, owedNotice, recordOutcome, uncreatedChildren } from "../domain/Flows.js"
import { Flow } from "../domain/Flows.js"
import { closedMarkers, neededMarker } from "../domain/Markers.js"
import { readyMarkerKey } from "../domain/ReadyIndex.js"
import type { Task } from "../domain/Task.js"
import * as Tr from "../domain/Transitions.js"
import type { MalformedObject } from "../domain/QueueError.js"
import type { StorageReadError } from "../domain/StorageError.js"
import { ServerClock } from "../services/ServerClock.js"
import type { Storage } from "../services/Storage.js"
import type { ChildResult } from "../domain/FlowRequest.js"
import { createPending, keepFindable } from "./NewTask.js"
import { loadOutput } from "./Payloads.js"
import {
  casTask,
  createTask,
  deleteMarkers,
  keep,
  keyOfTask,
  keyOfTaskId,
  readTask,
  type TaskUpdate,
  updateTask,
  type VersionedTask,
  write,
  writeMarker
} from "./TaskObjects.js"

/** How many children are created at once. */
const createConcurrency = 8

/**
 * The parent as it should be after `flow` (its children as recorded now) at `now`: still waiting
 * (with the record), due (every child ended), or failed by a `failParentOnFailure` child.
 */
export const advanceParent = (parent: Task, flow: Flow, now: DateTime.Utc): Task => {
  const decision = flowDecision(flow)
  switch (decision._tag) {
    case "Wait":
      return Tr.withFlow(parent, { now, flow })
    case "Run":
      return Tr.releaseParent(parent, { now, flow })
    case "Fail": {
      const c = decision.child
      const error = `child task ${c.id} (${c.taskType}) ended ${c.outcome}, and it was added with failParentOnFailure`
      return Tr.failParent(parent, { now, flow, error })
    }
  }
}

/** The flow once its children all exist. */
const withoutOutbox = (flow: Flow): Flow => {
  const { outbox: _created, ...rest } = flow
  return new Flow(rest)
}

/** The update that writes `next` over a waiting parent: its ready marker first when it is due now. */
const writeParent = <A>(next: Task, result: A): TaskUpdate<A> =>
  write(next, result, { before: next.status === "pending" && next.flow?.releasedAt !== undefined ? [readyMarkerKey(next)] : [] })

/** The node's child task as created at `now` under `parent`. */
const childTask = (parent: Task, node: FlowNode, now: DateTime.Utc): Task =>
  Tr.flowTask(Tr.followUpTask(parent, node.task, now), node, { now, child: true })

/** Creates one child (create-only): a waiting parent with its recovery marker, else a pending task with its ready marker. */
const createChild = (parent: Task, node: FlowNode, now: DateTime.Utc) =>
  Effect.gen(function*() {
    const task = childTask(parent, node, now)
    if (task.flow === undefined) {
      yield* createPending(task).pipe(Effect.catchTag("PreconditionFailed", () => Effect.void))
      return Option.none<VersionedTask>()
    }
    const marker = neededMarker(task)
    if (marker !== undefined) yield* writeMarker(marker)
    return yield* createTask(task).pipe(
      Effect.map((etag) => Option.some<VersionedTask>({ task, etag })),
      // created before (by us, or by recovery): its own outbox is followed from what is stored
      Effect.catchTag("PreconditionFailed", () => readTask(keyOfTask(task)))
    )
  })

/** Cancels a child that is still pending because its flow's parent was cancelled; tells the parent (a no-op, stamped). */
const cancelPending = (key: string, parentId: string, now: DateTime.Utc) =>
  Effect.gen(function*() {
    const { current, result } = yield* updateTask(key, (found) =>
      Option.isSome(found) && found.value.task.status === "pending"
        ? write(Tr.cancel(found.value.task, { now, reason: `cancelled: its flow's parent ${parentId} was cancelled` }), true, {
          after: [readyMarkerKey(found.value.task)]
        })
        : keep(false))
    if (result && Option.isSome(current)) yield* notifyParent(current.value)
  })

/**
 * Creates the children of a waiting parent (`held`, as read or written, with its ETag) that do
 * not exist yet, drops its outbox (one CAS, which also makes it due if its children have all
 * ended meanwhile), then does the same for the children that are parents. `onDue` runs when a
 * parent became due (the caller touches the wake-up signal). Returns the parent as stored.
 */
export const createChildren = (held: VersionedTask, onDue: Effect.Effect<void> = Effect.void): Effect.Effect<
  VersionedTask,
  StorageReadError | MalformedObject,
  Storage | ServerClock
> =>
  Effect.gen(function*() {
    const outbox = uncreatedChildren(held.task)
    if (outbox === undefined) return held
    const clock = yield* ServerClock
    const now = yield* clock.now
    const created = yield* Effect.forEach(outbox, (node) => createChild(held.task, node, now), { concurrency: createConcurrency })
    const marker = neededMarker(held.task)
    const settle = (current: Task): Task | undefined =>
      uncreatedChildren(current) === undefined ? undefined : advanceParent(current, withoutOutbox(current.flow!), now)
    // The held ETag first (no GET for the creator); a lost CAS re-reads and decides again.
    const first = settle(held.task)!
    const landed = yield* casTask(first, held.etag).pipe(
      Effect.map((etag) => Option.some<VersionedTask>({ task: first, etag })),
      Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<VersionedTask>()))
    )
    const written = Option.isSome(landed) ? { current: landed, result: true } : yield* updateTask(keyOfTask(held.task), (found) => {
      if (Option.isNone(found)) return keep(false)
      const next = settle(found.value.task)
      return next === undefined ? keep(false) : writeParent(next, true)
    })
    // released by our CAS: one that landed after its ready marker's minute was over moves it to a fresh one
    const stored = written.result && Option.isSome(written.current) ? Option.some(yield* keepFindable(written.current.value)) : written.current
    if (Option.isSome(stored) && stored.value.task.status === "pending" && stored.value.task.flow?.releasedAt !== undefined) yield* onDue
    const landedAt = yield* clock.currentTimeMillis
    if (marker !== undefined && (Option.isNone(stored) || neededMarker(stored.value.task) !== marker)) {
      yield* deleteMarkers(closedMarkers([marker], landedAt)).pipe(
        Effect.catchAll((e) => Effect.logDebug(`could not delete flow marker ${marker} (the monitor will): ${e.message}`))
      )
    }
    if (Option.isSome(stored) && stored.value.task.status === "cancelled") {
      // Cancelled while we created its children: the cancel's cascade missed the ones created after
      // it. Cancel those still pending (their grandchildren are then never created).
      const parentId = stored.value.task.id
      yield* Effect.forEach(outbox, (node) => cancelPending(keyOfTaskId(node.task.id, held.task.shard.length), parentId, now), {
        concurrency: createConcurrency,
        discard: true
      })
      return stored.value
    }
    // children that are parents: their own children, now (or by recovery through their marker)
    for (const child of created) {
      if (Option.isSome(child)) yield* createChildren(child.value, onDue)
    }
    const result = Option.getOrElse(stored, () => held)
    // a child that was ended before it was told about (a failParentOnFailure child failed) tells its parent
    return owedNotice(result.task) === undefined ? result : yield* notifyParent(result, onDue)
  })

/**
 * Tells the parent of an ended child (`held`) that it ended: one CAS recording its outcome, which
 * makes the parent due when it was the last (or fails it, for a `failParentOnFailure` child); then
 * stamps the child's `parent_waits.notified_at` and deletes the marker that kept it findable. A
 * parent failed this way tells its own parent in turn. Returns the child as stored.
 */
export const notifyParent = (held: VersionedTask, onDue: Effect.Effect<void> = Effect.void): Effect.Effect<
  VersionedTask,
  StorageReadError | MalformedObject,
  Storage | ServerClock
> =>
  Effect.gen(function*() {
    const owed = owedNotice(held.task)
    const parentId = held.task.parentId
    if (owed === undefined) return held
    const clock = yield* ServerClock
    const now = yield* clock.now
    const child = held.task
    if (parentId !== undefined) {
      const { current, result } = yield* updateTask(keyOfTaskId(parentId, child.shard.length), (found) => {
        if (Option.isNone(found)) return keep(false)
        const parent = found.value.task
        if (parent.status !== "pending" || parent.flow === undefined || parent.flow.releasedAt !== undefined) return keep(false)
        const flow = recordOutcome(parent.flow, child.id, child.status)
        return flow === undefined ? keep(false) : writeParent(advanceParent(parent, flow, now), true)
      })
      if (result && Option.isSome(current)) {
        // released: a CAS that landed after its ready marker's minute was over moves it to a fresh one
        const parent = yield* keepFindable(current.value)
        if (parent.task.status === "pending" && parent.task.flow?.releasedAt !== undefined) {
          yield* onDue
          yield* Effect.logDebug(`flow ${parent.task.id}: its children have all ended; due now`)
        }
        if (owedNotice(parent.task) !== undefined) yield* notifyParent(parent, onDue)
      }
    }
    // Stamp the child: only the end we reported (a replay may have ended it again since).
    const isSame = (t: Task) => {
      const w = owedNotice(t)
      return w !== undefined && w.recoverAt !== undefined && owed.recoverAt !== undefined &&
        DateTime.Equivalence(w.recoverAt, owed.recoverAt) && t.status === child.status
    }
    const marker = neededMarker(child)
    const stamped = Tr.parentNotified(child, { now })
    const first = yield* casTask(stamped, held.etag).pipe(
      Effect.map((etag) => Option.some<VersionedTask>({ task: stamped, etag })),
      Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<VersionedTask>()))
    )
    const stored = Option.isSome(first) ? first : (yield* updateTask(keyOfTask(child), (found) =>
      Option.isSome(found) && isSame(found.value.task) ? write(Tr.parentNotified(found.value.task, { now }), true) : keep(false))).current
    const landedAt = yield* clock.currentTimeMillis
    if (marker !== undefined && (Option.isNone(stored) || neededMarker(stored.value.task) !== marker)) {
      yield* deleteMarkers(closedMarkers([marker], landedAt)).pipe(
        Effect.catchAll((e) => Effect.logDebug(`could not delete flow marker ${marker} (the monitor will): ${e.message}`))
      )
    }
    return Option.getOrElse(stored, () => held)
  })

/**
 * Whatever flow work `held` still owes, done now: its children created (a waiting parent), its
 * end reported (an ended child). For recovery and for the process that made the transition.
 */
export const runFlowWork = (held: VersionedTask, onDue: Effect.Effect<void> = Effect.void) =>
  Effect.gen(function*() {
    const afterCreate = yield* createChildren(held, onDue)
    return yield* notifyParent(afterCreate, onDue)
  })

/**
 * What the children of `parent` (a flow's parent, as its handler sees it) ended with: status,
 * output (loaded from its payload when offloaded) and last error, in the order they were added.
 * A child that no longer exists (deleted by an operator) has status `"missing"`.
 */
export const readChildren = (parent: Task) =>
  Effect.forEach(parent.flow?.children ?? [], (c) =>
    Effect.gen(function*() {
      const found = yield* readTask(keyOfTaskId(c.id, parent.shard.length))
      if (Option.isNone(found)) {
        return { id: c.id, taskType: c.taskType, status: "missing", output: undefined, error: `child task ${c.id} no longer exists` } satisfies ChildResult
      }
      const child = found.value.task
      const output = child.status === "completed" || child.status === "archived" ? yield* loadOutput(child) : undefined
      return {
        id: c.id,
        taskType: child.taskType,
        status: child.status,
        output: output ?? undefined,
        error: child.lastError ?? undefined
      } satisfies ChildResult
    }), { concurrency: createConcurrency })
