/**
 * Where a durable `@effect/workflow` execution keeps its state in the bucket (design.md §10), and
 * the reserved task type its runs are tasks of. Every name that comes from user code (workflow,
 * execution id, activity, deferred) is percent-encoded into one key segment, so a name with a
 * slash (`DurableClock/nap`) can never reach another execution's objects.
 *
 * ```
 * workflows/{workflow}/{executionId}/execution.json                     payload (write-once)
 * workflows/{workflow}/{executionId}/result.json                        final Exit (write-once)
 * workflows/{workflow}/{executionId}/interrupt.json                     interrupt requested
 * workflows/{workflow}/{executionId}/lease.json                         the run that holds it (CAS)
 * workflows/{workflow}/{executionId}/activities/{activity}/{attempt}.json  activity Exit (write-once)
 * workflows/{workflow}/{executionId}/deferred/{deferred}.json          DurableDeferred Exit (write-once)
 * ```
 *
 * @module
 */

/** The prefix of every task type that runs a workflow body. */
export const workflowTaskTypePrefix = "workflow:"

/**
 * The reserved task type whose handler runs workflow `name`.
 *
 * @since 0.1.0
 * @category workflows
 */
export const workflowTaskType = (name: string): string => `${workflowTaskTypePrefix}${name}`

const segment = (name: string): string => encodeURIComponent(name)

/** The prefix of one execution's objects. */
export const executionPrefix = (workflow: string, executionId: string): string =>
  `workflows/${segment(workflow)}/${segment(executionId)}/`

/** The execution record: its encoded payload, written once by the first `execute`. */
export const executionKey = (workflow: string, executionId: string): string =>
  `${executionPrefix(workflow, executionId)}execution.json`

/** The execution's final result, written once by the run that completes it. */
export const resultKey = (workflow: string, executionId: string): string =>
  `${executionPrefix(workflow, executionId)}result.json`

/** Present once someone asked to interrupt the execution. */
export const interruptKey = (workflow: string, executionId: string): string =>
  `${executionPrefix(workflow, executionId)}interrupt.json`

/** Which run holds the execution now (`protocol/WorkflowLease.ts`): one body at a time. */
export const leaseKey = (workflow: string, executionId: string): string =>
  `${executionPrefix(workflow, executionId)}lease.json`

/** One activity attempt's result. */
export const activityKey = (workflow: string, executionId: string, activity: string, attempt: number): string =>
  `${executionPrefix(workflow, executionId)}activities/${segment(activity)}/${attempt}.json`

/** One DurableDeferred's result. */
export const deferredKey = (workflow: string, executionId: string, deferred: string): string =>
  `${executionPrefix(workflow, executionId)}deferred/${segment(deferred)}.json`
