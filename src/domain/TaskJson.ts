/**
 * The task object's JSON, encoded and decoded without going through the Schema interpreter each
 * time: a direct walk over the fields of {@link Task} that gives exactly what `Schema.encodeSync(Task)`
 * and `Schema.decodeUnknown(Task)` give (same keys, same order, same values: byte-identical bodies),
 * for the tasks it can vouch for, and hands everything else to the Schema.
 *
 * Why: a worker encodes a task twice and decodes it once or twice per run, and the interpreter
 * allocated ~100 KB for each (a few hundred µs of CPU and most of a no-op task's garbage; see
 * BENCHMARKS.md, sixth targeted re-run); the direct walk allocates the JSON object and little else.
 *
 * It never decides anything the Schema would decide otherwise:
 * - decoding: any value it does not fully check (a missing required key, a wrong type, a timestamp
 *   `DateTime` refuses, the rarer nested records `follow_ups`, `flow` and `parent_waits`) makes it
 *   answer `undefined`, and the caller decodes with the Schema, which gives the value or the typed
 *   error naming the field, as before;
 * - encoding: a value it does not fully check (not a `Task`/`TaskEvent`/`RetryPolicy` instance, a
 *   field out of its refinement, an optional field set to `undefined`, the nested records above)
 *   is encoded by the Schema, which throws as before (our models cannot fail to encode: a defect).
 *
 * test/domain/TaskJson.test.ts checks it against the Schema on the golden documents, on random
 * valid tasks and on broken ones.
 *
 * @since 0.1.0
 * @module
 */
import { DateTime, Effect, Schema } from "effect"
import { utf8 } from "./Codec.js"
import { TaskId } from "./Names.js"
import type { MalformedObject } from "./QueueError.js"
import { RetryPolicy } from "./RetryPolicy.js"
import { decodeTask, Task, taskAtKey, TaskEvent } from "./Task.js"
import { allStatuses } from "./TaskStatus.js"
import { uncheckedMaker } from "./Unchecked.js"

/** How a field's value is checked and converted. */
type Kind =
  | "string"
  | "count" // NonNegativeInt
  | "int"
  | "unknown"
  | "time" // DateTimeUtc
  | "nullTime"
  | "nullString"
  | "status"
  | "nullStatus"
  | "boolean"
  | "policy"
  | "tags"
  | "events"
  | "taskId"
  | "schemaOnly" // left to the Schema, both ways

/** required: the key must be there; optional: absent (or `null` in JSON) = absent; default: absent = the default. */
type Presence = "required" | "optional" | { readonly default: unknown }

interface Field {
  readonly name: string
  readonly key: string
  readonly kind: Kind
  readonly presence: Presence
}

const f = (name: string, key: string, kind: Kind, presence: Presence = "required"): Field => ({ name, key, kind, presence })

/**
 * The fields of {@link Task} in their definition order (the order the Schema writes and builds
 * them in). test/domain/TaskJson.test.ts fails when Task gains a field this list does not have.
 */
