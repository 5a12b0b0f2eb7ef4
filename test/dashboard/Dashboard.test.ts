import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Exit, Option, Schema, TestClock } from "effect"
import { flowNode } from "../../src/domain/FlowRequest.js"
import { followUpId } from "../../src/domain/FollowUps.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import * as SchedulerLayer from "../../src/layers/Scheduler.js"
import * as Dashboard from "../../src/programs/Dashboard.js"
import { Queue } from "../../src/services/Queue.js"
import { Scheduler } from "../../src/services/Scheduler.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import { makeStack, request, rewriteTask, startDashboard, workOnce } from "./support.js"

const hostile = { x: "<script>alert(1)</script>" }

/** A stack with a failed task whose input is hostile, a completed one and a pending one. */
const seeded = Effect.gen(function*() {
  const stack = yield* makeStack()
  const bad = yield* Effect.orDie(stack.producer.submit("evil", hostile))
  yield* workOnce(stack, bad.id, { error: "boom <img src=x onerror=alert(2)>" })
  yield* rewriteTask(stack, bad.id, { task_type: "evil<b>type</b>" })
  const ok = yield* Effect.orDie(stack.producer.submit("email", { to: "a@example.com" }))
  yield* workOnce(stack, ok.id, { output: { sent: true } })
  const waiting = yield* Effect.orDie(stack.producer.submit("email", { to: "b@example.com" }))
  return { stack, bad, ok, waiting }
})

