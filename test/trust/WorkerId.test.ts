/**
 * Worker ids are names inside object keys (issue 15 fix 12, security #5): a hostile id is refused
 * by Worker.make, by the config (file, env) and by `worker --id`; a stored worker record whose
 * key names no valid id, or whose body names another id, is malformed for every reader.
 */
import { describe, expect, it } from "@effect/vitest"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { Chunk, DateTime, Effect, Logger, Ref, Stream, TestClock } from "effect"
import { utf8 } from "../../src/domain/Codec.js"
import { FileStorage } from "../../src/layers/FileStorage.js"
import * as WorkerHealth from "../../src/programs/monitor/WorkerHealth.js"
import * as Worker from "../../src/programs/Worker.js"
import { Storage } from "../../src/services/Storage.js"
import { runCli, tempDir } from "../cli/support.js"
import { queueLayer } from "../worker/support.js"

const hostile = ["../../etc/x", "a/b", "<script>x</script>", "..", "a\u0001b", "x".repeat(201), "-leading"]

const record = (workerId: string) =>
  utf8(JSON.stringify({
    worker_id: workerId,
    started_at: "2026-01-01T00:00:00Z",
    last_heartbeat: "2026-01-01T00:00:00Z",
    shards: [],
    current_task: null,
    tasks_completed: 0,
    tasks_failed: 0
  }))

describe("Worker.make refuses a hostile worker id", () => {
  for (const id of hostile) {
    it.scoped(`id ${JSON.stringify(id.slice(0, 20))}`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Worker.make({ id, wakeUp: false }, [Worker.handler("job", () => Effect.void)]))
        expect(error._tag).toBe("InvalidWorkerOptions")
        expect(error.option).toBe("id")
        expect(error.message).toMatch(/worker id/)
      }).pipe(Effect.provide(queueLayer())))
  }
})

describe("worker record keys and bodies are checked", () => {
  it.effect("the monitor's health check warns once about a record with a hostile key and does not count it as a worker", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      yield* TestClock.setTime(DateTime.toEpochMillis(DateTime.unsafeMake("2026-01-01T00:00:30Z")))
      yield* storage.put("workers/good-1.json", record("good-1"))
      yield* storage.put("workers/../../x/<img src=x>.json", record("../../x/<img src=x>"))
      const warnings = yield* Ref.make<Array<string>>([])
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") Effect.runSync(Ref.update(warnings, (w) => [...w, String(message)]))
      })
      const health = yield* WorkerHealth.make()
      const first = yield* health.check.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      yield* health.check.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect(first).toMatchObject({ total: 1, healthy: 1, stale: [] })
      const about = (yield* Ref.get(warnings)).filter((w) => w.includes("malformed worker record"))
      expect(about).toHaveLength(1)
      expect(about[0]).toContain(JSON.stringify("workers/../../x/<img src=x>.json"))
      // and it is deleted by the same age rule as a crashed worker's record
      yield* TestClock.adjust("2 days")
      const later = yield* health.check.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect(later).toMatchObject({ deleted: expect.arrayContaining(["workers/../../x/<img src=x>.json"]) })
      const left = Chunk.toReadonlyArray(yield* Stream.runCollect(storage.listAll("workers/"))).map((m) => m.key)
      expect(left).toEqual([])
    }).pipe(Effect.provide(queueLayer())))

  it("`buquet workers` lists only records whose key and body agree on a valid id", async () => {
    const dir = tempDir()
    await Effect.runPromise(Effect.gen(function*() {
      const storage = yield* FileStorage.make(join(dir, ".buquet"))
      yield* storage.put("workers/good-1.json", record("good-1"))
      yield* storage.put("workers/evil.json", record("\u001b]0;PWNED\u0007"))
      yield* storage.put("workers/a/b.json", record("a/b"))
    }))
    const r = await runCli(["workers", "--json"], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    const ids = (JSON.parse(r.stdout) as Array<{ worker_id: string }>).map((w) => w.worker_id)
    expect(ids).toEqual(["good-1"])
  })
})

describe("the CLI and the config refuse a hostile worker id (exit 2, one line)", () => {
  it("worker --id ../../etc/x", async () => {
    const dir = tempDir()
    const r = await runCli(["worker", "--id", "../../etc/x", "--handlers", join(import.meta.dirname, "../cli/fixtures/handlers-map.mjs")], { cwd: dir })
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/--id: "..\/..\/etc\/x" is not allowed: use 1–200 letters, digits/)
  })

  it("config validate with [worker] id = \"a/b\"", async () => {
    const dir = tempDir()
    writeFileSync(join(dir, ".buquet.toml"), "[worker]\nid = \"a/b\"\n")
    const r = await runCli(["config", "validate"], { cwd: dir })
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/worker\.id|\[worker\] id/)
    expect(r.stderr).toMatch(/"a\/b" is not allowed/)
  })

  it("BUQUET_WORKER_ID with a control character", async () => {
    const r = await runCli(["config", "validate"], { env: { BUQUET_WORKER_ID: "w\u0007" } })
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/BUQUET_WORKER_ID/)
  })
})