export const taskFields: ReadonlyArray<Field> = [
  f("id", "id", "string"),
  f("shard", "shard", "string"),
  f("taskType", "task_type", "string"),
  f("input", "input", "unknown"),
  f("output", "output", "unknown", { default: null }),
  f("inputRef", "input_ref", "string", "optional"),
  f("outputRef", "output_ref", "string", "optional"),
  f("timeoutSeconds", "timeout_seconds", "count"),
  f("maxRetries", "max_retries", "count"),
  f("retryCount", "retry_count", "count"),
  f("retryPolicy", "retry_policy", "policy"),
  f("status", "status", "status"),
  f("createdAt", "created_at", "time"),
  f("updatedAt", "updated_at", "time"),
  f("availableAt", "available_at", "time"),
  f("leaseExpiresAt", "lease_expires_at", "nullTime"),
  f("leaseId", "lease_id", "nullString"),
  f("attempt", "attempt", "count"),
  f("completedAt", "completed_at", "nullTime"),
  f("workerId", "worker_id", "nullString"),
  f("lastError", "last_error", "nullString"),
  f("rescheduleCount", "reschedule_count", "count", { default: 0 }),
  f("maxReschedules", "max_reschedules", "count", "optional"),
  f("cancelRequested", "cancel_requested", "boolean", { default: false }),
  f("cancelledAt", "cancelled_at", "time", "optional"),
  f("cancelledBy", "cancelled_by", "string", "optional"),
  f("expiresAt", "expires_at", "time", "optional"),
  f("expiredAt", "expired_at", "time", "optional"),
  f("priority", "priority", "int", "optional"),
  f("progress", "progress", "unknown", "optional"),
  f("tags", "tags", "tags", "optional"),
  f("events", "events", "events", "optional"),
  f("traceparent", "traceparent", "string", "optional"),
  f("idempotencyExpiresAt", "idempotency_expires_at", "time", "optional"),
  f("parentId", "parent_id", "taskId", "optional"),
  f("followUps", "follow_ups", "schemaOnly", "optional"),
  f("flow", "flow", "schemaOnly", "optional"),
  f("parentWaits", "parent_waits", "schemaOnly", "optional")
]

/** The fields of {@link TaskEvent}, in definition order. */
export const eventFields: ReadonlyArray<Field> = [
  f("at", "at", "time"),
  f("from", "from", "nullStatus"),
  f("to", "to", "status"),
  f("attempt", "attempt", "count"),
  f("workerId", "worker_id", "string", "optional"),
  f("error", "error", "string", "optional"),
  f("stack", "stack", "string", "optional")
]

const hasOwn = Object.prototype.hasOwnProperty
const statuses: ReadonlySet<unknown> = new Set(allStatuses)
const isTaskId = Schema.is(TaskId)
/** Marks "cannot vouch for it: ask the Schema". */
const bail: unique symbol = Symbol("bail")
type Bail = typeof bail

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const isCount = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 0
const isUtc = (u: unknown): u is DateTime.Utc => DateTime.isDateTime(u) && DateTime.isUtc(u)

/** The ISO text of the minute last formatted, up to its seconds (`2026-12-08T00:41:`), and its start. */
let isoMinuteStart = Number.NaN
let isoMinutePrefix = ""
const pad2 = (n: number): string => (n < 10 ? "0" : "") + n
const pad3 = (n: number): string => (n < 10 ? "00" : n < 100 ? "0" : "") + n

/**
 * `DateTime.formatIso(t)` (`Date#toISOString`), without a `Date` per timestamp: a task's writes
 * format the same few minutes again and again (~1.3 µs a `toISOString`, six or seven per write),
 * so the minute's text is kept and the seconds and milliseconds appended. Anything but a whole
 * number of milliseconds goes to `formatIso` itself.
 */
const formatIso = (t: DateTime.Utc): string => {
  const ms = t.epochMillis
  if (!Number.isSafeInteger(ms)) return DateTime.formatIso(t)
  const minuteStart = ms - (((ms % 60_000) + 60_000) % 60_000)
  if (minuteStart !== isoMinuteStart) {
    const iso = DateTime.formatIso(t) // throws on a date out of range, as before
    isoMinutePrefix = iso.slice(0, iso.length - 7) // without "ss.sssZ"
    isoMinuteStart = minuteStart
  }
  const inMinute = ms - minuteStart
  return `${isoMinutePrefix}${pad2(Math.floor(inMinute / 1000))}.${pad3(inMinute % 1000)}Z`
}

const decodeTime = (u: unknown): DateTime.Utc | Bail => {
  if (typeof u !== "string") return bail
  try {
    return DateTime.unsafeMake(u) as DateTime.Utc
  } catch {
    return bail
  }
}

// --- decoding -------------------------------------------------------------------------------

