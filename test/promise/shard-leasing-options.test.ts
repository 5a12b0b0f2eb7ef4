/**
 * The Promise worker's `shardLeasing` option refuses what cannot work, at `worker.run()`, with a
 * typed `BuquetError` (`InvalidWorkerOptions`) naming the option and what is allowed, as the
 * Effect worker and the config file do: a cap below one shard (which would silently poll nothing
 * it owns), a renewal interval not below the lease lifetime, a lease shorter than the stored
 * timestamps' one-second resolution allows. And the worker's other settings of `[worker]` reach
 * it: `readyPageSize` and `heartbeat` are checked the same way. In memory.
 */
import { describe, expect, it } from "vitest"
import type { WorkerOptions } from "../../src/promise.js"
import { refused, runsOneTask } from "./workerOptions.js"

describe("queue.worker({ shardLeasing }) refuses bad values (Promise)", () => {
  for (
    const [what, options, says] of [
      ["shardsPerWorker 0", { shardLeasing: { shardsPerWorker: 0 } }, /shardLeasing\.shardsPerWorker.*positive integer.*got 0/],
      ["shardsPerWorker 2.5", { shardLeasing: { shardsPerWorker: 2.5 } }, /shardLeasing\.shardsPerWorker.*positive integer.*got 2\.5/],
      ["renewIntervalMs = leaseTtlMs", { shardLeasing: { leaseTtlMs: 10_000, renewIntervalMs: 10_000 } }, /shardLeasing\.renewIntervalMs \(10000\) must be below shardLeasing\.leaseTtlMs \(10000\)/],
      ["renewIntervalMs above the default TTL", { shardLeasing: { renewIntervalMs: 45_000 } }, /shardLeasing\.renewIntervalMs \(45000\) must be below shardLeasing\.leaseTtlMs \(30000, the default\)/],
      ["leaseTtlMs 500", { shardLeasing: { leaseTtlMs: 500 } }, /shardLeasing\.leaseTtlMs.*2000.*got 500/],
      ["renewIntervalMs 0", { shardLeasing: { renewIntervalMs: 0 } }, /shardLeasing\.renewIntervalMs.*got 0/],
      ["readyPageSize 0", { readyPageSize: 0 }, /readyPageSize.*1 to 1000.*got 0/],
      ["heartbeat busyMs 0", { heartbeat: { busyMs: 0 } }, /heartbeat\.busyMs.*got 0/]
    ] as const
  ) {
    it(`${what}: run() rejects with InvalidWorkerOptions saying what is allowed`, async () => {
      const error = await refused({ monitor: false, ...(options as WorkerOptions) })
      expect(error._tag).toBe("InvalidWorkerOptions")
      expect(error.code).toBe("INVALID_WORKER_OPTIONS")
      expect(error.message).toMatch(says)
    }, 30_000)
  }

  it("a worker with shard leasing on (defaults) runs a task to completion", () =>
    runsOneTask({ monitor: false, shardLeasing: true, readyPageSize: 10, heartbeat: { busyMs: 1_000, idleMs: 5_000 } }), 60_000)
})
