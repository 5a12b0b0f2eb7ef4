/**
 * The operator's view on the real RGW server (issue 20): spawned `buquet` processes, each test
 * under a fresh key prefix of the shared bucket; everything written there is deleted afterwards.
 */
import { DateTime, Effect, Option } from "effect"
import type { Scope } from "effect"
import { randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, expect, it } from "vitest"
import * as S3Storage from "../../src/layers/S3Storage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import type { QueueService } from "../../src/services/Queue.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage as StorageTag } from "../../src/services/Storage.js"
import type { Storage } from "../../src/services/Storage.js"
import { describeS3, emptyKeyPrefix } from "../support/s3.js"
import type { S3Settings } from "../support/s3.js"
import { eventually, root, runCli, spawnCli, tempDir } from "./support.js"
import { BuquetError, connect } from "../../src/promise.js"

const fixtures = join(root, "test", "cli", "fixtures")
const written: Array<{ readonly settings: S3Settings; readonly keyPrefix: string }> = []

const envFor = (s: S3Settings): Record<string, string> => {
  const keyPrefix = `test/${randomUUID()}/`
  written.push({ settings: s, keyPrefix })
  return {
    S3_ENDPOINT: s.endpoint,
    S3_BUCKET: s.bucket,
    AWS_REGION: s.region,
    AWS_ACCESS_KEY_ID: s.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s.secretAccessKey,
    BUQUET_KEY_PREFIX: keyPrefix
  }
}

/** Runs `body` against the storage under the env's key prefix. */
const inStorage = <A, E>(s: S3Settings, env: Record<string, string>, body: (storage: Storage["Type"]) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const storage = yield* S3Storage.make({
      bucket: s.bucket,
      endpoint: s.endpoint,
      region: s.region,
      credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      keyPrefix: env["BUQUET_KEY_PREFIX"]!
    })
    return yield* body(storage)
  })))

/** Runs `body` with a Queue (and its storage) under the env's key prefix, in this process. */
const inQueue = <A, E>(s: S3Settings, env: Record<string, string>, body: (queue: QueueService, storage: Storage["Type"]) => Effect.Effect<A, E>) =>
  inStorage(s, env, (storage) =>
    Effect.gen(function*() {
      const clock = yield* ServerClockLayer.make().pipe(Effect.provideService(StorageTag, storage))
      const queue = yield* QueueLayer.make({ shardPrefixLen: 1 }).pipe(Effect.provideService(StorageTag, storage), Effect.provideService(ServerClock, clock))
      return yield* body(queue, storage)
    }))

afterAll(async () => {
  for (const { keyPrefix, settings } of written.splice(0)) await emptyKeyPrefix(settings, settings.bucket, keyPrefix)
}, 120_000)

const submitWith = (env: Record<string, string>) => async (type: string, input: string, extra: ReadonlyArray<string> = []) => {
  const r = await runCli(["submit", "-t", type, "-i", input, "--json", ...extra], { env })
  expect(r.code, r.stderr).toBe(0)
  return (JSON.parse(r.stdout) as { id: string }).id
}

