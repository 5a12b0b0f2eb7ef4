/**
 * Submit de-duplication records: `idempotency/{scope}/{sha256}.json`.
 *
 * The protocol (in layers/Queue.ts) relies on one rule: **the record fixes the task id**. The
 * record is created with `If-None-Match: *` before the task; whoever later finds a live record
 * whose task does not exist yet creates *that* task id with a create-only PUT, so at most one task
 * can ever exist per record, and a submit that crashed between the two writes never blocks the key
 * (the next submitter finishes its work). An expired record is taken over by CAS on its ETag.
 * (Consequence: while a record is live, a task deleted by hand is re-created under the same id by
 * the next submit with that key; that is the key's promise, "this request exists once".)
 *
 * Differences from the reference (trap 9): the input hash covers the task type as well as the
 * input, and the key hash covers the scope's kind, so a task type literally named `queue` or equal
 * to a custom scope name never shares records with that scope.
 *
 * @module
 */
import { createHash } from "node:crypto"
import { DateTime, Schema } from "effect"
import { idempotencyKey as idempotencyObjectKey } from "./Keys.js"
import type { IdempotencyScopeOption } from "./SubmitOptions.js"
import { Timestamp } from "./Task.js"
import { field } from "./SnakeCase.js"

/** An idempotency record, in the reference's JSON shape (snake_case) plus our `scope`. */
export class IdempotencyRecord extends Schema.Class<IdempotencyRecord>("IdempotencyRecord")({
  key: Schema.String,
  keyHash: field(Schema.String, "key_hash"),
  taskId: field(Schema.String, "task_id"),
  taskKey: field(Schema.String, "task_key"),
  createdAt: field(Timestamp, "created_at"),
  expiresAt: field(Timestamp, "expires_at"),
  taskType: field(Schema.String, "task_type"),
  inputHash: field(Schema.String, "input_hash"),
  scope: Schema.optionalWith(Schema.String, { exact: true })
}) {}

/** JSON with object keys sorted recursively, so equal values hash equally whatever their key order. */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && typeof v !== "function")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`
}

const sha256Hex = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")

/** The directory name of a scope: the task type (default), `queue`, or the custom name. */
export const scopeDirectory = (scope: IdempotencyScopeOption, taskType: string): string =>
  scope === "task_type" ? taskType : scope

/** The hex SHA-256 naming a key's record; it covers the scope's kind so scopes never collide. */
export const keyHashHex = (scope: IdempotencyScopeOption, taskType: string, key: string): string => {
  const qualified = scope === "task_type" ? `type:${taskType}` : scope === "queue" ? "queue" : `custom:${scope}`
  return sha256Hex(`${qualified}:${key}`)
}

/** The object key of an idempotency record. */
export const recordKey = (scope: IdempotencyScopeOption, taskType: string, key: string): string =>
  idempotencyObjectKey(scopeDirectory(scope, taskType), keyHashHex(scope, taskType, key))

/** `sha256:` + hex of the canonical JSON of the task type and the (encoded) input. */
export const inputHash = (taskType: string, input: unknown): string =>
  `sha256:${sha256Hex(canonicalJson({ task_type: taskType, input }))}`

/** Builds the record that fixes `taskId` for this key until `now + ttlSeconds`. */
export const makeRecord = (p: {
  readonly key: string
  readonly scope: IdempotencyScopeOption
  readonly taskType: string
  readonly input: unknown
  readonly taskId: string
  readonly taskKey: string
  readonly now: DateTime.Utc
  readonly ttlSeconds: number
}): IdempotencyRecord =>
  new IdempotencyRecord({
    key: p.key,
    keyHash: `sha256:${keyHashHex(p.scope, p.taskType, p.key)}`,
    taskId: p.taskId,
    taskKey: p.taskKey,
    createdAt: p.now,
    expiresAt: DateTime.add(p.now, { seconds: p.ttlSeconds }),
    taskType: p.taskType,
    inputHash: inputHash(p.taskType, p.input),
    scope: scopeDirectory(p.scope, p.taskType)
  })

/** Whether a record no longer de-duplicates at `now` (its key is free again). */
export const isRecordExpired = (record: IdempotencyRecord, now: DateTime.Utc): boolean =>
  DateTime.greaterThanOrEqualTo(now, record.expiresAt)
