/**
 * The worker record `workers/{worker_id}.json`: the reference's fields (`worker_id`,
 * `started_at`, `last_heartbeat`, `shards`, `current_task`, `tasks_completed`, `tasks_failed`)
 * plus ours (every current task, more counters, concurrency, the task types it handles, its
 * buquet version, host and pid). Fields are only ever added, never renamed, so the reference and
 * older readers keep reading the records. Written by the
 * worker's heartbeat fiber; deleted when the worker stops.
 *
 * @module
 */
import { DateTime, Duration, Effect, Schema } from "effect"
import { decodeObject } from "./Codec.js"
import { parseWorkerKey } from "./Keys.js"
import { MalformedObject } from "./QueueError.js"
import { Timestamp } from "./Task.js"
import { field, nullableField, optionalField } from "./SnakeCase.js"

/** A registered worker, as stored in the bucket. */
export class WorkerRecord extends Schema.Class<WorkerRecord>("WorkerRecord")({
  workerId: field(Schema.String, "worker_id"),
  startedAt: field(Timestamp, "started_at"),
  lastHeartbeat: field(Timestamp, "last_heartbeat"),
  shards: Schema.Array(Schema.String),
  /** The reference's single current task (the first of ours), or null when idle. */
  currentTask: field(Schema.NullOr(Schema.String), "current_task"),
  tasksCompleted: field(Schema.NonNegativeInt, "tasks_completed"),
  tasksFailed: field(Schema.NonNegativeInt, "tasks_failed"),
  // ours; the reference ignores unknown fields
  currentTasks: optionalField(Schema.Array(Schema.String), "current_tasks"),
  tasksRetried: optionalField(Schema.NonNegativeInt, "tasks_retried"),
  tasksRescheduled: optionalField(Schema.NonNegativeInt, "tasks_rescheduled"),
  tasksCancelled: optionalField(Schema.NonNegativeInt, "tasks_cancelled"),
  concurrency: optionalField(Schema.Int, "concurrency"),
  /** The task types it has handlers for (sorted); what "no live worker handles this type" is judged by. */
  taskTypes: optionalField(Schema.Array(Schema.String), "task_types"),
  /** The buquet version the worker runs (absent in records of older workers and the reference's). */
  buquetVersion: optionalField(Schema.String, "buquet_version"),
  hostname: optionalField(Schema.String, "hostname"),
  pid: optionalField(Schema.Int, "pid"),
  status: optionalField(Schema.Literal("running", "stopping"), "status")
}) {}

/**
 * A worker record `workers/{id}.json` as the dashboard and `buquet workers` read it: the reference's fields, and ours
 * when present (unknown fields are ignored, so every writer's records show).
 */
export class WorkerView extends Schema.Class<WorkerView>("WorkerView")({
  workerId: field(Schema.String, "worker_id"),
  startedAt: nullableField(Timestamp, "started_at"),
  lastHeartbeat: field(Timestamp, "last_heartbeat"),
  shards: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  currentTask: nullableField(Schema.String, "current_task"),
  currentTasks: nullableField(Schema.Array(Schema.String), "current_tasks"),
  tasksCompleted: Schema.optionalWith(Schema.Number, { default: () => 0 }).pipe(Schema.fromKey("tasks_completed")),
  tasksFailed: Schema.optionalWith(Schema.Number, { default: () => 0 }).pipe(Schema.fromKey("tasks_failed")),
  tasksRetried: nullableField(Schema.Number, "tasks_retried"),
  tasksCancelled: nullableField(Schema.Number, "tasks_cancelled"),
  concurrency: nullableField(Schema.Number, "concurrency"),
  /**
   * The task types it handles; absent in records of older workers and the reference's, whose
   * types are therefore unknown (never "none").
   */
  taskTypes: nullableField(Schema.Array(Schema.String), "task_types"),
  buquetVersion: nullableField(Schema.String, "buquet_version"),
  hostname: nullableField(Schema.String, "hostname"),
  status: nullableField(Schema.String, "status")
}) {}

/** How long without a heartbeat before a worker counts as unhealthy: three idle intervals. */
export const healthyWithin: Duration.Duration = Duration.minutes(3)

/**
 * The health rule: a worker is healthy at `now` when its last heartbeat is within `within` and it
 * is not stopping. The dashboard and `buquet workers` both judge by it.
 */
export const isHealthyAt = (
  record: { readonly lastHeartbeat: DateTime.Utc; readonly status?: string | undefined },
  now: DateTime.Utc,
  within: Duration.DurationInput = healthyWithin
): boolean =>
  DateTime.toEpochMillis(now) - DateTime.toEpochMillis(record.lastHeartbeat) < Duration.toMillis(within) &&
  record.status !== "stopping"

/**
 * A decoder of worker records (in any reader's view `schema`) that checks the record against its
 * key: the key must name a valid worker id and the body's `worker_id` must be that id. Anything
 * else is a `MalformedObject` naming the key, so a hostile id never reaches a page or a terminal.
 */
export const decodeWorkerRecordAt = <A, I>(schema: Schema.Schema<A, I>, idOf: (record: A) => string) =>
(key: string, body: Uint8Array): Effect.Effect<A, MalformedObject> =>
  Effect.suspend(() => {
    const id = parseWorkerKey(key)
    if (id === undefined) {
      return Effect.fail(
        new MalformedObject({ key, message: `${key} is malformed: its key does not name a valid worker id (workers/{id}.json)` })
      )
    }
    return Effect.flatMap(decodeObject(schema, key, body), (record) =>
      idOf(record) === id
        ? Effect.succeed(record)
        : Effect.fail(
          new MalformedObject({
            key,
            message: `${key} is malformed: its worker_id ${JSON.stringify(idOf(record).slice(0, 80))} is not the id its key names (${id})`
          })
        ))
  })
