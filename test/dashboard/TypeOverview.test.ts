/**
 * Issue 20 on the dashboard (HTTP, in memory, on TestClock): the first page opens with the
 * per-type overview (items 2), the refresh cost has its own page, task ids show in their short
 * form and link the full one (item 4), and the task list sorts newest created first with a sort
 * control and a match count (item 5).
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Option, TestClock } from "effect"
import * as TypeStats from "../../src/programs/TypeStats.js"
import { keyOfTaskId } from "../../src/protocol/TaskObjects.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { makeStack, request, rewriteTask, startDashboard } from "./support.js"
import type { Stack } from "./support.js"

const start = Date.parse("2026-03-01T12:00:00Z")
const iso = (millis: number) => new Date(millis).toISOString()

/** Rewrites a task as having run `runMillis`, finishing `endedAgo` ms before `start` with `to`. */
const finished = (stack: Stack, id: string, to: "completed" | "failed", endedAgo: number, runMillis: number) => {
  const end = start - endedAgo
  const claimed = end - runMillis
  return rewriteTask(stack, id, {
    status: to,
    attempt: 1,
    updated_at: iso(end),
    completed_at: to === "completed" ? iso(end) : null,
    events: [
      { at: iso(claimed - 1000), from: null, to: "pending", attempt: 0 },
      { at: iso(claimed), from: "pending", to: "running", attempt: 1, worker_id: "w-1" },
      { at: iso(end), from: "running", to, attempt: 1, worker_id: "w-1", ...(to === "failed" ? { error: "no" } : {}) }
    ]
  })
}

const putJson = (stack: Stack, key: string, json: unknown) =>
  Effect.orDie(stack.raw.put(key, new TextEncoder().encode(JSON.stringify(json))))

const worker = (id: string, heartbeatAgo: number, taskTypes: ReadonlyArray<string>) => ({
  worker_id: id,
  started_at: iso(start - 3_600_000),
  last_heartbeat: iso(start - heartbeatAgo),
  shards: [],
  current_task: null,
  tasks_completed: 0,
  tasks_failed: 0,
  task_types: taskTypes
})

const cell = (page: string, type: string, column: string): string | undefined => {
  const row = new RegExp(`<tr data-type="${type}">([\\s\\S]*?)</tr>`).exec(page)?.[1]
  const td = row === undefined ? null : new RegExp(`data-col="${column}"[^>]*>([\\s\\S]*?)</td>`).exec(row)
  return td === null ? undefined : td[1]!.replace(/<[^>]+>/g, "").trim()
}

