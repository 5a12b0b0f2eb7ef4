/**
 * Flows on RGW through the Promise API (issue 18): `queue.flow` from the test process, two worker
 * processes (Promise API, `queue.worker`) running the children and the parents concurrently. The
 * parents run once each, after all their children ended, and read their results; a failed child
 * (default policy) is seen by its parent. Real time; only outcomes are asserted.
 */
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "vitest"
import { Chunk, Effect, Stream } from "effect"
import * as S3Storage from "../../src/layers/S3Storage.js"
import { connect } from "../../src/promise.js"
import { spawnFixture } from "../support/processes.js"
import type { Spawned } from "../support/processes.js"
import { describeS3, s3Config } from "../support/s3.js"

const fixture = join(import.meta.dirname, "fixtures", "flow-worker.ts")

interface Entry {
  readonly type: string
  readonly id: string
  readonly attempt: number
  readonly worker: string
  readonly children?: ReadonlyArray<{ id: string; status: string; output: unknown; error?: string }>
}

const entries = (file: string): ReadonlyArray<Entry> =>
  existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as Entry) : []

/** Deletes everything under the test's key prefix. */
const cleanUp = (config: S3Storage.S3StorageConfig) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const s = yield* S3Storage.make(config)
    const all = yield* Stream.runCollect(s.listAll(""))
    yield* s.deleteMany(Chunk.toReadonlyArray(all).map((o) => o.key))
  })).pipe(Effect.ignore))

describeS3("Flows on RGW through the Promise API", (settings) => {
  it("two worker processes: each parent runs once, after its children, and reads their results", async () => {
    const config = s3Config()
    const s3 = {
      bucket: config.bucket,
      endpoint: settings.endpoint,
      region: settings.region,
      keyPrefix: config.keyPrefix!,
      credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey }
    }
    const log = join(mkdtempSync(join(tmpdir(), "buquet-flow-")), "handlers.log")
    const queue = await connect({ ...s3, quiet: true, typeCheck: "off" })
    const workers: Array<Spawned> = []
    try {
      const flow = await queue.flow({
        name: "report",
        input: { month: 5 },
        children: [
          { name: "part", input: { part: 1 } },
          { name: "part", input: { part: 2 } },
          { name: "part", input: { part: 0 }, options: { maxRetries: 0 } },
          { type: "merge", input: {}, children: [3, 4, 5, 6].map((part) => ({ name: "part", input: { part } })) }
        ]
      })
      expect(flow.task.status).toBe("pending")
      expect(flow.task.flow?.children.map((c) => c.id)).toEqual(flow.children.map((c) => c.id))
      const merge = flow.children[3]!
      expect((await queue.get(merge.children[0]!.id))?.parentId).toBe(merge.id)

      for (const id of ["one", "two"]) {
        // tracked: stopped after the test (SIGTERM, then SIGKILL) if it is still running then
        workers.push(spawnFixture(fixture, { BUQUET_TEST_S3: JSON.stringify(s3), WORKER_ID: id, HANDLER_LOG: log }))
      }
      const done = await queue.waitFor(flow.id, { timeoutMs: 150_000 })
      expect(done.status).toBe("completed")
      expect(done.output).toEqual({ sum: 10 + 20 + 0 + (30 + 40 + 50 + 60) })
      expect(done.flow?.children.map((c) => c.outcome)).toEqual(["completed", "completed", "failed", "completed"])

      const ran = entries(log)
      const parts = ran.filter((e) => e.type === "part")
      // 7 parts, each run once (part 0 failed for good on its only attempt)
      expect(parts.length).toBe(7)
      expect(new Set(parts.map((e) => e.id)).size).toBe(7)
      const runsOf = (id: string) => ran.filter((e) => e.id === id)
      expect(runsOf(merge.id).length).toBe(1)
      expect(runsOf(flow.id).length).toBe(1)
      // each parent ran after all its children (log order is the order of the runs' starts)
      const at = (id: string) => ran.findIndex((e) => e.id === id)
      for (const c of merge.children) expect(at(c.id)).toBeLessThan(at(merge.id))
      for (const c of flow.children) expect(at(c.id)).toBeLessThan(at(flow.id))
      const report = runsOf(flow.id)[0]!
      expect(report.children!.map((c) => [c.status, c.output ?? null])).toEqual([
        ["completed", { rows: 10 }],
        ["completed", { rows: 20 }],
        ["failed", null],
        ["completed", { sum: 180 }]
      ])
      expect(report.children![2]!.error).toContain("part 0 is broken")
    } finally {
      for (const w of workers) w.child.kill("SIGTERM")
      for (const w of workers) expect((await w.exit).code).toBe(0)
      await queue.close()
      await cleanUp(config)
    }
  }, 240_000)
})
