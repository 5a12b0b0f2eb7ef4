/**
 * Flows (BullMQ's FlowProducer; issue 18 "a parent task can wait for its children's results"): a
 * parent task that runs once its children have all ended, and whose handler reads their results.
 *
 * Design (pure rules here; the writes in protocol/Flows.ts):
 * - **Waiting parent.** A parent is an ordinary `pending` task (no new status: the reference rejects
 *   unknown ones) whose `available_at` is {@link waitingAvailableAt} (year 9999), so no worker — ours
 *   or the reference's — claims it, and it has no ready marker. Its `flow` field (ours) lists its
 *   children (id, type, failure policy, and the outcome each one reported) and, until the children
 *   exist, their specifications (`outbox`). The last child to report makes it due: `available_at =
 *   now`, a ready marker written before that CAS, `released_at` stamped.
 * - **Creation** is top-down and exactly once, like follow-ups (domain/FollowUps.ts): the parent is
 *   created first with the outbox and a recovery marker (`leases/…/{bucket(recover_at)}/{id}`);
 *   each child is a create-only PUT of an id fixed by the parent's id and its position; then one
 *   CAS drops the outbox. A creator that dies in between leaves the marker, so lease recovery (or
 *   the sweeper) creates the rest once `recover_at` has passed. Children may have children: a
 *   child with children is itself created waiting, with its own outbox and marker.
 * - **Reporting.** A child carries `parent_waits` (ours). The transition that ends it (any of them:
 *   complete, fail, cancel, expire, lease recovery) stamps `parent_waits.recover_at` in the same
 *   CAS ({@link noticeRecoverAt}); until `parent_waits.notified_at` is stamped it needs a marker
 *   at that instant's lease bucket (for a worker's settle, its own lease marker, which is simply
 *   kept). Whoever ended it reports to the parent right after (one CAS on the parent recording
 *   the outcome: idempotent, so doing it twice changes nothing), then stamps `notified_at`. A
 *   process killed in between leaves the marker: lease recovery or the sweeper reports it once
 *   `recover_at` has passed. A parent is thus never stuck and never made due twice (it is made due
 *   by a CAS from a waiting state; a claim needs it due).
 * - **A failed child** (failed, cancelled or expired): by default the parent still runs once every
 *   child has ended, and sees each child's status and error. A child added with
 *   `failParentOnFailure` fails its parent at once instead (the parent never runs; its own parent
 *   is told in turn); its other children are left to finish.
 * - **Cancel** of a waiting parent cancels its children (Queue.cancel); retention keeps a child
 *   while its parent has not ended (the parent's handler reads it).
 *
 * The reference reads a waiting parent as a pending task scheduled for 9999 and ignores the fields.
 *
 * @since 0.1.0
 * @module
 */
import { DateTime, Schema } from "effect"
import { FollowUp } from "./FollowUps.js"
import { optionalField } from "./SnakeCase.js"
import { isTerminal, TaskStatus } from "./TaskStatus.js"

/**
 * The `available_at` of a parent waiting for its children: the last minute of year 9999, so it is
 * never claimable and its (absent) ready marker would sort after every real one.
 *
 * @since 0.1.0
 * @category constants
 */
export const waitingAvailableAt: DateTime.Utc = DateTime.unsafeMake("9999-12-31T23:59:00.000Z")

/**
 * How long the creator of a flow has to create the children before recovery may do it.
 *
 * @since 0.1.0
 * @category constants
 */
export const creationWindowMillis = 60_000

/**
 * How long after a child ended without a worker's lease (a cancel, an expiry) recovery waits
 * before reporting it itself (the process that ended it reports at once).
 *
 * @since 0.1.0
 * @category constants
 */
export const noticeGraceMillis = 30_000

/**
 * Most children one parent may have (they are listed in its body); nest flows for more.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxFlowChildren = 100

/**
 * Most tasks one flow may create in all (its specifications travel in the root's body until created).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxFlowTasks = 1000

/**
 * One child of a parent, as the parent lists it: what it is, whether its failure fails the
 * parent, and the status it reported when it ended (absent while it has not).
 *
 * @since 0.1.0
 * @category models
 */
export class FlowChild extends Schema.Class<FlowChild>("FlowChild")({
  id: Schema.String,
  taskType: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("task_type")),
  failParent: optionalField(Schema.Boolean, "fail_parent"),
  outcome: optionalField(TaskStatus, "outcome")
}) {}

/**
 * A child to create, as stored in its parent's outbox: the task (a follow-up's resolved
 * specification) and, when it is a parent too, its own children.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlowNode {
  readonly task: FollowUp
  readonly failParent?: boolean
  readonly children?: ReadonlyArray<FlowNode>
}

/** The stored JSON of a {@link FlowNode}. */
export interface FlowNodeEncoded {
  readonly task: Schema.Schema.Encoded<typeof FollowUp>
  readonly fail_parent?: boolean
  readonly children?: ReadonlyArray<FlowNodeEncoded>
}

/**
 * Schema of {@link FlowNode} (recursive).
 *
 * @since 0.1.0
 * @category models
 */
export const FlowNode: Schema.Schema<FlowNode, FlowNodeEncoded> = Schema.Struct({
  task: FollowUp,
  failParent: optionalField(Schema.Boolean, "fail_parent"),
  children: optionalField(Schema.Array(Schema.suspend((): Schema.Schema<FlowNode, FlowNodeEncoded> => FlowNode)), "children")
})

/**
 * A parent's `flow` field: its children, the specifications of those not yet created (`outbox`),
 * when recovery may create them (`recover_at`), and when it was released (made due, or failed by a
 * child).
 *
 * @since 0.1.0
 * @category models
 */
