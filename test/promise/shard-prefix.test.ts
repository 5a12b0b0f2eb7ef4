/**
 * The Promise surface cannot hit the embedder's prefix-length trap (a worker polling another shard
 * prefix length than its producers write at): `queue.worker()` runs on the connection's one stack,
 * whose Queue, Scheduler and worker share the connection's settings. Shown at length 2, in memory.
 */
import { describe, expect, it } from "vitest"
import { connect } from "../../src/promise.js"

describe("connect({ shardPrefixLen: 2 }) (Promise)", () => {
  it("the connection's worker runs a task submitted at that length", async () => {
    const queue = await connect({ memory: true, quiet: true, shardPrefixLen: 2 })
    try {
      const submitted = await queue.submit("job", { n: 1 }, { typeCheck: "off" })
      expect(submitted.shard).toHaveLength(2)
      const worker = queue.worker({ signals: false, monitor: false, maxTasks: 1 })
      worker.task("job", async (input: { readonly n: number }) => ({ doubled: input.n * 2 }))
      const running = worker.run()
      const done = await queue.waitFor(submitted.id, { timeoutMs: 20_000 })
      expect(done.status).toBe("completed")
      expect(done.output).toEqual({ doubled: 2 })
      await running
    } finally {
      await queue.close()
    }
  }, 60_000)
})
