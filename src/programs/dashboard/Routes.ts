/**
 * The dashboard's HTTP app: HTML pages, the JSON API under `/api/v1`, the SSE stream `/events`,
 * and Prometheus text at `/metrics`, behind the access guard (token / Host check) and with CSRF
 * protection on every POST.
 *
 * Every page and API read comes from the shared snapshot (no request to the bucket per tab);
 * the task detail page reads the one task (GET, plus versions where the bucket keeps them), and
 * actions go through the Queue / Scheduler and then refresh the snapshot once.
 *
 * Every response, whatever route or error produced it, carries the same security headers
 * (`nosniff`, a Content-Security-Policy that allows only the page's own script, no framing, no
 * referrer, no caching), set in one place: {@link makeApp}'s outermost step.
 *
 * @module
 */
import { createHash } from "node:crypto"
// sub-path imports: the "@effect/platform" index loads every module of the package (~30 MB)
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as UrlParams from "@effect/platform/UrlParams"
import { Cause, DateTime, Effect, Option, Schema } from "effect"
import { isShard } from "../../domain/Shard.js"
import { Task } from "../../domain/Task.js"
import { isListSort } from "../../domain/TaskOrder.js"
import { allStatuses } from "../../domain/TaskStatus.js"
import type { TaskStatus } from "../../domain/TaskStatus.js"
import { exposition, contentType as prometheusContentType } from "../../layers/Metrics.js"
import type { QueueService, TaskHistory } from "../../services/Queue.js"
import type { SchedulerService } from "../../services/Scheduler.js"
import { Storage } from "../../services/Storage.js"
import type { StorageService } from "../../services/Storage.js"
import { resolveTaskId } from "../../protocol/TaskIdPrefix.js"
import type { QueueSnapshot, Snapshot } from "../QueueSnapshot.js"
import type { Html } from "./Html.js"
import * as EventStreams from "./EventStreams.js"
import { costPage } from "./CostPage.js"
import * as Pages from "./Pages.js"
import * as WorkflowPages from "./WorkflowPages.js"
import { WorkflowRunId } from "../../domain/workflow/RunKeys.js"
import { describeHold, recordedDefinition, runProgress, runSummaryJson, signalConsumed, stepRowJson, stepRows, stepsHeldByPause } from "../../domain/workflow/RunView.js"
import { WorkflowState } from "../../domain/workflow/WorkflowState.js"
import { listRuns, listSignals, readRun } from "../../protocol/WorkflowRunListing.js"
import * as TypeStats from "../TypeStats.js"
import { handlingOf } from "../../domain/TypeCoverage.js"
import * as QueueMetrics from "./QueueMetrics.js"
import type { Secrets } from "./Security.js"
import { crossSiteReason, hasToken, isLoopbackHostHeader, isTls, sameSecret, sameSiteLocation, tokenCookie } from "./Security.js"

/** What the app is built on. */
export interface AppDeps {
  readonly queue: QueueService
  readonly storage: StorageService
  readonly snapshot: QueueSnapshot
  readonly secrets: Secrets
  /** Present when the Scheduler service was provided: schedule actions are offered. */
  readonly scheduler: Option.Option<SchedulerService>
  readonly shardPrefixLen: number
  /** The live-update streams (`/events`). */
  readonly events: EventStreams.EventStreams
}

// the page script is constant: allow exactly it by hash, so even a missed escape could not run script
const scriptHash = (): string => createHash("sha256").update(Pages.scriptSource).digest("base64")

const securityHeaders = (hash: string) => ({
  "content-security-policy":
    `default-src 'none'; script-src 'sha256-${hash}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; ` +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-store"
})

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === "" ? undefined : v.trim())

/** The fixed notices of `?done=` (never echo user text; a Map, so `constructor` is no key). */
const notices: ReadonlyMap<string, string> = new Map([
  ["replay", "Replayed: the task is pending again with a fresh retry budget."],
  ["archive", "Archived."],
  ["cancelled", "Cancelled."],
  ["cancel_requested", "Cancellation requested: the worker interrupts the handler and records it."],
  ["already_terminal", "Nothing to cancel: the task had already finished."],
  ["not_found", "The task no longer exists."]
])

