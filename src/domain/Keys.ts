/**
 * The object key layout of the bucket (design.md §5.1), compatible with the reference.
 * Every key the queue writes is built here.
 *
 * @module
 */
import { Schema } from "effect"
import { ScheduleId, WorkerId } from "./Names.js"
import { formatBucket } from "./Shard.js"

/** `tasks/{shard}/{id}.json`: the task object. */
export const taskKey = (shard: string, taskId: string): string => `tasks/${shard}/${taskId}.json`

/**
 * The shard and task id a task object's key names (`tasks/{shard}/{id}.json`, shard 1–4 lower-case
 * hex, id a lower-case UUID), or undefined for any other key. A stored body is checked against it.
 */
export const parseTaskKey = (key: string): { readonly shard: string; readonly taskId: string } | undefined => {
  const m = /^tasks\/([0-9a-f]{1,4})\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.json$/.exec(key)
  return m === null ? undefined : { shard: m[1]!, taskId: m[2]! }
}

/** Prefix of all task objects of one shard. */
export const taskShardPrefix = (shard: string): string => `tasks/${shard}/`

/** `ready/{shard}/{bucket}/{id}`: empty marker, the task is claimable at or after `bucket`. */
export const readyKey = (shard: string, bucket: number, taskId: string): string =>
  `ready/${shard}/${formatBucket(bucket)}/${taskId}`

/** Prefix of the ready markers of one shard. */
export const readyShardPrefix = (shard: string): string => `ready/${shard}/`

/** `leases/{shard}/{bucket}/{id}`: empty marker, the task is running and its lease expires in `bucket`. */
export const leaseKey = (shard: string, bucket: number, taskId: string): string =>
  `leases/${shard}/${formatBucket(bucket)}/${taskId}`

/** Prefix of all lease markers. */
export const leasesPrefix = "leases/"

/** `workers/{id}.json`: the worker record. */
export const workerKey = (workerId: string): string => `workers/${workerId}.json`

/** Prefix of the worker records. */
export const workersPrefix = "workers/"

/**
 * The worker id a worker record's key names (`workers/{id}.json`), or undefined when the key is
 * not one a valid worker id (domain/Names.ts) makes: such a record is malformed.
 */
export const parseWorkerKey = (key: string): string | undefined => {
  if (!key.startsWith(workersPrefix) || !key.endsWith(".json")) return undefined
  const id = key.slice(workersPrefix.length, -".json".length)
  return Schema.is(WorkerId)(id) ? id : undefined
}

/** `shard-leases/{shard}.json`: dynamic shard ownership. */
export const shardLeaseKey = (shard: string): string => `shard-leases/${shard}.json`

/** `idempotency/{scope}/{sha256hex}.json`: submit de-duplication record. */
export const idempotencyKey = (scope: string, hashHex: string): string => `idempotency/${scope}/${hashHex}.json`

/** `schedules/{id}.json`: a cron schedule. */
export const scheduleKey = (scheduleId: string): string => `schedules/${scheduleId}.json`

/** `schedules/{id}/last_run.json`: the scheduler's record of the last firing. */
export const scheduleLastRunKey = (scheduleId: string): string => `schedules/${scheduleId}/last_run.json`

/**
 * The schedule id a schedule record's key names (`schedules/{id}.json`), or undefined when the key
 * is not one a valid schedule id (domain/Names.ts) makes: such a record is malformed.
 */
export const parseScheduleKey = (key: string): string | undefined => {
  if (!key.startsWith("schedules/") || !key.endsWith(".json")) return undefined
  const id = key.slice("schedules/".length, -".json".length)
  return Schema.is(ScheduleId)(id) ? id : undefined
}

/** `schemas/{task_type}.json`: published JSON Schemas of a task type's input and output. */
export const schemaKey = (taskType: string): string => `schemas/${taskType}.json`

/** `payloads/{id}/input.json` or `…/output.json`: an offloaded payload. */
export const payloadKey = (taskId: string, which: "input" | "output"): string => `payloads/${taskId}/${which}.json`

/**
 * `payloads/{id}/output-{leaseId}.json`: the output one attempt (one claim, named by its lease id)
 * offloads. Every run writes its own key, so a payload collector's late DELETE of an older run's
 * output can never land on a newer run's (S3 has no conditional DELETE to fence it with).
 */
export const attemptOutputKey = (taskId: string, leaseId: string): string => `payloads/${taskId}/output-${leaseId}.json`

const attemptOutputPattern = /^payloads\/([0-9a-f-]{36})\/output-([0-9a-f-]{36})\.json$/

/**
 * Whether `ref` may be task `taskId`'s `input_ref` / `output_ref`: its own `input.json`, or for an
 * output its own `output.json` (the reference's layout, and ours before per-attempt keys) or one of
 * its attempts' `output-{leaseId}.json`. Nothing else under the prefix.
 */
export const isOwnPayloadRef = (taskId: string, which: "input" | "output", ref: string): boolean => {
  if (ref === payloadKey(taskId, which)) return true
  if (which === "input") return false
  const m = attemptOutputPattern.exec(ref)
  return m !== null && m[1] === taskId
}

/** Prefix of a task's offloaded payloads. */
export const payloadPrefix = (taskId: string): string => `payloads/${taskId}/`

/** `control/…`: our own objects (leader leases, sweep cursors, pause switches, wake-up and cancel signals). */
export const controlKey = (name: string): string => `control/${name}`

/**
 * `control/cancel/{worker_id}`: the worker's cancel signal (protocol/CancelSignal.ts). A cancel of a
 * running task touches the signal of the worker that runs it; the worker HEADs its own.
 */
export const cancelSignalKey = (workerId: string): string => controlKey(`cancel/${workerId}`)

/**
 * `control/types/{task_type}.json`: written once, create-only, by the first worker that registers a
 * handler for the type; what `submit`'s type check HEADs ("has any worker ever handled it?").
 */
export const taskTypeMarkerKey = (taskType: string): string => `control/types/${taskType}.json`

/** Prefix of the task type markers. */
export const taskTypeMarkersPrefix = "control/types/"

/**
 * Parses `{prefix}{shard}/{bucket}/{id}` index keys (ready and lease markers), and prioritised ready
 * markers `ready/{shard}/!{rank}/{bucket}/{id}` (rank = 9999 − priority; see domain/ReadyIndex.ts).
 * `priority` is 0 for plain markers.
 */
export const parseIndexKey = (
  key: string
):
  | {
    readonly kind: "ready" | "leases"
    readonly shard: string
    readonly bucket: number
    readonly taskId: string
    readonly priority: number
  }
  | undefined => {
  const m = /^(ready|leases)\/([0-9a-f]{1,4})\/(?:!(\d{4})\/)?(\d{10})\/([0-9a-f-]{36})$/.exec(key)
  if (m === null) return undefined
  if (m[3] !== undefined && m[1] !== "ready") return undefined
  return {
    kind: m[1] as "ready" | "leases",
    shard: m[2]!,
    bucket: Number(m[4]),
    taskId: m[5]!,
    priority: m[3] === undefined ? 0 : 9999 - Number(m[3])
  }
}
