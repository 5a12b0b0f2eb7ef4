/**
 * Issue 19, acceptance 1: every command line of the Rust/Python buquet (reference §3.1, its
 * configuration and environment of §3.3, and the forms its documentation shows), typed as its user
 * would, into the spawned CLI on the embedded file store. Each row either exits 0 with the effect
 * it has there (asserted on the store, not just the exit code), or exits 2 with one line that says
 * what to type instead. Rows run concurrently (vitest's maxConcurrency), each in its own directory.
 */
// each row's setup hands its own kind of context to its command line and check
/* eslint-disable @typescript-eslint/no-explicit-any */
import { DateTime, Effect, Layer, Option } from "effect"
import { writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import * as Buquet from "../../src/Buquet.js"
import type { Task } from "../../src/domain/Task.js"
import * as SchedulerLayer from "../../src/layers/Scheduler.js"
import { Queue } from "../../src/services/Queue.js"
import { Scheduler } from "../../src/services/Scheduler.js"
import { Storage } from "../../src/services/Storage.js"
import { eventually, root, runCli, spawnCli, tempDir } from "./support.js"
import type { CliResult, RunningCli } from "./support.js"

type Services = Queue | Storage | Scheduler

/** Runs `body` against the embedded store of `dir` (the one the CLI run in `dir` uses). */
const inStore = <A, E>(dir: string, body: Effect.Effect<A, E, Services>): Promise<A> =>
  Effect.runPromise(
    Effect.scoped(Effect.provide(body, Layer.fresh(SchedulerLayer.layer().pipe(Layer.provideMerge(Buquet.layerFile(join(dir, ".buquet")))))))
  )

const getTask = (dir: string, id: string): Promise<Task> =>
  inStore(dir, Effect.flatMap(Queue, (q) => Effect.map(q.get(id), Option.getOrThrow)))

const submitIn = (dir: string, taskType: string, input: unknown = {}) =>
  inStore(dir, Effect.flatMap(Queue, (q) => q.submit(taskType, input)))

const notice = /^buquet: no bucket configured;/

/** The lines on stderr besides the embedded-store notice. */
const errorLines = (r: CliResult) => r.stderr.trim().split("\n").filter((l) => l !== "" && !notice.test(l))

const json = (r: CliResult): any => JSON.parse(r.stdout)

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const handlers = join(root, "examples", "handlers.ts")

/** One typed command line: either accepted (and `check` asserts its effect) or refused with our form. */
interface Row {
  readonly typed: string
  readonly run: (dir: string) => Promise<void>
}

/** A command that exits by itself with 0; `check` looks at its output and the store. */
const ok = (
  args: ReadonlyArray<string> | ((dir: string, ctx: any) => ReadonlyArray<string>),
  check: (r: CliResult, dir: string, ctx: any) => Promise<void> | void,
  options: { readonly setup?: (dir: string) => Promise<any>; readonly env?: Record<string, string>; readonly toml?: string } = {}
): Row["run"] =>
async (dir) => {
  if (options.toml !== undefined) writeFileSync(join(dir, ".buquet.toml"), options.toml)
  const ctx = options.setup === undefined ? undefined : await options.setup(dir)
  const r = await runCli(typeof args === "function" ? args(dir, ctx) : args, { cwd: dir, env: options.env ?? {} })
  expect(r.code, r.stderr).toBe(0)
  await check(r, dir, ctx)
}

/** A command refused with exit 2 and one line that names what to type instead. */
const refused = (
  args: ReadonlyArray<string>,
  pointer: RegExp,
  options: { readonly env?: Record<string, string>; readonly toml?: string } = {}
): Row["run"] =>
async (dir) => {
  if (options.toml !== undefined) writeFileSync(join(dir, ".buquet.toml"), options.toml)
  const r = await runCli(args, { cwd: dir, env: options.env ?? {} })
  expect(r.code, r.stderr).toBe(2)
  const lines = errorLines(r)
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^buquet: /)
  expect(lines[0]).toMatch(pointer)
}

/** A long-running command: started, `until` waits for its effect, then SIGTERM stops it with 0. */
const longRunning = (
  args: (dir: string, ctx: any) => ReadonlyArray<string>,
  until: (dir: string, output: () => { stdout: string; stderr: string }, ctx: any) => Promise<void>,
  options: { readonly setup?: (dir: string) => Promise<any>; readonly env?: (ctx: any) => Record<string, string> } = {}
): Row["run"] =>
async (dir) => {
  const ctx = options.setup === undefined ? undefined : await options.setup(dir)
  const proc = spawnCli(args(dir, ctx), { cwd: dir, env: options.env?.(ctx) ?? {} })
  try {
    await until(dir, proc.output, ctx)
  } finally {
    proc.signal("SIGTERM")
  }
  expect(await proc.exited, proc.output().stderr).toEqual({ code: 0, signal: null })
}

