/**
 * The CLI against the real RGW server (issue 7, acceptances 2, 3 and 6): spawned `buquet`
 * processes, each test under a fresh key prefix of the shared buckets; every object written under
 * those prefixes is deleted afterwards.
 */
import { Chunk, Effect, Layer, Stream } from "effect"
import { randomUUID } from "node:crypto"
import { join } from "node:path"
import { afterAll, expect, it } from "vitest"
import * as Buquet from "../../src/Buquet.js"
import * as S3Storage from "../../src/layers/S3Storage.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { cliEnv, describeS3, emptyKeyPrefix } from "../support/s3.js"
import type { S3Settings } from "../support/s3.js"
import { eventually, root, runCli, spawnCli, tempDir } from "./support.js"

const fixtures = join(root, "test", "cli", "fixtures")

/** The prefixes this file wrote under, by bucket: emptied in afterAll. */
const written: Array<{ readonly settings: S3Settings; readonly bucket: string; readonly keyPrefix: string }> = []

/** A fresh key prefix in `bucket`, remembered for the clean-up. */
const freshPrefix = (s: S3Settings, bucket: string): string => {
  const keyPrefix = `test/${randomUUID()}/`
  written.push({ settings: s, bucket, keyPrefix })
  return keyPrefix
}

afterAll(async () => {
  for (const { bucket, keyPrefix, settings } of written.splice(0)) await emptyKeyPrefix(settings, bucket, keyPrefix)
}, 120_000)

/** Runs `body` on the queue under `keyPrefix` of the unversioned bucket. */
const inBucket = <A, E>(s: S3Settings, keyPrefix: string, shardPrefixLen: number, body: Effect.Effect<A, E, Queue | Storage>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(body, Layer.fresh(Buquet.layer({
    bucket: s.bucket,
    endpoint: s.endpoint,
    region: s.region,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    keyPrefix,
    shardPrefixLen
  })))))

