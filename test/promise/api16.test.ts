/**
 * Issue 16 item 16: what a BullMQ user expects of the Promise API. `worker.off` / `worker.once`,
 * a `progress` event, `queue.waitFor(id, { timeoutMs })` (resolves with the finished task, rejects
 * with a typed error on timeout), and typed plain-object inputs without Effect
 * (`worker.task<{ to: string }>(…)`, `queue.submit<{ to: string }>(…)`). In memory, real time.
 */
import { describe, expect, it } from "vitest"
import { BuquetError, connect } from "../../src/promise.js"
import type { WorkerEvent } from "../../src/promise.js"

describe("Promise API conveniences", () => {
  it("off / once / progress events, waitFor, typed inputs", async () => {
    const queue = await connect({ memory: true, quiet: true })
    try {
      const worker = queue.worker({ concurrency: 1, signals: false, monitor: false })
      worker.task<{ readonly to: string }, { readonly sent: string }>("send_email", async (input, ctx) => {
        ctx.progress({ step: "connecting" })
        ctx.progress({ step: "sent" })
        return { sent: input.to.toUpperCase() }
      })
      const progress: Array<unknown> = []
      const completed: Array<string> = []
      const onceSeen: Array<string> = []
      const removed: Array<string> = []
      const removedListener = (e: WorkerEvent) => void removed.push(e.taskId)
      worker.on("progress", (e) => void progress.push(e.progress))
      worker.on("completed", (e) => void completed.push(e.taskId))
      worker.once("completed", (e) => void onceSeen.push(e.taskId))
      worker.on("completed", removedListener)
      expect(worker.off("completed", removedListener)).toBe(worker)
      const running = worker.run()

      const first = await queue.submit<{ readonly to: string }>("send_email", { to: "a@example.com" })
      const done = await queue.waitFor(first.id, { timeoutMs: 10_000 })
      expect(done.status).toBe("completed")
      expect(done.output).toEqual({ sent: "A@EXAMPLE.COM" })
      const second = await queue.submit("send_email", { to: "b@example.com" })
      expect((await queue.waitFor(second.id, { timeoutMs: 10_000 })).status).toBe("completed")

      expect(completed).toEqual([first.id, second.id])
      expect(onceSeen).toEqual([first.id])
      expect(removed).toEqual([])
      expect(progress).toEqual([{ step: "connecting" }, { step: "sent" }, { step: "connecting" }, { step: "sent" }])

      // a task nobody runs: waitFor rejects with a typed error once its time is up
      const orphan = await queue.submit("nobody_handles_this", {})
      const timedOut = await queue.waitFor(orphan.id, { timeoutMs: 300 }).then(() => undefined, (e: unknown) => e)
      expect(timedOut).toBeInstanceOf(BuquetError)
      expect((timedOut as BuquetError)._tag).toBe("WaitTimeout")
      expect((timedOut as BuquetError).message).toContain(orphan.id)
      const missing = await queue.waitFor("00000000-0000-4000-8000-000000000000", { timeoutMs: 300 }).then(() => undefined, (e: unknown) => e)
      expect((missing as BuquetError)._tag).toBe("TaskNotFound")

      await worker.stop()
      await running
    } finally {
      await queue.close()
    }
  }, 30_000)
})