describe("the dashboard's per-type overview (issue 20 item 2)", () => {
  it.scoped("the first page opens with one row per type; /api/v1/types has the same numbers; the cost table is on /cost", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      yield* TestClock.setTime(start - 3 * 3_600_000)
      const submit = (type: string) => Effect.orDie(stack.producer.submit(type, {}))
      // email: three completions of 1, 2 and 4 s; two of them within the last 10 minutes
      const [e1, e2, e3] = [yield* submit("email"), yield* submit("email"), yield* submit("email")]
      // report: one failure 10 min ago, one 2 h ago, a due pending task, a delayed one, a running one
      const [r1, r2, r3, r4, r5] = [yield* submit("report"), yield* submit("report"), yield* submit("report"), yield* submit("report"), yield* submit("report")]
      yield* TestClock.setTime(start)
      yield* finished(stack, e1.id, "completed", 5 * 60_000, 2000)
      yield* finished(stack, e2.id, "completed", 3 * 60_000, 4000)
      yield* finished(stack, e3.id, "completed", 20 * 60_000, 1000)
      yield* finished(stack, r1.id, "failed", 10 * 60_000, 500)
      yield* finished(stack, r2.id, "failed", 2 * 3_600_000, 500)
      yield* rewriteTask(stack, r3.id, { available_at: iso(start - 90_000) })
      yield* rewriteTask(stack, r4.id, { available_at: iso(start + 3_600_000) })
      yield* rewriteTask(stack, r5.id, { status: "running", attempt: 1, lease_expires_at: iso(start + 300_000), lease_id: "l", worker_id: "w-1" })
      // a healthy worker handling email and sms, a stale one handling report
      yield* putJson(stack, "workers/w-1.json", worker("w-1", 10_000, ["email", "sms"]))
      yield* putJson(stack, "workers/w-old.json", worker("w-old", 3_600_000, ["report"]))

      const dash = yield* startDashboard(stack)
      const api = JSON.parse((yield* request(`${dash.url}/api/v1/types`)).text) as { types: ReadonlyArray<Record<string, unknown>>; complete: boolean }
      expect(api.complete).toBe(true)
      expect(api.types).toEqual([
        {
          task_type: "email",
          pending: 0,
          running: 0,
          failed_last_hour: 0,
          completed_last_10m: 2,
          completed_per_minute: 0.2,
          oldest_pending_seconds: null,
          run_time_p50_ms: 2000,
          run_time_p95_ms: 4000,
          run_time_samples: 3,
          workers: ["w-1"]
        },
        {
          task_type: "report",
          pending: 2,
          running: 1,
          failed_last_hour: 1,
          completed_last_10m: 0,
          completed_per_minute: 0,
          oldest_pending_seconds: 90,
          run_time_p50_ms: null,
          run_time_p95_ms: null,
          run_time_samples: 0,
          workers: []
        },
        {
          task_type: "sms",
          pending: 0,
          running: 0,
          failed_last_hour: 0,
          completed_last_10m: 0,
          completed_per_minute: 0,
          oldest_pending_seconds: null,
          run_time_p50_ms: null,
          run_time_p95_ms: null,
          run_time_samples: 0,
          workers: ["w-1"]
        }
      ])

      const page = (yield* request(`${dash.url}/`)).text
      // the per-type table comes first, before the status cards and the charts
      expect(page.indexOf("id=\"types\"")).toBeGreaterThan(0)
      expect(page.indexOf("id=\"types\"")).toBeLessThan(page.indexOf("class=\"cards\""))
      expect(cell(page, "email", "rate")).toBe("0.2")
      expect(cell(page, "email", "p50")).toBe("2.0 s")
      expect(cell(page, "email", "p95")).toBe("4.0 s")
      expect(cell(page, "email", "workers")).toBe("w-1")
      expect(cell(page, "report", "pending")).toBe("2")
      expect(cell(page, "report", "running")).toBe("1")
      expect(cell(page, "report", "failed")).toBe("1")
      expect(cell(page, "report", "oldest")).toBe("1 min 30 s")
      expect(cell(page, "report", "workers")).toBe("none")
      // the request-cost table moved to its own page, linked from the navigation
      expect(page).not.toContain("data-cost=")
      expect(page).toContain("<a href=\"/cost\"")
      const cost = (yield* request(`${dash.url}/cost`)).text
      // one refresh so far: LIST of tasks/, workers/ and schedules/; one GET per task and worker record
      expect(cost).toMatch(/data-cost="LIST">3</)
      expect(cost).toMatch(/data-cost="GET">10</)
    }))
})

