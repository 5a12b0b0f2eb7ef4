/**
 * The dashboard's pages, server-rendered from the shared {@link Snapshot} with the escaping
 * template (every task input, id, type and error is text). Each page has a `#live` region that the
 * page's small inline script re-renders (`?fragment=1`) when the SSE stream announces a new
 * snapshot; filters and forms sit outside it so live updates never disturb typing.
 *
 * @module
 */
import { DateTime, Option } from "effect"
import { isWaitingParent } from "../../domain/Flows.js"
import { allShards } from "../../domain/Shard.js"
import type { Task } from "../../domain/Task.js"
import { allStatuses, isTerminal } from "../../domain/TaskStatus.js"
import type { TaskStatus } from "../../domain/TaskStatus.js"
import { compareTasks, listSorts } from "../../domain/TaskOrder.js"
import type { ListSort } from "../../domain/TaskOrder.js"
import type { TaskHistory } from "../../services/Queue.js"
import type { Snapshot } from "../QueueSnapshot.js"
import * as SchedulerLoop from "../SchedulerLoop.js"
import { describeHandling, handlingOf, unhandledPending } from "../../domain/TypeCoverage.js"
import type { Handling } from "../../domain/TypeCoverage.js"
import { stackedBars } from "./Charts.js"
import { typeTable } from "./TypeOverview.js"
import { href, html, prettyJson, raw } from "./Html.js"
import type { Html } from "./Html.js"
import { workflowCss } from "./WorkflowPages.js"

/** Which navigation tab is active. */
export type Tab = "overview" | "tasks" | "workers" | "schedules" | "workflows" | "cost"

const css = raw(`
:root{--bg:#f7f7f8;--fg:#1d1d1f;--muted:#6b6b73;--card:#fff;--line:#e3e3e8;--accent:#2f6fdf;
--pending:#8a8a94;--running:#2f6fdf;--completed:#1f9d55;--failed:#d64545;--cancelled:#b7791f;--archived:#5a5a66;--expired:#9f7aea}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;gap:18px;align-items:center;padding:10px 20px;background:#16161a;color:#fff}
header a{color:#cfd3dc;text-decoration:none}header a.active,header a:hover{color:#fff;font-weight:600}
header .brand{font-weight:700;color:#fff;margin-right:12px}
main,.bar{padding:16px 20px;max-width:1200px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:110px;text-decoration:none;color:inherit}
.card .n{font-size:22px;font-weight:700}.card .l{color:var(--muted);font-size:12px;text-transform:uppercase}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line)}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);text-transform:uppercase}td.mono,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
pre{background:#0f1115;color:#e6e6e6;padding:10px;border-radius:6px;overflow:auto;max-height:420px;white-space:pre-wrap;word-break:break-word}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;background:var(--pending)}
.badge.running{background:var(--running)}.badge.completed{background:var(--completed)}.badge.failed{background:var(--failed)}
.badge.cancelled{background:var(--cancelled)}.badge.archived{background:var(--archived)}.badge.expired{background:var(--expired)}
.badge.healthy{background:var(--completed)}.badge.stale{background:var(--failed)}.badge.unhandled{background:var(--failed)}
.chart{margin:14px 0;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px}.chart figcaption{font-weight:600;margin-bottom:4px}
.chart svg{width:100%;height:auto}.axis{font-size:10px;fill:var(--muted)}.grid{stroke:var(--line)}
form.inline{display:inline}button{font:inherit;padding:4px 12px;border-radius:6px;border:1px solid var(--line);background:#fff;cursor:pointer}
button.danger{color:var(--failed)}select,input{font:inherit;padding:3px 6px}
.muted{color:var(--muted)}.notice{padding:8px 12px;border-radius:6px;background:#e8f1ff;border:1px solid #bcd3fb;margin-bottom:12px}
.notice.error{background:#fdecec;border-color:#f3b9b9}
footer{padding:8px 20px;color:var(--muted);font-size:12px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px}@media(max-width:900px){.grid2{grid-template-columns:1fr}}
dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;background:var(--card);border:1px solid var(--line);padding:10px;border-radius:8px}dl.fields dt{color:var(--muted)}dl.fields dd{margin:0}
${workflowCss}`)

