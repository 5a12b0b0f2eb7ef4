/**
 * `buquet repair KEY` (issue 15 fix 12): a corrupt `control/pause.json`, leader lease or schema
 * gets a repair path. Spawned CLI on the embedded file store; the garbage is written through the
 * Storage service as a broken writer would. A valid object and a task are never removed.
 */
import { Effect, Layer, Option } from "effect"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import * as Buquet from "../../src/Buquet.js"
import { pauseKey } from "../../src/domain/Pause.js"
import { keyOfTaskId } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { runCli, tempDir } from "./support.js"

const inStore = <A, E>(dir: string, body: Effect.Effect<A, E, Queue | Storage>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(body, Layer.fresh(Buquet.layerFile(join(dir, ".buquet"))))))

const garbage = new TextEncoder().encode("{ not json")

describe("buquet repair", () => {
  it("removes a corrupt pause.json, leader lease and schema, saying what that means; pause and submit work again; a valid one stays", async () => {
    const dir = tempDir("buquet-repair-")
    await inStore(dir, Effect.gen(function*() {
      const storage = yield* Storage
      yield* storage.put(pauseKey, garbage)
      yield* storage.put("control/leader/monitor.json", garbage)
      yield* storage.put("schemas/report.json", garbage)
    }))
    const pause = await runCli(["repair", pauseKey], { cwd: dir })
    expect(pause.code, pause.stderr).toBe(0)
    expect(pause.stdout).toContain(`removed ${pauseKey}`)
    expect(pause.stdout).toContain("nothing is paused now")
    const leader = JSON.parse((await runCli(["repair", "control/leader/monitor.json", "--json"], { cwd: dir })).stdout)
    expect(leader).toMatchObject({ key: "control/leader/monitor.json", outcome: "removed" })
    expect(leader.meaning).toContain("monitor role is free")
    const schema = await runCli(["repair", "schemas/report.json"], { cwd: dir })
    expect(schema.code, schema.stderr).toBe(0)
    expect(schema.stdout).toContain("buquet schema publish report FILE")

    // the subsystems work again: pause writes new switches, a submit of the type is accepted
    expect((await runCli(["pause", "report"], { cwd: dir })).code).toBe(0)
    await inStore(dir, Effect.flatMap(Queue, (q) => q.submit("report", {})))
    // a valid object is left alone
    const valid = await runCli(["repair", pauseKey], { cwd: dir })
    expect(valid.stdout).toContain("is valid; nothing to repair")
    const still = await inStore(dir, Effect.flatMap(Queue, (q) => q.pauseState))
    expect(still.taskTypes).toEqual(["report"])
  }, 120_000)

  it("refuses any other key with exit 2, a task above all", async () => {
    const dir = tempDir("buquet-repair-")
    const key = await inStore(dir, Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const k = keyOfTaskId("00000000-0000-4000-8000-000000000bad", queue.config.shardPrefixLen)
      yield* storage.put(k, garbage)
      return k
    }))
    const refused = await runCli(["repair", key], { cwd: dir })
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain("repair handles control/pause.json")
    const kept = await inStore(dir, Effect.flatMap(Storage, (s) => s.head(key)))
    expect(Option.isSome(kept)).toBe(true)
  }, 60_000)
})
