/**
 * `buquet worker` on SIGTERM/SIGINT (issue 16 item 1), as a spawned process on the embedded store:
 * the first signal stops claiming and lets the running handler finish within `--grace` (task
 * `completed`, "stopped" line, exit 0); a second signal forces the stop, says so, and gives the task
 * back without consuming a retry. `--log-level` is accepted before and after `worker`.
 */
import { Effect, Layer, Option } from "effect"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import * as Buquet from "../../src/Buquet.js"
import type { Task } from "../../src/domain/Task.js"
import { Queue } from "../../src/services/Queue.js"
import { eventually, root, spawnCli, tempDir } from "./support.js"

const inStore = <A, E>(dir: string, body: Effect.Effect<A, E, Queue>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(body, Layer.fresh(Buquet.layerFile(join(dir, ".buquet"))))))

const handlers = join(root, "test", "cli", "fixtures", "handlers-slow.mjs")

const submitSlow = (dir: string) => inStore(dir, Effect.flatMap(Queue, (q) => q.submit("slow", {}, { maxRetries: 3 })))

const getTask = (dir: string, id: string): Promise<Task | undefined> =>
  inStore(dir, Effect.map(Effect.flatMap(Queue, (q) => q.get(id)), Option.getOrUndefined))

const startWorker = (dir: string, extra: ReadonlyArray<string>, slowMs: number) =>
  spawnCli(["worker", "--handlers", handlers, "--no-monitor", "--poll-max-ms", "200", "--id", "w-grace", ...extra], {
    cwd: dir,
    env: { SLOW_MS: String(slowMs) }
  })

/** Waits until the task is running, and then until the handler has been running a while. */
const runningFor = async (dir: string, id: string, ms: number, output: () => unknown) => {
  await eventually(async () => ((await getTask(dir, id))?.status === "running" ? true : undefined), () => `the task to run (${JSON.stringify(output())})`, 120, 250)
  await new Promise((r) => setTimeout(r, ms))
}

describe("buquet worker stops gracefully on a signal", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`${signal} 1 s into a 5 s handler with --grace 30: the handler finishes, the task completes, exit 0`, async () => {
      const dir = tempDir("buquet-grace-")
      const task = await submitSlow(dir)
      const worker = startWorker(dir, ["--grace", "30"], 5_000)
      await runningFor(dir, task.id, 1_000, worker.output)
      worker.signal(signal)
      const exit = await worker.exited
      const { stderr } = worker.output()
      expect(exit, stderr).toEqual({ code: 0, signal: null })
      const after = await getTask(dir, task.id)
      expect(after?.status, stderr).toBe("completed")
      expect(after?.output).toEqual({ slept: 5_000 })
      expect(stderr).toMatch(/stopping gracefully/)
      expect(stderr).toMatch(/buquet: worker w-grace stopped/)
    })
  }

  it("a second SIGTERM forces the stop, says so, and gives the task back without consuming a retry", async () => {
    const dir = tempDir("buquet-force-")
    const task = await submitSlow(dir)
    const worker = startWorker(dir, ["--grace", "30"], 60_000)
    await runningFor(dir, task.id, 1_000, worker.output)
    worker.signal("SIGTERM")
    await eventually(async () => (/stopping gracefully/.test(worker.output().stderr) ? true : undefined), "the graceful-stop line")
    worker.signal("SIGTERM")
    const exit = await worker.exited
    const { stderr } = worker.output()
    expect(exit.signal, stderr).toBeNull()
    expect(exit.code, stderr).toBe(130)
    expect(stderr).toMatch(/forcing the stop/)
    const after = await getTask(dir, task.id)
    expect(after?.status, stderr).toBe("pending")
    expect(after?.retryCount).toBe(0)
    expect(after?.leaseId).toBeNull()
  })

  for (const args of [["--log-level", "debug", "worker"], ["worker", "--log-level", "debug"]]) {
    it(`buquet ${args.join(" ")} runs and stops with exit 0`, async () => {
      const dir = tempDir("buquet-loglevel-")
      const task = await submitSlow(dir)
      const worker = spawnCli([...args, "--handlers", handlers, "--no-monitor", "--poll-max-ms", "200", "--id", "w-log"], {
        cwd: dir,
        env: { SLOW_MS: "10" }
      })
      await eventually(async () => ((await getTask(dir, task.id))?.status === "completed" ? true : undefined), () => `the task to complete (${JSON.stringify(worker.output())})`, 120, 250)
      worker.signal("SIGTERM")
      const exit = await worker.exited
      expect(exit, worker.output().stderr).toEqual({ code: 0, signal: null })
      expect(worker.output().stderr).toMatch(/buquet: worker w-log stopped/)
    })
  }
})
