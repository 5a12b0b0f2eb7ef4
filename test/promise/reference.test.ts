/**
 * Issue 19, acceptance 2: a task submitted through the Promise API with the reference's Python
 * options (`timeout_seconds`, `max_retries`, `retry_policy`, `schedule_at`, `max_reschedules`,
 * `expires_at` / `ttl_seconds`, `idempotency_key`, `idempotency_scope`, by our camelCase names) is
 * read back through the spawned CLI (`get --json`) and as the raw stored object, and both hold
 * every field of the reference's task JSON (reference §2.2), with its names, types and
 * always-present nulls. Plus the rest of the reference's Python surface by our names:
 * `listReady(shard, { limit })`, `schedules.lastRun(id)`, a worker bound to given shards, `now()`.
 * Runs on the embedded file store (the CLI's default in its directory).
 */
import { Effect, Layer, Option } from "effect"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as Buquet from "../../src/Buquet.js"
import { connect } from "../../src/promise.js"
import type { Queue } from "../../src/promise.js"
import * as SchedulerTag from "../../src/services/Scheduler.js"
import { Storage } from "../../src/services/Storage.js"
import { runCli, tempDir } from "../cli/support.js"

const dir = tempDir("buquet-pyref-")
const store = join(dir, ".buquet")
let queue: Queue | undefined
const open = async () => (queue ??= await connect({ directory: store, quiet: true }))
afterAll(() => queue?.close())

/** The raw stored object, parsed. */
const rawObject = (key: string): Promise<Record<string, unknown>> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.provide(
        Effect.flatMap(Storage, (s) => Effect.map(s.get(key), (o) => JSON.parse(new TextDecoder().decode(Option.getOrThrow(o).body)))),
        Layer.fresh(Buquet.layerFile(store))
      )
    )
  )

/** RFC 3339 UTC with sub-second precision, as the reference writes its timestamps. */
const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z$/

