/**
 * Shard leasing from the Promise API, on RGW: two `queue.worker({ shardLeasing })` workers with
 * different caps (3 and 5 of 16 shards) and different handler sets on one queue. Every task of
 * both types completes exactly once (a task in a shard whose owner cannot run it is polled, without
 * a lease, by the worker that can), and the lease objects `shard-leases/{shard}.json` show each
 * worker holding at most its `shardsPerWorker` (and, once settled, exactly that: the option reached
 * the leasing). Real time, short leases.
 */
import { Effect, Option } from "effect"
import { expect, it } from "vitest"
import { allShards } from "../../src/domain/Shard.js"
import { connect } from "../../src/promise.js"
import { Storage } from "../../src/services/Storage.js"
import { connectOptions, describeS3, prefixesEmptiedAfterAll, s3Layer } from "../support/s3.js"

const freshPrefix = prefixesEmptiedAfterAll()

/** The live holders of the 16 shards' leases, by worker id (released and expired leases left out). */
const holders = (keyPrefix: string): Promise<Map<string, number>> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const storage = yield* Storage
    const now = Date.now()
    const owners = yield* Effect.forEach(allShards(1), (shard) =>
      Effect.map(storage.get(`shard-leases/${shard}.json`), Option.flatMap((o) => {
        const lease = JSON.parse(new TextDecoder().decode(o.body)) as { readonly worker_id: string; readonly lease_expires_at: string }
        return Date.parse(lease.lease_expires_at) > now ? Option.some(lease.worker_id) : Option.none()
      })), { concurrency: 16 })
    const count = new Map<string, number>()
    for (const owner of owners) if (Option.isSome(owner)) count.set(owner.value, (count.get(owner.value) ?? 0) + 1)
    return count
  }).pipe(Effect.provide(s3Layer({ keyPrefix })))))

describeS3("shard leasing through the Promise worker (RGW)", (settings) => {
  it("two leasing workers (3 and 5 shards, different task types): every task completes once; each holds at most its cap", async () => {
    const keyPrefix = freshPrefix(settings)
    const queue = await connect({ ...connectOptions(settings, keyPrefix), quiet: true, typeCheck: "off" })
    const ran: Array<string> = []
    const observed: Array<Map<string, number>> = []
    try {
      const leasing = { leaseTtlMs: 10_000, renewIntervalMs: 3_000 }
      const common = { signals: false, monitor: false, concurrency: 4 } as const
      const a = queue.worker({ ...common, id: "lease-a", shardLeasing: { ...leasing, shardsPerWorker: 3 } })
        .task("alpha", async (_input: unknown, ctx) => void ran.push(`alpha ${ctx.taskId}`))
      const b = queue.worker({ ...common, id: "lease-b", shardLeasing: { ...leasing, shardsPerWorker: 5 } })
        .task("beta", async (_input: unknown, ctx) => void ran.push(`beta ${ctx.taskId}`))
      const running = [a.run(), b.run()]

      const tasks = await Promise.all([
        ...[1, 2, 3, 4, 5].map((n) => queue.submit("alpha", { n })),
        ...[1, 2, 3, 4, 5].map((n) => queue.submit("beta", { n }))
      ])
      const done = await Promise.all(tasks.map((t) => queue.waitFor(t.id, { timeoutMs: 90_000 })))
      expect(done.map((t) => t.status)).toEqual(tasks.map(() => "completed"))

      // the caps were in force: A settles at 3 shards, B at 5, never more
      for (let i = 0; i < 60; i++) {
        const now = await holders(keyPrefix)
        observed.push(now)
        if (now.get("lease-a") === 3 && now.get("lease-b") === 5) break
        await new Promise((r) => setTimeout(r, 500))
      }
      const last = observed.at(-1)!
      expect([last.get("lease-a"), last.get("lease-b")], JSON.stringify(observed.map((m) => [...m]))).toEqual([3, 5])
      expect(observed.every((m) => (m.get("lease-a") ?? 0) <= 3 && (m.get("lease-b") ?? 0) <= 5)).toBe(true)
      expect([...last.keys()].sort()).toEqual(["lease-a", "lease-b"])

      // each task ran once, on the worker that handles its type
      expect(ran.filter((r) => r.startsWith("alpha ")).map((r) => r.slice(6)).sort()).toEqual(tasks.slice(0, 5).map((t) => t.id).sort())
      expect(ran.filter((r) => r.startsWith("beta ")).map((r) => r.slice(5)).sort()).toEqual(tasks.slice(5).map((t) => t.id).sort())

      await Promise.all([a.stop(), b.stop()])
      await Promise.all(running)
      // a stopped worker releases its leases
      expect([...(await holders(keyPrefix)).keys()]).toEqual([])
    } finally {
      await queue.close()
    }
  }, 300_000)
})
