/**
 * Issue 16 item 7: a failing handler is visible. The spawned `buquet worker` logs one line per
 * failed attempt (task id, type, attempt, message), the stack trace is stored with the failed
 * attempt (the task's transition log, an extra field the reference ignores) and shown by `get`,
 * `history` and the Promise API; routine monitor lines stay out of the default log.
 */
import { Effect, Layer, Option } from "effect"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import * as Buquet from "../../src/Buquet.js"
import { connect } from "../../src/promise.js"
import { Queue } from "../../src/services/Queue.js"
import type { Storage } from "../../src/services/Storage.js"
import { eventually, root, runCli, spawnCli, tempDir } from "./support.js"

const inStore = <A, E>(dir: string, body: Effect.Effect<A, E, Queue | Storage>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(body, Layer.fresh(Buquet.layerFile(join(dir, ".buquet"))))))

const fixtures = join(root, "test", "cli", "fixtures")

describe("a failing handler is visible", () => {
  it("one log line per failed attempt; the stack trace shows in get, history and the Promise API", async () => {
    const dir = tempDir("buquet-failures-")
    const task = await inStore(dir, Effect.flatMap(Queue, (q) => q.submit("boom", {}, { maxRetries: 1 })))
    const worker = spawnCli(["worker", "--handlers", join(fixtures, "handlers-map.mjs"), "--poll-max-ms", "200", "--id", "w-fail"], { cwd: dir })
    try {
      await eventually(async () => {
        const t = await inStore(dir, Effect.map(Effect.flatMap(Queue, (q) => q.get(task.id)), Option.getOrUndefined))
        return t?.status === "failed" ? t : undefined
      }, () => `the task to fail for good (${JSON.stringify(worker.output())})`)
    } finally {
      worker.signal("SIGTERM")
      await worker.exited
    }
    const log = `${worker.output().stdout}\n${worker.output().stderr}`
    const lines = log.split("\n").filter((l) => l.includes(task.id) && l.includes("failed"))
    expect(lines, log).toHaveLength(2)
    expect(lines[0]).toMatch(/task \S+ \(boom\) attempt 1 failed: boom: this task always fails; retrying/)
    expect(lines[1]).toMatch(/task \S+ \(boom\) attempt 2 failed: boom: this task always fails.*; failed for good/)
    expect(log).not.toMatch(/sweeper: pass .* finished/)

    const get = await runCli(["get", task.id], { cwd: dir })
    expect(get.code, get.stderr).toBe(0)
    expect(get.stdout).toMatch(/error stack\s+Error: boom: this task always fails\n\s+at boom \(.*handlers-map\.mjs:\d+:\d+\)/)

    const history = await runCli(["history", task.id], { cwd: dir })
    expect(history.code, history.stderr).toBe(0)
    expect(history.stdout.match(/at boom \(.*handlers-map\.mjs/g) ?? []).toHaveLength(2)

    const queue = await connect({ directory: join(dir, ".buquet"), quiet: true })
    try {
      const seen = await queue.get(task.id)
      expect(seen?.lastErrorStack).toMatch(/at boom \(.*handlers-map\.mjs/)
      const failedAttempts = (seen?.events ?? []).filter((e) => e.error !== undefined)
      expect(failedAttempts.map((e) => [e.attempt, e.stack?.includes("handlers-map.mjs")])).toEqual([[1, true], [2, true]])
    } finally {
      await queue.close()
    }
  }, 90_000)

  it("log lines go to stderr: submit --json of a type no worker registered prints only its JSON on stdout", async () => {
    const dir = tempDir("buquet-logs-")
    const r = await runCli(["submit", "-t", "never_handled", "-i", "{}", "--json"], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    expect((JSON.parse(r.stdout) as { task_type: string }).task_type).toBe("never_handled")
    expect(r.stderr).toMatch(/^buquet: warning: no worker has ever registered a handler for task type/m)
  }, 60_000)
})