describe("Dashboard pages", () => {
  it.scoped("overview shows counts per status and charts; the refresh cost is on /cost", () =>
    Effect.gen(function*() {
      const { stack } = yield* seeded
      const dash = yield* startDashboard(stack)
      const page = yield* request(`${dash.url}/`)
      expect(page.status).toBe(200)
      expect(page.headers.get("content-type")).toContain("text/html")
      expect(page.headers.get("content-security-policy")).toMatch(/script-src 'sha256-/)
      expect(page.text).toMatch(/data-status="failed"><div class="n">1</)
      expect(page.text).toMatch(/data-status="completed"><div class="n">1</)
      expect(page.text).toMatch(/data-status="pending"><div class="n">1</)
      expect(page.text).toContain("<svg")
      expect(page.text).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/)
      // the first refresh: one LIST each of tasks/, workers/, schedules/ and one GET per task (on its own page)
      const cost = yield* request(`${dash.url}/cost`)
      expect(cost.text).toMatch(/data-cost="LIST">3</)
      expect(cost.text).toMatch(/data-cost="GET">3</)
    }))

  it.scoped("every user-supplied string is escaped: input, type, error", () =>
    Effect.gen(function*() {
      const { bad, stack } = yield* seeded
      const dash = yield* startDashboard(stack)
      const detail = yield* request(`${dash.url}/tasks/${bad.id}`)
      expect(detail.status).toBe(200)
      expect(detail.text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;")
      expect(detail.text).not.toContain("<script>alert(1)")
      expect(detail.text).toContain("evil&lt;b&gt;type&lt;/b&gt;")
      expect(detail.text).toContain("boom &lt;img src=x onerror=alert(2)&gt;")
      expect(detail.text).not.toContain("<img src=x")
      const list = yield* request(`${dash.url}/tasks?status=failed`)
      expect(list.text).toContain("evil&lt;b&gt;type&lt;/b&gt;")
      expect(list.text).not.toContain("<b>type")
      // only one <script> element: ours
      expect(detail.text.match(/<script/g)?.length).toBe(1)
    }))

  it.scoped("the task page shows a failed attempt's stack trace, escaped (issue 16 item 7)", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const task = yield* Effect.orDie(stack.producer.submit("boom", {}))
      const at = DateTime.formatIso(yield* stack.clock.now)
      const trace = "Error: boom <img src=x>\n    at boom (file:///srv/handlers.mjs:4:11)"
      yield* rewriteTask(stack, task.id, {
        status: "failed",
        last_error: "boom <img src=x>",
        events: [
          { at, from: null, to: "pending", attempt: 0 },
          { at, from: "pending", to: "running", attempt: 1, worker_id: "w" },
          { at, from: "running", to: "failed", attempt: 1, worker_id: "w", error: "boom <img src=x>", stack: trace }
        ]
      })
      const dash = yield* startDashboard(stack)
      const detail = yield* request(`${dash.url}/tasks/${task.id}`)
      expect(detail.status).toBe(200)
      expect(detail.text).toContain("<summary>stack trace</summary><pre>Error: boom &lt;img src=x&gt;\n    at boom (file:///srv/handlers.mjs:4:11)</pre>")
      expect(detail.text).not.toContain("<img src=x")
    }))

  it.scoped("the task page links a flow's parent and children with their states, and a task's follow-ups", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const created = yield* Effect.orDie(stack.producer.flow(flowNode("report", { month: 5 }, {
        children: [flowNode("fetch", { part: 1 }), flowNode("fetch", { part: 2 })]
      })))
      const [first, second] = created.children
      yield* workOnce(stack, first!.id, { output: { rows: 3 } })
      const dash = yield* startDashboard(stack)
      // the waiting parent: why it is not claimable, and each child with its live state and a link
      const parent = yield* request(`${dash.url}/tasks/${created.id}`)
      expect(parent.status).toBe(200)
      expect(parent.text).toContain("waiting for its children: 0 of 2 ended")
      expect(parent.text).toContain("when its children have ended")
      const children = parent.text.slice(parent.text.indexOf(`id="task-children"`))
      expect(children).toMatch(new RegExp(`href="/tasks/${first!.id}"[^]*?completed`))
      expect(children).toMatch(new RegExp(`href="/tasks/${second!.id}"[^]*?pending`))
      // a child links back to the parent that waits for it
      const child = yield* request(`${dash.url}/tasks/${second!.id}`)
      expect(child.text).toMatch(new RegExp(`id="task-parent"[^]*?href="/tasks/${created.id}"`))
      // follow-ups: listed with their ids and types, and whether they exist yet
      const done = yield* Effect.orDie(stack.producer.submit("email", {}))
      const finished = yield* workOnce(stack, done.id, { output: null })
      const followUp = followUpId(done.id, 0)
      yield* rewriteTask(stack, done.id, {
        follow_ups: {
          tasks: [{ id: followUp, task_type: "audit<b>", input: {}, timeout_seconds: 30, max_retries: 0, retry_policy: Schema.encodeSync(RetryPolicy)(finished.retryPolicy) }],
          recover_at: DateTime.formatIso(yield* stack.clock.now)
        }
      })
      const withFollowUps = yield* request(`${dash.url}/tasks/${done.id}`)
      const section = withFollowUps.text.slice(withFollowUps.text.indexOf(`id="task-follow-ups"`))
      expect(section).toContain("not created yet")
      expect(section).toContain(`href="/tasks/${followUp}"`)
      expect(section).toContain("audit&lt;b&gt;")
    }))

  it.scoped("task filters: status, type, shard, and paging", () =>
    Effect.gen(function*() {
      const { bad, ok, stack, waiting } = yield* seeded
      const dash = yield* startDashboard(stack)
      const failed = yield* request(`${dash.url}/tasks?status=failed`)
      expect(failed.text).toContain(`data-task-id="${bad.id}"`)
      expect(failed.text).not.toContain(`data-task-id="${ok.id}"`)
      const email = yield* request(`${dash.url}/tasks?type=email`)
      expect(email.text).toContain(`data-task-id="${ok.id}"`)
      expect(email.text).toContain(`data-task-id="${waiting.id}"`)
      expect(email.text).not.toContain(`data-task-id="${bad.id}"`)
      const shard = yield* request(`${dash.url}/tasks?shard=${ok.shard}`)
      expect(shard.text).toContain(`data-task-id="${ok.id}"`)
      const api = yield* request(`${dash.url}/api/v1/tasks?status=failed`)
      const body = JSON.parse(api.text) as { total: number; tasks: Array<{ id: string; task_type: string; input: unknown }> }
      expect(body.total).toBe(1)
      expect(body.tasks[0]!.id).toBe(bad.id)
      expect(body.tasks[0]!.task_type).toBe("evil<b>type</b>")
      expect(body.tasks[0]!.input).toEqual(hostile)
    }))
})