/**
 * The page script (constant; the Content-Security-Policy allows exactly it by hash). Live updates:
 * one EventSource per tab; on a newer snapshot, re-render `#live` from `?fragment=1`; when the
 * stream is refused (the stream cap), re-render every 30 s instead.
 */
export const scriptSource = `
(function(){
  var body=document.body, live=document.getElementById("live"), status=document.getElementById("status");
  var seen=Number(body.getAttribute("data-refreshes")||"0"), busy=false, again=false;
  function reload(){
    if(busy){again=true;return}
    busy=true;
    var u=new URL(location.href);u.searchParams.set("fragment","1");
    fetch(u,{credentials:"same-origin"}).then(function(r){return r.ok?r.text():null}).then(function(t){
      if(t!==null&&live){live.innerHTML=t}
    }).catch(function(){}).then(function(){busy=false;if(again){again=false;reload()}});
  }
  if(!window.EventSource)return;
  var es=new EventSource("/events");
  es.addEventListener("snapshot",function(e){
    var d;try{d=JSON.parse(e.data)}catch(x){return}
    if(status){status.textContent="live · refresh #"+d.refreshes+" at "+d.refreshedAt+" · last refresh cost "+d.cost+(d.error?" · error: "+d.error:"")}
    if(d.refreshes>seen){seen=d.refreshes;if(body.getAttribute("data-live")==="1")reload()}
  });
  es.onerror=function(){
    if(es.readyState!==2){if(status)status.textContent="live updates disconnected; retrying…";return}
    // refused for good (e.g. 503: the dashboard is at its stream limit): reload every 30 s instead
    if(status)status.textContent="live updates unavailable; reloading every 30 s";
    setInterval(function(){if(body.getAttribute("data-live")==="1")reload()},30000);
  };
})();
`
const script = raw(scriptSource)

const fmtTime = (t: DateTime.Utc | null | undefined): string => (t === null || t === undefined ? "—" : DateTime.formatIso(t))

/** "12 s ago", relative to the snapshot's time. */
const ago = (t: DateTime.Utc | null | undefined, now: Option.Option<DateTime.Utc>): string => {
  if (t === null || t === undefined || Option.isNone(now)) return fmtTime(t)
  const s = Math.round((DateTime.toEpochMillis(now.value) - DateTime.toEpochMillis(t)) / 1000)
  if (s < 0) return `in ${-s} s`
  if (s < 120) return `${s} s ago`
  if (s < 7200) return `${Math.round(s / 60)} min ago`
  if (s < 172800) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86400)} d ago`
}

/** A cost summary line: `LIST 2 · GET 5 (7 requests)`. */
export const costText = (c: Snapshot["lastCost"]): string => {
  const kinds = (["LIST", "GET", "HEAD", "PUT", "DELETE", "LIST-VERSIONS"] as const).filter((k) => c[k] > 0).map((k) => `${k} ${c[k]}`)
  return `${kinds.length === 0 ? "no requests" : kinds.join(" · ")} (${c.total} request${c.total === 1 ? "" : "s"})`
}

const badge = (status: string): Html => html`<span class="badge ${status}">${status}</span>`

const csrfField = (csrf: string): Html => html`<input type="hidden" name="_csrf" value="${csrf}">`

/** The page frame: navigation, the live region, the refresh status, and the live-update script. */
export const layout = (p: {
  readonly title: string
  readonly tab: Tab | undefined
  readonly csrf: string
  readonly snapshot: Snapshot
  readonly live: boolean
  readonly before?: Html | undefined
  readonly body: Html
  readonly after?: Html | undefined
}): Html => {
  const nav = (tab: Tab, to: string, label: string) => html`<a href="${to}" class="${p.tab === tab ? "active" : ""}">${label}</a>`
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="csrf-token" content="${p.csrf}"><title>${p.title} · buquet</title><style>${css}</style></head>
<body data-live="${p.live ? "1" : "0"}" data-refreshes="${p.snapshot.refreshes}">
<header><span class="brand">buquet</span>${nav("overview", "/", "Overview")}${nav("tasks", "/tasks", "Tasks")}${
    nav("workers", "/workers", "Workers")
  }${nav("schedules", "/schedules", "Schedules")}${nav("workflows", "/workflows", "Workflows")}${nav("cost", "/cost", "Cost")}<a href="/metrics">Metrics</a><a href="/api/v1/overview">API</a></header>
${p.before === undefined ? "" : html`<div class="bar">${p.before}</div>`}
<main id="live">${p.body}</main>
${p.after ?? ""}
<footer><span id="status">${statusLine(p.snapshot)}</span></footer>
<script>${script}</script></body></html>`
}

