/**
 * The dashboard's DAG workflow pages: the list of runs (`/workflows`) and one run (`/workflows/:id`)
 * drawn as its DAG — each step a node coloured by its state, each dependency an edge — with the
 * steps' attempts and errors and the run's signals. Server-rendered SVG, no script of its own;
 * every name, id and error is text through the escaping template.
 *
 * @module
 */
import { DateTime } from "effect"
import type { MalformedObject } from "../../domain/QueueError.js"
import { runProgress, stepLevels, stepRows } from "../../domain/workflow/RunView.js"
import type { StepRow } from "../../domain/workflow/RunView.js"
import type { WorkflowDefinition } from "../../domain/workflow/WorkflowDefinition.js"
import { WorkflowStatus } from "../../domain/workflow/WorkflowState.js"
import type { WorkflowState } from "../../domain/workflow/WorkflowState.js"
import { href, html, prettyJson, raw } from "./Html.js"
import type { Html } from "./Html.js"

const fmtTime = (t: DateTime.Utc | null | undefined): string => (t === null || t === undefined ? "—" : DateTime.formatIso(t))

const badge = (status: string): Html => html`<span class="badge ${status}">${status}</span>`

/** The statuses a run can have, for the list's filter. */
export const runStatuses: ReadonlyArray<string> = WorkflowStatus.literals

/** The run list: `status` filters it (already validated), `truncated` says more runs exist than were read. */
export const runList = (p: {
  readonly states: ReadonlyArray<WorkflowState>
  readonly malformed: ReadonlyArray<MalformedObject>
  readonly status: string | undefined
  readonly truncated: boolean
  readonly limit: number
}): Html => {
  const shown = p.states.filter((s) => p.status === undefined || s.status === p.status)
  const options = ["", ...runStatuses].map((st) =>
    html`<option value="${st}"${p.status === st || (st === "" && p.status === undefined) ? raw(" selected") : ""}>${st === "" ? "any status" : st}</option>`
  )
  const rows = shown.map((s) => {
    const progress = runProgress(s)
    return html`<tr data-run-id="${s.id}"><td class="mono"><a class="run-link" href="${href`/workflows/${s.id}`}">${s.id}</a></td><td>${s.type}</td><td>${
      badge(s.status)
    }</td><td>${progress.completed}/${progress.total}</td><td>${fmtTime(s.createdAt)}</td><td>${fmtTime(s.updatedAt)}</td><td>${
      s.error === undefined ? "" : `${s.error.type}: ${s.error.message}`
    }</td></tr>`
  })
  return html`<h2>Workflow runs</h2>
<form method="get" action="/workflows" class="bar-form"><label>Status <select id="filter-run-status" name="status">${options}</select></label>
<button type="submit" id="apply-run-filter">Apply</button></form>
${p.truncated ? html`<div class="notice">Only the first ${p.limit} runs (in id order) were read.</div>` : ""}
${
    p.malformed.length === 0 ? "" : html`<div class="notice error" id="malformed-runs">${p.malformed.length} run(s) could not be read: ${
      p.malformed.slice(0, 10).map((m) => html`<div class="mono">${m.message}</div>`)
    }</div>`
  }
<table id="workflow-runs"><thead><tr><th>Run</th><th>Workflow</th><th>Status</th><th>Steps done</th><th>Created</th><th>Updated</th><th>Error</th></tr></thead>
<tbody>${
    rows.length === 0
      ? html`<tr><td colspan="7" class="muted">${p.status === undefined ? "No workflow runs in workflow/." : `No runs with status ${p.status}.`}</td></tr>`
      : rows
  }</tbody></table>`
}

/** One signal of the run's inbox, as the detail page lists it. */
export interface SignalLine {
  readonly name: string
  readonly signalId: string
  readonly sentAt: string
  readonly consumed: boolean
}

const nodeWidth = 168
const nodeHeight = 48
const columnGap = 56
const rowGap = 16
const margin = 8

const cut = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text)

/**
 * The DAG as SVG: with the definition, each step in the column of {@link stepLevels} and an edge
 * from each dependency; without it, the steps in order on a grid and no edges.
 */
