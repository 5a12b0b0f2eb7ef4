/**
 * `migrate-shards` on the embedded file store: tasks made at prefix length 1 (pending, delayed,
 * cancelled) are moved to prefix length 2 with their own `shard` field rewritten and their ready
 * markers moved; the Queue at prefix 2 finds every one of them; a second run finds nothing to do.
 * (The run with workers at prefix 2 afterwards waits for the Worker to land.)
 */
import { Chunk, Effect, Layer, Stream } from "effect"
import { join } from "node:path"
import { expect, it } from "vitest"
import * as Buquet from "../../src/Buquet.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { runCli, tempDir } from "./support.js"

const inStore = <A, E>(dir: string, shardPrefixLen: number, body: Effect.Effect<A, E, Queue | Storage>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(body, Layer.fresh(Buquet.layerFile(join(dir, ".buquet"), { shardPrefixLen })))))

it("moves every task and marker from prefix length 1 to 2; a second run finds nothing to do", async () => {
  const dir = tempDir("buquet-migrate-")
  const ids = await inStore(dir, 1, Effect.gen(function*() {
    const queue = yield* Queue
    const tasks = yield* Effect.forEach(Array.from({ length: 60 }, (_, i) => i), (i) =>
      queue.submit("job", { i }, i % 3 === 1 ? { delay: "1 hour" } : i % 3 === 2 ? { priority: 7 } : {}), { concurrency: 8 })
    yield* queue.cancel(tasks[0]!.id)
    return tasks.map((t) => t.id)
  }))

  const dry = await runCli(["migrate-shards", "--from", "1", "--to", "2"], { cwd: dir })
  expect(dry.code, dry.stderr).toBe(0)
  expect(dry.stdout).toMatch(/dry run: 60 task\(s\)/)

  const run = await runCli(["migrate-shards", "--from", "1", "--to", "2", "--execute", "--json"], { cwd: dir })
  expect(run.code, run.stderr).toBe(0)
  expect(JSON.parse(run.stdout)).toMatchObject({ moved: 60, failed: [] })

  const after = await inStore(dir, 2, Effect.gen(function*() {
    const queue = yield* Queue
    const storage = yield* Storage
    const page = yield* queue.list({ limit: 1000 })
    const keys = Chunk.toReadonlyArray(yield* Stream.runCollect(storage.listAll(""))).map((m) => m.key)
    const ready = yield* queue.listReady({ limit: 1000 })
    return { tasks: page.tasks, keys, ready }
  }))
  expect(after.tasks.map((t) => t.id).sort()).toEqual([...ids].sort())
  for (const t of after.tasks) expect(t.shard).toBe(t.id.replace(/-/g, "").slice(0, 2))
  // no object left under a one-character shard
  expect(after.keys.filter((k) => /^(tasks|ready|leases)\/[0-9a-f]\//.test(k))).toEqual([])
  // the due pending tasks (not delayed, not cancelled) are in the ready index at prefix 2
  const due = after.tasks.filter((t, i) => t.status === "pending" && i >= 0 && ids.indexOf(t.id) % 3 !== 1).map((t) => t.id).sort()
  expect(after.ready.map((r) => r.taskId).sort()).toEqual(due)

  const again = await runCli(["migrate-shards", "--from", "1", "--to", "2", "--execute"], { cwd: dir })
  expect(again.code, again.stderr).toBe(0)
  expect(again.stdout).toMatch(/nothing to do/)
})

it("--execute refuses while a worker looks alive (exit 1, names it, moves nothing); --force moves", async () => {
  const dir = tempDir("buquet-migrate-live-")
  await inStore(dir, 1, Effect.gen(function*() {
    const queue = yield* Queue
    yield* queue.submit("job", { i: 1 })
    // a worker's heartbeat, as a running worker writes it
    const storage = yield* Storage
    const now = new Date().toISOString()
    yield* storage.put("workers/w-live.json", new TextEncoder().encode(JSON.stringify({
      worker_id: "w-live", started_at: now, last_heartbeat: now, shards: [], current_task: null, tasks_completed: 0, tasks_failed: 0
    })))
  }))
  const refused = await runCli(["migrate-shards", "--from", "1", "--to", "2", "--execute"], { cwd: dir })
  expect(refused.code).toBe(1)
  expect(refused.stderr).toMatch(/refusing to migrate while the fleet runs: worker\(s\) w-live/)
  expect(refused.stderr).toMatch(/--force/)
  const dry = await runCli(["migrate-shards", "--from", "1", "--to", "2"], { cwd: dir })
  expect(dry.stdout).toMatch(/dry run: 1 task\(s\)/)

  const forced = await runCli(["migrate-shards", "--from", "1", "--to", "2", "--execute", "--force", "--json"], { cwd: dir })
  expect(forced.code, forced.stderr).toBe(0)
  expect(JSON.parse(forced.stdout)).toMatchObject({ moved: 1, failed: [] })
})
