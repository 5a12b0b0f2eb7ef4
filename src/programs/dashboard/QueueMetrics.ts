/**
 * The queue-level Prometheus series of the dashboard's `/metrics`, computed from the shared
 * snapshot (no request per scrape beyond the snapshot's own bounded refresh): what an operator
 * alerts on, where the process series (`buquet_claims_*`, `effect_fiber_*`) only describe the
 * process that serves them.
 *
 * - `buquet_tasks{status,task_type}`: tasks by status and type (every status, zeros included);
 * - `buquet_oldest_pending_age_seconds{task_type}`: how long the oldest due pending task waits;
 * - `buquet_tasks_unhandled{task_type}`: pending tasks whose type no live worker handles (0 when a
 *   live worker does, or when that is unknown: an older worker's record does not list its types);
 * - `buquet_workers_registered`, `buquet_workers_alive`: worker records, and those with a recent
 *   heartbeat;
 * - `buquet_schedule_lag_seconds{schedule_id}`: how late an enabled schedule's next firing is
 *   (0 on time);
 * - `buquet_snapshot_complete`: whether the counts cover the whole bucket yet (a big bucket is
 *   walked across refreshes).
 *
 * @module
 */
import { DateTime, Option } from "effect"
import { allStatuses } from "../../domain/TaskStatus.js"
import type { Snapshot } from "../QueueSnapshot.js"
import { unhandledPending } from "../../domain/TypeCoverage.js"

const escapeLabel = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")

const labels = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`

interface Family {
  readonly name: string
  readonly help: string
  readonly samples: ReadonlyArray<readonly [ReadonlyArray<readonly [string, string]>, number]>
}

const family = (f: Family): string =>
  [
    `# HELP ${f.name} ${f.help}`,
    `# TYPE ${f.name} gauge`,
    ...f.samples.map(([l, v]) => `${f.name}${labels(l)} ${Number.isFinite(v) ? String(v) : "NaN"}`)
  ].join("\n") + "\n"

/** The queue-level series of `snapshot`, as Prometheus text (0.0.4). */
export const render = (snapshot: Snapshot): string => {
  const now = Option.getOrUndefined(snapshot.refreshedAt)
  const nowMillis = now === undefined ? 0 : DateTime.toEpochMillis(now)
  const byType = new Map<string, Map<string, number>>()
  for (const task of snapshot.tasks) {
    const counts = byType.get(task.taskType) ?? new Map<string, number>()
    counts.set(task.status, (counts.get(task.status) ?? 0) + 1)
    byType.set(task.taskType, counts)
  }
  // the per-type overview's wait (domain/TypeStats.ts): the page, `buquet stats` and this series agree
  const oldest = new Map(snapshot.types.map((t) => [t.taskType, t.oldestPendingMillis ?? 0]))
  const types = [...byType.keys()].sort()
  const unhandled = unhandledPending(snapshot.coverage, snapshot.tasks)
  const seconds = (millis: number) => Math.max(0, millis) / 1000
  return [
    family({
      name: "buquet_tasks",
      help: "Tasks in the bucket by status and task type (from the dashboard's snapshot).",
      samples: types.flatMap((type) =>
        allStatuses.map((status) => [[["status", status], ["task_type", type]], byType.get(type)?.get(status) ?? 0] as const)
      )
    }),
    family({
      name: "buquet_oldest_pending_age_seconds",
      help: "How long the oldest due pending task of each type has waited to be claimed (0: none waiting).",
      samples: types.map((type) => [[["task_type", type]], seconds(oldest.get(type) ?? 0)] as const)
    }),
    family({
      name: "buquet_tasks_unhandled",
      help: "Pending tasks whose type no live worker handles: they stay pending until one that does starts (0 when handled or unknown).",
      samples: types.map((type) => [[["task_type", type]], unhandled.get(type) ?? 0] as const)
    }),
    family({
      name: "buquet_workers_registered",
      help: "Worker records in the bucket.",
      samples: [[[], snapshot.workers.length]]
    }),
    family({
      name: "buquet_workers_alive",
      help: "Workers whose last heartbeat is recent (healthy).",
      samples: [[[], snapshot.workers.filter((w) => w.healthy).length]]
    }),
    family({
      name: "buquet_schedule_lag_seconds",
      help: "How late each enabled schedule's next firing is (0 when on time; grows when no scheduler runs).",
      samples: snapshot.schedules.filter((s) => s.record.enabled).map((s) =>
        [
          [["schedule_id", s.record.id]],
          s.firstUnfired === undefined ? 0 : seconds(nowMillis - DateTime.toEpochMillis(s.firstUnfired))
        ] as const
      )
    }),
    family({
      name: "buquet_snapshot_complete",
      help: "1 when the dashboard's snapshot covers the whole bucket, 0 while a big bucket is still being walked.",
      samples: [[[], snapshot.complete ? 1 : 0]]
    })
  ].join("")
}
