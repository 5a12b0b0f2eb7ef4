/**
 * The CLI never writes raw control characters from stored data to a terminal (issue 16 item 11,
 * security #2 and #10): a stored error, input or worker id holding ESC ] 0 ; … BEL, ESC [ 2 J,
 * CR, NUL, C1 controls or bidi overrides is printed with those characters as visible `\uXXXX`
 * by `get`, `history`, `list`, `workers`, `tail` and in the worker's log (a handler's error message built
 * from the task's input); `--json` output stays valid JSON with the same values.
 */
import { describe, expect, it } from "vitest"
import { join } from "node:path"
import { Effect, Layer, Option } from "effect"
import { utf8 } from "../../src/domain/Codec.js"
import { taskKey } from "../../src/domain/Keys.js"
import { FileStorage } from "../../src/layers/FileStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import * as Buquet from "../../src/Buquet.js"
import { eventually, root, runCli, spawnCli, tempDir } from "../cli/support.js"

const evil = "\u001b]0;PWNED\u0007\u001b[2J\u001b[31mfake OK\r\u0000\u009b\u202egnp.exe\u2066x\u2069"
// every character a terminal would act on; none may appear raw in human output
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const raw = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

const seed = async (dir: string) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const task = yield* queue.submit("mail", { to: evil })
      const key = taskKey(task.shard, task.id)
      const body = Option.getOrThrow(yield* storage.get(key)).body
      const doc = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>
      doc["last_error"] = evil
      doc["events"] = [{ at: doc["created_at"], from: null, to: "pending", attempt: 0, worker_id: "w-1", error: evil }]
      yield* storage.put(key, utf8(JSON.stringify(doc)))
      yield* storage.put("workers/w-1.json", utf8(JSON.stringify({
        worker_id: "w-1",
        started_at: "2026-01-01T00:00:00Z",
        last_heartbeat: "2026-01-01T00:00:00Z",
        shards: [evil],
        current_task: null,
        tasks_completed: 0,
        tasks_failed: 0,
        hostname: evil
      })))
      return task.id
    }).pipe(Effect.provide(QueueLayer.layerOn(Layer.effect(Storage, FileStorage.make(join(dir, ".buquet"))))))
  )

describe("human CLI output escapes control and bidi characters from the store", () => {
  it("get, history, list, workers, tail: no raw controls, the characters shown as \\uXXXX; --json keeps the values", async () => {
    const dir = tempDir()
    const id = await seed(dir)
    const outputs = new Map<string, Awaited<ReturnType<typeof runCli>>>()
    for (const args of [["get", id], ["history", id], ["list"], ["workers"], ["tail", "--all", "--limit", "1"]]) {
      const r = await runCli(args, { cwd: dir })
      outputs.set(args[0]!, r)
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0)
      expect(raw.test(r.stdout), `${args.join(" ")} printed a raw control: ${JSON.stringify(r.stdout)}`).toBe(false)
      expect(raw.test(r.stderr)).toBe(false)
    }
    const get = outputs.get("get")!
    expect(get.stdout).toContain("\\u001b]0;PWNED\\u0007\\u001b[2J")
    expect(get.stdout).toContain("\\u202egnp.exe")
    expect(outputs.get("tail")!.stdout).toContain("\\u001b]0;PWNED\\u0007\\u001b[2J")
    const json = await runCli(["get", id, "--json"], { cwd: dir })
    expect(raw.test(json.stdout)).toBe(false)
    const doc = JSON.parse(json.stdout) as { task?: { last_error: string }; last_error?: string }
    expect(doc.task?.last_error ?? doc.last_error).toBe(evil)
  }, 300_000)

  it("an error message naming stored text is escaped too", async () => {
    const dir = tempDir()
    await Effect.runPromise(
      Effect.gen(function*() {
        const storage = yield* Storage
        yield* storage.put("control/pause.json", utf8(`{"paused": "\u001b[2J${evil}"`))
      }).pipe(Effect.provide(Layer.effect(Storage, FileStorage.make(join(dir, ".buquet")))))
    )
    const r = await runCli(["resume"], { cwd: dir })
    expect(raw.test(r.stderr), JSON.stringify(r.stderr)).toBe(false)
    expect(raw.test(r.stdout)).toBe(false)
  }, 300_000)

  it("the worker's log line for a failed attempt escapes an error message built from the task's input", async () => {
    const dir = tempDir()
    const inStore = <A, E>(body: Effect.Effect<A, E, Queue>) =>
      Effect.runPromise(Effect.scoped(Effect.provide(body, Layer.fresh(Buquet.layerFile(join(dir, ".buquet"))))))
    const task = await inStore(Effect.flatMap(Queue, (q) => q.submit("echo", { to: evil }, { maxRetries: 0 })))
    const worker = spawnCli(
      ["worker", "--handlers", join(root, "test", "cli", "fixtures", "handlers-echo-error.mjs"), "--no-monitor", "--poll-max-ms", "200"],
      { cwd: dir }
    )
    try {
      await eventually(
        async () => ((await inStore(Effect.map(Effect.flatMap(Queue, (q) => q.get(task.id)), Option.getOrUndefined)))?.status === "failed" ? true : undefined),
        () => `the task to fail (${JSON.stringify(worker.output())})`
      )
    } finally {
      worker.signal("SIGTERM")
      await worker.exited
    }
    const { stderr, stdout } = worker.output()
    const log = `${stdout}\n${stderr}`
    expect(log).toMatch(new RegExp(`task ${task.id} \\(echo\\) attempt 1 failed: bad address `))
    expect(raw.test(log), `the worker printed a raw control: ${JSON.stringify(log)}`).toBe(false)
    expect(log).toContain("bad address \\u001b]0;PWNED\\u0007\\u001b[2J")
  }, 120_000)
})
