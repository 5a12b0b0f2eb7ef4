/**
 * The worker side of durable workflows: one handler per registered workflow, for its reserved task
 * type `workflow:{name}`, that runs (or replays) the execution's body through the engine's
 * `WorkflowRunner`. Give them to `Worker.make` next to the ordinary handlers:
 *
 * ```ts
 * const handlers = yield* WorkflowWorker.handlers
 * yield* Worker.make({}, [...handlers, ...myHandlers])
 * ```
 *
 * @module
 */
import { Effect } from "effect"
import { WorkflowRunner } from "../services/WorkflowRunner.js"
import { workflowTaskType } from "../domain/WorkflowKeys.js"
import { handler } from "./worker/Handler.js"
import type { HandlerDefinition } from "./worker/Handler.js"

/**
 * Handlers for every workflow registered so far (build the workflow layers first).
 *
 * @since 0.1.0
 * @category workflows
 */
export const handlers: Effect.Effect<ReadonlyArray<HandlerDefinition>, never, WorkflowRunner> = Effect.gen(function*() {
  const runner = yield* WorkflowRunner
  const names = yield* runner.workflows
  // The task's lease is renewed while the body runs (a body may wait on long activities); the
  // execution's lease follows the task's id and length.
  return names.map((name) =>
    handler(
      workflowTaskType(name),
      (input, ctx) => runner.run(name, input, { holder: ctx.taskId, leaseSeconds: ctx.task.timeoutSeconds }),
      { autoExtendLease: true }
    )
  )
})