describe("the dashboard's task list: short ids, order, match count (issue 20 items 4 and 5)", () => {
  it.scoped("rows show each id's unique prefix linking the full id; a prefix URL leads to the task; an ambiguous one says so", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const a = yield* Effect.orDie(stack.producer.submit("alpha", {}))
      yield* Effect.orDie(stack.producer.submit("alpha", {}))
      // a twin sharing a's first 11 characters: both need 12 to be told apart
      const twin = a.id.slice(0, 11) + (a.id[11] === "0" ? "1" : "0") + a.id.slice(12)
      const body = Option.getOrThrow(yield* Effect.orDie(stack.raw.get(keyOfTaskId(a.id, 1)))).body
      const json = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>
      yield* putJson(stack, keyOfTaskId(twin, 1), { ...json, id: twin })

      const dash = yield* startDashboard(stack)
      const list = (yield* request(`${dash.url}/tasks`)).text
      const link = new RegExp(`<a class="mono task-link" href="/tasks/${a.id}" title="${a.id}" data-full-id="${a.id}">([^<]*)</a>`).exec(list)
      expect(link?.[1]).toBe(a.id.slice(0, 12))
      const twinLink = new RegExp(`href="/tasks/${twin}"[^>]*>([^<]*)</a>`).exec(list)
      expect(twinLink?.[1]).toBe(twin.slice(0, 12))

      // the task's page names its short id too, to type it into the CLI
      expect((yield* request(`${dash.url}/tasks/${a.id}`)).text).toContain(`<span class="mono" id="task-short-id">${a.id.slice(0, 12)}</span>`)
      const byPrefix = yield* request(`${dash.url}/tasks/${a.id.slice(0, 12)}`)
      expect(byPrefix.status).toBe(303)
      expect(byPrefix.headers.get("location")).toBe(`/tasks/${a.id}`)
      const ambiguous = yield* request(`${dash.url}/tasks/${a.id.slice(0, 11)}`)
      expect(ambiguous.status).toBe(400)
      expect(ambiguous.text).toContain(a.id)
      expect(ambiguous.text).toContain(twin)
      expect((yield* request(`${dash.url}/tasks/not-an-id`)).status).toBe(400) // not an id's form: a bad request
    }))

  it.scoped("newest created first by default; the sort control offers the CLI's other orders; the count is of all matches", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const ids: Array<string> = []
      for (let i = 0; i < 55; i++) {
        ids.push((yield* Effect.orDie(stack.producer.submit("bulk", { i }))).id)
        yield* TestClock.adjust("1 second")
      }
      // the oldest task changes last: "updated" puts it first, "created" last
      const oldest = ids[0]!
      yield* rewriteTask(stack, oldest, { updated_at: DateTime.formatIso(yield* stack.clock.now) })
      const dash = yield* startDashboard(stack)
      const rows = (text: string) => [...text.matchAll(/<tr data-task-id="([^"]+)"/g)].map((m) => m[1])

      const first = (yield* request(`${dash.url}/tasks`)).text
      expect(rows(first)).toEqual([...ids].reverse().slice(0, 50))
      expect(first).toContain("55 tasks match · showing 1–50")
      expect(first).toMatch(/<option value="created" selected>/)
      for (const sort of ["created", "created-asc", "updated", "key"]) expect(first).toContain(`<option value="${sort}"`)
      const next = (yield* request(`${dash.url}/tasks?page=2`)).text
      expect(rows(next)).toEqual([...ids].reverse().slice(50))

      expect(rows((yield* request(`${dash.url}/tasks?sort=created-asc`)).text)).toEqual(ids.slice(0, 50))
      expect(rows((yield* request(`${dash.url}/tasks?sort=updated`)).text)[0]).toBe(oldest)
      const byKey = (yield* request(`${dash.url}/tasks?sort=key`)).text
      // storage order: shard (the id's first character), then id
      const keyOrder = [...ids].sort()
      expect(rows(byKey)).toEqual(keyOrder.slice(0, 50))
      // the next page keeps the order
      expect(byKey).toContain("href=\"/tasks?sort=key&amp;page=2\"")
      const api = JSON.parse((yield* request(`${dash.url}/api/v1/tasks?sort=created-asc&limit=3`)).text) as { total: number; tasks: Array<{ id: string }> }
      expect(api.total).toBe(55)
      expect(api.tasks.map((t) => t.id)).toEqual(ids.slice(0, 3))
    }))
})

describe("buquet stats' read: bounded by --max-tasks (issue 20 item 2)", () => {
  it.scoped("reads at most the whole LIST pages --max-tasks allows, one GET per task, and says when the overview is partial", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      yield* Effect.forEach(Array.from({ length: 1001 }, (_, i) => i), (i) => Effect.orDie(stack.producer.submit("bulk", { i })), { discard: true })
      const read = (maxTasks: number) =>
        TypeStats.read({ maxTasks, shardPrefixLen: 1 }).pipe(Effect.provideService(Storage, stack.raw), Effect.provideService(ServerClock, stack.clock))
      const partial = yield* read(1000)
      expect(partial.complete).toBe(false)
      expect(partial.tasks.length).toBe(1000)
      // one LIST page of tasks/ and one of workers/; one GET per task listed; no schedules
      expect(partial.lastCost).toMatchObject({ LIST: 2, GET: 1000, total: 1002 })
      expect(partial.types.map((t) => [t.taskType, t.pending])).toEqual([["bulk", 1000]])
      const whole = yield* read(2000)
      expect(whole.complete).toBe(true)
      expect(whole.lastCost).toMatchObject({ LIST: 3, GET: 1001, total: 1004 })
      expect(whole.types.map((t) => [t.taskType, t.pending])).toEqual([["bulk", 1001]])
    }))
})