// the decoded fields are checked here, as the Schema checks them: built without the constructor's walk
const makePolicy = uncheckedMaker(RetryPolicy)
const makeEvent = uncheckedMaker(TaskEvent)
const makeTask = uncheckedMaker(Task)

const decodePolicy = (u: unknown): RetryPolicy | Bail => {
  if (!isRecord(u)) return bail
  const initial = u["initial_interval_ms"]
  const max = u["max_interval_ms"]
  const multiplier = u["multiplier"]
  const jitter = u["jitter_percent"]
  if (!isCount(initial) || !isCount(max)) return bail
  if (typeof multiplier !== "number" || !Number.isFinite(multiplier) || !(multiplier >= 1)) return bail
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) return bail
  return makePolicy({ initialIntervalMs: initial, maxIntervalMs: max, multiplier, jitterPercent: jitter })
}

const decodeEvent = (u: unknown): TaskEvent | Bail => {
  if (!isRecord(u)) return bail
  const props: Record<string, unknown> = {}
  for (const field of eventFields) {
    const value = decodeValue(field, u)
    if (value === bail) return bail
    if (value !== absent) props[field.name] = value
  }
  return makeEvent(props as ConstructorParameters<typeof TaskEvent>[0])
}

/** Marks an optional field that is not there. */
const absent: unique symbol = Symbol("absent")

const decodeValue = (field: Field, json: Record<string, unknown>): unknown => {
  if (!hasOwn.call(json, field.key)) {
    if (field.presence === "required") return bail
    return field.presence === "optional" ? absent : field.presence.default
  }
  const u = json[field.key]
  if (u === null && field.presence === "optional") return absent
  switch (field.kind) {
    case "string":
      return typeof u === "string" ? u : bail
    case "count":
      return isCount(u) ? u : bail
    case "int":
      return typeof u === "number" && Number.isSafeInteger(u) ? u : bail
    case "unknown":
      return u
    case "time":
      return decodeTime(u)
    case "nullTime":
      return u === null ? null : decodeTime(u)
    case "nullString":
      return u === null || typeof u === "string" ? u : bail
    case "status":
      return statuses.has(u) ? u : bail
    case "nullStatus":
      return u === null || statuses.has(u) ? u : bail
    case "boolean":
      return typeof u === "boolean" ? u : bail
    case "policy":
      return decodePolicy(u)
    case "tags":
      return Array.isArray(u) && u.every((t) => typeof t === "string") ? u.slice() : bail
    case "events": {
      if (!Array.isArray(u)) return bail
      const out: Array<TaskEvent> = []
      for (const e of u) {
        const event = decodeEvent(e)
        if (event === bail) return bail
        out.push(event)
      }
      return out
    }
    case "taskId":
      return isTaskId(u) ? u : bail
    case "schemaOnly":
      return bail
  }
}

/**
 * The task a parsed JSON document decodes to, exactly as `Schema.decodeUnknown(Task)` would
 * decode it; `undefined` when this walk cannot vouch for the document (decode it with the Schema:
 * it gives the task or the error).
 *
 * @since 0.1.0
 * @category codecs
 */
export const taskFromJson = (json: unknown): Task | undefined => {
  if (!isRecord(json)) return undefined
  const props: Record<string, unknown> = {}
  for (const field of taskFields) {
    const value = decodeValue(field, json)
    if (value === bail) return undefined
    if (value !== absent) props[field.name] = value
  }
  return makeTask(props as ConstructorParameters<typeof Task>[0])
}

// --- encoding -------------------------------------------------------------------------------

const encodePolicy = (p: unknown): unknown => {
  if (!(p instanceof RetryPolicy)) return bail
  if (!isCount(p.initialIntervalMs) || !isCount(p.maxIntervalMs)) return bail
  if (typeof p.multiplier !== "number" || !Number.isFinite(p.multiplier) || !(p.multiplier >= 1)) return bail
  if (typeof p.jitterPercent !== "number" || !(p.jitterPercent >= 0 && p.jitterPercent <= 1)) return bail
  return { initial_interval_ms: p.initialIntervalMs, max_interval_ms: p.maxIntervalMs, multiplier: p.multiplier, jitter_percent: p.jitterPercent }
}