/** Repeats `step` (a submit, say) until the process exits by itself; returns what each step gave. */
const untilExited = async <A>(proc: RunningCli, step: () => Promise<A>): Promise<ReadonlyArray<A>> => {
  let exited = false
  void proc.exited.then(() => (exited = true))
  const out: Array<A> = []
  await eventually(async () => {
    if (exited) return true
    out.push(await step())
    return undefined
  }, () => `the process to exit by itself: ${JSON.stringify(proc.output())}`, patient)
  return out
}

/** Attempts of 500 ms for a spawned process to show an effect: a start under tsx on a busy machine can take a minute. */
const patient = 240

const stderrShows = (output: () => { stderr: string }, pattern: RegExp) =>
  eventually(async () => (pattern.test(output().stderr) ? true : undefined), () => `stderr to match ${pattern}: ${output().stderr}`, patient)

/** `config show --json`: the resolved value of a setting and where it came from. */
const setting = (r: CliResult, key: string): { value: string | null; source: string; origin: string | null } =>
  (json(r).settings as Array<{ key: string; value: string | null; source: string; origin: string | null }>).find((s) => s.key === key)!

const twoTasks = async (dir: string) => {
  const a = await submitIn(dir, "report", { n: 1 })
  const b = await submitIn(dir, "report", { n: 2 })
  const other = await submitIn(dir, "email", {})
  return { a, b, other }
}

const rfc = (dt: DateTime.DateTime) => DateTime.formatIso(DateTime.toUtc(dt))