/** The footer's refresh status. */
export const statusLine = (s: Snapshot): string =>
  s.refreshes === 0
    ? "not refreshed yet"
    : `refresh #${s.refreshes} at ${fmtTime(Option.getOrUndefined(s.refreshedAt))} · last refresh cost ${costText(s.lastCost)}` +
      (Option.isSome(s.error) ? ` · error: ${s.error.value}` : "")

// --- overview --------------------------------------------------------------------------------------

/** The overview: the per-type table first, then counts per status and the charts (the refresh cost has its own page, /cost). */
export const overview = (s: Snapshot): Html => {
  const total = allStatuses.reduce((a, st) => a + s.counts[st], 0)
  const cards = allStatuses.map((st) =>
    html`<a class="card" href="${href`/tasks?status=${st}`}" data-status="${st}"><div class="n">${s.counts[st]}</div><div class="l">${st}</div></a>`
  )
  const minuteLabel = (ms: number) => DateTime.formatIso(DateTime.unsafeMake(ms)).slice(11, 16)
  const throughput = stackedBars(
    s.throughput.map((m) => ({ label: minuteLabel(m.minute), values: [m.completed, m.failed, m.retried] })),
    {
      title: `Throughput per minute (last ${s.throughput.length} min, server time UTC)`,
      series: [{ name: "completed", color: "#1f9d55" }, { name: "failed", color: "#d64545" }, { name: "retried", color: "#dd9a2b" }]
    }
  )
  const depth = stackedBars(
    s.depth.map((d) => ({ label: d.shard, values: [d.pending, d.running] })),
    { title: "Queue depth per shard", series: [{ name: "pending", color: "#8a8a94" }, { name: "running", color: "#2f6fdf" }] }
  )
  const healthy = s.workers.filter((w) => w.healthy).length
  return html`<h2>Overview</h2>
${Option.isSome(s.error) ? html`<div class="notice error">Last refresh failed: ${s.error.value}</div>` : ""}
${typeTable(s)}
<div class="cards">${cards}<div class="card"><div class="n" data-total>${total}</div><div class="l">total</div></div>
<a class="card" href="/workers"><div class="n">${healthy}/${s.workers.length}</div><div class="l">healthy workers</div></a></div>
<div class="grid2">${throughput}${depth}</div>
<p class="muted">What reading the bucket costs: <a href="/cost">refresh cost</a>.${
    s.malformed.length > 0 ? html` ${s.malformed.length} object(s) could not be decoded: ${s.malformed.slice(0, 5).map((m) => m.key).join(", ")}` : ""
  }</p>`
}

// --- tasks -----------------------------------------------------------------------------------------

/** The task list's filters and order (already validated). */
export interface TaskFilters {
  readonly status: TaskStatus | undefined
  readonly taskType: string | undefined
  readonly shard: string | undefined
  /** Only tasks updated within this window (`15m`, `1h`, `6h`, `24h`, `7d`), or all. */
  readonly time: TimeWindow
  /** The order (`buquet list --sort`'s): newest created first by default. */
  readonly sort: ListSort
  readonly page: number
}

