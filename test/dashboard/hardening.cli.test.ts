/**
 * Issue 16 item 12, the dashboard's defence in depth, through `buquet dashboard` spoken to over
 * HTTP (node:http and raw sockets, so the test chooses every header a browser or curl would send):
 *
 * - a state-changing request from another site (`Origin` / `Sec-Fetch-Site`) is refused with 403 even
 *   with the right CSRF token; same-origin pages and non-browser clients keep working;
 * - `nosniff` and a Content-Security-Policy on every response: HTML, JSON, SSE, metrics, redirects,
 *   errors;
 * - ids from the bucket are URL-encoded in every link and form action (a forged task id in a worker
 *   record or a schedule's last run cannot point a link at another route);
 * - no redirect off-site from an absolute-form or `//` request target in the `?token=` step;
 * - the token cookie is `Secure` when the dashboard is reached over TLS (a proxy's
 *   `X-Forwarded-Proto: https`);
 * - the form Content-Type is matched case-insensitively, and prototype keys in query strings and
 *   bodies are plain text: they select nothing and pollute nothing.
 *
 * Also issue 16 item 5 (the dashboard half): the schedules page says when no scheduler holds the
 * leader lease, and stops saying it once one does. Embedded store; the test writes the objects a
 * worker or scheduler would (a worker record, a schedule, its last run, the lease) directly.
 */
import { request as httpRequest } from "node:http"
import { connect } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { dailySchedule, eventually, heldSchedulerLease, putObject, runCli, spawnCli, tempDir } from "../cli/support.js"
import type { RunningCli } from "../cli/support.js"

interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly body: string
}

/** One request with exactly these headers (plus Host); the body of an SSE answer is not awaited. */
const send = (
  base: string,
  path: string,
  options: { readonly method?: string; readonly headers?: Record<string, string>; readonly body?: string } = {}
): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const url = new URL(base)
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method: options.method ?? "GET", headers: options.headers ?? {}, agent: false },
      (res) => {
        const answer = (body: string) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
        if (res.headers["content-type"]?.startsWith("text/event-stream") === true) {
          res.destroy()
          return answer("")
        }
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (d: string) => (body += d))
        res.on("end", () => answer(body))
      }
    )
    req.on("error", reject)
    if (options.body !== undefined) req.write(options.body)
    req.end()
  })