const rows: ReadonlyArray<Row> = [
  // ---- submit ---------------------------------------------------------------------------
  {
    typed: `submit -t report -i '{"n":1}' --timeout 60 --retries 5 --max-reschedules 2 --json`,
    run: ok(["submit", "-t", "report", "-i", `{"n":1}`, "--timeout", "60", "--retries", "5", "--max-reschedules", "2", "--json"], async (r, dir) => {
      const t = await getTask(dir, json(r).id)
      expect([t.taskType, t.input, t.timeoutSeconds, t.maxRetries, t.maxReschedules, t.status]).toEqual(["report", { n: 1 }, 60, 5, 2, "pending"])
    })
  },
  {
    typed: "submit --task-type report --input {} (long names; prints `Task submitted: <id>`)",
    run: ok(["submit", "--task-type", "report", "--input", "{}"], async (r, dir) => {
      const id = /^Task submitted: ([0-9a-f-]{36})/m.exec(r.stdout)?.[1]
      expect(id, r.stdout).toBeDefined()
      expect((await getTask(dir, id!)).taskType).toBe("report")
    })
  },
  {
    typed: "submit -t report -i {} --delay 90SECS --ttl 2Hrs (the duration grammar, case-insensitive)",
    run: ok(["submit", "-t", "report", "-i", "{}", "--delay", "90SECS", "--ttl", "2Hrs", "--json"], async (r, dir) => {
      const t = await getTask(dir, json(r).id)
      const created = DateTime.toEpochMillis(t.createdAt)
      expect(DateTime.toEpochMillis(t.availableAt) - created).toBeGreaterThanOrEqual(90_000)
      expect(DateTime.toEpochMillis(t.availableAt) - created).toBeLessThan(95_000)
      expect(DateTime.toEpochMillis(t.expiresAt!) - created).toBe(2 * 3_600_000)
    })
  },
  {
    typed: "submit -t report -i {} --ttl 1w / --delay 30 (weeks; a bare number is seconds)",
    run: ok(["submit", "-t", "report", "-i", "{}", "--ttl", "1w", "--delay", "30", "--json"], async (r, dir) => {
      const t = await getTask(dir, json(r).id)
      expect(DateTime.toEpochMillis(t.expiresAt!) - DateTime.toEpochMillis(t.createdAt)).toBe(7 * 86_400_000)
      expect(DateTime.toEpochMillis(t.availableAt) - DateTime.toEpochMillis(t.createdAt)).toBeGreaterThanOrEqual(30_000)
    })
  },
  {
    typed: "submit -t report -i {} --at 2030-01-28T09:00:00Z --expires-at 2030-02-28T09:00:00Z",
    run: ok(["submit", "-t", "report", "-i", "{}", "--at", "2030-01-28T09:00:00Z", "--expires-at", "2030-02-28T09:00:00Z", "--json"], async (r, dir) => {
      const t = await getTask(dir, json(r).id)
      expect([rfc(t.availableAt), rfc(t.expiresAt!)]).toEqual(["2030-01-28T09:00:00.000Z", "2030-02-28T09:00:00.000Z"])
    })
  },
  {
    typed: "submit -t report --at 2030-01-28T09:00:00Z --ttl 1h (expires a year before it may run)",
    run: refused(["submit", "-t", "report", "--at", "2030-01-28T09:00:00Z", "--ttl", "1h"], /could never run; give a later expiry .* or an earlier start/)
  },
  {
    typed: "submit -t report --at 2030-01-28T09:00:00Z --delay 1h",
    run: refused(["submit", "-t", "report", "--at", "2030-01-28T09:00:00Z", "--delay", "1h"], /give either --delay or --at, not both/)
  },
  {
    typed: "submit -t report --ttl 1h --expires-at 2030-01-28T09:00:00Z",
    run: refused(["submit", "-t", "report", "--ttl", "1h", "--expires-at", "2030-01-28T09:00:00Z"], /give either --ttl or --expires-at, not both/)
  },
  // ---- status / history / list ----------------------------------------------------------
  {
    typed: "status <uuid> --json",
    run: ok((_, t: Task) => ["status", t.id, "--json"], (r, _, t: Task) => {
      expect(json(r)).toMatchObject({ id: t.id, task_type: "report", status: "pending" })
    }, { setup: (dir) => submitIn(dir, "report") })
  },
  {
    typed: "status <uuid> (human)",
    run: ok((_, t: Task) => ["status", t.id], (r, _, t: Task) => {
      expect(r.stdout).toContain(t.id)
      expect(r.stdout).toMatch(/pending/)
    }, { setup: (dir) => submitIn(dir, "report") })
  },
  {
    typed: "history <uuid> --json",
    run: ok((_, t: Task) => ["history", t.id, "--json"], (r, _, t: Task) => {
      const h = json(r)
      expect(h.task_id).toBe(t.id)
      expect(h.events.length).toBeGreaterThanOrEqual(1)
    }, { setup: (dir) => submitIn(dir, "report") })
  },
  {
    typed: "history <uuid> (human)",
    run: ok((_, t: Task) => ["history", t.id], (r) => expect(r.stdout).toMatch(/pending/), { setup: (dir) => submitIn(dir, "report") })
  },
  {
    typed: "list --json (all shards)",
    run: ok(["list", "--json"], (r, _, c) => {
      expect((json(r).tasks as Array<{ id: string }>).map((t) => t.id).sort()).toEqual([c.a.id, c.b.id, c.other.id].sort())
    }, { setup: twoTasks })
  },
  {
    typed: "list -s <shard> --status pending -t report --limit 100 --json",
    run: ok((_, c) => ["list", "-s", c.a.shard, "--status", "pending", "-t", "report", "--limit", "100", "--json"], (r, _, c) => {
      const ids = (json(r).tasks as Array<{ id: string; shard: string; task_type: string }>)
      expect(ids.length).toBeGreaterThanOrEqual(1)
      expect(ids.every((t) => t.shard === c.a.shard && t.task_type === "report")).toBe(true)
      expect(ids.map((t) => t.id)).toContain(c.a.id)
    }, { setup: twoTasks })
  },
  {
    typed: "list --shard <shard> --task-type report (long names)",
    run: ok((_, c) => ["list", "--shard", c.a.shard, "--task-type", "report", "--json"], (r, _, c) => {
      expect((json(r).tasks as Array<{ id: string }>).map((t) => t.id)).toContain(c.a.id)
    }, { setup: twoTasks })
  },
  {
    typed: "list 0 --status pending (the reference README's form: the shard as an argument)",
    run: ok((_, c) => ["list", c.a.shard, "--status", "pending", "--json"], (r, _, c) => {
      const tasks = json(r).tasks as Array<{ id: string; shard: string }>
      expect(tasks.map((t) => t.id)).toContain(c.a.id)
      expect(tasks.every((t) => t.shard === c.a.shard)).toBe(true)
    }, { setup: twoTasks })
  },
  // ---- replay / archive / cancel --------------------------------------------------------
  {
    typed: "replay <uuid>",
    run: ok((_, t: Task) => ["replay", t.id], async (_r, dir, t: Task) => {
      expect((await getTask(dir, t.id)).status).toBe("pending")
    }, {
      setup: async (dir) => {
        const t = await submitIn(dir, "report")
        await inStore(dir, Effect.flatMap(Queue, (q) => q.cancel(t.id)))
        return t
      }
    })
  },
  {
    typed: "archive <uuid>",
    run: ok((_, t: Task) => ["archive", t.id], async (_r, dir, t: Task) => {
      expect((await getTask(dir, t.id)).status).toBe("archived")
    }, {
      setup: async (dir) => {
        const t = await submitIn(dir, "report")
        await inStore(dir, Effect.flatMap(Queue, (q) => q.cancel(t.id)))
        return t
      }
    })
  },
  {
    typed: "cancel <uuid> -r why <uuid> -b me --json (ids around the options)",
    run: ok((_, c) => ["cancel", c.a.id, "-r", "why", c.b.id, "-b", "me", "--json"], async (r, dir, c) => {
      expect((json(r) as Array<{ outcome: string }>).map((x) => x.outcome)).toEqual(["cancelled", "cancelled"])
      for (const id of [c.a.id, c.b.id]) {
        const t = await getTask(dir, id)
        expect([t.status, t.lastError, t.cancelledBy]).toEqual(["cancelled", "why", "me"])
      }
    }, { setup: twoTasks })
  },
  {
    typed: "cancel --task-type report -r why",
    run: ok(["cancel", "--task-type", "report", "-r", "why"], async (_r, dir, c) => {
      for (const id of [c.a.id, c.b.id]) expect((await getTask(dir, id)).lastError).toBe("why")
      expect((await getTask(dir, c.other.id)).status).toBe("pending")
    }, { setup: twoTasks })
  },
  {
    typed: "cancel -t report --reason why --cancelled-by me",
    run: ok(["cancel", "-t", "report", "--reason", "why", "--cancelled-by", "me"], async (_r, dir, c) => {
      for (const id of [c.a.id, c.b.id]) {
        const t = await getTask(dir, id)
        expect([t.status, t.lastError, t.cancelledBy]).toEqual(["cancelled", "why", "me"])
      }
    }, { setup: twoTasks })
  },
  {
    typed: "cancel -t report --dry-run (in the reference's docs only)",
    run: refused(["cancel", "-t", "report", "--dry-run"], /buquet list -t TYPE --status pending/)
  },
  // ---- workers / worker -----------------------------------------------------------------
  {
    typed: "workers --json (a worker record in the reference's format)",
    run: ok(["workers", "--json"], (r) => {
      expect(json(r)).toEqual([expect.objectContaining({ worker_id: "py-worker-1", tasks_completed: 7, healthy: true })])
    }, {
      setup: (dir) =>
        inStore(dir, Effect.gen(function*() {
          const now = DateTime.formatIso(yield* (yield* Queue).now)
          const record = { worker_id: "py-worker-1", started_at: now, last_heartbeat: now, shards: ["0"], current_task: null, tasks_completed: 7, tasks_failed: 0 }
          yield* (yield* Storage).put("workers/py-worker-1.json", new TextEncoder().encode(JSON.stringify(record)))
        }))
    })
  },
  {
    typed: "worker --id w1 --shards <s> --ready-page-size 100 --no-monitor (with --handlers)",
    run: longRunning(
      (_, c) => ["worker", "--id", "w1", "--shards", c.inside.shard, "--ready-page-size", "100", "--no-monitor", "--handlers", handlers, "--poll-max-ms", "200"],
      async (dir, output, c) => {
        await stderrShows(output, new RegExp(`worker w1 running .*shards ${c.inside.shard}\\)`))
        await eventually(async () => ((await getTask(dir, c.inside.id)).status === "completed" ? true : undefined), "the task in the worker's shard to complete", patient)
        expect((await getTask(dir, c.outside.id)).status).toBe("pending")
        expect(output().stderr).not.toMatch(/monitor embedded/)
      },
      {
        setup: async (dir) => {
          const inside = await submitIn(dir, "add", { a: 1, b: 2 })
          let outside = await submitIn(dir, "add", { a: 3, b: 4 })
          while (outside.shard === inside.shard) outside = await submitIn(dir, "add", { a: 3, b: 4 })
          return { inside, outside }
        }
      }
    )
  },
  {
    typed: "BUQUET_SHARDS=<s> BUQUET_NO_MONITOR=1 BUQUET_READY_PAGE_SIZE=100 worker --handlers …",
    run: longRunning(
      () => ["worker", "--handlers", handlers, "--poll-max-ms", "200"],
      async (dir, output, t: Task) => {
        await stderrShows(output, new RegExp(`running .*shards ${t.shard}\\)`))
        await eventually(async () => ((await getTask(dir, t.id)).status === "completed" ? true : undefined), "the task to complete", patient)
        expect(output().stderr).not.toMatch(/monitor embedded/)
      },
      {
        setup: (dir) => submitIn(dir, "add", { a: 1, b: 2 }),
        env: (t: Task) => ({ BUQUET_SHARDS: t.shard, BUQUET_NO_MONITOR: "1", BUQUET_READY_PAGE_SIZE: "100" })
      }
    )
  },
  {
    typed: "worker --index-mode hybrid",
    run: refused(["worker", "--handlers", handlers, "--index-mode", "hybrid"], /--index-mode .*ready index.*remove it/)
  },
  {
    typed: "worker --index-mode=log-scan",
    run: refused(["worker", "--index-mode=log-scan"], /--index-mode .*remove it/)
  },
  {
    typed: "worker --log-scan-page-size 50",
    run: refused(["worker", "--handlers", handlers, "--log-scan-page-size", "50"], /--log-scan-page-size .*--ready-page-size/)
  },
  {
    typed: "worker (no handlers: the reference's worker only ran its monitor)",
    run: refused(["worker", "--id", "w1"], /worker needs --handlers FILE.*`buquet monitor`/)
  },
  // ---- monitor / serve / tail -----------------------------------------------------------
  {
    typed: "monitor --check-interval 30 --worker-health-threshold 60 --sweep-interval 300 --sweep-page-size 1000",
    run: longRunning(
      () => ["monitor", "--check-interval", "30", "--worker-health-threshold", "60", "--sweep-interval", "300", "--sweep-page-size", "1000"],
      async (_dir, output) => {
        await stderrShows(output, /lease recovery every 30 s, sweep every 300 s in pages of 1000, workers stale after 60 s/)
      }
    )
  },
  {
    typed: "BUQUET_MONITOR_CHECK_INTERVAL=45 …_WORKER_HEALTH_THRESHOLD=90 …_SWEEP_INTERVAL=0 …_SWEEP_PAGE_SIZE=500 monitor",
    run: longRunning(
      () => ["monitor"],
      async (_dir, output) => {
        await stderrShows(output, /lease recovery every 45 s, sweeper off, workers stale after 90 s/)
      },
      {
        env: () => ({
          BUQUET_MONITOR_CHECK_INTERVAL: "45",
          BUQUET_MONITOR_WORKER_HEALTH_THRESHOLD: "90",
          BUQUET_MONITOR_SWEEP_INTERVAL: "0",
          BUQUET_MONITOR_SWEEP_PAGE_SIZE: "500"
        })
      }
    )
  },
  {
    typed: "monitor --enable-scheduler (in the reference's docs only)",
    run: refused(["monitor", "--enable-scheduler"], /buquet schedule run.*buquet worker --scheduler/)
  },
  {
    typed: "serve --port N",
    run: longRunning(
      (_, port: number) => ["serve", "--port", String(port)],
      async (_dir, output, port: number) => {
        await stderrShows(output, new RegExp(`dashboard on http://127\\.0\\.0\\.1:${port}`))
        const res = await fetch(`http://127.0.0.1:${port}/`)
        expect(res.status).toBe(200)
      },
      { setup: () => freePort() }
    )
  },
  {
    typed: "tail -t report --status cancelled --json --limit 1 --interval 200",
    run: async (dir) => {
      const proc = spawnCli(["tail", "-t", "report", "--status", "cancelled", "--json", "--limit", "1", "--interval", "200"], { cwd: dir })
      const ids = await untilExited(proc, async () => {
        const t = await submitIn(dir, "report")
        await inStore(dir, Effect.flatMap(Queue, (q) => q.cancel(t.id)))
        return t.id
      })
      expect(await proc.exited).toEqual({ code: 0, signal: null })
      const line = JSON.parse(proc.output().stdout.trim())
      expect(line).toMatchObject({ task_type: "report", to: "cancelled" })
      expect(ids).toContain(line.task_id)
    }
  },
  {
    typed: "tail --task-type report --limit 1 --interval 200 (long name)",
    run: async (dir) => {
      const proc = spawnCli(["tail", "--task-type", "report", "--limit", "1", "--interval", "200"], { cwd: dir })
      await submitIn(dir, "email")
      const ids = await untilExited(proc, async () => (await submitIn(dir, "report")).id)
      expect(await proc.exited).toEqual({ code: 0, signal: null })
      expect(ids.some((id) => proc.output().stdout.includes(id)), proc.output().stdout).toBe(true)
      expect(proc.output().stdout).not.toMatch(/email/)
    }
  },
  // ---- completions / doctor / config ----------------------------------------------------
  ...(["bash", "zsh", "fish"] as const).map((shell): Row => ({
    typed: `completions ${shell}`,
    run: ok(["completions", shell], (r) => expect(r.stdout).toMatch(/buquet/))
  })),
  ...(["elvish", "powershell"] as const).map((shell): Row => ({
    typed: `completions ${shell}`,
    run: refused(["completions", shell], /use `buquet completions bash`, `zsh` or `fish`/)
  })),
  {
    typed: "doctor --write-test",
    run: ok(["doctor", "--write-test"], async (r, dir) => {
      expect(r.stdout).toMatch(/✓ CAS race/)
      // the self-test removes what it wrote
      const keys = await inStore(dir, Effect.flatMap(Storage, (s) => Effect.map(s.list(""), (p) => p.objects.map((o) => o.key))))
      expect(keys.filter((k) => !k.startsWith("control/"))).toEqual([])
    })
  },
  {
    typed: "config show / validate / paths",
    run: async (dir) => {
      for (const sub of ["show", "validate", "paths"]) {
        const r = await runCli(["config", sub], { cwd: dir })
        expect(r.code, r.stderr).toBe(0)
      }
    }
  },
  // ---- the configuration: files, [default], profiles, --config, environment ---------------
  {
    typed: ".buquet.toml [default] bucket/region/endpoint; config show --json",
    run: ok(["config", "show", "--json"], (r) => {
      expect(json(r).storage).toMatchObject({ type: "s3", bucket: "jobs", region: "eu-west-1", endpoint: "http://127.0.0.1:9" })
    }, { toml: `[default]\nbucket = "jobs"\nregion = "eu-west-1"\nendpoint = "http://127.0.0.1:9"\n` })
  },
  {
    typed: "--profile local ([profiles.local] overrides [default])",
    run: ok(["config", "show", "--json", "--profile", "local"], (r) => {
      expect(json(r).storage).toMatchObject({ bucket: "local-jobs", region: "eu-west-1" })
    }, { toml: `[default]\nbucket = "jobs"\nregion = "eu-west-1"\n\n[profiles.local]\nbucket = "local-jobs"\n` })
  },
  {
    typed: "BUQUET_PROFILE=local config show",
    run: ok(["config", "show", "--json"], (r) => expect(json(r).storage).toMatchObject({ bucket: "local-jobs" }), {
      toml: `[default]\nbucket = "jobs"\n\n[profiles.local]\nbucket = "local-jobs"\n`,
      env: { BUQUET_PROFILE: "local" }
    })
  },
  {
    typed: "--config FILE / BUQUET_CONFIG=FILE",
    run: async (dir) => {
      const file = join(dir, "extra.toml")
      writeFileSync(file, `[default]\nbucket = "from-extra"\n`)
      for (const [args, env] of [[["config", "show", "--json", "--config", file], {}], [["config", "show", "--json"], { BUQUET_CONFIG: file }]] as const) {
        const r = await runCli(args, { cwd: dir, env })
        expect(r.code, r.stderr).toBe(0)
        expect(json(r).storage).toMatchObject({ bucket: "from-extra" })
      }
    }
  },
  {
    typed: "S3_BUCKET / S3_ENDPOINT / S3_REGION",
    run: ok(["config", "show", "--json"], (r) => {
      expect(json(r).storage).toMatchObject({ type: "s3", bucket: "env-jobs", endpoint: "http://127.0.0.1:9", region: "ap-south-1" })
    }, { env: { S3_BUCKET: "env-jobs", S3_ENDPOINT: "http://127.0.0.1:9", S3_REGION: "ap-south-1" } })
  },
  {
    typed: "[queue] shard_prefix_len, [worker] shards, [worker.polling], [worker.shard_leasing], [monitor] (all applied)",
    run: ok(["config", "show", "--json"], (r) => {
      const expected: Record<string, string> = {
        "queue.shard_prefix_len": "2",
        "worker.shards": "00,01",
        "worker.polling.strategy": "fixed",
        "worker.polling.interval_ms": "500",
        "worker.shard_leasing.enabled": "true",
        "worker.shard_leasing.shards_per_worker": "16",
        "worker.shard_leasing.lease_ttl_secs": "30",
        "worker.shard_leasing.renewal_interval_secs": "10",
        "monitor.check_interval_secs": "15",
        "monitor.sweep_interval_secs": "600",
        "monitor.max_tasks_per_scan": "50",
        "monitor.max_objects_per_sweep": "200",
        "monitor.sweep_mode": "on_demand"
      }
      for (const [key, value] of Object.entries(expected)) expect([key, setting(r, key).value, setting(r, key).source]).toEqual([key, value, "file"])
    }, {
      toml: [
        "[queue]",
        "shard_prefix_len = 2",
        "[worker]",
        `shards = ["00", "01"]`,
        "[worker.polling]",
        `strategy = "fixed"`,
        "interval_ms = 500",
        "[worker.shard_leasing]",
        "enabled = true",
        "shards_per_worker = 16",
        "lease_ttl_secs = 30",
        "renewal_interval_secs = 10",
        "[monitor]",
        "check_interval_secs = 15",
        "sweep_interval_secs = 600",
        "max_tasks_per_scan = 50",
        "max_objects_per_sweep = 200",
        `sweep_mode = "on_demand"`,
        ""
      ].join("\n")
    })
  },
  {
    typed: "BUQUET_SHARDS, BUQUET_NO_MONITOR, BUQUET_READY_PAGE_SIZE, BUQUET_MONITOR_* (config show)",
    run: ok(["config", "show", "--json"], (r) => {
      expect(setting(r, "worker.shards")).toMatchObject({ value: "0,1", origin: "BUQUET_SHARDS" })
      expect(setting(r, "worker.monitor")).toMatchObject({ value: "false", origin: "BUQUET_NO_MONITOR" })
      expect(setting(r, "worker.ready_page_size")).toMatchObject({ value: "100", origin: "BUQUET_READY_PAGE_SIZE" })
      expect(setting(r, "monitor.check_interval_secs")).toMatchObject({ value: "45", origin: "BUQUET_MONITOR_CHECK_INTERVAL" })
      expect(setting(r, "monitor.worker_health_threshold_secs")).toMatchObject({ value: "90", origin: "BUQUET_MONITOR_WORKER_HEALTH_THRESHOLD" })
      expect(setting(r, "monitor.sweep_interval_secs")).toMatchObject({ value: "0", origin: "BUQUET_MONITOR_SWEEP_INTERVAL" })
      expect(setting(r, "monitor.max_objects_per_sweep")).toMatchObject({ value: "500", origin: "BUQUET_MONITOR_SWEEP_PAGE_SIZE" })
    }, {
      env: {
        BUQUET_SHARDS: "0,1",
        BUQUET_NO_MONITOR: "1",
        BUQUET_READY_PAGE_SIZE: "100",
        BUQUET_MONITOR_CHECK_INTERVAL: "45",
        BUQUET_MONITOR_WORKER_HEALTH_THRESHOLD: "90",
        BUQUET_MONITOR_SWEEP_INTERVAL: "0",
        BUQUET_MONITOR_SWEEP_PAGE_SIZE: "500"
      }
    })
  },
  {
    typed: "BUQUET_SHARD_PREFIX_LEN=2 submit (applied: the task's shard has 2 hex digits)",
    run: ok(["submit", "-t", "report", "--json"], (r) => expect(json(r).shard).toMatch(/^[0-9a-f]{2}$/), { env: { BUQUET_SHARD_PREFIX_LEN: "2" } })
  },
  {
    typed: "BUQUET_ALLOW_NO_VERSIONING=1 list (versioning is never required)",
    run: ok(["list", "--json"], (r, _, t: Task) => expect(json(r).tasks.map((x: { id: string }) => x.id)).toEqual([t.id]), {
      env: { BUQUET_ALLOW_NO_VERSIONING: "1" },
      setup: (dir) => submitIn(dir, "report")
    })
  },
  { typed: "BUQUET_INDEX_MODE=hybrid", run: refused(["list"], /BUQUET_INDEX_MODE .*ready index.*remove it/, { env: { BUQUET_INDEX_MODE: "hybrid" } }) },
  { typed: "BUQUET_LOG_SCAN_PAGE_SIZE=50", run: refused(["list"], /BUQUET_LOG_SCAN_PAGE_SIZE .*BUQUET_READY_PAGE_SIZE/, { env: { BUQUET_LOG_SCAN_PAGE_SIZE: "50" } }) },
  {
    typed: "BUQUET_POLL_INTERVAL_MS=500",
    run: refused(["list"], /BUQUET_POLL_INTERVAL_MS .*\[worker\.polling\] strategy = "fixed"/, { env: { BUQUET_POLL_INTERVAL_MS: "500" } })
  },
  {
    typed: `[worker] index_mode = "hybrid"`,
    run: refused(["list"], /\[worker\] index_mode .*ready index/, { toml: `[worker]\nindex_mode = "hybrid"\n` })
  },
  {
    typed: "[worker] poll_interval_ms = 500",
    run: refused(["list"], /\[worker\] poll_interval_ms .*interval_ms = N/, { toml: `[worker]\npoll_interval_ms = 500\n` })
  },
  // ---- schema ---------------------------------------------------------------------------
  {
    typed: "schema publish <type> <file> / get <type> / list",
    run: async (dir) => {
      const file = join(dir, "report.schema.json")
      writeFileSync(file, JSON.stringify({ input: { type: "object", required: ["n"] } }))
      const published = await runCli(["schema", "publish", "report", file], { cwd: dir })
      expect(published.code, published.stderr).toBe(0)
      const got = await runCli(["schema", "get", "report"], { cwd: dir })
      expect(json(got)).toEqual({ input: { type: "object", required: ["n"] } })
      const listed = await runCli(["schema", "list", "--json"], { cwd: dir })
      expect(json(listed)).toEqual(["report"])
    }
  },
  {
    typed: "schema validate <type> --input JSON / --output JSON; schema delete <type>",
    run: async (dir) => {
      await inStore(dir, Effect.flatMap(Queue, (q) => q.publishSchema("report", { input: { type: "object", required: ["n"] } } as never)))
      const good = await runCli(["schema", "validate", "report", "--input", `{"n":1}`], { cwd: dir })
      expect(good.code, good.stderr).toBe(0)
      const bad = await runCli(["schema", "validate", "report", "--input", "{}"], { cwd: dir })
      expect(bad.code).toBe(1)
      const output = await runCli(["schema", "validate", "report", "--output", "{}"], { cwd: dir })
      expect(output.code, output.stderr).toBe(0)
      const deleted = await runCli(["schema", "delete", "report"], { cwd: dir })
      expect(deleted.code, deleted.stderr).toBe(0)
      expect(await inStore(dir, Effect.flatMap(Queue, (q) => Effect.map(q.getSchema("report"), Option.isNone)))).toBe(true)
    }
  },
  // ---- migrate-shards -------------------------------------------------------------------
  {
    typed: "migrate-shards --from 1 --to 2 --json (dry run)",
    run: ok(["migrate-shards", "--from", "1", "--to", "2", "--json"], async (r, dir, t: Task) => {
      expect(json(r)).toMatchObject({ dry_run: true, tasks: 1 })
      expect((await getTask(dir, t.id)).shard).toBe(t.shard)
    }, { setup: (dir) => submitIn(dir, "report") })
  },
  {
    typed: "migrate-shards --from 1 --to 2 --execute --concurrency 10 --json",
    run: ok(["migrate-shards", "--from", "1", "--to", "2", "--execute", "--concurrency", "10", "--json"], (r) => {
      expect(json(r)).toMatchObject({ dry_run: false, moved: 1 })
    }, { setup: (dir) => submitIn(dir, "report") })
  },
  // ---- schedule -------------------------------------------------------------------------
  {
    typed: `schedule create nightly -t report -i '{"n":1}' -c "0 3 * * *" --timeout 60 --retries 2`,
    run: ok(["schedule", "create", "nightly", "-t", "report", "-i", `{"n":1}`, "-c", "0 3 * * *", "--timeout", "60", "--retries", "2"], async (r, dir) => {
      expect(r.stdout).toMatch(/next runs: \S+T03:00:00Z/)
      const s = await inStore(dir, Effect.flatMap(Scheduler, (sc) => Effect.map(sc.get("nightly"), Option.getOrThrow)))
      expect([s.taskType, s.input, s.cron, s.timeoutSeconds, s.maxRetries, s.enabled]).toEqual(["report", { n: 1 }, "0 3 * * *", 60, 2, true])
    })
  },
  {
    typed: "schedule create nightly --task-type report --cron … (long names, no input: {})",
    run: ok(["schedule", "create", "nightly", "--task-type", "report", "--cron", "0 3 * * *"], async (_r, dir) => {
      const s = await inStore(dir, Effect.flatMap(Scheduler, (sc) => Effect.map(sc.get("nightly"), Option.getOrThrow)))
      expect(s.input).toEqual({})
    })
  },
  ...([
    ["schedule list --json", ["schedule", "list", "--json"], (r: CliResult) => expect(json(r).map((s: { id: string }) => s.id)).toEqual(["nightly"])],
    ["schedule show nightly --json", ["schedule", "show", "nightly", "--json"], (r: CliResult) =>
      expect(json(r)).toMatchObject({ schedule: { id: "nightly", cron: "0 3 * * *" }, last_run_at: null })]
  ] as const).map(([typed, args, check]): Row => ({
    typed,
    run: ok(args, check, { setup: (dir) => inStore(dir, Effect.flatMap(Scheduler, (s) => s.create({ id: "nightly", taskType: "report", input: {}, cron: "0 3 * * *" }))) })
  })),
  {
    typed: "schedule disable nightly / enable nightly / trigger nightly / delete nightly",
    run: async (dir) => {
      await inStore(dir, Effect.flatMap(Scheduler, (s) => s.create({ id: "nightly", taskType: "report", input: { n: 1 }, cron: "0 3 * * *" })))
      const enabled = () => inStore(dir, Effect.flatMap(Scheduler, (sc) => Effect.map(sc.get("nightly"), (s) => Option.getOrThrow(s).enabled)))
      expect((await runCli(["schedule", "disable", "nightly"], { cwd: dir })).code).toBe(0)
      expect(await enabled()).toBe(false)
      expect((await runCli(["schedule", "enable", "nightly"], { cwd: dir })).code).toBe(0)
      expect(await enabled()).toBe(true)
      const trigger = await runCli(["schedule", "trigger", "nightly", "--json"], { cwd: dir })
      expect(trigger.code, trigger.stderr).toBe(0)
      const fired = await getTask(dir, json(trigger).task_id)
      expect([fired.taskType, fired.input]).toEqual(["report", { n: 1 }])
      expect((await runCli(["schedule", "delete", "nightly"], { cwd: dir })).code).toBe(0)
      expect(await inStore(dir, Effect.flatMap(Scheduler, (sc) => Effect.map(sc.get("nightly"), Option.isNone)))).toBe(true)
    }
  },
  {
    typed: "schedule run --interval 60",
    run: longRunning(
      () => ["schedule", "run", "--interval", "60"],
      async (dir, output) => {
        await stderrShows(output, /scheduler running \(re-reads the schedules every 60 s/)
        await eventually(async () => {
          const tasks = await inStore(dir, Effect.flatMap(Queue, (q) => q.list({ taskType: "tick" })))
          return tasks.tasks.length > 0 ? true : undefined
        }, "the every-second schedule to fire", patient)
      },
      {
        setup: (dir) =>
          inStore(dir, Effect.flatMap(Scheduler, (s) => s.create({ id: "every-second", taskType: "tick", input: {}, cron: "* * * * * *" })))
      }
    )
  },
  {
    typed: "schedule pause nightly (in the reference's docs only)",
    run: refused(["schedule", "pause", "nightly"], /use `buquet schedule disable ID`/)
  },
  {
    typed: "schedule resume nightly (in the reference's docs only)",
    run: refused(["schedule", "resume", "nightly"], /use `buquet schedule enable ID`/)
  },
  {
    typed: "scheduler run (in the reference's docs only)",
    run: refused(["scheduler", "run"], /`buquet schedule run`/)
  }
]

describe("the Rust/Python buquet's command lines", () => {
  for (const row of rows) {
    it.concurrent(row.typed, () => row.run(tempDir("buquet-ref-")), 300_000)
  }
})