describe("Dashboard protections", () => {
  it.scoped("POST actions without the CSRF token get 403; with it they act", () =>
    Effect.gen(function*() {
      const { bad, stack } = yield* seeded
      const dash = yield* startDashboard(stack)
      const form = { "content-type": "application/x-www-form-urlencoded" }
      const none = yield* request(`${dash.url}/tasks/${bad.id}/replay`, { method: "POST", headers: form, body: "" })
      expect(none.status).toBe(403)
      const wrong = yield* request(`${dash.url}/tasks/${bad.id}/replay`, { method: "POST", headers: form, body: "_csrf=nope" })
      expect(wrong.status).toBe(403)
      const api = yield* request(`${dash.url}/api/v1/tasks/${bad.id}/cancel`, { method: "POST" })
      expect(api.status).toBe(403)
      const apiWrong = yield* request(`${dash.url}/api/v1/tasks/${bad.id}/archive`, { method: "POST", headers: { "x-csrf-token": "x" } })
      expect(apiWrong.status).toBe(403)
      const schedule = yield* request(`${dash.url}/schedules/s1/trigger`, { method: "POST" })
      expect(schedule.status).toBe(403)
      // nothing happened
      const still = yield* Effect.orDie(stack.producer.get(bad.id))
      expect(still._tag === "Some" && still.value.status).toBe("failed")
      // with the token from the page
      const page = yield* request(`${dash.url}/tasks/${bad.id}`)
      const token = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!
      expect(token).toBe(dash.csrfToken)
      const ok = yield* request(`${dash.url}/tasks/${bad.id}/replay`, {
        method: "POST",
        headers: form,
        body: `_csrf=${encodeURIComponent(token)}`
      })
      expect(ok.status).toBe(303)
      expect(ok.headers.get("location")).toBe(`/tasks/${bad.id}?done=replay`)
      const replayed = yield* Effect.orDie(stack.producer.get(bad.id))
      expect(replayed._tag === "Some" && replayed.value.status).toBe("pending")
      const viaApi = yield* request(`${dash.url}/api/v1/tasks/${bad.id}/cancel`, { method: "POST", headers: { "x-csrf-token": token } })
      expect(viaApi.status).toBe(200)
      expect(JSON.parse(viaApi.text)).toMatchObject({ ok: true, outcome: "cancelled" })
    }))

  it.scoped("refuses to bind beyond loopback without a token, with a clear message", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const exit = yield* Effect.exit(stack.asDashboard(Dashboard.start({ host: "0.0.0.0", port: 0 })))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
        expect(exit.cause.error._tag).toBe("DashboardRefused")
        expect(exit.cause.error.message).toContain("refusing to serve the dashboard on 0.0.0.0 without an access token")
        expect(exit.cause.error.message).toContain("--token")
      } else {
        expect.fail("expected DashboardRefused")
      }
      const short = yield* Effect.flip(stack.asDashboard(Dashboard.start({ host: "0.0.0.0", port: 0, token: "short" })))
      expect(short.message).toContain("too short")
    }))

  it.scoped("with a token: 401 without it, bearer or ?token= cookie let in", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const token = "0123456789abcdef0123"
      const dash = yield* startDashboard(stack, { host: "0.0.0.0", token })
      expect((yield* request(`${dash.url}/`)).status).toBe(401)
      expect((yield* request(`${dash.url}/api/v1/overview`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401)
      expect((yield* request(`${dash.url}/api/v1/overview`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
      const login = yield* request(`${dash.url}/tasks?token=${token}`)
      expect(login.status).toBe(303)
      expect(login.headers.get("location")).toBe("/tasks")
      const cookie = login.headers.get("set-cookie")!
      expect(cookie).toContain("HttpOnly")
      expect(cookie).toContain("SameSite=Strict")
      expect((yield* request(`${dash.url}/tasks`, { headers: { cookie: cookie.split(";")[0]! } })).status).toBe(200)
    }))

  it.scoped("without a token, requests addressed to another host name are refused (DNS rebinding)", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const dash = yield* startDashboard(stack)
      const { request: raw } = yield* Effect.promise(() => import("node:http"))
      const status = yield* Effect.promise(() =>
        new Promise<number>((resolve, reject) => {
          const req = raw({ host: "127.0.0.1", port: dash.port, path: "/", headers: { host: "evil.example:80" } }, (res) => {
            res.resume()
            resolve(res.statusCode ?? 0)
          })
          req.on("error", reject)
          req.end()
        })
      )
      expect(status).toBe(403)
      expect((yield* request(`${dash.url}/`)).status).toBe(200)
    }))
})