/** A raw request line (absolute-form or odd targets that http clients normalise); resolves with the head. */
const rawGet = (port: number, target: string, headers: ReadonlyArray<string> = []): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port })
    let text = ""
    socket.setEncoding("latin1")
    socket.on("connect", () =>
      socket.write([`GET ${target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close", ...headers, "", ""].join("\r\n"))
    )
    socket.on("data", (d: string) => (text += d))
    socket.on("end", () => resolve(text.split("\r\n\r\n")[0] ?? ""))
    socket.on("error", reject)
  })

const header = (head: string, name: string): string | undefined =>
  new RegExp(`^${name}: (.*)$`, "im").exec(head)?.[1]?.trim()

const startDashboard = async (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const dashboard = spawnCli(["dashboard", "--port", "0", ...args], { cwd, env })
  const url = await eventually(
    async () => /dashboard on (http:\/\/\S+?)[;\s]/.exec(dashboard.output().stderr)?.[1],
    () => `the dashboard to start (${dashboard.output().stderr})`
  )
  return { dashboard, url }
}

const stop = async (dashboard: RunningCli | undefined) => {
  if (dashboard === undefined) return
  dashboard.signal("SIGTERM")
  await dashboard.exited
}

/** The `href` and `action` attributes of a page, unescaped as a browser reads them. */
const links = (page: string): Array<string> =>
  [...page.matchAll(/\s(?:href|action)="([^"]*)"/g)].map((m) =>
    m[1]!.replaceAll("&quot;", "\"").replaceAll("&#39;", "'").replaceAll("&#96;", "`").replaceAll("&lt;", "<").replaceAll("&gt;", ">")
      .replaceAll("&amp;", "&")
  )

const forged = "x/../../schedules/nightly/trigger?"

describe("buquet dashboard: defence in depth (issue 16 item 12) and the scheduler notice (item 5)", () => {
  const cwd = tempDir("buquet-hardening-")
  let dashboard: RunningCli | undefined
  let base = ""
  let taskId = ""
  let csrf = ""

  beforeAll(async () => {
    const submitted = await runCli(["submit", "-t", "report", "-i", "{}", "--json"], { cwd })
    expect(submitted.code, submitted.stderr).toBe(0)
    taskId = (JSON.parse(submitted.stdout) as { id: string }).id
    const now = new Date().toISOString()
    putObject(cwd, "workers/w-1.json", {
      worker_id: "w-1",
      started_at: now,
      last_heartbeat: now,
      shards: [],
      current_task: forged,
      current_tasks: [forged],
      tasks_completed: 0,
      tasks_failed: 0
    })
    putObject(cwd, "schedules/nightly.json", dailySchedule("nightly"))
    putObject(cwd, "schedules/nightly/last_run.json", { last_run_at: "2020-01-01T00:00:00.000Z", last_task_id: forged })
    // a schedule whose body names another id than its key: its actions would post elsewhere
    putObject(cwd, "schedules/decoy.json", dailySchedule("../tasks/x/cancel?"))
    const started = await startDashboard(cwd, ["--refresh", "1"])
    dashboard = started.dashboard
    base = started.url
    csrf = (JSON.parse((await send(base, "/api/v1/csrf")).body) as { csrf_token: string }).csrf_token
  }, 120_000)

  afterAll(() => stop(dashboard))

  const taskStatus = async () => (JSON.parse((await send(base, `/api/v1/tasks/${taskId}`)).body) as { task: { status: string } }).task.status
  const form = (extra: Record<string, string> = {}, contentType = "application/x-www-form-urlencoded") => ({
    method: "POST",
    headers: { "content-type": contentType, ...extra },
    body: `_csrf=${encodeURIComponent(csrf)}`
  })

  it("refuses state-changing requests from another site, even with the CSRF token", async () => {
    const crossOrigin = await send(base, `/tasks/${taskId}/cancel`, form({ origin: "http://evil.example" }))
    expect(crossOrigin.status).toBe(403)
    expect(crossOrigin.body).toMatch(/cross-site/i)
    const crossFetch = await send(base, `/api/v1/tasks/${taskId}/cancel`, {
      method: "POST",
      headers: { "x-csrf-token": csrf, "sec-fetch-site": "cross-site" }
    })
    expect(crossFetch.status).toBe(403)
    expect(JSON.parse(crossFetch.body)).toMatchObject({ error: expect.stringMatching(/cross-site/i) })
    const sameSiteOtherOrigin = await send(base, `/tasks/${taskId}/cancel`, form({ "sec-fetch-site": "same-site" }))
    expect(sameSiteOtherOrigin.status).toBe(403)
    const nullOrigin = await send(base, `/tasks/${taskId}/cancel`, form({ origin: "null" }))
    expect(nullOrigin.status).toBe(403)
    expect(await taskStatus()).toBe("pending")
  })

  it("keeps same-origin pages and non-browser clients working; matches the form Content-Type case-insensitively", async () => {
    const host = new URL(base).host
    // a browser's same-origin form, with an odd-cased Content-Type
    const fromPage = await send(
      base,
      `/tasks/${taskId}/cancel`,
      form({ origin: base, "sec-fetch-site": "same-origin" }, "Application/X-WWW-Form-Urlencoded; charset=UTF-8")
    )
    expect(fromPage.status, fromPage.body).toBe(303)
    expect(fromPage.headers["location"]).toBe(`/tasks/${taskId}?done=cancelled`)
    // an older browser: Origin only, matching the Host
    const replayed = await send(base, `/tasks/${taskId}/replay`, form({ origin: `http://${host}` }))
    expect(replayed.status, replayed.body).toBe(303)
    // curl with the CSRF header: no Origin, no Sec-Fetch-Site
    const api = await send(base, `/api/v1/tasks/${taskId}/cancel`, { method: "POST", headers: { "x-csrf-token": csrf } })
    expect(api.status, api.body).toBe(200)
    expect(await taskStatus()).toBe("cancelled")
  })

  it("sends nosniff and a Content-Security-Policy on every response", async () => {
    const answers = {
      html: await send(base, "/"),
      fragment: await send(base, "/tasks?fragment=1"),
      json: await send(base, "/api/v1/overview"),
      jsonError: await send(base, "/api/v1/tasks/6f1c1c2e-8a4b-4c1e-9f0a-2b3c4d5e6f70"),
      sse: await send(base, "/events"),
      metrics: await send(base, "/metrics"),
      redirect: await send(base, `/tasks/${taskId}/archive`, form()),
      notFound: await send(base, "/nope"),
      wrongMethod: await send(base, "/", { method: "DELETE" }),
      forbidden: await send(base, `/tasks/${taskId}/archive`, { method: "POST" }),
      crossSite: await send(base, `/tasks/${taskId}/archive`, form({ origin: "http://evil.example" })),
      badEncoding: await send(base, "/tasks/%E0%A4%A"),
      badId: await send(base, "/tasks/a%00b"),
      wrongHost: await send(base, "/", { headers: { host: "evil.example" } })
    }
    expect(answers.sse.headers["content-type"]).toMatch(/^text\/event-stream/)
    expect(answers.redirect.status).toBe(303)
    expect(answers.notFound.status).toBe(404)
    expect(answers.wrongHost.status).toBe(403)
    expect(answers.badId.status).toBe(400)
    for (const [name, answer] of Object.entries(answers)) {
      expect(answer.headers["x-content-type-options"], name).toBe("nosniff")
      expect(answer.headers["content-security-policy"], name).toMatch(/default-src 'none'.*frame-ancestors 'none'/)
    }
  })

  it("URL-encodes ids from the bucket in every link and form action", async () => {
    const pages = await Promise.all(["/workers", "/schedules", `/tasks/${taskId}`, "/", "/tasks"].map(async (path) => (await send(base, path)).body))
    expect(pages[0]).toContain("w-1")
    const all = pages.flatMap(links)
    const toTasks = all.filter((l) => l.startsWith("/tasks/"))
    // the forged id appears as one link per page that shows it, and each names the forged id as ONE path segment
    expect(toTasks.filter((l) => l !== `/tasks/${taskId}`).length).toBeGreaterThanOrEqual(2)
    for (const link of all) {
      const resolved = new URL(link, base)
      expect(resolved.origin, link).toBe(new URL(base).origin)
      if (!link.startsWith("/tasks/")) continue
      const segments = resolved.pathname.split("/").slice(1)
      expect(segments[0], link).toBe("tasks")
      expect([taskId, forged], link).toContain(decodeURIComponent(segments[1]!))
      expect(resolved.search, link).toBe("")
    }
  })

  it("reads a schedule only as the one its key names; a planted id is reported as malformed", async () => {
    const schedules = JSON.parse((await send(base, "/api/v1/schedules")).body) as Array<{ id: string }>
    expect(schedules.map((s) => s.id)).toEqual(["nightly"])
    const overview = JSON.parse((await send(base, "/api/v1/overview")).body) as { malformed: Array<{ key: string; message: string }> }
    expect(overview.malformed.find((m) => m.key === "schedules/decoy.json")?.message).toMatch(/is not the id its key names \(decoy\)/)
  })

  it("treats prototype keys in queries and bodies as plain text", async () => {
    const polluting = await send(base, `/tasks/${taskId}/archive`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `__proto__[polluted]=yes&constructor[prototype][polluted]=yes&__proto__=x&_csrf=${encodeURIComponent(csrf)}`
    })
    expect(polluting.status).toBeLessThan(500)
    const json = await send(base, `/api/v1/tasks/${taskId}/archive`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ "__proto__": { polluted: "yes" }, constructor: { prototype: { polluted: "yes" } } })
    })
    expect(json.status).toBeLessThan(500)
    for (const key of ["constructor", "__proto__", "toString", "polluted", "prototype"]) {
      const detail = await send(base, `/tasks/${taskId}?done=${key}`)
      expect(detail.status).toBe(200)
      expect(detail.body, key).not.toContain("id=\"notice\"")
      // an unknown time window is "any time": the task is listed
      const list = await send(base, `/tasks?time=${key}&fragment=1`)
      expect(list.body, key).toContain(`data-task-id="${taskId}"`)
    }
  })

  it("the schedules page says when no scheduler holds the lease, and stops once one does", async () => {
    const page = await send(base, "/schedules")
    expect(page.body).toMatch(/no scheduler is running.*buquet worker --scheduler.*buquet schedule run/is)
    putObject(cwd, "control/leader/scheduler.json", heldSchedulerLease())
    await eventually(
      async () => (/no scheduler is running/i.test((await send(base, "/schedules?fragment=1")).body) ? undefined : true),
      "the notice to go once a scheduler holds the lease",
      20
    )
  })
})

