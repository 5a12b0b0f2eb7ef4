/**
 * The sweeper's persisted knowledge of finished tasks, one object per shard:
 * `control/sweep/terminal/{shard}.json`. An entry says "the task object with this ETag is terminal,
 * with this status and these timestamps"; since a task's ETag changes with every write (it is the
 * MD5 of the body), an entry whose ETag equals the one a LIST returns describes that exact object,
 * so the sweep needs no GET for it. It lets a new leader (whose memory cache is empty) and a
 * bucket with more finished tasks than the memory cache holds sweep with one GET per shard instead
 * of one per task. Written only when a shard's set of finished tasks changed.
 *
 * @module
 */
import { createHash } from "node:crypto"
import { Schema } from "effect"
import { controlKey } from "./Keys.js"
import { TaskStatus } from "./TaskStatus.js"

/**
 * One finished task (compact field names: a shard may hold many).
 *
 * @since 0.1.0
 * @category models
 */
export class TerminalEntry extends Schema.Class<TerminalEntry>("TerminalEntry")({
  /** Task id. */
  i: Schema.String,
  /** ETag of the task object when it was read. */
  e: Schema.String,
  /** Its (terminal) status. */
  s: TaskStatus,
  /** `updated_at`, epoch ms (retention's age). */
  u: Schema.Number,
  /** Idempotency hold, epoch ms (retention keeps the task until then). */
  h: Schema.optionalWith(Schema.Number, { exact: true }),
  /** Payload keys it references. */
  r: Schema.optionalWith(Schema.Array(Schema.String), { exact: true })
}) {}

/**
 * The checkpoint of one shard.
 *
 * @since 0.1.0
 * @category models
 */
export class TerminalCheckpoint extends Schema.Class<TerminalCheckpoint>("TerminalCheckpoint")({
  shard: Schema.String,
  entries: Schema.Array(TerminalEntry)
}) {}

/**
 * `control/sweep/terminal/{shard}.json`.
 *
 * @since 0.1.0
 * @category keys
 */
export const terminalCheckpointKey = (shard: string): string => controlKey(`sweep/terminal/${shard}.json`)

/**
 * A short fingerprint of a set of entries (ids and ETags, order-free): equal sets, equal prints, so
 * an unchanged shard's checkpoint is not written again.
 *
 * @since 0.1.0
 * @category checkpoints
 */
export const fingerprint = (entries: Iterable<{ readonly i: string; readonly e: string }>): string => {
  const lines = [...entries].map((x) => `${x.i} ${x.e}`).sort()
  return createHash("sha256").update(lines.join("\n"), "utf8").digest("hex").slice(0, 32)
}
