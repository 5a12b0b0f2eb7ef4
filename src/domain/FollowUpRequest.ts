/**
 * A follow-up as a handler asks for it (`ctx.enqueue`): checked and resolved into the
 * {@link FollowUp} its completion stores (domain/FollowUps.ts).
 *
 * @since 0.1.0
 * @module
 */
import { DateTime, Effect, Schema } from "effect"
import { describeParseError, toPlainJson } from "./Codec.js"
import { FollowUp, followUpId, maxFollowUps } from "./FollowUps.js"
import { TaskTypeName } from "./Names.js"
import type { QueueConfig } from "./QueueConfig.js"
import { InvalidArgument } from "./QueueError.js"
import { resolveSubmitOptions, type SubmitOptions } from "./SubmitOptions.js"

/**
 * The options of a follow-up: those of a submit, less idempotency (a follow-up is created once by
 * construction) and the type check (it runs in a worker, after the handler).
 *
 * @since 0.1.0
 * @category models
 */
export type FollowUpOptions = Omit<SubmitOptions, "idempotencyKey" | "idempotencyScope" | "idempotencyTtlSeconds" | "typeCheck">

const refusedOptions = ["idempotencyKey", "idempotencyScope", "idempotencyTtlSeconds", "typeCheck"] as const

/**
 * Checks a follow-up enqueued by the handler of `parentId` as its `index`-th, and resolves its
 * options at server time `now` with the queue's defaults (delays and TTLs are kept relative, so
 * they count from when it is created). Fails with {@link InvalidArgument} naming what is wrong.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFollowUp = (p: {
  readonly parentId: string
  readonly index: number
  readonly taskType: string
  readonly input: unknown
  readonly options: FollowUpOptions
  readonly now: DateTime.Utc
  readonly config: QueueConfig
}): Effect.Effect<FollowUp, InvalidArgument> =>
  Effect.gen(function*() {
    if (p.index >= maxFollowUps) {
      return yield* new InvalidArgument({
        argument: "enqueue",
        message: `a handler may enqueue at most ${maxFollowUps} follow-up tasks (they are stored in its task); submit more from a follow-up`
      })
    }
    yield* Schema.decodeUnknown(TaskTypeName)(p.taskType).pipe(
      Effect.mapError((e) => new InvalidArgument({ argument: "taskType", message: `follow-up task type: ${describeParseError(e)}` }))
    )
    const refused = refusedOptions.find((k) => (p.options as Record<string, unknown>)[k] !== undefined)
    if (refused !== undefined) {
      return yield* new InvalidArgument({
        argument: refused,
        message: `${refused} does not apply to a follow-up: it is created exactly once with its parent's completion`
      })
    }
    const input = yield* toPlainJson("input", p.input, "follow-up input")
    const r = yield* resolveSubmitOptions(p.options, p.now, p.config)
    const nowMillis = DateTime.toEpochMillis(p.now)
    const delayMs = DateTime.toEpochMillis(r.availableAt) - nowMillis
    return new FollowUp({
      id: followUpId(p.parentId, p.index),
      taskType: p.taskType,
      input,
      timeoutSeconds: r.timeoutSeconds,
      maxRetries: r.maxRetries,
      retryPolicy: r.retryPolicy,
      ...(r.maxReschedules !== undefined ? { maxReschedules: r.maxReschedules } : {}),
      ...(r.priority !== undefined ? { priority: r.priority } : {}),
      ...(r.tags !== undefined ? { tags: r.tags } : {}),
      ...(delayMs > 0 ? { delayMs } : {}),
      ...(r.expiresAt !== undefined ? { ttlMs: DateTime.toEpochMillis(r.expiresAt) - nowMillis } : {}),
      ...(r.traceparent !== undefined ? { traceparent: r.traceparent } : {})
    })
  })