describe("buquet dashboard with BUQUET_DASHBOARD_TOKEN: the ?token= step", () => {
  const token = "0123456789abcdef0123456789abcdef"
  let dashboard: RunningCli | undefined
  let port = 0

  beforeAll(async () => {
    const started = await startDashboard(tempDir("buquet-token-"), [], { BUQUET_DASHBOARD_TOKEN: token })
    dashboard = started.dashboard
    port = Number(new URL(started.url).port)
  }, 120_000)

  afterAll(() => stop(dashboard))

  it("needs the token from the environment", async () => {
    const head = await rawGet(port, "/")
    expect(head).toMatch(/^HTTP\/1\.1 401/)
    expect(header(head, "x-content-type-options")).toBe("nosniff")
    expect(header(head, "content-security-policy")).toMatch(/default-src 'none'/)
  })

  it("never redirects off-site, whatever the request target", async () => {
    for (
      const target of [
        `http://x//evil.example/?token=${token}`,
        `//evil.example/?token=${token}`,
        `/\\evil.example/?token=${token}`,
        `http://evil.example/?token=${token}`,
        `/%2F%2Fevil.example/?token=${token}`
      ]
    ) {
      const head = await rawGet(port, target)
      const location = header(head, "location")
      if (location === undefined) continue
      expect(head, target).toMatch(/^HTTP\/1\.1 303/)
      expect(location, target).toMatch(/^\/(?![/\\])/)
      expect(new URL(location, `http://127.0.0.1:${port}`).host, target).toBe(`127.0.0.1:${port}`)
      expect(header(head, "x-content-type-options"), target).toBe("nosniff")
    }
    const plain = await rawGet(port, `/tasks?token=${token}&status=failed`)
    expect(header(plain, "location")).toBe("/tasks?status=failed")
  })

  it("sets a Secure cookie when reached over TLS (X-Forwarded-Proto: https), and only then", async () => {
    const overTls = header(await rawGet(port, `/?token=${token}`, ["X-Forwarded-Proto: https"]), "set-cookie")
    expect(overTls).toMatch(/HttpOnly/i)
    expect(overTls).toMatch(/;\s*Secure/i)
    const forwarded = header(await rawGet(port, `/?token=${token}`, ["Forwarded: for=10.0.0.1;proto=https"]), "set-cookie")
    expect(forwarded).toMatch(/;\s*Secure/i)
    const plain = header(await rawGet(port, `/?token=${token}`), "set-cookie")
    expect(plain).toMatch(/HttpOnly/i)
    expect(plain).not.toMatch(/Secure/i)
  })
})
