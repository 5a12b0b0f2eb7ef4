/**
 * The per-type table that opens the dashboard's first page (issue 20 item 2): per task type,
 * pending, running, failed in the last hour, completed per minute, the oldest due task's wait,
 * p50 / p95 run time, and the healthy workers that handle it. The numbers are the snapshot's
 * `types` (`domain/TypeStats.ts`, the same computation as `buquet stats`): rendering it costs no
 * request.
 *
 * @module
 */
import { failedWindowMinutes, formatMillis, rateWindowMinutes, runTimeSampleSize } from "../../domain/TypeStats.js"
import type { TypeStats } from "../../domain/TypeStats.js"
import type { Snapshot } from "../QueueSnapshot.js"
import { href, html } from "./Html.js"
import type { Html } from "./Html.js"

const rate = (perMinute: number): string => (perMinute === 0 ? "0" : perMinute < 0.1 ? perMinute.toFixed(2) : perMinute.toFixed(1))

const row = (t: TypeStats): Html => {
  const tasks = (status?: string) => (status === undefined ? href`/tasks?type=${t.taskType}` : href`/tasks?type=${t.taskType}&status=${status}`)
  return html`<tr data-type="${t.taskType}"><td><a href="${tasks()}">${t.taskType}</a></td>
<td class="mono" data-col="pending"><a href="${tasks("pending")}">${t.pending}</a></td>
<td class="mono" data-col="running"><a href="${tasks("running")}">${t.running}</a></td>
<td class="mono" data-col="failed">${t.failedLastHour === 0 ? "0" : html`<a href="${tasks("failed")}">${t.failedLastHour}</a>`}</td>
<td class="mono" data-col="rate" title="${t.completedRecently} in the last ${rateWindowMinutes} min">${rate(t.completedPerMinute)}</td>
<td class="mono" data-col="oldest">${formatMillis(t.oldestPendingMillis)}</td>
<td class="mono" data-col="p50" title="over ${t.runTimeSamples} completion(s)">${formatMillis(t.runTimeP50Millis)}</td>
<td class="mono" data-col="p95" title="over ${t.runTimeSamples} completion(s)">${formatMillis(t.runTimeP95Millis)}</td>
<td data-col="workers">${
    t.workers.length === 0
      ? html`<span class="muted">none</span>`
      : t.workers.map((w, i) => html`${i === 0 ? "" : ", "}<a class="mono" href="/workers">${w}</a>`)
  }</td></tr>`
}

/** The per-type table of the snapshot. */
export const typeTable = (s: Snapshot): Html =>
  html`<h3>Task types</h3>
<table id="types"><thead><tr><th>Type</th><th>Pending</th><th>Running</th><th>Failed (${failedWindowMinutes} min)</th><th>Completed / min (${rateWindowMinutes} min)</th>
<th>Oldest pending</th><th>p50 run</th><th>p95 run</th><th>Workers</th></tr></thead>
<tbody>${s.types.length === 0 ? html`<tr><td colspan="9" class="muted">No tasks and no workers yet.</td></tr>` : s.types.map(row)}</tbody></table>
<p class="muted">Oldest pending: the longest a due task has waited to be claimed. Run times: from the last claim to completion, over the last ${runTimeSampleSize} completions of each type the dashboard has read. Workers: healthy workers whose record lists the type.${
    s.complete ? "" : " The bucket is still being walked: the numbers cover the tasks read so far."
  }</p>`