/** The task list's default order, as `buquet list`'s: creation time, newest first. */
export const defaultSort: ListSort = "created"

/** How each order reads in the sort control. */
const sortLabels: Readonly<Record<ListSort, string>> = {
  created: "newest created first",
  "created-asc": "oldest created first",
  updated: "recently updated first",
  key: "storage order (shard, id)"
}

/** The time windows of the task filter. */
export const timeWindows = { "15m": 15 * 60_000, "1h": 3_600_000, "6h": 6 * 3_600_000, "24h": 24 * 3_600_000, "7d": 7 * 86_400_000, all: Infinity } as const

/** A time window of the task filter. */
export type TimeWindow = keyof typeof timeWindows

/** Tasks per page. */
export const pageSize = 50

/** Applies the filters to the snapshot's tasks, in the filters' order. */
export const filterTasks = (s: Snapshot, f: Omit<TaskFilters, "page">): ReadonlyArray<Task> => {
  const now = Option.getOrUndefined(s.refreshedAt)
  const since = now === undefined || f.time === "all" ? -Infinity : DateTime.toEpochMillis(now) - timeWindows[f.time]
  return s.tasks.filter((t) =>
    (f.status === undefined || t.status === f.status) &&
    (f.taskType === undefined || t.taskType === f.taskType) &&
    (f.shard === undefined || t.shard === f.shard) &&
    DateTime.toEpochMillis(t.updatedAt) >= since
  ).sort(compareTasks(f.sort))
}

/**
 * A link to a task showing its short id (the unique prefix `buquet get` takes); the full id is
 * the link's target and its tooltip.
 */
export const taskLink = (s: Snapshot, id: string, className = ""): Html =>
  html`<a class="mono ${className}" href="${href`/tasks/${id}`}" title="${id}" data-full-id="${id}">${s.shortIds.get(id) ?? id}</a>`

const query = (f: TaskFilters, page: number): string => {
  const q = new URLSearchParams()
  if (f.status !== undefined) q.set("status", f.status)
  if (f.taskType !== undefined) q.set("type", f.taskType)
  if (f.shard !== undefined) q.set("shard", f.shard)
  if (f.time !== "all") q.set("time", f.time)
  if (f.sort !== defaultSort) q.set("sort", f.sort)
  if (page > 1) q.set("page", String(page))
  const text = q.toString()
  return text === "" ? "" : `?${text}`
}

/** The filter form (outside the live region). */
export const taskFilterForm = (s: Snapshot, f: TaskFilters, shardPrefixLen: number): Html => {
  const types = [...new Set(s.tasks.map((t) => t.taskType))].sort()
  const option = (value: string, label: string, selected: boolean) =>
    html`<option value="${value}"${selected ? raw(" selected") : ""}>${label}</option>`
  const shards = shardPrefixLen <= 2 ? allShards(shardPrefixLen) : [...new Set(s.tasks.map((t) => t.shard))].sort()
  return html`<form method="get" action="/tasks" id="filters">
<label>Status <select name="status" id="filter-status">${option("", "all", f.status === undefined)}${allStatuses.map((st) => option(st, st, f.status === st))}</select></label>
<label>Type <select name="type" id="filter-type">${option("", "all", f.taskType === undefined)}${types.map((t) => option(t, t, f.taskType === t))}</select></label>
<label>Shard <select name="shard" id="filter-shard">${option("", "all", f.shard === undefined)}${shards.map((sh) => option(sh, sh, f.shard === sh))}</select></label>
<label>Updated <select name="time" id="filter-time">${
    (Object.keys(timeWindows) as Array<TimeWindow>).map((w) => option(w === "all" ? "" : w, w === "all" ? "any time" : `last ${w}`, f.time === w))
  }</select></label>
<label>Sort <select name="sort" id="filter-sort">${listSorts.map((o) => option(o, sortLabels[o], f.sort === o))}</select></label>
<button type="submit" id="apply-filters">Apply</button></form>`
}