describe("Dashboard workers and schedules", () => {
  it.scoped("workers: healthy = a heartbeat within three intervals; current tasks and counters; schedules read from the bucket", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const put = (key: string, json: unknown) =>
        Effect.orDie(stack.raw.put(key, new TextEncoder().encode(JSON.stringify(json))))
      yield* TestClock.adjust("10 minutes")
      const now = yield* stack.clock.now
      const at = (minutesAgo: number) => DateTime.formatIso(DateTime.subtract(now, { minutes: minutesAgo }))
      const base = { started_at: at(9), shards: [], tasks_completed: 7, tasks_failed: 2 }
      yield* put("workers/w-live.json", {
        ...base,
        worker_id: "w-live",
        last_heartbeat: at(1),
        current_task: "t1",
        current_tasks: ["t1", "t2"],
        task_types: ["resize", "send_email"],
        buquet_version: "9.9.9"
      })
      yield* put("workers/w-dead.json", { ...base, worker_id: "w-dead", last_heartbeat: at(4), current_task: null })
      // a stored record whose id is not a worker id is malformed: left out of the list, never rendered raw
      yield* put("workers/w-bad.json", { ...base, worker_id: "w-<bad>", last_heartbeat: at(1), current_task: null })
      yield* put("schedules/nightly.json", {
        id: "nightly",
        task_type: "report",
        input: {},
        cron: "0 3 * * *",
        enabled: true,
        created_at: at(9),
        updated_at: at(9)
      })
      const dash = yield* startDashboard(stack)
      const workers = JSON.parse((yield* request(`${dash.url}/api/v1/workers`)).text) as Array<
        { worker_id: string; healthy: boolean; current_tasks: Array<string>; task_types: Array<string> | null; buquet_version: string | null }
      >
      expect(workers.map((w) => [w.worker_id, w.healthy])).toEqual([["w-dead", false], ["w-live", true]])
      expect(workers[1]!.current_tasks).toEqual(["t1", "t2"])
      // what each handles and runs; a record without the field (an older worker) says null: unknown, not none
      expect(workers.map((w) => [w.task_types, w.buquet_version])).toEqual([[null, null], [["resize", "send_email"], "9.9.9"]])
      const page = yield* request(`${dash.url}/workers`)
      expect(page.text).toContain("w-dead")
      expect(page.text).not.toContain("w-<bad>")
      expect(page.text).toContain("1 healthy of 2")
      expect(page.text).toContain("resize send_email")
      const schedules = JSON.parse((yield* request(`${dash.url}/api/v1/schedules`)).text) as Array<{ id: string; next_run_at: string }>
      expect(schedules.map((s) => s.id)).toEqual(["nightly"])
      expect(schedules[0]!.next_run_at).toBe("1970-01-01T03:00:00.000Z")
      const schedulesPage = yield* request(`${dash.url}/schedules`)
      expect(schedulesPage.text).toContain("0 3 * * *")
      expect(schedulesPage.text).toContain("Read-only")
    }))
})