describeS3("buquet CLI on RGW", (s) => {
  it("doctor passes on the unversioned bucket", async () => {
    const r = await runCli(["doctor"], { env: cliEnv(s, freshPrefix(s, s.bucket), s.bucket) })
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/✓ create-only write/)
    expect(r.stdout).toMatch(/✓ compare-and-swap/)
    expect(r.stdout).toMatch(/✓ CAS race: 4 concurrent If-Match writes: exactly one won/)
    expect(r.stdout).not.toContain("✗")
  })

  it.skipIf(s.bucketVersioned === undefined)("doctor on the versioned bucket says conditional writes are not enforced and exits 1", async () => {
    const r = await runCli(["doctor", "--json"], { env: cliEnv(s, freshPrefix(s, s.bucketVersioned!), s.bucketVersioned!) })
    expect(r.code).toBe(1)
    // one JSON document: the report (no second error object after it)
    const report = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; detail: string }> }
    expect(report.ok).toBe(false)
    const versioning = report.checks.find((c) => c.name === "versioning")
    expect(versioning?.status).toBe("fail")
    expect(versioning?.detail).toMatch(/conditional writes are not enforced/)
    expect(r.stderr).toMatch(/^buquet: doctor found a problem/)
  })

  // issue 16 item 3: a versioned bucket whose server ignores conditional writes is refused when
  // the connection opens, with doctor's sentence, instead of accepting tasks no worker can claim
  it.skipIf(s.bucketVersioned === undefined)("submit, worker and demo refuse the versioned bucket with doctor's sentence; nothing is written", async () => {
    const keyPrefix = freshPrefix(s, s.bucketVersioned!)
    const env = cliEnv(s, keyPrefix, s.bucketVersioned!)
    const submit = await runCli(["submit", "-t", "alpha", "-i", "{}"], { env })
    expect(submit.code, submit.stdout + submit.stderr).toBe(1)
    expect(submit.stderr).toMatch(/^buquet: .*versioning is enabled on this bucket, and conditional writes are not enforced in it .*use a bucket without versioning for the queue/m)
    expect(submit.stdout).toBe("")
    const worker = await runCli(["worker", "--handlers", join(fixtures, "handlers-map.mjs"), "--no-monitor"], { env, timeoutMs: 60_000 })
    expect(worker.code, worker.stderr).toBe(1)
    expect(worker.stderr).toMatch(/conditional writes are not enforced/)
    // demo blamed the network; it refuses with the same sentence
    const demo = await runCli(["demo"], { env, timeoutMs: 60_000 })
    expect(demo.code, demo.stderr).toBe(1)
    expect(demo.stderr).toMatch(/versioning is enabled on this bucket, and conditional writes are not enforced in it/)
    expect(demo.stderr).not.toMatch(/network/i)
    const left = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const storage = yield* S3Storage.make({
        bucket: s.bucketVersioned!,
        endpoint: s.endpoint,
        region: s.region,
        credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
        keyPrefix
      })
      return Chunk.toReadonlyArray(yield* Stream.runCollect(storage.listAll("tasks/"))).length
    })))
    expect(left).toBe(0)
  })

  it.skipIf(s.bucketVersioned === undefined)("the Promise connect() rejects the versioned bucket with doctor's sentence", async () => {
    const { connect } = await import("../../src/promise.js")
    const attempt = connect({
      bucket: s.bucketVersioned!,
      endpoint: s.endpoint,
      region: s.region,
      credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      keyPrefix: freshPrefix(s, s.bucketVersioned!)
    })
    await expect(attempt).rejects.toMatchObject({
      _tag: "UnusableBucket",
      message: expect.stringMatching(/versioning is enabled on this bucket, and conditional writes are not enforced in it/)
    })
  })

  it("submit → get → history → list filters → cancel by type with per-task outcomes", async () => {
    const env = cliEnv(s, freshPrefix(s, s.bucket), s.bucket)
    const submit = async (type: string, extra: ReadonlyArray<string> = []) => {
      const r = await runCli(["submit", "-t", type, "-i", "{\"n\":1}", "--json", ...extra], { env })
      expect(r.code, r.stderr).toBe(0)
      return (JSON.parse(r.stdout) as { id: string; status: string }).id
    }
    const a = await submit("alpha")
    const b = await submit("alpha", ["--delay", "1h"])
    const c = await submit("beta", ["--priority", "5"])

    const get = await runCli(["get", a], { env })
    expect(get.code, get.stderr).toBe(0)
    expect(get.stdout).toMatch(/status\s+pending/)
    expect(get.stdout).toMatch(/input\s+\{"n":1\}/)

    const list = await runCli(["list", "--type", "alpha", "--status", "pending", "--json"], { env })
    expect(list.code, list.stderr).toBe(0)
    const ids = (JSON.parse(list.stdout) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id).sort()
    expect(ids).toEqual([a, b].sort())

    const cancel = await runCli(["cancel", "--type", "alpha", "--reason", "test", "--json"], { env })
    expect(cancel.code, cancel.stderr).toBe(0)
    const outcomes = JSON.parse(cancel.stdout) as Array<{ task_id: string; outcome: string }>
    expect(outcomes.map((o) => [o.task_id, o.outcome]).sort()).toEqual([[a, "cancelled"], [b, "cancelled"]].sort())

    const again = await runCli(["cancel", a, c], { env })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain(`${a}  already_terminal`)
    expect(again.stdout).toContain(`${c}  cancelled`)

    const history = await runCli(["history", a], { env })
    expect(history.code, history.stderr).toBe(0)
    expect(history.stdout).toMatch(/\(new\) → pending/)
    expect(history.stdout).toMatch(/pending → cancelled/)

    const cancelled = await runCli(["list", "--status", "cancelled", "--type", "beta", "--json"], { env })
    expect((JSON.parse(cancelled.stdout) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id)).toEqual([c])

    const missing = await runCli(["get", randomUUID()], { env })
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/does not exist; check the id/)
  })

  it("submit → buquet worker --handlers → get shows the output; history, list filters and cancel by type", async () => {
    const env = cliEnv(s, freshPrefix(s, s.bucket), s.bucket)
    const submit = async (type: string, input: string, extra: ReadonlyArray<string> = []) => {
      const r = await runCli(["submit", "-t", type, "-i", input, "--json", ...extra], { env })
      expect(r.code, r.stderr).toBe(0)
      return (JSON.parse(r.stdout) as { id: string }).id
    }
    const add = await submit("add", "{\"a\":2,\"b\":3}")
    const boom = await submit("boom", "{}", ["--retries", "0"])
    const waiting = [await submit("gamma", "{}"), await submit("gamma", "{}")]

    const worker = spawnCli(["worker", "--handlers", join(fixtures, "handlers-map.mjs"), "--no-monitor", "--poll-max-ms", "300"], { cwd: tempDir(), env })
    await eventually(async () => {
      const r = await runCli(["list", "--status", "failed", "--type", "boom", "--json"], { env })
      const done = await runCli(["get", add, "--json"], { env })
      return r.code === 0 && (JSON.parse(r.stdout) as { tasks: Array<unknown> }).tasks.length === 1 &&
          (JSON.parse(done.stdout) as { status: string }).status === "completed"
        ? true
        : undefined
    }, () => `the worker to settle add and boom (${JSON.stringify(worker.output())})`, 40, 1000)
    worker.signal("SIGTERM")
    expect(await worker.exited, worker.output().stderr).toEqual({ code: 0, signal: null })

    const get = await runCli(["get", add], { env })
    expect(get.code, get.stderr).toBe(0)
    expect(get.stdout).toMatch(/status\s+completed/)
    expect(get.stdout).toMatch(/output\s+\{"sum":5\}/)

    const history = await runCli(["history", add], { env })
    expect(history.code, history.stderr).toBe(0)
    expect(history.stdout).toMatch(/\(new\) → pending/)
    expect(history.stdout).toMatch(/pending → running/)
    expect(history.stdout).toMatch(/running → completed/)

    const failed = await runCli(["list", "--status", "failed", "--type", "boom", "--json"], { env })
    expect((JSON.parse(failed.stdout) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id)).toEqual([boom])
    const noneFailed = await runCli(["list", "--status", "failed", "--type", "add", "--json"], { env })
    expect((JSON.parse(noneFailed.stdout) as { tasks: Array<unknown> }).tasks).toEqual([])

    const cancel = await runCli(["cancel", "--type", "gamma", "--json"], { env })
    expect(cancel.code, cancel.stderr).toBe(0)
    const outcomes = (JSON.parse(cancel.stdout) as Array<{ task_id: string; outcome: string }>).map((o) => [o.task_id, o.outcome]).sort()
    expect(outcomes).toEqual(waiting.map((id) => [id, "cancelled"]).sort())
    const human = await runCli(["cancel", "--type", "gamma"], { env })
    expect(human.stdout).toBe("nothing to cancel\n")
  }, 180_000)

  // issue 16 item 1 on the real server: the first SIGTERM lets the running handler go on (the task
  // stays running, leased), the second forces the stop and gives the task back without a retry
  it("buquet worker --grace 30: a first SIGTERM keeps the running task, a second forces the stop and releases it without a retry", async () => {
    const keyPrefix = freshPrefix(s, s.bucket)
    const env = cliEnv(s, keyPrefix, s.bucket)
    const task = await inBucket(s, keyPrefix, 1, Effect.flatMap(Queue, (q) => q.submit("slow", {}, { maxRetries: 3 })))
    const status = () => inBucket(s, keyPrefix, 1, Effect.flatMap(Queue, (q) => q.get(task.id)))
    const worker = spawnCli(["worker", "--handlers", join(fixtures, "handlers-slow.mjs"), "--no-monitor", "--poll-max-ms", "300", "--grace", "30"], {
      cwd: tempDir(),
      env: { ...env, SLOW_MS: "60000" }
    })
    await eventually(async () => ((await status()).pipe((t) => t._tag === "Some" && t.value.status === "running")) ? true : undefined, () => `the task to run (${JSON.stringify(worker.output())})`, 60, 500)
    worker.signal("SIGTERM")
    await eventually(async () => (/stopping gracefully/.test(worker.output().stderr) ? true : undefined), "the graceful-stop line")
    const during = await status()
    expect(during._tag === "Some" && during.value.status).toBe("running")
    worker.signal("SIGTERM")
    const exit = await worker.exited
    expect(exit, worker.output().stderr).toEqual({ code: 130, signal: null })
    expect(worker.output().stderr).toMatch(/forcing the stop/)
    const after = await status()
    expect(after._tag === "Some" && [after.value.status, after.value.retryCount, after.value.leaseId]).toEqual(["pending", 0, null])
  }, 120_000)

  it("migrate-shards 1 → 2 on 1,000 tasks (980 pending, 20 running under a killed worker), then workers at prefix 2 finish them all", async () => {
    const keyPrefix = freshPrefix(s, s.bucket)
    const env = { ...cliEnv(s, keyPrefix, s.bucket), BUQUET_MONITOR_CHECK_INTERVAL: "2" }
    await inBucket(s, keyPrefix, 1, Effect.gen(function*() {
      const queue = yield* Queue
      const items = [
        // a claim that loses its CAS to the other worker leaves its lease marker until the marker's
        // minute (claim time + timeout) is over and lease recovery deletes it (Markers.ts: nobody may
        // delete a marker a new claim could re-create): with a 30 s timeout that is within ~1.5 min
        // instead of the default 5 min, which the settle wait below would barely cover
        ...Array.from({ length: 980 }, (_, i) => ({ taskType: "add", input: { a: i, b: 1 }, options: { timeoutSeconds: 30 } })),
        ...Array.from({ length: 20 }, (_, i) => ({ taskType: "hang", input: { i }, options: { timeoutSeconds: 20 } }))
      ]
      const results = yield* queue.submitMany(items, { concurrency: 16 })
      expect(results.filter((r) => r._tag === "Failed")).toEqual([])
    }))

    // a worker at prefix 1 claims the 20 `hang` tasks and is killed while they run
    const doomed = spawnCli(["worker", "--handlers", join(fixtures, "migrate.mjs"), "--no-monitor", "--concurrency", "20", "--poll-max-ms", "300"], {
      cwd: tempDir(),
      env: { ...env, BUQUET_TEST_ONLY: "hang" }
    })
    let seen = 0
    await eventually(
      () => inBucket(s, keyPrefix, 1, Effect.gen(function*() {
        seen = yield* Stream.runCount((yield* Storage).listAll("leases/"))
        return seen === 20 ? true : undefined
      })),
      "20 running tasks",
      60,
      1000
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}: ${seen} lease markers; worker output ${JSON.stringify(doomed.output())}`)
    })
    doomed.signal("SIGKILL")
    await doomed.exited

    // the killed worker's record is still fresh: the operator knows it is dead
    const run = await runCli(["migrate-shards", "--from", "1", "--to", "2", "--execute", "--force", "--json"], { env, timeoutMs: 170_000 })
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ moved: 1000, failed: [] })

    const workers = [1, 2].map((i) =>
      spawnCli(["worker", "--handlers", join(fixtures, "migrate.mjs"), "--shard-prefix-len", "2", "--concurrency", "16", "--poll-max-ms", "500", "--id", `after-${i}`], {
        cwd: tempDir(),
        env
      })
    )
    // nothing ready and nothing leased: every task has settled (LISTs only, no GET per task)
    await eventually(
      () => inBucket(s, keyPrefix, 2, Effect.gen(function*() {
        const storage = yield* Storage
        const open = (yield* Stream.runCount(storage.listAll("ready/"))) + (yield* Stream.runCount(storage.listAll("leases/")))
        return open === 0 ? true : undefined
      })),
      () => `every task to settle (${JSON.stringify(workers.map((w) => w.output().stderr.slice(-1500)))})`,
      // generous: at prefix 2 a discovery pass LISTs 256 shards, slow on a loaded 2-core CI machine
      180,
      2000
    )
    for (const w of workers) w.signal("SIGTERM")
    for (const w of workers) expect((await w.exited).code, w.output().stderr.slice(-2000)).toBe(0)

    const tasks = await inBucket(s, keyPrefix, 2, Effect.gen(function*() {
      const queue = yield* Queue
      const all: Array<{ id: string; status: string; shard: string; taskType: string; attempt: number }> = []
      let cursor: string | undefined
      do {
        const page = yield* queue.list({ limit: 1000, cursor })
        all.push(...page.tasks)
        cursor = page.cursor
      } while (cursor !== undefined)
      return all
    }))
    expect(tasks).toHaveLength(1000)
    expect(tasks.filter((t) => t.status !== "completed").map((t) => `${t.id} ${t.status}`)).toEqual([])
    for (const t of tasks) expect(t.shard).toBe(t.id.replace(/-/g, "").slice(0, 2))
    // the 20 killed while running were recovered from their expired leases and ran again
    expect(tasks.filter((t) => t.taskType === "hang").every((t) => t.attempt >= 2)).toBe(true)

    const again = await runCli(["migrate-shards", "--from", "1", "--to", "2", "--execute"], { env })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toMatch(/nothing to do/)
  }, 720_000)
})