describe("the reference's Python surface through the Promise API", () => {
  it("a task submitted with the Python options reads back, through the CLI and as the raw object, field for field in the reference format", async () => {
    const q = await open()
    const now = await q.now()
    const scheduleAt = new Date(Math.ceil(now.getTime() / 1000) * 1000 + 3_600_000)
    const expiresAt = new Date(scheduleAt.getTime() + 2 * 3_600_000)
    const task = await q.submit("report", { to: "ada@example.com", n: 3 }, {
      timeoutSeconds: 120,
      maxRetries: 5,
      retryPolicy: { initialIntervalMs: 500, maxIntervalMs: 30_000, multiplier: 3, jitterPercent: 0.1 },
      scheduleAt,
      maxReschedules: 4,
      expiresAt,
      idempotencyKey: "report-2030-01",
      idempotencyScope: "queue"
    })

    const expected = {
      id: task.id,
      shard: task.id.replace(/-/g, "").slice(0, 1),
      task_type: "report",
      input: { to: "ada@example.com", n: 3 },
      output: null,
      timeout_seconds: 120,
      max_retries: 5,
      retry_count: 0,
      retry_policy: { initial_interval_ms: 500, max_interval_ms: 30_000, multiplier: 3, jitter_percent: 0.1 },
      status: "pending",
      available_at: scheduleAt.toISOString(),
      lease_expires_at: null,
      lease_id: null,
      attempt: 0,
      completed_at: null,
      worker_id: null,
      last_error: null,
      reschedule_count: 0,
      max_reschedules: 4,
      cancel_requested: false,
      expires_at: expiresAt.toISOString()
    }

    const cli = await runCli(["get", task.id, "--json"], { cwd: dir })
    expect(cli.code, cli.stderr).toBe(0)
    const viaCli = JSON.parse(cli.stdout) as Record<string, unknown>
    const raw = await rawObject(`tasks/${expected.shard}/${task.id}.json`)

    for (const [what, doc] of [["CLI get --json", viaCli], ["raw object", raw]] as const) {
      for (const [field, value] of Object.entries(expected)) expect([what, field, doc[field]]).toEqual([what, field, value])
      for (const field of ["created_at", "updated_at", "available_at", "expires_at"]) expect([what, field, doc[field]]).toEqual([what, field, expect.stringMatching(rfc3339)])
      // omitted when absent, as the reference writes them
      for (const field of ["input_ref", "output_ref", "cancelled_at", "cancelled_by", "expired_at"]) expect([what, field, field in doc]).toEqual([what, field, false])
    }
    // what the CLI shows is what is stored
    for (const field of [...Object.keys(expected), "created_at", "updated_at"]) expect([field, viaCli[field]]).toEqual([field, raw[field]])

    // the idempotency key is in the "queue" scope: another type with the same key (and another input) conflicts
    const again = await q.submit("other_type", { x: 1 }, { idempotencyKey: "report-2030-01", idempotencyScope: "queue" }).catch((e: unknown) => e)
    expect(again).toMatchObject({ _tag: "IdempotencyConflict" })

    // ttl_seconds: counted from the submit
    const ttl = await q.submit("report", {}, { ttlSeconds: 600 })
    const ttlRaw = await rawObject(`tasks/${ttl.shard}/${ttl.id}.json`)
    expect(Date.parse(ttlRaw["expires_at"] as string) - Date.parse(ttlRaw["created_at"] as string)).toBe(600_000)
    // and an expiry at or before the first run is refused, as in the CLI
    await expect(q.submit("report", {}, { scheduleAt, ttlSeconds: 60 })).rejects.toMatchObject({ _tag: "InvalidArgument" })
  }, 120_000)

  it("listReady(shard, { limit }) gives due task ids of a shard; now() is the store's time", async () => {
    const q = await open()
    const before = Date.now()
    const now = await q.now()
    expect(Math.abs(now.getTime() - before)).toBeLessThan(60_000)
    const due = await q.submit("ready_probe", {})
    const later = await q.submit("ready_probe", {}, { delayMs: 3_600_000 })
    const ready = await q.listReady(due.shard, { limit: 1000 })
    expect(ready).toContain(due.id)
    expect(ready).not.toContain(later.id)
    expect(await q.listReady(due.shard, { limit: 1 })).toHaveLength(1)
    const other = "0123456789abcdef".split("").find((s) => s !== due.shard)!
    expect(await q.listReady(other, { limit: 1000 })).not.toContain(due.id)
  })

  it("schedules.lastRun(id): undefined before the first firing, then the firing's record", async () => {
    const q = await open()
    await q.schedules.create({ id: "every-second", taskType: "tick", cron: "* * * * * *" })
    expect(await q.schedules.lastRun("every-second")).toBeUndefined()
    let fired: ReadonlyArray<{ taskId: string }> = []
    for (let i = 0; i < 50 && fired.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 200))
      fired = (await q.run(Effect.flatMap(SchedulerTag.Scheduler, (s) => s.runDue({ ids: ["every-second"] })))).fired
    }
    const last = await q.schedules.lastRun("every-second")
    expect(last).toMatchObject({ scheduleId: "every-second", lastTaskId: fired[0]!.taskId })
    expect(last!.nextRunAt.getTime()).toBeGreaterThan(last!.lastRunAt.getTime())
  })

  it("a worker bound to given shards runs only their tasks", async () => {
    const q = await open()
    const inside = await q.submit("bound", { n: 1 })
    let outside = await q.submit("bound", { n: 2 })
    while (outside.shard === inside.shard) {
      await q.cancel(outside.id) // a second task in the worker's shard would compete with `inside`
      outside = await q.submit("bound", { n: 2 })
    }
    const worker = q.worker({ id: "py-style", shards: [inside.shard], maxTasks: 1, monitor: false, signals: false })
    const ran: Array<string> = []
    worker.task("bound", async (_input, ctx) => {
      ran.push(ctx.taskId)
      return { ok: true }
    })
    await worker.run()
    expect(ran).toEqual([inside.id])
    expect((await q.get(inside.id))?.status).toBe("completed")
    expect((await q.get(outside.id))?.status).toBe("pending")
  }, 60_000)
})