export const dagSvg = (rows: ReadonlyArray<StepRow>, definition: WorkflowDefinition | undefined): Html => {
  const levels = definition === undefined ? undefined : stepLevels(definition)
  const place = new Map<string, { readonly x: number; readonly y: number }>()
  const perColumn = new Map<number, number>()
  rows.forEach((r, i) => {
    const column = levels === undefined ? i % 5 : (levels.get(r.name) ?? 0)
    const row = levels === undefined ? Math.floor(i / 5) : (perColumn.get(column) ?? 0)
    perColumn.set(column, row + 1)
    place.set(r.name, { x: margin + column * (nodeWidth + columnGap), y: margin + row * (nodeHeight + rowGap) })
  })
  const points = [...place.values()]
  const width = Math.max(0, ...points.map((p) => p.x)) + nodeWidth + margin
  const height = Math.max(0, ...points.map((p) => p.y)) + nodeHeight + margin
  const edges = rows.flatMap((r) =>
    r.dependsOn.flatMap((d) => {
      const from = place.get(d)
      const to = place.get(r.name)
      if (from === undefined || to === undefined) return []
      const x1 = from.x + nodeWidth
      const y1 = from.y + nodeHeight / 2
      const x2 = to.x
      const y2 = to.y + nodeHeight / 2
      const bend = columnGap / 2
      return [
        html`<path class="edge" data-from="${d}" data-to="${r.name}" d="${`M${x1} ${y1} C${x1 + bend} ${y1} ${x2 - bend} ${y2} ${x2 - 4} ${y2}`}" marker-end="url(#arrow)"/>`
      ]
    })
  )
  const nodes = rows.map((r) => {
    const p = place.get(r.name)!
    const detail = `${r.status}${r.attempt > 0 ? ` · attempt ${r.attempt}` : ""}${r.compensation === null ? "" : ` · undo ${r.compensation}`}`
    return html`<g class="node ${r.status}" data-step="${r.name}" data-status="${r.status}" transform="${`translate(${p.x} ${p.y})`}"><title>${r.name}: ${detail}${
      r.error === null ? "" : ` — ${r.error}`
    }</title><rect width="${nodeWidth}" height="${nodeHeight}" rx="6"/><text x="10" y="19" class="name">${cut(r.name, 22)}</text><text x="10" y="37" class="state">${
      cut(detail, 28)
    }</text></g>`
  })
  return html`<svg id="dag" class="dag" role="img" aria-label="the run's steps and their dependencies" width="${width}" height="${height}" viewBox="${`0 0 ${width} ${height}`}">
<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="8" markerHeight="8" orient="auto"><path d="M0 0 L8 4 L0 8 z" class="arrow"/></marker></defs>
${edges}${nodes}</svg>`
}

