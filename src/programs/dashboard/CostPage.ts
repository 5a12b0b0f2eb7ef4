/**
 * The dashboard's request-cost page (`/cost`): what the shared refresh costs the bucket, by kind
 * of request, for the last refresh and all refreshes since start. It was on the first page until
 * the per-type overview took that place (issue 20 item 2).
 *
 * @module
 */
import { Option } from "effect"
import type { Snapshot } from "../QueueSnapshot.js"
import { html } from "./Html.js"
import type { Html } from "./Html.js"

const kinds = ["LIST", "GET", "HEAD", "PUT", "DELETE", "LIST-VERSIONS"] as const

/** The cost page's body (live region of /cost). */
export const costPage = (s: Snapshot): Html => {
  const rows = kinds.map((k) =>
    html`<tr><td>${k}</td><td class="mono" data-cost="${k}">${s.lastCost[k]}</td><td class="mono">${s.totalCost[k]}</td></tr>`
  )
  return html`<h2>Refresh cost</h2>
${Option.isSome(s.error) ? html`<div class="notice error">Last refresh failed: ${s.error.value}</div>` : ""}
<p class="muted">One shared refresh serves every open tab: LIST of tasks/, workers/ and schedules/, and GET only of objects whose ETag changed.
The per-type overview, counts and charts are computed from what that refresh read, at no further request.
${s.unread > 0 ? html` ${s.unread} changed object(s) wait for the next refresh (GET budget).` : ""}${
    s.complete ? "" : " The task walk is bounded per refresh and continues on the next one."
  }</p>
<table id="cost"><thead><tr><th>Request</th><th>Last refresh</th><th>All ${s.refreshes} refreshes</th></tr></thead><tbody>${rows}
<tr><td>total</td><td class="mono" data-cost="total">${s.lastCost.total}</td><td class="mono">${s.totalCost.total}</td></tr></tbody></table>
<p class="muted">Last refresh took ${s.refreshMillis} ms.</p>`
}
