/**
 * The worker's typed event stream and lifecycle hooks. Every state change the worker makes to a
 * task (and a lost lease) is published once, in order, to a PubSub: subscribers get a `Stream`,
 * and hooks given in the options run for each event (a failing hook is logged, never fatal).
 *
 * @module
 */
import { Data, Effect, PubSub, Stream } from "effect"
import type { Scope } from "effect"
import type { Task } from "../../domain/Task.js"
import * as Metrics from "../../services/Metrics.js"
import type { FailureReason } from "../../services/Metrics.js"

/** What happened to a task in this worker. */
export type WorkerEvent = Data.TaggedEnum<{
  /** The worker claimed the task (attempt = the new attempt number). */
  Claimed: { readonly task: Task }
  /** The handler succeeded and the task is `completed`. */
  Completed: { readonly task: Task; readonly durationMillis: number }
  /** The attempt failed and the task is `pending` again after a backoff (a retry was consumed). */
  Retried: { readonly task: Task; readonly error: string }
  /** The handler asked for a reschedule: `pending` again, no retry consumed. */
  Rescheduled: { readonly task: Task }
  /**
   * The task is `failed` for good. `reason`: `permanent` (PermanentError, undecodable input or
   * output), `retries_exhausted` (a failure with no retries left, or more reschedules than
   * `max_reschedules`), `timeout` (the last attempt ran out of time); `no_handler` is the metrics'
   * label for tools that fail unhandled tasks (this worker skips them instead).
   */
  Failed: { readonly task: Task; readonly error: string; readonly reason: FailureReason }
  /** The task's cancellation was requested; the handler was interrupted and the task is `cancelled`. */
  Cancelled: { readonly task: Task }
  /** Shutdown gave the task back (`pending`, no retry consumed). */
  Released: { readonly task: Task }
  /** Another worker (or the monitor) owns the task now: nothing was written. */
  LeaseLost: { readonly taskId: string; readonly reason: string }
  /** The handler reported progress (every report; the task itself is written at most once per interval). */
  Progress: { readonly taskId: string; readonly progress: unknown }
}>

/** Constructors and matchers of {@link WorkerEvent}. */
export const WorkerEvent = Data.taggedEnum<WorkerEvent>()

/** The kinds of event (`"Claimed"`, `"Completed"`, …). */
export type WorkerEventTag = WorkerEvent["_tag"]

/** Hooks run for each event of their kind (in the worker's fiber; keep them short). */
export type WorkerHooks = {
  readonly [K in WorkerEventTag]?: (event: Extract<WorkerEvent, { readonly _tag: K }>) => Effect.Effect<void>
}

/** The event bus of one worker. */
export interface WorkerEvents {
  /** Publishes an event and runs its hook. */
  readonly publish: (event: WorkerEvent) => Effect.Effect<void>
  /** Events from now on (subscribe before starting work to see everything). */
  readonly stream: Stream.Stream<WorkerEvent>
  /** A scoped subscription, for tests and tools that must not miss the next events. */
  readonly subscribe: Effect.Effect<Stream.Stream<WorkerEvent>, never, Scope.Scope>
}

/**
 * Builds the event bus (an unbounded PubSub: publishing never blocks the worker). Publishing also
 * records the event's metrics (`Metrics.recordWorkerEvent`: claims won, completions with their
 * duration, retries, failures by reason, …).
 */
export const make = (hooks: WorkerHooks = {}): Effect.Effect<WorkerEvents> =>
  Effect.gen(function*() {
    const pubsub = yield* PubSub.unbounded<WorkerEvent>()
    const runHook = (event: WorkerEvent): Effect.Effect<void> => {
      const hook = hooks[event._tag] as ((e: WorkerEvent) => Effect.Effect<void>) | undefined
      return hook === undefined
        ? Effect.void
        : Effect.catchAllCause(hook(event), (cause) => Effect.logWarning(`worker hook ${event._tag} failed`, cause))
    }
    return {
      publish: (event) => Effect.zipRight(Effect.zipRight(Metrics.recordWorkerEvent(event), PubSub.publish(pubsub, event)), runHook(event)),
      stream: Stream.fromPubSub(pubsub),
      subscribe: Effect.map(PubSub.subscribe(pubsub), (queue) => Stream.fromQueue(queue))
    }
  })