describe("Dashboard schedule actions (through the Scheduler service)", () => {
  it.scoped("disable, enable and trigger from the page and the API act on the schedule; without the token they do nothing", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const scheduler = yield* SchedulerLayer.make().pipe(
        Effect.provideService(Storage, stack.raw),
        Effect.provideService(ServerClock, stack.clock),
        Effect.provideService(Queue, stack.producer)
      )
      yield* Effect.orDie(scheduler.create({ id: "nightly", taskType: "report", input: { kind: "daily" }, cron: "0 3 * * *" }))
      const dash = yield* stack.asDashboard(Dashboard.start({ port: 0 }).pipe(Effect.provideService(Scheduler, scheduler))).pipe(Effect.orDie)
      const enabled = Effect.map(Effect.orDie(scheduler.get("nightly")), (s) => Option.getOrThrow(s).enabled)
      const form = { "content-type": "application/x-www-form-urlencoded" }
      const post = (path: string, token?: string) =>
        request(`${dash.url}${path}`, { method: "POST", headers: form, body: token === undefined ? "" : `_csrf=${encodeURIComponent(token)}` })

      const page = yield* request(`${dash.url}/schedules`)
      expect(page.text).not.toContain("Read-only")
      expect(page.text).toContain("/schedules/nightly/disable")
      const token = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!

      expect((yield* post("/schedules/nightly/disable")).status).toBe(403)
      expect(yield* enabled).toBe(true)
      const disabled = yield* post("/schedules/nightly/disable", token)
      expect(disabled.status).toBe(303)
      expect(disabled.headers.get("location")).toBe("/schedules")
      expect(yield* enabled).toBe(false)
      expect(Option.isNone(yield* Effect.orDie(scheduler.nextRun("nightly")))).toBe(true)
      const listed = JSON.parse((yield* request(`${dash.url}/api/v1/schedules`)).text) as Array<{ id: string; enabled: boolean }>
      expect(listed.map((s) => [s.id, s.enabled])).toEqual([["nightly", false]])

      expect((yield* post("/schedules/nightly/enable", token)).status).toBe(303)
      expect(yield* enabled).toBe(true)

      // trigger: one task of the schedule's type with its input, now
      const before = yield* Effect.orDie(stack.producer.list({ taskType: "report" }))
      expect(before.tasks.length).toBe(0)
      expect((yield* post("/schedules/nightly/trigger", token)).status).toBe(303)
      const api = yield* request(`${dash.url}/api/v1/schedules/nightly/trigger`, { method: "POST", headers: { "x-csrf-token": token } })
      expect(api.status).toBe(200)
      const body = JSON.parse(api.text) as { ok: boolean; outcome: string }
      expect(body.ok).toBe(true)
      expect(body.outcome).toMatch(/^triggered [0-9a-f-]{36}$/)
      const after = yield* Effect.orDie(stack.producer.list({ taskType: "report" }))
      expect(after.tasks.length).toBe(2)
      expect(after.tasks.every((t) => t.status === "pending" && (t.input as { kind: string }).kind === "daily")).toBe(true)
      expect(after.tasks.map((t) => t.id)).toContain(body.outcome.slice("triggered ".length))

      // an unknown schedule is a clear error, not a crash
      const missing = yield* request(`${dash.url}/api/v1/schedules/nope/disable`, { method: "POST", headers: { "x-csrf-token": token } })
      expect(missing.status).toBe(404)
      expect(JSON.parse(missing.text)).toMatchObject({ ok: false })
    }))
})