const encodeEvent = (e: unknown): unknown => {
  if (!(e instanceof TaskEvent)) return bail
  const out: Record<string, unknown> = {}
  for (const field of eventFields) {
    const value = encodeValue(field, e as unknown as Record<string, unknown>)
    if (value === bail) return bail
    if (value !== absent) out[field.key] = value
  }
  return out
}

const encodeValue = (field: Field, task: Record<string, unknown>): unknown => {
  if (field.presence === "optional" && !hasOwn.call(task, field.name)) return absent
  const v = task[field.name]
  // an optional field set to undefined, or an unknown required one: the Schema decides
  if (v === undefined) return bail
  switch (field.kind) {
    case "string":
      return typeof v === "string" ? v : bail
    case "count":
      return isCount(v) ? v : bail
    case "int":
      return typeof v === "number" && Number.isSafeInteger(v) ? v : bail
    case "unknown":
      return v
    case "time":
      return isUtc(v) ? formatIso(v) : bail
    case "nullTime":
      return v === null ? null : isUtc(v) ? formatIso(v) : bail
    case "nullString":
      return v === null || typeof v === "string" ? v : bail
    case "status":
      return statuses.has(v) ? v : bail
    case "nullStatus":
      return v === null || statuses.has(v) ? v : bail
    case "boolean":
      return typeof v === "boolean" ? v : bail
    case "policy":
      return encodePolicy(v)
    case "tags":
      return Array.isArray(v) && v.every((t) => typeof t === "string") ? v.slice() : bail
    case "events": {
      if (!Array.isArray(v)) return bail
      const out: Array<unknown> = []
      for (const e of v) {
        const encoded = encodeEvent(e)
        if (encoded === bail) return bail
        out.push(encoded)
      }
      return out
    }
    case "taskId":
      return isTaskId(v) ? v : bail
    case "schemaOnly":
      return bail
  }
}

const encodeWithSchema = Schema.encodeSync(Task)

/**
 * The JSON document of a task, exactly as `Schema.encodeSync(Task)` gives it (same keys in the
 * same order, same values); a task this walk cannot vouch for is encoded by the Schema itself,
 * which throws on an invalid one as before.
 *
 * @since 0.1.0
 * @category codecs
 */
export const taskToJson = (task: Task): unknown => {
  if (!(task instanceof Task)) return encodeWithSchema(task)
  const out: Record<string, unknown> = {}
  for (const field of taskFields) {
    const value = encodeValue(field, task as unknown as Record<string, unknown>)
    if (value === bail) return encodeWithSchema(task)
    if (value !== absent) out[field.key] = value
  }
  return out
}

// --- bodies ---------------------------------------------------------------------------------

/**
 * The stored body of a task: the same bytes as `encodeObject(Task, task)`.
 *
 * @since 0.1.0
 * @category codecs
 */
export const encodeTaskBody = (task: Task): Uint8Array => utf8(JSON.stringify(taskToJson(task)))

const textDecoder = new TextDecoder("utf-8", { fatal: true })

/**
 * Decodes the task stored at `key`: the same task or error as `decodeTask(key, body)`, which
 * decodes every body this module cannot vouch for (and so names what is wrong with a broken one).
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodeTaskBody = (key: string, body: Uint8Array): Effect.Effect<Task, MalformedObject> =>
  Effect.suspend(() => {
    let json: unknown
    try {
      json = JSON.parse(textDecoder.decode(body))
    } catch {
      return decodeTask(key, body)
    }
    const task = taskFromJson(json)
    return task === undefined ? decodeTask(key, body) : taskAtKey(key, task)
  })
