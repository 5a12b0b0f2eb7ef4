/**
 * Shared by the Promise worker-option tests: a worker that refuses its options at `run()`, and one
 * that runs a task to completion with them. In memory.
 */
import { expect } from "vitest"
import { BuquetError, connect } from "../../src/promise.js"
import type { WorkerOptions } from "../../src/promise.js"

/** The `BuquetError` that `run()` of a worker given `options` rejects with (fails if it runs). */
export const refused = async (options: WorkerOptions) => {
  const queue = await connect({ memory: true, quiet: true })
  try {
    const worker = queue.worker({ signals: false, ...options }).task("job", async () => "ok")
    // a worker that accepted the options runs until stopped: give it a few seconds to refuse them
    const outcome = await Promise.race([
      worker.run().then(() => "ran and stopped", (e: unknown) => e),
      new Promise((r) => setTimeout(() => r("still running"), 10_000))
    ])
    await worker.stop()
    expect(outcome).toBeInstanceOf(BuquetError)
    return outcome as BuquetError
  } finally {
    await queue.close()
  }
}

/** A worker given `options` (and `maxTasks: 1`) runs one submitted task to completion, then stops. */
export const runsOneTask = async (options: WorkerOptions) => {
  const queue = await connect({ memory: true, quiet: true })
  try {
    const task = await queue.submit("job", {}, { typeCheck: "off" })
    const running = queue.worker({ signals: false, ...options, maxTasks: 1 }).task("job", async () => "ok").run()
    expect((await queue.waitFor(task.id, { timeoutMs: 30_000 })).output).toBe("ok")
    await running
  } finally {
    await queue.close()
  }
}