/** The flag of a pending task whose type no live worker handles (nothing when handled or unknown). */
const unhandledFlag = (handling: Handling, taskType: string): Html | string =>
  handling === "unhandled" ? html` <span class="badge unhandled" title="${describeHandling(handling, taskType)}">no worker</span>` : ""

/** Above the task table: the types with pending tasks that no live worker handles. */
const unhandledNotice = (s: Snapshot): Html | string => {
  const unhandled = [...unhandledPending(s.coverage, s.tasks)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  if (unhandled.length === 0) return ""
  return html`<div class="notice error" id="unhandled-types">No live worker handles ${
    unhandled.map(([type, n], i) => html`${i === 0 ? "" : ", "}<a href="${href`/tasks?status=pending&type=${type}`}" class="mono">${type}</a> (${n} pending)`)
  }: these tasks stay pending until a worker that handles the type starts. Check the type's spelling and the workers' task types.</div>`
}

/** The task table (live region of /tasks): how many match, then one page in the chosen order. */
export const taskTable = (s: Snapshot, f: TaskFilters): Html => {
  const all = filterTasks(s, f)
  const pages = Math.max(1, Math.ceil(all.length / pageSize))
  const page = Math.min(Math.max(1, f.page), pages)
  const from = (page - 1) * pageSize
  const shown = all.slice(from, from + pageSize)
  const rows = shown.map((t) =>
    html`<tr data-task-id="${t.id}"><td>${taskLink(s, t.id, "task-link")}</td><td>${t.taskType}</td><td>${badge(t.status)}${t.status === "pending" ? unhandledFlag(handlingOf(s.coverage, t.taskType), t.taskType) : ""}</td><td>${t.shard}</td><td>${t.attempt}</td><td title="${
      fmtTime(t.createdAt)
    }">${ago(t.createdAt, s.refreshedAt)}</td><td title="${fmtTime(t.updatedAt)}">${ago(t.updatedAt, s.refreshedAt)}</td><td>${
      t.lastError === null ? "" : t.lastError.slice(0, 120)
    }</td></tr>`
  )
  return html`<h2>Tasks <span class="muted" id="match-count" data-matched="${all.length}">${all.length} task${all.length === 1 ? "" : "s"} match${
    all.length === 1 ? "es" : ""
  }${all.length > shown.length ? ` · showing ${from + 1}–${from + shown.length}` : ""} · ${sortLabels[f.sort]}</span></h2>
${unhandledNotice(s)}
<table id="task-table"><thead><tr><th>Id</th><th>Type</th><th>Status</th><th>Shard</th><th>Attempt</th><th>Created</th><th>Updated</th><th>Last error</th></tr></thead>
<tbody>${rows.length === 0 ? html`<tr><td colspan="8" class="muted">No tasks match.</td></tr>` : rows}</tbody></table>
<p>${page > 1 ? html`<a href="/tasks${query(f, page - 1)}" rel="prev">← previous</a> ` : ""}page ${page} of ${pages}${
    page < pages ? html` <a href="/tasks${query(f, page + 1)}" rel="next">next →</a>` : ""
  }</p>`
}

// --- task detail ------------------------------------------------------------------------------------

/** What the detail page shows besides the task. */
export interface TaskDetailExtras {
  readonly input: unknown
  readonly output: unknown
  readonly history: TaskHistory | undefined
  readonly notice: string | undefined
  readonly csrf: string
  readonly now: Option.Option<DateTime.Utc>
  /** The task's short id (its unique prefix among the tasks the dashboard has read), if known. */
  readonly shortId?: string | undefined
  /** Whether a live worker handles the task's type (pending tasks; from the snapshot). */
  readonly handling?: Handling | undefined
  /** A flow parent's children as they are now (`missing` once deleted, `unknown` if unread). */
  readonly children?: ReadonlyArray<ChildState> | undefined
}

/**
 * A flow's child as its parent's page shows it: its current status (`missing` once deleted, or the
 * outcome it reported when the page did not read it).
 */
export interface ChildState {
  readonly id: string
  readonly taskType: string
  readonly status: string
}

const link = (id: string): Html => html`<a class="mono" href="${href`/tasks/${id}`}" title="${id}">${id}</a>`

/** A flow parent's children, with what each reported to the parent and its state now. */
const flowChildren = (t: Task, x: TaskDetailExtras): Html => {
  if (t.flow === undefined) return html``
  const live = new Map((x.children ?? []).map((c) => [c.id, c.status]))
  const rows = t.flow.children.map((c) =>
    html`<tr><td>${link(c.id)}</td><td>${c.taskType}</td><td>${badge(live.get(c.id) ?? "unknown")}</td><td>${
      c.outcome === undefined ? html`<span class="muted">not yet</span>` : badge(c.outcome)
    }</td><td>${c.failParent === true ? "fails the parent" : ""}</td></tr>`
  )
  const ended = t.flow.children.filter((c) => c.outcome !== undefined).length
  return html`<section id="task-children"><h3>Children <span class="muted">${ended} of ${t.flow.children.length} reported their end${
    t.flow.outbox === undefined ? "" : " — not all created yet (lease recovery creates them)"
  }</span></h3>
<table><thead><tr><th>Child</th><th>Type</th><th>Status now</th><th>Reported</th><th></th></tr></thead><tbody>${rows}</tbody></table></section>`
}

/** The tasks a completion enqueues, and whether they exist yet. */
const followUps = (t: Task): Html => {
  if (t.followUps === undefined) return html``
  const rows = t.followUps.tasks.map((f) => html`<tr><td>${link(f.id)}</td><td>${f.taskType}</td></tr>`)
  return html`<section id="task-follow-ups"><h3>Follow-ups <span class="muted">${
    t.followUps.materializedAt === undefined
      ? "not created yet (lease recovery creates them)"
      : html`created ${fmtTime(t.followUps.materializedAt)}`
  }</span></h3>
<table><thead><tr><th>Task</th><th>Type</th></tr></thead><tbody>${rows}</tbody></table></section>`
}

const handlingText: Record<Handling, string> = {
  handled: "a live worker handles this type",
  unhandled: "none handles this type",
  unknown: "unknown (a live worker's record does not list its types)"
}

/** The task's fields, payloads, transition timeline and actions (live region of /tasks/:id). */
export const taskDetail = (t: Task, x: TaskDetailExtras): Html => {
  const action = (name: string, label: string, danger = false) =>
    html`<form class="inline" method="post" action="${href`/tasks/${t.id}/${name}`}">${csrfField(x.csrf)}<button type="submit" id="action-${name}" class="${
      danger ? "danger" : ""
    }">${label}</button></form> `
  const actions = [
    t.status === "pending" || t.status === "running" ? action("cancel", "Cancel", true) : "",
    t.status === "failed" || t.status === "cancelled" || t.status === "expired" ? action("replay", "Replay") : "",
    isTerminal(t.status) && t.status !== "archived" ? action("archive", "Archive") : ""
  ]
  const field = (label: string, value: Html | string | number | null | undefined) => html`<dt>${label}</dt><dd>${value ?? "—"}</dd>`
  const events = t.events ?? []
  const waiting = isWaitingParent(t)
  const timeline = events.map((e) =>
    html`<tr><td title="${fmtTime(e.at)}">${fmtTime(e.at)}</td><td>${e.from === null ? "∅" : badge(e.from)} → ${badge(e.to)}</td><td>${e.attempt}</td><td class="mono">${
      e.workerId ?? ""
    }</td><td>${e.error ?? ""}${
      e.stack === undefined ? "" : html`<details class="stack"><summary>stack trace</summary><pre>${e.stack}</pre></details>`
    }</td></tr>`
  )
  return html`<h2>Task <span class="mono" id="task-id">${t.id}</span> ${badge(t.status)}${
    x.shortId === undefined ? "" : html` <span class="muted">short id <span class="mono" id="task-short-id">${x.shortId}</span></span>`
  }</h2>
${x.notice === undefined ? "" : html`<div class="notice" id="notice">${x.notice}</div>`}
${
    t.status === "pending" && x.handling === "unhandled"
      ? html`<div class="notice error" id="unhandled">${describeHandling(x.handling, t.taskType)}</div>`
      : ""
  }
<p id="actions">${actions}</p>
<div class="grid2"><dl class="fields">
${field("type", t.taskType)}${field("status", html`<span id="task-status">${t.status}</span>${
    waiting ? ` (waiting for its children: ${t.flow!.children.filter((c) => c.outcome !== undefined).length} of ${t.flow!.children.length} ended)` : ""
  }`)}${field("shard", t.shard)}
${t.parentId === undefined ? "" : field("parent", html`<span id="task-parent">${link(t.parentId)}</span>`)}
${t.status === "pending" && x.handling !== undefined ? field("live worker", html`<span id="task-handling">${handlingText[x.handling]}</span>`) : ""}
${field("attempt", t.attempt)}${field("retries", `${t.retryCount} of ${t.maxRetries}`)}${field("reschedules", t.rescheduleCount)}
${field("worker", t.workerId)}${field("lease expires", fmtTime(t.leaseExpiresAt))}${field("created", fmtTime(t.createdAt))}
${field("updated", `${fmtTime(t.updatedAt)} (${ago(t.updatedAt, x.now)})`)}${field("available", waiting ? "when its children have ended" : fmtTime(t.availableAt))}
${field("completed", fmtTime(t.completedAt))}${field("timeout", `${t.timeoutSeconds} s`)}${field("priority", t.priority ?? 0)}
${field("tags", (t.tags ?? []).join(", "))}${field("expires", fmtTime(t.expiresAt))}${field("cancel requested", t.cancelRequested ? "yes" : "no")}
${field("trace", t.traceparent)}${field("last error", t.lastError)}
</dl><div><h3>Input${t.inputRef === undefined ? "" : html` <span class="muted">(${t.inputRef})</span>`}</h3><pre id="task-input">${prettyJson(x.input)}</pre>
<h3>Output${t.outputRef === undefined ? "" : html` <span class="muted">(${t.outputRef})</span>`}</h3><pre id="task-output">${prettyJson(x.output)}</pre>
${t.progress === undefined ? "" : html`<h3>Progress</h3><pre>${prettyJson(t.progress)}</pre>`}</div></div>
${flowChildren(t, x)}${followUps(t)}
<h3>Transitions</h3>
<table id="timeline"><thead><tr><th>At</th><th>Change</th><th>Attempt</th><th>Worker</th><th>Error</th></tr></thead><tbody>${
    timeline.length === 0 ? html`<tr><td colspan="5" class="muted">No transition log (written by an older producer).</td></tr>` : timeline
  }</tbody></table>`
}

/** The stored S3 versions (outside the live region: listing them costs requests). */
export const taskVersions = (history: TaskHistory | undefined): Html => {
  if (history === undefined || history.versions.length === 0) {
    return html`<div class="bar"><h3>Versions</h3><p class="muted">This bucket keeps no versions of the task; the transition log above is its history.</p></div>`
  }
  const rows = history.versions.map((v) =>
    html`<tr><td class="mono">${v.versionId}</td><td>${fmtTime(v.lastModified)}</td><td>${v.isLatest ? "latest" : ""}</td><td>${
      v.task === undefined ? "—" : badge(v.task.status)
    }</td><td>${v.task?.attempt ?? ""}</td></tr>`
  )
  return html`<div class="bar"><h3>Versions</h3><table><thead><tr><th>Version</th><th>Modified</th><th></th><th>Status</th><th>Attempt</th></tr></thead><tbody>${rows}</tbody></table></div>`
}

// --- workers and schedules ---------------------------------------------------------------------------

/** Workers: health (a heartbeat within three intervals), current tasks, counters. */
export const workers = (s: Snapshot): Html => {
  const rows = s.workers.map((w) =>
    html`<tr><td class="mono">${w.record.workerId}</td><td>${badge(w.healthy ? "healthy" : "stale")}</td><td title="${fmtTime(w.record.lastHeartbeat)}">${
      ago(w.record.lastHeartbeat, s.refreshedAt)
    }</td><td>${
      w.currentTasks.length === 0 ? html`<span class="muted">idle</span>` : w.currentTasks.map((id) => html`${taskLink(s, id)} `)
    }</td><td>${w.record.tasksCompleted}</td><td>${w.record.tasksFailed}</td><td>${w.record.tasksRetried ?? "—"}</td><td>${
      w.record.shards.length === 0 ? "all" : w.record.shards.join(" ")
    }</td><td>${
      w.record.taskTypes === undefined ? html`<span class="muted" title="an older worker: its record does not list its types">unknown</span>` : w.record.taskTypes.join(" ")
    }</td><td>${w.record.buquetVersion ?? ""}</td><td>${w.record.hostname ?? ""}</td><td>${fmtTime(w.record.startedAt)}</td></tr>`
  )
  return html`<h2>Workers <span class="muted">${s.workers.filter((w) => w.healthy).length} healthy of ${s.workers.length}</span></h2>
<table id="workers"><thead><tr><th>Worker</th><th>Health</th><th>Heartbeat</th><th>Current tasks</th><th>Completed</th><th>Failed</th><th>Retried</th><th>Shards</th><th>Task types</th><th>Version</th><th>Host</th><th>Started</th></tr></thead>
<tbody>${rows.length === 0 ? html`<tr><td colspan="12" class="muted">No worker records in workers/.</td></tr>` : rows}</tbody></table>`
}

/** Schedules: definition, last and next run; actions when the Scheduler service is provided. */
export const schedules = (s: Snapshot, csrf: string, actions: boolean): Html => {
  const rows = s.schedules.map((sc) => {
    const id = sc.record.id
    const act = (name: string, label: string) =>
      html`<form class="inline" method="post" action="${href`/schedules/${id}/${name}`}">${csrfField(csrf)}<button type="submit">${label}</button></form> `
    return html`<tr><td class="mono">${id}</td><td>${sc.record.taskType}</td><td class="mono">${sc.record.cron}</td><td>${sc.record.timezone ?? "UTC"}</td><td>${
      sc.record.enabled ? "enabled" : "disabled"
    }</td><td>${fmtTime(sc.lastRun?.lastRunAt)}${
      sc.lastRun?.lastTaskId === undefined ? "" : html` ${taskLink(s, sc.lastRun.lastTaskId)}`
    }</td><td>${sc.problem ?? fmtTime(sc.nextRun)}</td><td>${
      actions ? [sc.record.enabled ? act("disable", "Disable") : act("enable", "Enable"), act("trigger", "Trigger now")] : ""
    }</td></tr>`
  })
  const advice = SchedulerLoop.notRunningAdvice
  return html`<h2>Schedules</h2>
${s.schedulerRunning === false ? html`<div class="notice error" id="no-scheduler">${advice.charAt(0).toUpperCase()}${advice.slice(1)}.</div>` : ""}
${actions ? "" : html`<p class="muted">Read-only: this dashboard runs without the scheduler service, so enable / disable / trigger are not offered.</p>`}
<table id="schedules"><thead><tr><th>Id</th><th>Task type</th><th>Cron</th><th>Zone</th><th>State</th><th>Last run</th><th>Next run</th><th></th></tr></thead>
<tbody>${rows.length === 0 ? html`<tr><td colspan="8" class="muted">No schedules.</td></tr>` : rows}</tbody></table>`
}

/** A plain message page body. */
export const message = (title: string, text: string, error = false): Html =>
  html`<h2>${title}</h2><div class="notice${error ? " error" : ""}">${text}</div>`