/** One run: its fields, its DAG, its steps and its signals. */
export const runDetail = (p: {
  readonly state: WorkflowState
  readonly definition: WorkflowDefinition | undefined
  readonly signals: ReadonlyArray<SignalLine>
  readonly malformedSignals: ReadonlyArray<MalformedObject>
  /** Running steps a pause switch holds, with why and how to resume (RunView.describeHold). */
  readonly held: ReadonlyArray<{ readonly step: string; readonly reason: string }>
}): Html => {
  const s = p.state
  const rows = stepRows(s, p.definition)
  const progress = runProgress(s, p.definition)
  const field = (label: string, value: Html | string | number | null | undefined) => html`<dt>${label}</dt><dd>${value ?? "—"}</dd>`
  const stepTable = rows.map((r) =>
    html`<tr data-step-row="${r.name}"><td class="mono">${r.name}</td><td>${badge(r.status)}${
      r.compensation === null ? "" : html` <span class="muted">compensation ${r.compensation}</span>`
    }</td><td>${r.attempt}</td><td class="mono">${r.taskId === null ? "—" : html`<a href="${href`/tasks/${r.taskId}`}">${r.taskId}</a>`}</td><td>${
      fmtTime(r.startedAt)
    }</td><td>${fmtTime(r.completedAt)}</td><td>${r.dependsOn.join(", ")}</td><td>${r.error ?? ""}</td></tr>`
  )
  const pending = p.signals.filter((x) => !x.consumed).length
  const signalRows = p.signals.map((x) =>
    html`<tr data-signal-id="${x.signalId}"><td class="mono">${x.name}</td><td>${x.sentAt}</td><td class="mono">${x.signalId}</td><td>${
      badge(x.consumed ? "consumed" : "pending")
    }</td></tr>`
  )
  const e = s.error
  return html`<h2>Workflow run <span class="mono" id="run-id">${s.id}</span> ${badge(s.status)}</h2>
<div class="grid2"><dl class="fields">
${field("workflow", s.type)}${field("status", html`<span id="run-status">${s.status}</span>`)}${
    field("steps done", html`<span id="run-progress">${progress.completed}/${progress.total}</span>`)
  }
${field("definition", html`<span class="mono">${s.definitionHash}</span>`)}${field("created", fmtTime(s.createdAt))}${field("updated", fmtTime(s.updatedAt))}
${field("orchestrator task", s.orchestratorTaskId === undefined ? undefined : html`<a class="mono" href="${href`/tasks/${s.orchestratorTaskId}`}">${s.orchestratorTaskId}</a>`)}
${field("error", e === undefined ? undefined : html`<span id="run-error">${e.type}: ${e.message}${e.step === undefined ? "" : ` (step ${e.step})`}</span>`)}
</dl><div><h3>Data</h3><pre id="run-data">${prettyJson(s.data)}</pre></div></div>
${p.held.length === 0 ? "" : html`<div class="notice" id="run-held">${p.held.map((h) => html`<div>${h.reason}</div>`)}</div>`}
<h3>Steps</h3>
${
    p.definition === undefined
      ? html`<p class="muted" id="dag-note">This run does not record its definition, so the dependencies between its steps are not drawn.</p>`
      : ""
  }
<div class="dag-box">${rows.length === 0 ? html`<p class="muted">No steps recorded yet.</p>` : dagSvg(rows, p.definition)}</div>
<table id="run-steps"><thead><tr><th>Step</th><th>Status</th><th>Attempt</th><th>Task</th><th>Started</th><th>Completed</th><th>Depends on</th><th>Error</th></tr></thead>
<tbody>${stepTable}</tbody></table>
<h3>Signals <span class="muted" id="signal-counts">${pending} pending, ${p.signals.length - pending} consumed</span></h3>
${
    p.malformedSignals.length === 0 ? "" : html`<div class="notice error">${p.malformedSignals.length} signal object(s) could not be read: ${
      p.malformedSignals.slice(0, 10).map((m) => html`<div class="mono">${m.message}</div>`)
    }</div>`
  }
<table id="run-signals"><thead><tr><th>Name</th><th>Sent</th><th>Id</th><th>State</th></tr></thead>
<tbody>${signalRows.length === 0 ? html`<tr><td colspan="4" class="muted">No signals.</td></tr>` : signalRows}</tbody></table>`
}

/** The workflow pages' styles (added to the dashboard's one stylesheet). */
export const workflowCss = `
.badge.paused,.badge.skipped{background:#b7791f}.badge.waiting_signal,.badge.compensating{background:#9f7aea}.badge.consumed{background:var(--completed)}
.dag-box{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px;margin-bottom:12px}
.dag .node rect{fill:#f1f1f4;stroke:var(--pending);stroke-width:1.5}.dag .node text{font:12px system-ui,sans-serif;fill:var(--fg)}.dag .node text.name{font-weight:600}
.dag .node.running rect{fill:#e6efff;stroke:var(--running)}.dag .node.completed rect{fill:#e3f5ea;stroke:var(--completed)}
.dag .node.failed rect{fill:#fdecec;stroke:var(--failed)}.dag .node.cancelled rect,.dag .node.skipped rect{fill:#fbf3e4;stroke:var(--cancelled)}
.dag .node.skipped rect{stroke-dasharray:4 3}.dag .edge{fill:none;stroke:#9a9aa5;stroke-width:1.5}.dag .arrow{fill:#9a9aa5}
`
