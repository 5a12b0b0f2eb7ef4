/**
 * A flow as a producer describes it (`Queue.flow`): a task and the children it waits for, each of
 * which may have children (domain/Flows.ts has the rules).
 *
 * @since 0.1.0
 * @module
 */
import type { FollowUpOptions } from "./FollowUpRequest.js"
import type { TaskType } from "./TaskType.js"

/**
 * One node of a flow: its task type (a typed contract encodes the input with its Schema), input,
 * submit options (a follow-up's: no idempotency), whether its failure fails its parent, and its
 * children.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlowSpec {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly type: string | TaskType<any, any, any, any>
  readonly input: unknown
  readonly options?: FollowUpOptions | undefined
  /**
   * When this child ends failed, cancelled or expired, its parent fails at once instead of running
   * (BullMQ's `failParentOnFailure`). Default: the parent runs once all children have ended and
   * sees this one's failure in its children's results.
   */
  readonly failParentOnFailure?: boolean | undefined
  readonly children?: ReadonlyArray<FlowSpec> | undefined
}

/**
 * What a node may say besides its type and input.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlowNodeOptions {
  readonly options?: FollowUpOptions | undefined
  readonly failParentOnFailure?: boolean | undefined
  readonly children?: ReadonlyArray<FlowSpec> | undefined
}

/**
 * Builds a flow node, type-checking the input against a typed contract:
 * `flowNode(Report, { month }, { children: [flowNode(Fetch, { shard: 1 })] })`.
 *
 * @since 0.1.0
 * @category constructors
 */
export function flowNode<I, O, II, OI>(type: TaskType<I, O, II, OI>, input: I, more?: FlowNodeOptions): FlowSpec
export function flowNode(type: string, input: unknown, more?: FlowNodeOptions): FlowSpec
export function flowNode(type: string | TaskType<unknown, unknown, unknown, unknown>, input: unknown, more: FlowNodeOptions = {}): FlowSpec {
  return { type, input, ...more }
}

/**
 * The ids of a created flow, node by node (the tree of the request).
 *
 * @since 0.1.0
 * @category models
 */
export interface FlowIds {
  readonly id: string
  readonly taskType: string
  readonly children: ReadonlyArray<FlowIds>
}

/**
 * What a child reported to its parent's handler (`ctx.childrenResults`): its status, and its
 * output when it completed (decoded by its contract's Schema with `ctx.childResults(Type)`), or
 * its last error.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildResult<O = unknown> {
  readonly id: string
  readonly taskType: string
  readonly status: string
  readonly output: O | undefined
  readonly error: string | undefined
}