export class Flow extends Schema.Class<Flow>("Flow")({
  children: Schema.Array(FlowChild),
  outbox: optionalField(Schema.Array(FlowNode), "outbox"),
  recoverAt: Schema.propertySignature(Schema.DateTimeUtc).pipe(Schema.fromKey("recover_at")),
  releasedAt: optionalField(Schema.DateTimeUtc, "released_at")
}) {}

/**
 * A child's `parent_waits` field: present from its creation; `recover_at` is stamped by the
 * transition that ends it, `notified_at` once its parent knows.
 *
 * @since 0.1.0
 * @category models
 */
export class ParentWaits extends Schema.Class<ParentWaits>("ParentWaits")({
  recoverAt: optionalField(Schema.DateTimeUtc, "recover_at"),
  notifiedAt: optionalField(Schema.DateTimeUtc, "notified_at")
}) {}

/** The parts of a task these rules look at. */
interface FlowFields {
  readonly status: TaskStatus
  readonly leaseExpiresAt: DateTime.Utc | null
  readonly flow?: Flow | undefined
  readonly parentWaits?: ParentWaits | undefined
}

/**
 * Whether the task is a parent still waiting for its children (pending, not yet released).
 *
 * @since 0.1.0
 * @category guards
 */
export const isWaitingParent = (task: FlowFields): boolean =>
  task.status === "pending" && task.flow !== undefined && task.flow.releasedAt === undefined

/**
 * The outbox of a waiting parent whose children are not all created yet, if any.
 *
 * @since 0.1.0
 * @category guards
 */
export const uncreatedChildren = (task: FlowFields): ReadonlyArray<FlowNode> | undefined =>
  isWaitingParent(task) && task.flow!.outbox !== undefined ? task.flow!.outbox : undefined

/**
 * The `parent_waits` of an ended child whose parent has not been told yet, if any.
 *
 * @since 0.1.0
 * @category guards
 */
export const owedNotice = (task: FlowFields): ParentWaits | undefined =>
  task.parentWaits !== undefined && isTerminal(task.status) && task.parentWaits.recoverAt !== undefined &&
    task.parentWaits.notifiedAt === undefined
    ? task.parentWaits
    : undefined

/**
 * The `parent_waits` a transition from `before` to status `to` at `now` leaves: stamped with
 * `recover_at` when it ends the child (the end of the ending attempt's lease when a worker held
 * one, so that lease's marker is the one kept; else `now` plus {@link noticeGraceMillis}), reset
 * when a replay makes it pending again (its next end is reported again), else unchanged.
 *
 * @since 0.1.0
 * @category rules
 */
export const noticeAfter = (before: FlowFields, to: TaskStatus, now: DateTime.Utc): ParentWaits | undefined => {
  const waits = before.parentWaits
  if (waits === undefined) return undefined
  if (isTerminal(to) && !isTerminal(before.status)) {
    return new ParentWaits({ recoverAt: noticeRecoverAt(before, now) })
  }
  if (!isTerminal(to) && isTerminal(before.status)) return new ParentWaits({})
  return waits
}

/**
 * When recovery may report the end of a child that ends now (see {@link noticeAfter}).
 *
 * @since 0.1.0
 * @category rules
 */
export const noticeRecoverAt = (before: FlowFields, now: DateTime.Utc): DateTime.Utc =>
  before.status === "running" && before.leaseExpiresAt !== null
    ? before.leaseExpiresAt
    : DateTime.add(now, { millis: noticeGraceMillis })

/**
 * When recovery may finish the flow work this task still owes (create its children, report its
 * end to its parent), if it owes any.
 *
 * @since 0.1.0
 * @category rules
 */
export const flowRecoverAt = (task: FlowFields): DateTime.Utc | undefined => {
  if (uncreatedChildren(task) !== undefined) return task.flow!.recoverAt
  return owedNotice(task)?.recoverAt
}

/** A child's outcome that counts as a failure (what `failParentOnFailure` reacts to). */
export const isFailedOutcome = (status: TaskStatus): boolean =>
  status === "failed" || status === "cancelled" || status === "expired"

/**
 * What a parent should do next, given what its children reported: keep waiting, run (every child
 * has ended and all exist), or fail because of a child added with `failParentOnFailure` (named).
 *
 * @since 0.1.0
 * @category rules
 */
export const flowDecision = (flow: Flow): { readonly _tag: "Wait" } | { readonly _tag: "Run" } | { readonly _tag: "Fail"; readonly child: FlowChild } => {
  const failing = flow.children.find((c) => c.failParent === true && c.outcome !== undefined && isFailedOutcome(c.outcome))
  if (failing !== undefined) return { _tag: "Fail", child: failing }
  if (flow.outbox !== undefined) return { _tag: "Wait" }
  return flow.children.every((c) => c.outcome !== undefined) ? { _tag: "Run" } : { _tag: "Wait" }
}

/**
 * The flow with `childId`'s outcome recorded, or undefined when that changes nothing (unknown
 * child, or the same outcome already recorded).
 *
 * @since 0.1.0
 * @category rules
 */
export const recordOutcome = (flow: Flow, childId: string, outcome: TaskStatus): Flow | undefined => {
  const index = flow.children.findIndex((c) => c.id === childId)
  if (index < 0 || flow.children[index]!.outcome === outcome) return undefined
  const children = flow.children.map((c, i) => i === index ? new FlowChild({ ...c, outcome }) : c)
  return new Flow({ ...flow, children })
}
