/**
 * The Queue's settings: sharding, payload offload threshold, submit defaults and idempotency TTL.
 *
 * @module
 */
import { Schema } from "effect"

/**
 * Default size above which a JSON input or output is offloaded to `payloads/`: 256 KiB.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPayloadThresholdBytes = 256 * 1024

/**
 * Default lifetime of an idempotency record: 30 days, like the reference.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultIdempotencyTtlSeconds = 30 * 24 * 3600

/**
 * Submit's check that some worker has ever handled the task type (`control/types/{type}.json`):
 * `warn` (log a warning), `strict` (refuse with `UnhandledTaskType`) or `off`.
 *
 * @since 0.1.0
 * @category models
 */
export const TypeCheck = Schema.Literal("warn", "strict", "off")

/**
 * @since 0.1.0
 * @category models
 */
export type TypeCheck = typeof TypeCheck.Type

/**
 * The Queue's settings; every field has the reference's default.
 *
 * @since 0.1.0
 * @category models
 */
export class QueueConfig extends Schema.Class<QueueConfig>("QueueConfig")({
  /** Hex characters of the task id that name its shard (1–4). */
  shardPrefixLen: Schema.optionalWith(
    Schema.Int.pipe(Schema.between(1, 4, { message: () => "shardPrefixLen must be an integer from 1 to 4" })),
    { default: () => 1 }
  ),
  /** Inputs/outputs whose compact JSON is larger than this many bytes go to `payloads/`. */
  payloadThresholdBytes: Schema.optionalWith(Schema.NonNegativeInt, { default: () => defaultPayloadThresholdBytes }),
  /** `timeout_seconds` of a task when the submit does not say. */
  defaultTimeoutSeconds: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 300 }),
  /** `max_retries` of a task when the submit does not say. */
  defaultMaxRetries: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 3 }),
  /** Lifetime of an idempotency record when the submit does not say. */
  idempotencyTtlSeconds: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), {
    default: () => defaultIdempotencyTtlSeconds
  }),
  /** How many submits (or cancels) `submitMany` / `cancelMany` run at once. */
  bulkConcurrency: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 256)), { default: () => 16 }),
  /** How many task GETs `list` runs at once. */
  listConcurrency: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 256)), { default: () => 16 }),
  /** How long a fetched JSON Schema is reused by submit before it is read again (0: read every time). */
  schemaCacheSeconds: Schema.optionalWith(Schema.NonNegative, { default: () => 5 }),
  /** Submit's check that a worker has ever handled the type (`[queue] type_check`); see {@link TypeCheck}. */
  typeCheck: Schema.optionalWith(TypeCheck, { default: () => "warn" as const })
}) {
  /** All defaults. */
  static readonly default = new QueueConfig({})
}
