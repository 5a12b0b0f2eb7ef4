/**
 * Issue 16 item 9 (security review finding 8): the listing commands say how many stored objects
 * they skipped as malformed and name them, and `schedule show` survives a corrupt
 * `last_run.json`. Spawned CLI on the embedded file store; the garbage is written through the
 * Storage service as another (broken) writer would.
 */
import { Effect, Layer } from "effect"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import * as Buquet from "../../src/Buquet.js"
import { keyOfTaskId } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { runCli, tempDir } from "./support.js"

const inStore = <A, E>(dir: string, body: Effect.Effect<A, E, Queue | Storage>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(body, Layer.fresh(Buquet.layerFile(join(dir, ".buquet"))))))

const garbage = new TextEncoder().encode("{ not json")

/** How many lines of a command's output name the key. */
const linesNaming = (text: string, key: string): number => text.split("\n").filter((l) => l.includes(key)).length

describe("malformed objects are reported, not silently left out", () => {
  it("list, schedule list and workers count and name what they skipped; schedule show survives a bad last_run.json", async () => {
    const dir = tempDir("buquet-malformed-")
    const created = await runCli(["schedule", "create", "nightly", "--task-type", "report", "--cron", "0 3 * * *"], { cwd: dir })
    expect(created.code, created.stderr).toBe(0)
    const good = await inStore(dir, Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const task = yield* queue.submit("add", { a: 1 })
      const badTaskKey = keyOfTaskId("00000000-0000-4000-8000-000000000bad", queue.config.shardPrefixLen)
      yield* storage.put(badTaskKey, garbage)
      yield* storage.put("schedules/broken.json", garbage)
      yield* storage.put("schedules/nightly/last_run.json", garbage)
      yield* storage.put("workers/w-broken.json", garbage)
      return { task, badTaskKey }
    }))

    const list = await runCli(["list"], { cwd: dir })
    expect(list.code, list.stderr).toBe(0)
    expect(list.stdout).toContain(good.task.id)
    expect(list.stderr).toMatch(/skipped 1 malformed object/)
    expect(list.stderr).toContain(good.badTaskKey)
    expect(linesNaming(list.stdout + list.stderr, good.badTaskKey)).toBe(1)
    const listJson = JSON.parse((await runCli(["list", "--json"], { cwd: dir })).stdout) as { malformed: Array<{ key: string }> }
    expect(listJson.malformed.map((m) => m.key)).toEqual([good.badTaskKey])

    const schedules = await runCli(["schedule", "list"], { cwd: dir })
    expect(schedules.code, schedules.stderr).toBe(0)
    expect(schedules.stdout).toContain("nightly")
    expect(schedules.stderr).toMatch(/skipped 1 malformed object/)
    expect(schedules.stderr).toContain("schedules/broken.json")
    // named once: not again by a library warning after the table
    expect(linesNaming(schedules.stdout + schedules.stderr, "schedules/broken.json")).toBe(1)

    const workers = await runCli(["workers"], { cwd: dir })
    expect(workers.code, workers.stderr).toBe(0)
    expect(workers.stderr).toMatch(/skipped 1 malformed object/)
    expect(workers.stderr).toContain("workers/w-broken.json")
    expect(linesNaming(workers.stdout + workers.stderr, "workers/w-broken.json")).toBe(1)

    const show = await runCli(["schedule", "show", "nightly"], { cwd: dir })
    expect(show.code, show.stderr).toBe(0)
    expect(show.stdout).toMatch(/cron\s+0 3 \* \* \*/)
    expect(show.stdout).toMatch(/last run\s+unreadable: schedules\/nightly\/last_run\.json is not valid JSON/)
    expect(show.stdout).toMatch(/next run\s+\d{4}-/)
  }, 60_000)
})