describeS3("the operator's view on RGW (issue 20)", (s) => {
  it("buquet workers shows a worker's counters right after its tasks settle (not a minute later)", async () => {
    const env = envFor(s)
    const submit = submitWith(env)
    const ids = [await submit("add", "{\"a\":1,\"b\":2}"), await submit("add", "{\"a\":3,\"b\":4}")]
    const worker = spawnCli(["worker", "--handlers", join(fixtures, "handlers-map.mjs"), "--no-monitor", "--poll-max-ms", "300", "--id", "w-ops"], {
      cwd: tempDir(),
      // heartbeats an hour apart: only a settle can bring the counters up to date
      env: { ...env, BUQUET_HEARTBEAT_BUSY_SECS: "3600", BUQUET_HEARTBEAT_IDLE_SECS: "3600" }
    })
    try {
      await eventually(async () => {
        const r = await runCli(["list", "--status", "completed", "--json"], { env })
        const done = (JSON.parse(r.stdout) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id)
        return ids.every((id) => done.includes(id)) ? true : undefined
      }, () => `both tasks to complete (${JSON.stringify(worker.output())})`, 60, 1000)
      // the idle heartbeat is a minute; the counters must be there within a few seconds of the settle
      const record = await eventually(async () => {
        const r = await runCli(["workers", "--json"], { env })
        const rows = JSON.parse(r.stdout) as Array<{ worker_id: string; tasks_completed: number; task_types?: Array<string>; buquet_version?: string }>
        return rows.find((w) => w.worker_id === "w-ops" && w.tasks_completed === 2)
      }, "the worker record to count two completions", 5, 1000)
      expect(record.tasks_completed).toBe(2)
      // the record says what the worker handles and runs (issue 20 item 1)
      expect(record.task_types).toEqual(["add", "boom"])
      expect(record.buquet_version).toMatch(/^\d+\.\d+\.\d+/)
      const table = await runCli(["workers"], { env })
      expect(table.stdout).toMatch(/w-ops\s+healthy\s+\S+\s+0\s+2\s+0\s+\S+\s+add,boom/)
    } finally {
      worker.signal("SIGTERM")
      await worker.exited
    }
  }, 180_000)

  it("every command that takes a task id accepts a unique prefix of 6+ characters; an ambiguous one exits 2 naming the candidates", async () => {
    const env = envFor(s)
    const a = await submitWith(env)("alpha", "{}")
    // a second task whose id shares a's first 9 characters (same shard, same key prefix)
    const b = a.slice(0, 9) + (a[9] === "0" ? "1" : "0") + a.slice(10)
    await inStorage(s, env, (storage) =>
      Effect.gen(function*() {
        const key = `tasks/${a[0]}/${a}.json`
        const body = Option.getOrThrow(yield* storage.get(key)).body
        const twin = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>
        yield* storage.put(`tasks/${b[0]}/${b}.json`, new TextEncoder().encode(JSON.stringify({ ...twin, id: b })))
      }))

    const ambiguous = await runCli(["get", a.slice(0, 8)], { env })
    expect(ambiguous.code, ambiguous.stderr).toBe(2)
    expect(ambiguous.stderr).toContain("ambiguous")
    expect(ambiguous.stderr).toContain(a)
    expect(ambiguous.stderr).toContain(b)

    const unique = a.slice(0, 10).toUpperCase()
    const get = await runCli(["get", unique, "--json"], { env })
    expect(get.code, get.stderr).toBe(0)
    expect((JSON.parse(get.stdout) as { id: string }).id).toBe(a)

    const history = await runCli(["history", a.slice(0, 10)], { env })
    expect(history.code, history.stderr).toBe(0)
    expect(history.stdout).toMatch(/\(new\) → pending/)

    const short = await runCli(["get", a.slice(0, 5)], { env })
    expect(short.code).toBe(2)
    expect(short.stderr).toMatch(/too short: give at least 6 characters/)

    const none = await runCli(["get", a[0] === "f" ? "eeeeeee" : "fffffff"], { env })
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/does not exist; check the id/)

    const cancel = await runCli(["cancel", b.slice(0, 10), "--json"], { env })
    expect(cancel.code, cancel.stderr).toBe(0)
    expect(JSON.parse(cancel.stdout)).toEqual([{ task_id: b, outcome: "cancelled" }])
  }, 180_000)

  it("list sorts by creation time, newest first, by default; --sort changes it; the page says how many match", async () => {
    const env = envFor(s)
    const submit = submitWith(env)
    const ids: Array<string> = []
    for (let i = 0; i < 3; i++) ids.push(await submit("sorted", "{}"))
    const [first, second, third] = ids as [string, string, string]
    const ofPage = (r: { stdout: string }) => JSON.parse(r.stdout) as { tasks: Array<{ id: string }>; cursor: string | null; matched: number }

    const page1 = ofPage(await runCli(["list", "--limit", "2", "--json"], { env }))
    expect(page1.tasks.map((t) => t.id)).toEqual([third, second])
    expect(page1.matched).toBe(3)
    expect(page1.cursor).not.toBeNull()
    const page2 = ofPage(await runCli(["list", "--limit", "2", "--cursor", page1.cursor!, "--json"], { env }))
    expect(page2.tasks.map((t) => t.id)).toEqual([first])
    expect(page2.cursor).toBeNull()

    const oldest = ofPage(await runCli(["list", "--sort", "created-asc", "--json"], { env }))
    expect(oldest.tasks.map((t) => t.id)).toEqual([first, second, third])

    const human = await runCli(["list", "--limit", "1"], { env })
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toContain("1 task(s) of 3 matching")

    const bad = await runCli(["list", "--sort", "sideways"], { env })
    expect(bad.code).toBe(2)
  }, 180_000)

  it("buquet cancel interrupts a handler running in a spawned worker (through the worker's cancel signal)", async () => {
    const env = envFor(s)
    const dir = tempDir()
    const abortFile = join(dir, "aborted.txt")
    const id = await submitWith(env)("wait", "{}", ["--timeout", "600"])
    const worker = spawnCli(["worker", "--handlers", join(fixtures, "handlers-abortable.mjs"), "--no-monitor", "--id", "w-cancel"], {
      cwd: dir,
      env: { ...env, ABORT_FILE: abortFile }
    })
    try {
      // read straight from the bucket: a CLI start per poll would be slow
      const status = () =>
        inStorage(s, env, (storage) => storage.get(`tasks/${id[0]}/${id}.json`)).then((found) =>
          Option.isNone(found) ? undefined : (JSON.parse(new TextDecoder().decode(found.value.body)) as { status: string }).status
        )
      await eventually(async () => ((await status()) === "running" ? true : undefined), () => `the task to run (${JSON.stringify(worker.output())})`, 120, 500)
      const cancel = await runCli(["cancel", id, "--json"], { env })
      expect(cancel.code, cancel.stderr).toBe(0)
      expect(JSON.parse(cancel.stdout)).toEqual([{ task_id: id, outcome: "cancel_requested" }])
      // the cancel touched the worker's signal; the worker notices, aborts the handler, records the cancel
      const signal = await inStorage(s, env, (storage) => storage.head("control/cancel/w-cancel"))
      expect(Option.isSome(signal)).toBe(true)
      await eventually(async () => ((await status()) === "cancelled" ? true : undefined), () => `the task to end cancelled (${JSON.stringify(worker.output())})`, 60, 500)
      expect(readFileSync(abortFile, "utf8").trim()).toBe(id)
    } finally {
      worker.signal("SIGTERM")
      await worker.exited
    }
    // a stopping worker deletes its signal
    const after = await inStorage(s, env, (storage) => storage.head("control/cancel/w-cancel"))
    expect(Option.isNone(after)).toBe(true)
  }, 180_000)

  it("buquet stats and --json: per type pending, running, failed in the last hour, completions, oldest wait, run times and workers, at a stated cost", async () => {
    const env = envFor(s)
    // set up in-process (a spawned CLI costs seconds on a busy machine); only the command under test is spawned
    const { adds, boom } = await inQueue(s, env, (queue, storage) =>
      Effect.gen(function*() {
        const submit = (type: string, input: unknown = {}) => Effect.map(queue.submit(type, input, { maxRetries: 0 }), (t) => t.id)
        const adds = [yield* submit("add", { a: 1, b: 2 }), yield* submit("add", { a: 3, b: 4 }), yield* submit("add", { a: 5, b: 6 })]
        const boom = yield* submit("boom")
        const oldBoom = yield* submit("boom")
        const idle = [yield* submit("idle"), yield* submit("idle"), yield* submit("idle")]
        // as other processes left them: one idle task due an hour ago, one running elsewhere, a failure two hours ago
        const patch = (id: string, f: (task: Record<string, unknown>, created: number) => Record<string, unknown>) =>
          Effect.gen(function*() {
            const key = `tasks/${id[0]}/${id}.json`
            const task = JSON.parse(new TextDecoder().decode(Option.getOrThrow(yield* storage.get(key)).body)) as Record<string, unknown>
            const created = Date.parse(task["created_at"] as string)
            yield* storage.put(key, new TextEncoder().encode(JSON.stringify({ ...task, ...f(task, created) })))
          })
        const iso = (millis: number) => new Date(millis).toISOString()
        yield* patch(idle[0]!, (_, created) => ({ available_at: iso(created - 3_600_000) }))
        yield* patch(idle[1]!, (_, created) => ({
          status: "running",
          attempt: 1,
          lease_id: "elsewhere",
          lease_expires_at: iso(created + 3_600_000),
          worker_id: "w-elsewhere"
        }))
        yield* patch(oldBoom, (task, created) => ({
          status: "failed",
          attempt: 1,
          updated_at: iso(created - 7_200_000),
          last_error: "long ago",
          events: [
            ...(task["events"] as Array<unknown>),
            { at: iso(created - 7_201_000), from: "pending", to: "running", attempt: 1, worker_id: "w-old" },
            { at: iso(created - 7_200_000), from: "running", to: "failed", attempt: 1, worker_id: "w-old", error: "long ago" }
          ]
        }))
        return { adds, boom }
      }))
    const worker = spawnCli(["worker", "--handlers", join(fixtures, "handlers-map.mjs"), "--no-monitor", "--poll-max-ms", "300", "--id", "w-stats"], {
      cwd: tempDir(),
      env
    })
    try {
      // the run times the tasks' own transition logs give: from the last claim to the completion
      const runs = await eventually(() =>
        inQueue(s, env, (queue) =>
          Effect.gen(function*() {
            const failed = yield* queue.get(boom)
            if (Option.isNone(failed) || failed.value.status !== "failed") return undefined
            const out: Array<number> = []
            for (const id of adds) {
              const task = yield* queue.get(id)
              if (Option.isNone(task) || task.value.status !== "completed") return undefined
              const events = task.value.events ?? []
              const end = events.findLast((e) => e.to === "completed")!
              const claim = events.findLast((e) => e.to === "running")!
              out.push(DateTime.toEpochMillis(end.at) - DateTime.toEpochMillis(claim.at))
            }
            return out.sort((a, b) => a - b)
          })), () => `the adds to complete and the boom to fail (${JSON.stringify(worker.output())})`, 60, 1000)

      const r = await runCli(["stats", "--json"], { env })
      expect(r.code, r.stderr).toBe(0)
      const doc = JSON.parse(r.stdout) as {
        complete: boolean
        tasks_read: number
        cost: Record<string, number>
        types: Array<Record<string, unknown> & { task_type: string; oldest_pending_seconds: number | null }>
      }
      expect(doc.complete).toBe(true)
      expect(doc.tasks_read).toBe(8)
      const row = (type: string) => doc.types.find((t) => t.task_type === type)
      expect(doc.types.map((t) => t.task_type)).toEqual(["add", "boom", "idle"])
      expect(row("add")).toEqual({
        task_type: "add",
        pending: 0,
        running: 0,
        failed_last_hour: 0,
        completed_last_10m: 3,
        completed_per_minute: 0.3,
        oldest_pending_seconds: null,
        // nearest rank of three: the middle one and the slowest
        run_time_p50_ms: runs[1],
        run_time_p95_ms: runs[2],
        run_time_samples: 3,
        workers: ["w-stats"]
      })
      expect(row("boom")).toMatchObject({ pending: 0, running: 0, failed_last_hour: 1, completed_last_10m: 0, run_time_samples: 0, workers: ["w-stats"] })
      expect(row("idle")).toMatchObject({ pending: 2, running: 1, failed_last_hour: 0, workers: [] })
      // due an hour before it was submitted: it has waited at least that long (and not a day)
      expect(row("idle")!.oldest_pending_seconds).toBeGreaterThanOrEqual(3600)
      expect(row("idle")!.oldest_pending_seconds).toBeLessThan(3600 + 900)
      // the whole cost: one LIST of tasks/ and of workers/, one GET per task and per worker record
      expect(doc.cost).toMatchObject({ LIST: 2, GET: 9, PUT: 0, HEAD: 0, DELETE: 0, total: 11 })

      const human = await runCli(["stats"], { env })
      expect(human.code, human.stderr).toBe(0)
      expect(human.stdout).toMatch(/^add\s+0\s+0\s+0\s+0\.3\s+-\s+\d.*\s+w-stats$/m)
      expect(human.stdout).toMatch(/^boom\s+0\s+0\s+1\s+0\s+-\s+-\s+-\s+w-stats$/m)
      expect(human.stdout).toMatch(/^idle\s+2\s+1\s+0\s+0\s+1 h \d+ min\s+-\s+-\s+none$/m)
      expect(human.stdout).toContain("read 8 task(s) and 1 worker record(s) with LIST 2 · GET 9 (11 requests)")

      const bad = await runCli(["stats", "--max-tasks", "0"], { env })
      expect(bad.code).toBe(2)
      expect(bad.stderr).toContain("--max-tasks must be from 1")
    } finally {
      worker.signal("SIGTERM")
      await worker.exited
    }
  }, 180_000)

  it("a task of a type no live worker handles is flagged by list and get; submit warns, and strict mode refuses (issue 20 item 1)", async () => {
    const env = envFor(s)
    // a type no worker ever registered: accepted, with a warning on stderr (stdout stays one JSON document)
    const warned = await runCli(["submit", "-t", "sned_email", "-i", "{}", "--json"], { env })
    expect(warned.code, warned.stderr).toBe(0)
    expect(warned.stderr).toContain("warning: no worker has ever registered a handler for task type \"sned_email\"")
    const typo = (JSON.parse(warned.stdout) as { id: string }).id
    // strict (here from the environment; --type-check below): refused as bad input, exit 2
    const strict = await runCli(["submit", "-t", "sned_email", "-i", "{}"], { env: { ...env, BUQUET_TYPE_CHECK: "strict" } })
    expect(strict.code).toBe(2)
    expect(strict.stderr).toMatch(/no worker has ever registered a handler for task type "sned_email"/)

    const worker = spawnCli(["worker", "--handlers", join(fixtures, "handlers-map.mjs"), "--no-monitor", "--poll-max-ms", "300", "--id", "w-types"], {
      cwd: tempDir(),
      env
    })
    try {
      // the worker registered its types: a strict submit of one of them is accepted
      const later = await eventually(async () => {
        const r = await runCli(["submit", "-t", "add", "-i", "{\"a\":1,\"b\":1}", "--delay", "1h", "--type-check", "strict", "--json"], { env })
        return r.code === 0 ? (JSON.parse(r.stdout) as { id: string }).id : undefined
      }, () => `a strict submit of add to be accepted (${JSON.stringify(worker.output())})`, 30, 1000)
      type Row = { id: string; status: string; handling?: string }
      const listed = await eventually(async () => {
        const r = await runCli(["list", "--status", "pending", "--json"], { env })
        const rows = (JSON.parse(r.stdout) as { tasks: Array<Row> }).tasks
        return rows.some((t) => t.id === typo && t.handling === "unhandled") ? rows : undefined
      }, "list to flag the misspelled type", 30, 1000)
      expect(listed.find((t) => t.id === later)?.handling).toBe("handled")
      const human = await runCli(["list", "--status", "pending"], { env })
      expect(human.stdout).toMatch(new RegExp(`${typo}\\s+sned_email\\s+pending \\(no worker\\)`))
      expect(human.stdout).toContain("! no live worker handles sned_email")
      const got = await runCli(["get", typo, "--json"], { env })
      expect((JSON.parse(got.stdout) as Row).handling).toBe("unhandled")
      const shown = await runCli(["get", typo], { env })
      expect(shown.stdout).toContain("no live worker handles sned_email")

      // a live worker of an older buquet (its record lists no types): unknown, never a false alarm
      await inStorage(s, env, (storage) =>
        storage.put("workers/w-legacy.json", new TextEncoder().encode(JSON.stringify({
          worker_id: "w-legacy",
          started_at: new Date().toISOString(),
          last_heartbeat: new Date().toISOString(),
          shards: [],
          current_task: null,
          tasks_completed: 0,
          tasks_failed: 0
        }))))
      const mixed = await runCli(["get", typo, "--json"], { env })
      expect((JSON.parse(mixed.stdout) as Row).handling).toBe("unknown")
      expect((await runCli(["list", "--status", "pending"], { env })).stdout).not.toContain("no worker")
    } finally {
      worker.signal("SIGTERM")
      await worker.exited
    }
  }, 180_000)

  it("the Promise API: connect({ typeCheck: \"strict\" }) rejects a type no worker registered with UnhandledTaskType; a worker's registration lets it in", async () => {
    const env = envFor(s)
    const queue = await connect({
      bucket: s.bucket,
      endpoint: s.endpoint,
      region: s.region,
      credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      keyPrefix: env["BUQUET_KEY_PREFIX"]!,
      typeCheck: "strict",
      quiet: true
    })
    try {
      const refused = await queue.submit("resize_image", { w: 10 }).then(() => undefined, (e: unknown) => e)
      expect(refused).toBeInstanceOf(BuquetError)
      expect((refused as BuquetError)._tag).toBe("UnhandledTaskType")
      expect((refused as BuquetError).code).toBe("UNHANDLED_TASK_TYPE")
      expect((refused as BuquetError).message).toContain("resize_image")
      // one submit can turn the check off
      expect((await queue.submit("resize_image", { w: 1 }, { typeCheck: "off" })).status).toBe("pending")
      const worker = queue.worker({ concurrency: 1, signals: false, monitor: false })
      worker.task<{ readonly w: number }, number>("resize_image", async (input) => input.w * 2)
      const running = worker.run()
      // a worker of this connection tells its queue as it starts (other processes see control/types/)
      const task = await eventually(
        () => queue.submit("resize_image", { w: 21 }).then((t) => t, () => undefined),
        "a strict submit after the worker registered",
        30,
        1000
      )
      expect((await queue.waitFor(task.id, { timeoutMs: 30_000 })).output).toBe(42)
      await worker.stop()
      await running
    } finally {
      await queue.close()
    }
  }, 120_000)
})