/** HTTP status and message of a failed action. */
const failure = (error: { readonly _tag: string; readonly message: string }): { readonly status: number; readonly message: string } => {
  switch (error._tag) {
    case "InvalidArgument":
      return { status: 400, message: error.message }
    case "TaskNotFound":
    case "ScheduleNotFound":
      return { status: 404, message: error.message }
    case "IllegalTransition":
      return { status: 409, message: error.message }
    default:
      return { status: 503, message: error.message }
  }
}

const encodeTask = Schema.encodeSync(Task)

/** The workflow pages read at most this many runs per request (one GET each). */
const runPageLimit = 500

/** Builds the dashboard's HTTP app. */
export const makeApp = (deps: AppDeps) => {
  const { queue, secrets, snapshot } = deps
  const headers = securityHeaders(scriptHash())

  const page = (body: Html, status = 200) => HttpServerResponse.text(body.value, { status, contentType: "text/html; charset=utf-8" })
  const json = (data: unknown, status = 200) => HttpServerResponse.unsafeJson(data, { status })

  // URLSearchParams, not a parsed record: `?constructor=` or `?__proto__=` are only ever strings
  const search = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const params = new URL(request.url, "http://dashboard.local").searchParams
    return (name: string) => params.get(name) ?? undefined
  })
  const isFragment = Effect.map(search, (q) => q("fragment") === "1")

  const full = (p: Omit<Parameters<typeof Pages.layout>[0], "csrf">) => page(Pages.layout({ ...p, csrf: secrets.csrf }))

  /** A page with a live region: the whole page, or only the region for `?fragment=1`. */
  const livePage = (p: {
    readonly title: string
    readonly tab: Pages.Tab | undefined
    readonly snapshot: Snapshot
    readonly body: Html
    readonly before?: Html | undefined
    readonly after?: Html | undefined
  }) => Effect.map(isFragment, (fragment) => (fragment ? page(p.body) : full({ ...p, live: true })))

  const errorPage = (title: string, text: string, status: number) =>
    Effect.map(snapshot.current, (s) => full({ title, tab: undefined, snapshot: s, live: false, body: Pages.message(title, text, true) })).pipe(
      Effect.map(HttpServerResponse.setStatus(status))
    )

  // --- CSRF -------------------------------------------------------------------------------------

  const csrfValid = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (sameSecret(request.headers["x-csrf-token"], secrets.csrf)) return true
    // media types are case-insensitive (RFC 9110 §8.3.1)
    const type = (request.headers["content-type"] ?? "").trim().toLowerCase()
    if (!type.startsWith("application/x-www-form-urlencoded")) return false
    const params = yield* Effect.orElseSucceed(request.urlParamsBody, () => UrlParams.empty)
    return sameSecret(Option.getOrUndefined(UrlParams.getFirst(params, "_csrf")), secrets.csrf)
  })

  const forbidden = (api: boolean) =>
    api
      ? Effect.succeed(json({ error: "missing or wrong CSRF token: send the X-CSRF-Token header (GET /api/v1/csrf gives it)" }, 403))
      : errorPage("Forbidden", "This action needs the page's CSRF token: reload the page and try again.", 403)

  /** Runs a POST handler only with a valid CSRF token; 403 otherwise. */
  const withCsrf = <E, R>(api: boolean, handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    Effect.flatMap(csrfValid, (ok) => (ok ? handler : forbidden(api)))

  // --- filters ----------------------------------------------------------------------------------

  const filters = Effect.map(search, (q): Pages.TaskFilters => {
    const status = nonEmpty(q("status"))
    const shard = nonEmpty(q("shard"))
    const time = nonEmpty(q("time"))
    const sort = nonEmpty(q("sort"))
    const pageNo = Number(q("page") ?? "1")
    return {
      status: status !== undefined && (allStatuses as ReadonlyArray<string>).includes(status) ? (status as TaskStatus) : undefined,
      taskType: nonEmpty(q("type")),
      shard: shard !== undefined && isShard(shard, deps.shardPrefixLen) ? shard : undefined,
      time: time !== undefined && Object.hasOwn(Pages.timeWindows, time) ? (time as Pages.TimeWindow) : "all",
      sort: sort !== undefined && isListSort(sort) ? sort : Pages.defaultSort,
      page: Number.isInteger(pageNo) && pageNo > 0 ? pageNo : 1
    }
  })

  // --- task detail and actions --------------------------------------------------------------------

  const payloads = (task: Task) =>
    Effect.all({
      input: task.inputRef === undefined ? Effect.succeed(task.input) : Effect.orElseSucceed(queue.loadInput(task), () => null),
      output: task.outputRef === undefined ? Effect.succeed(task.output) : Effect.orElseSucceed(queue.loadOutput(task), () => null)
    })

  const versionsOf = (taskId: string) =>
    Effect.gen(function*() {
      const caps = yield* deps.storage.capabilities
      if (caps.versioning !== "enabled" && caps.versioning !== "suspended") return undefined
      return yield* queue.history(taskId)
    }).pipe(Effect.orElseSucceed((): TaskHistory | undefined => undefined))

  const taskDetailPage = Effect.gen(function*() {
    const { id } = yield* HttpRouter.params
    const q = yield* search
    const fragment = q("fragment") === "1"
    const s = yield* snapshot.current
    // a short id (a unique prefix, as `buquet get` takes it) leads to the task's full-id page
    const resolved = yield* resolveTaskId(id ?? "", deps.shardPrefixLen).pipe(Effect.provideService(Storage, deps.storage))
    switch (resolved._tag) {
      case "NotFound":
        return yield* errorPage("Not found", `No task ${resolved.prefix}.`, 404)
      case "Invalid":
        // not the form of an id at all: the request is wrong, not the bucket (the hardening suite's rule)
        return yield* errorPage("Bad request", `${resolved.message}.`, 400)
      case "Ambiguous":
        return yield* errorPage(
          "Ambiguous id",
          `The task id prefix ${resolved.prefix} matches ${resolved.candidates.join(", ")}${resolved.more ? " and more" : ""}: give more characters.`,
          400
        )
      case "Found":
        if (resolved.id !== id) return HttpServerResponse.redirect(`/tasks/${encodeURIComponent(resolved.id)}`, { status: 303 })
    }
    const taskId = resolved.id
    // the live region re-renders from the snapshot; the full page reads the task itself
    const fromSnapshot = fragment ? Option.fromNullable(s.byId.get(taskId)) : Option.none<Task>()
    const found = Option.isSome(fromSnapshot) ? fromSnapshot : yield* queue.get(taskId)
    if (Option.isNone(found)) return yield* errorPage("Not found", `No task ${taskId}.`, 404)
    const task = found.value
    const { input, output } = yield* payloads(task)
    // a flow parent's children as they are now: from the snapshot on a live refresh (no request),
    // one GET each on the full page, as `buquet get` does
    const children = task.flow === undefined ? undefined : yield* Effect.forEach(task.flow.children, (c) =>
      Effect.map(
        fragment ? Effect.succeed(Option.fromNullable(s.byId.get(c.id))) : queue.get(c.id),
        Option.match({
          onNone: () => ({ id: c.id, taskType: c.taskType, status: fragment ? (c.outcome ?? "unknown") : "missing" }),
          onSome: (found) => ({ id: c.id, taskType: c.taskType, status: found.status })
        })
      ), { concurrency: 8 })
    const done = q("done")
    const body = Pages.taskDetail(task, {
      input,
      output,
      history: undefined,
      notice: done === undefined ? undefined : notices.get(done),
      csrf: secrets.csrf,
      now: s.refreshedAt,
      shortId: s.shortIds.get(taskId),
      handling: handlingOf(s.coverage, task.taskType),
      children
    })
    if (fragment) return page(body)
    const history = yield* versionsOf(taskId)
    return full({ title: `Task ${taskId}`, tab: "tasks", snapshot: s, live: true, body, after: Pages.taskVersions(history) })
  }).pipe(
    Effect.catchAll((e) => {
      const f = failure(e)
      return errorPage("Error", f.message, f.status)
    })
  )

  type TaskAction = "cancel" | "replay" | "archive"
  const runAction = (action: TaskAction, taskId: string) =>
    Effect.gen(function*() {
      let result: { readonly outcome: string; readonly task: Task | undefined }
      if (action === "cancel") {
        const r = yield* queue.cancel(taskId, { reason: "cancelled from the dashboard", cancelledBy: "dashboard" })
        result = { outcome: r.outcome, task: r.task }
      } else {
        const task = action === "replay" ? yield* queue.replay(taskId) : yield* queue.archive(taskId)
        result = { outcome: action, task }
      }
      // one shared refresh, so every tab sees the change on its next event
      yield* snapshot.refreshNow
      return result
    })

  const taskActionHtml = (action: TaskAction) =>
    withCsrf(
      false,
      Effect.gen(function*() {
        const { id } = yield* HttpRouter.params
        const taskId = id ?? ""
        const result = yield* runAction(action, taskId)
        return HttpServerResponse.redirect(`/tasks/${encodeURIComponent(taskId)}?done=${result.outcome}`, { status: 303 })
      }).pipe(Effect.catchAll((e) => {
        const f = failure(e)
        return errorPage(`Could not ${action}`, f.message, f.status)
      }))
    )

  const taskActionApi = (action: TaskAction) =>
    withCsrf(
      true,
      Effect.gen(function*() {
        const { id } = yield* HttpRouter.params
        const result = yield* runAction(action, id ?? "")
        return json({ ok: true, outcome: result.outcome, task: result.task === undefined ? null : encodeTask(result.task) })
      }).pipe(Effect.catchAll((e) => {
        const f = failure(e)
        return Effect.succeed(json({ ok: false, error: e._tag, message: f.message }, f.status))
      }))
    )

  // --- schedules ---------------------------------------------------------------------------------------

  type ScheduleAction = "enable" | "disable" | "trigger"
  const runScheduleAction = (action: ScheduleAction, id: string) =>
    Option.match(deps.scheduler, {
      onNone: () =>
        Effect.fail({ _tag: "Unavailable", message: "the scheduler service is not running in this dashboard" } as const),
      onSome: (scheduler) =>
        (action === "enable"
          ? Effect.as(scheduler.enable(id), "enabled")
          : action === "disable"
          ? Effect.as(scheduler.disable(id), "disabled")
          : Effect.map(scheduler.triggerNow(id), (task) => `triggered ${task.id}`)).pipe(Effect.tap(() => snapshot.refreshNow))
    })

  const scheduleActionHtml = (action: ScheduleAction) =>
    withCsrf(
      false,
      Effect.gen(function*() {
        const { id } = yield* HttpRouter.params
        yield* runScheduleAction(action, id ?? "")
        return HttpServerResponse.redirect("/schedules", { status: 303 })
      }).pipe(Effect.catchAll((e) => {
        const f = failure(e)
        return errorPage(`Could not ${action}`, f.message, f.status)
      }))
    )

  const scheduleActionApi = (action: ScheduleAction) =>
    withCsrf(
      true,
      Effect.gen(function*() {
        const { id } = yield* HttpRouter.params
        const outcome = yield* runScheduleAction(action, id ?? "")
        return json({ ok: true, outcome })
      }).pipe(Effect.catchAll((e) => {
        const f = failure(e)
        return Effect.succeed(json({ ok: false, error: e._tag, message: f.message }, f.status))
      }))
    )

  // --- JSON views ----------------------------------------------------------------------------------------

  const time = (t: Option.Option<DateTime.Utc> | DateTime.Utc | undefined | null) =>
    t === undefined || t === null ? null : DateTime.isDateTime(t) ? DateTime.formatIso(t) : Option.match(t, { onNone: () => null, onSome: DateTime.formatIso })

  const overviewJson = (s: Snapshot) => ({
    refreshes: s.refreshes,
    refreshed_at: time(s.refreshedAt),
    refresh_millis: s.refreshMillis,
    counts: s.counts,
    total: s.tasks.length,
    depth: s.depth,
    throughput: s.throughput.map((m) => ({ ...m, minute: DateTime.formatIso(DateTime.unsafeMake(m.minute)) })),
    workers: { total: s.workers.length, healthy: s.workers.filter((w) => w.healthy).length },
    cost: { last_refresh: s.lastCost, all_refreshes: s.totalCost },
    unread: s.unread,
    complete: s.complete,
    malformed: s.malformed,
    error: Option.getOrNull(s.error)
  })

  /** The per-type overview: the same document as `buquet stats --json`. */
  const typesJson = (s: Snapshot) => TypeStats.statsDocument(s)

  const workersJson = (s: Snapshot) =>
    s.workers.map((w) => ({
      worker_id: w.record.workerId,
      healthy: w.healthy,
      last_heartbeat: time(w.record.lastHeartbeat),
      started_at: time(w.record.startedAt),
      current_tasks: w.currentTasks,
      tasks_completed: w.record.tasksCompleted,
      tasks_failed: w.record.tasksFailed,
      tasks_retried: w.record.tasksRetried ?? null,
      shards: w.record.shards,
      // null: an older worker whose record does not list its types (unknown, not "none")
      task_types: w.record.taskTypes ?? null,
      buquet_version: w.record.buquetVersion ?? null,
      hostname: w.record.hostname ?? null
    }))

  const schedulesJson = (s: Snapshot) =>
    s.schedules.map((sc) => ({
      id: sc.record.id,
      task_type: sc.record.taskType,
      cron: sc.record.cron,
      timezone: sc.record.timezone ?? null,
      enabled: sc.record.enabled,
      last_run_at: time(sc.lastRun?.lastRunAt),
      last_task_id: sc.lastRun?.lastTaskId ?? null,
      next_run_at: time(sc.nextRun),
      problem: sc.problem ?? null
    }))

  // --- workflow runs (read on request: a run changes without the snapshot knowing) ----------------

  const withStorage = <A, E>(self: Effect.Effect<A, E, Storage>) => Effect.provideService(self, Storage, deps.storage)

  const runStatusFilter = Effect.map(search, (q) => {
    const status = nonEmpty(q("status"))
    return status !== undefined && WorkflowPages.runStatuses.includes(status) ? status : undefined
  })

  const workflowListPage = Effect.gen(function*() {
    const status = yield* runStatusFilter
    const listing = yield* withStorage(listRuns({ limit: runPageLimit }))
    const s = yield* snapshot.current
    const body = WorkflowPages.runList({
      states: listing.runs.map((r) => r.state),
      malformed: listing.malformed,
      status,
      truncated: listing.truncated,
      limit: runPageLimit
    })
    return full({ title: "Workflow runs", tab: "workflows", snapshot: s, live: false, body })
  }).pipe(Effect.catchAll((e) => errorPage("Error", failure(e).message, failure(e).status)))

  /** The run an `:id` path names: 400 when it is not a run id's form, 404 when there is none. */
  const runOfPath = Effect.gen(function*() {
    const { id } = yield* HttpRouter.params
    const runId = Schema.decodeUnknownOption(WorkflowRunId)(id ?? "")
    if (Option.isNone(runId)) return { _tag: "Invalid", id: id ?? "" } as const
    const found = yield* withStorage(readRun(runId.value))
    if (Option.isNone(found)) return { _tag: "NotFound", id: runId.value } as const
    const inbox = yield* withStorage(listSignals(runId.value))
    const state = found.value.state
    const signals = inbox.signals.map((x) => ({ name: x.name, signalId: x.signalId, sentAt: x.ts, consumed: signalConsumed(state, x.name, x.suffix) }))
    // running steps a pause switch holds (their task waits unclaimed), as `buquet workflow show` says
    const pause = yield* queue.pauseState
    const held = stepsHeldByPause(state, pause).map((h) => ({ ...h, reason: describeHold(h, pause) }))
    return { _tag: "Found", state, signals, malformedSignals: inbox.malformed, held } as const
  })

  const workflowDetailPage = Effect.gen(function*() {
    const fragment = yield* isFragment
    const run = yield* runOfPath
    if (run._tag === "Invalid") return yield* errorPage("Bad request", `${run.id.slice(0, 80)} is not a workflow run id.`, 400)
    if (run._tag === "NotFound") return yield* errorPage("Not found", `No workflow run ${run.id}.`, 404)
    const body = WorkflowPages.runDetail({
      state: run.state,
      definition: recordedDefinition(run.state),
      signals: run.signals,
      malformedSignals: run.malformedSignals,
      held: run.held
    })
    if (fragment) return page(body)
    const s = yield* snapshot.current
    return full({ title: `Workflow run ${run.state.id}`, tab: "workflows", snapshot: s, live: true, body })
  }).pipe(Effect.catchAll((e) =>
    e._tag === "MalformedObject" ? errorPage("Unreadable run", e.message, 500) : errorPage("Error", failure(e).message, failure(e).status)
  ))

  const encodeRunState = Schema.encodeSync(WorkflowState)

  const workflowListApi = Effect.gen(function*() {
    const status = yield* runStatusFilter
    const listing = yield* withStorage(listRuns({ limit: runPageLimit }))
    return json({
      runs: listing.runs.map((r) => r.state).filter((st) => status === undefined || st.status === status).map(runSummaryJson),
      malformed: listing.malformed.map((m) => ({ key: m.key, message: m.message })),
      truncated: listing.truncated
    })
  }).pipe(Effect.catchAll((e) => Effect.succeed(json({ error: e._tag, message: failure(e).message }, failure(e).status))))

  const workflowDetailApi = Effect.gen(function*() {
    const run = yield* runOfPath
    if (run._tag === "Invalid") return json({ error: "InvalidArgument", message: `${run.id.slice(0, 80)} is not a workflow run id` }, 400)
    if (run._tag === "NotFound") return json({ error: "WorkflowRunNotFound", message: `no workflow run ${run.id}` }, 404)
    return json({
      state: encodeRunState(run.state),
      progress: runProgress(run.state),
      held_by_pause: run.held.map((h) => ({ step: h.step, task_type: h.taskType })),
      steps: stepRows(run.state).map(stepRowJson),
      signals: run.signals.map((x) => ({ name: x.name, id: x.signalId, sent_at: x.sentAt, consumed: x.consumed })),
      malformed_signals: run.malformedSignals.map((m) => ({ key: m.key, message: m.message }))
    })
  }).pipe(Effect.catchAll((e) =>
    Effect.succeed(json({ error: e._tag, message: e.message }, e._tag === "MalformedObject" ? 500 : failure(e).status))
  ))

  // --- the router --------------------------------------------------------------------------------------

  const router = HttpRouter.empty.pipe(
    HttpRouter.get(
      "/",
      Effect.flatMap(snapshot.fresh, (s) => livePage({ title: "Overview", tab: "overview", snapshot: s, body: Pages.overview(s) }))
    ),
    HttpRouter.get(
      "/cost",
      Effect.flatMap(snapshot.fresh, (s) => livePage({ title: "Refresh cost", tab: "cost", snapshot: s, body: costPage(s) }))
    ),
    HttpRouter.get(
      "/tasks",
      Effect.gen(function*() {
        const s = yield* snapshot.fresh
        const f = yield* filters
        return yield* livePage({
          title: "Tasks",
          tab: "tasks",
          snapshot: s,
          before: Pages.taskFilterForm(s, f, deps.shardPrefixLen),
          body: Pages.taskTable(s, f)
        })
      })
    ),
    HttpRouter.get("/tasks/:id", taskDetailPage),
    HttpRouter.post("/tasks/:id/cancel", taskActionHtml("cancel")),
    HttpRouter.post("/tasks/:id/replay", taskActionHtml("replay")),
    HttpRouter.post("/tasks/:id/archive", taskActionHtml("archive")),
    HttpRouter.get(
      "/workers",
      Effect.flatMap(snapshot.fresh, (s) => livePage({ title: "Workers", tab: "workers", snapshot: s, body: Pages.workers(s) }))
    ),
    HttpRouter.get(
      "/schedules",
      Effect.flatMap(snapshot.fresh, (s) =>
        livePage({
          title: "Schedules",
          tab: "schedules",
          snapshot: s,
          body: Pages.schedules(s, secrets.csrf, Option.isSome(deps.scheduler))
        }))
    ),
    HttpRouter.post("/schedules/:id/enable", scheduleActionHtml("enable")),
    HttpRouter.post("/schedules/:id/disable", scheduleActionHtml("disable")),
    HttpRouter.post("/schedules/:id/trigger", scheduleActionHtml("trigger")),
    HttpRouter.get("/workflows", workflowListPage),
    HttpRouter.get("/workflows/:id", workflowDetailPage),
    HttpRouter.get("/events", deps.events.respond),
    HttpRouter.get(
      "/metrics",
      Effect.map(
        Effect.all([Effect.map(snapshot.fresh, QueueMetrics.render), exposition, EventStreams.exposition(deps.events)]),
        (texts) => HttpServerResponse.text(texts.join(""), { contentType: prometheusContentType })
      )
    )
  )

  const api = HttpRouter.empty.pipe(
    HttpRouter.get("/api/v1/csrf", Effect.succeed(json({ csrf_token: secrets.csrf }))),
    HttpRouter.get("/api/v1/overview", Effect.map(snapshot.fresh, (s) => json(overviewJson(s)))),
    HttpRouter.get("/api/v1/types", Effect.map(snapshot.fresh, (s) => json(typesJson(s)))),
    HttpRouter.get(
      "/api/v1/tasks",
      Effect.gen(function*() {
        const s = yield* snapshot.fresh
        const f = yield* filters
        const q = yield* search
        const limit = Math.min(1000, Math.max(1, Number(q("limit") ?? "100") || 100))
        const offset = Math.max(0, Number(q("offset") ?? "0") || 0)
        const all = Pages.filterTasks(s, f)
        return json({
          total: all.length,
          offset,
          limit,
          refreshed_at: time(s.refreshedAt),
          tasks: all.slice(offset, offset + limit).map((t) => encodeTask(t))
        })
      })
    ),
    HttpRouter.get(
      "/api/v1/tasks/:id",
      Effect.gen(function*() {
        const { id } = yield* HttpRouter.params
        const found = yield* queue.get(id ?? "")
        if (Option.isNone(found)) return json({ error: "TaskNotFound", message: `no task ${id ?? ""}` }, 404)
        const history = yield* versionsOf(found.value.id)
        return json({
          task: encodeTask(found.value),
          versions: (history?.versions ?? []).map((v) => ({
            version_id: v.versionId,
            last_modified: time(v.lastModified),
            is_latest: v.isLatest,
            task: v.task === undefined ? null : encodeTask(v.task)
          }))
        })
      }).pipe(Effect.catchAll((e) => {
        const f = failure(e)
        return Effect.succeed(json({ error: e._tag, message: f.message }, f.status))
      }))
    ),
    HttpRouter.post("/api/v1/tasks/:id/cancel", taskActionApi("cancel")),
    HttpRouter.post("/api/v1/tasks/:id/replay", taskActionApi("replay")),
    HttpRouter.post("/api/v1/tasks/:id/archive", taskActionApi("archive")),
    HttpRouter.get("/api/v1/workers", Effect.map(snapshot.fresh, (s) => json(workersJson(s)))),
    HttpRouter.get("/api/v1/schedules", Effect.map(snapshot.fresh, (s) => json(schedulesJson(s)))),
    HttpRouter.post("/api/v1/schedules/:id/enable", scheduleActionApi("enable")),
    HttpRouter.post("/api/v1/schedules/:id/disable", scheduleActionApi("disable")),
    HttpRouter.post("/api/v1/schedules/:id/trigger", scheduleActionApi("trigger")),
    HttpRouter.get("/api/v1/workflows", workflowListApi),
    HttpRouter.get("/api/v1/workflows/:id", workflowDetailApi)
  )
  const routes = HttpRouter.concat(router, api)

  // --- the guard -----------------------------------------------------------------------------------------

  const guarded = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const api = request.url.startsWith("/api/")
    if (secrets.token === undefined) {
      // no token: only a loopback Host (a rebinding DNS name must not reach a token-less dashboard)
      if (!isLoopbackHostHeader(request.headers["host"])) {
        return HttpServerResponse.text("This dashboard only answers requests addressed to localhost.", { status: 403 })
      }
    } else if (!hasToken(secrets, request.headers["authorization"], request.cookies)) {
      const url = new URL(request.url, "http://dashboard.local")
      const offered = url.searchParams.get("token") ?? undefined
      if (request.method === "GET" && sameSecret(offered, secrets.token)) {
        url.searchParams.delete("token")
        return HttpServerResponse.redirect(sameSiteLocation(url), { status: 303 }).pipe(
          HttpServerResponse.unsafeSetCookie(tokenCookie, secrets.token, {
            httpOnly: true,
            sameSite: "strict",
            path: "/",
            secure: isTls(request.headers)
          })
        )
      }
      return HttpServerResponse.text("Unauthorized: open the dashboard with ?token=<token>, or send Authorization: Bearer <token>.", {
        status: 401,
        headers: { "www-authenticate": "Bearer" }
      })
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      const crossSite = crossSiteReason(request.headers)
      if (crossSite !== undefined) {
        const text = `Cross-site request refused: ${crossSite}. Actions are accepted only from the dashboard's own pages, ` +
          "or from clients that send no Origin (curl, scripts) with the CSRF token."
        return api ? json({ error: text }, 403) : yield* errorPage("Forbidden", text, 403)
      }
    }
    return yield* routes
  }).pipe(
    Effect.catchTag("RouteNotFound", () => errorPage("Not found", "There is no such page.", 404)),
    // anything else (a defect, a failed body read) is a 500 that still carries the headers below
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.failCause(cause)
        : Effect.as(
          Effect.logError("dashboard: the request failed", cause),
          HttpServerResponse.text("Internal error: the dashboard could not answer this request (its log has the details).", { status: 500 })
        )
    ),
    Effect.map(HttpServerResponse.setHeaders(headers))
  )

  return guarded
}
