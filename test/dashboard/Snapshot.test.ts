import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import type { RequestCounts } from "../../src/services/RequestCounter.js"
import { makeStack, openSse, startDashboard, workOnce } from "./support.js"

/**
 * Acceptance 5: N SSE clients for 60 s of (Test)clock time against one in-memory bucket while a
 * producer and a simulated worker change tasks at fixed instants; returns the dashboard's own
 * requests (CountingStorage around the dashboard's storage only) and what the clients saw.
 */
const sseRun = (clients: number) =>
  Effect.scoped(
    Effect.gen(function*() {
      const stack = yield* makeStack()
      for (let i = 0; i < 30; i++) yield* Effect.orDie(stack.producer.submit("seed", { i }))
      const dash = yield* startDashboard(stack, { refreshInterval: "5 seconds" })
      const sse = yield* Effect.all(Array.from({ length: clients }, () => openSse(dash.url)), { concurrency: "unbounded" })
      // the first event: the snapshot made when the first client connected (shared by the others)
      yield* Effect.forEach(sse, (c) => c.waitForId(1), { discard: true })
      for (let second = 1; second <= 60; second++) {
        if (second % 10 === 0) {
          const task = yield* Effect.orDie(stack.producer.submit("work", { second }))
          yield* workOnce(stack, task.id, { output: { second } })
        }
        yield* TestClock.adjust("1 second")
      }
      const snapshot = yield* dash.snapshot.current
      yield* Effect.forEach(sse, (c) => c.waitForId(snapshot.refreshes), { discard: true })
      const counted: RequestCounts = yield* stack.counter.snapshot
      return { counted, snapshot, received: sse.map((c) => c.events()) }
    })
  )

describe("One shared refresh for every SSE client (acceptance 5)", () => {
  it.effect("20 clients for 60 s cost the bucket the same requests as one client", () =>
    Effect.gen(function*() {
      const one = yield* sseRun(1)
      const twenty = yield* sseRun(20)
      // the refresh runs on its schedule, not per client: at 0 s and every 5 s up to 60 s
      expect(one.snapshot.refreshes).toBe(13)
      expect(twenty.snapshot.refreshes).toBe(13)
      expect(one.counted.total).toBeGreaterThan(0)
      // ±10 % is the acceptance bar; on TestClock the counts are exactly equal
      expect(Math.abs(twenty.counted.total - one.counted.total)).toBeLessThanOrEqual(one.counted.total * 0.1)
      expect(twenty.counted).toEqual(one.counted)
      // the snapshot's own cost accounting is what the counter saw
      expect(twenty.snapshot.totalCost.total).toBe(twenty.counted.total)
      // every client got every snapshot
      expect(twenty.received.every((n) => n === 13)).toBe(true)
      // bounded: per refresh 3 LISTs, GETs only of changed objects: the 30 seeds once, then each of
      // the 6 new tasks once (it was submitted and completed between two refreshes)
      expect(one.counted.LIST).toBe(13 * 3)
      expect(one.counted.GET).toBe(30 + 6)
      expect(one.counted.PUT).toBe(0)
    }))

  it.effect("an idle queue costs LISTs only; GETs follow changed ETags; the walk of tasks/ is bounded per refresh", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const tasks = yield* Effect.forEach(Array.from({ length: 2500 }, (_, i) => i), (i) => Effect.orDie(stack.producer.submit("bulk", { i })))
      const dash = yield* startDashboard(stack, { maxListPagesPerRefresh: 2, maxGetsPerRefresh: 1000 })
      const first = yield* dash.snapshot.refreshNow
      // 2 pages of tasks/ (2000 keys), GET budget 1000: the rest waits
      expect(first.lastCost.LIST).toBe(2 + 2)
      expect(first.lastCost.GET).toBe(1000)
      expect(first.unread).toBe(1000)
      expect(first.complete).toBe(false)
      const second = yield* dash.snapshot.refreshNow
      // the walk goes on from its cursor: the last 500 keys in one page, the 1000 waiting GETs... within budget
      expect(second.lastCost.LIST).toBe(1 + 2)
      expect(second.lastCost.GET).toBe(500)
      const third = yield* dash.snapshot.refreshNow
      expect(third.lastCost.LIST).toBe(2 + 2)
      expect(third.lastCost.GET).toBe(1000)
      const fourth = yield* dash.snapshot.refreshNow
      expect(fourth.tasks.length).toBe(2500)
      expect(fourth.unread).toBe(0)
      // idle: nothing changed, no GET at all
      const idle = yield* dash.snapshot.refreshNow
      const idle2 = yield* dash.snapshot.refreshNow
      expect(idle.lastCost.GET + idle2.lastCost.GET).toBe(0)
      // one change → one GET when the walk passes it
      yield* workOnce(stack, tasks[0]!.id, { output: 1 })
      let gets = 0
      for (let i = 0; i < 2; i++) gets += (yield* dash.snapshot.refreshNow).lastCost.GET
      expect(gets).toBe(1)
      const last = yield* dash.snapshot.current
      expect(last.byId.get(tasks[0]!.id)?.status).toBe("completed")
      expect(last.counts.completed).toBe(1)
      expect(last.counts.pending).toBe(2499)
    }).pipe(Effect.scoped))

  it.effect("deleted tasks leave the snapshot; no watcher, no periodic refresh", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const a = yield* Effect.orDie(stack.producer.submit("t", 1))
      yield* Effect.orDie(stack.producer.submit("t", 2))
      const dash = yield* startDashboard(stack, { refreshInterval: "5 seconds" })
      const first = yield* dash.snapshot.fresh
      expect(first.tasks.length).toBe(2)
      yield* Effect.orDie(stack.producer.delete(a.id))
      yield* TestClock.adjust("1 minute")
      // nobody watches: the loop did not refresh
      expect((yield* dash.snapshot.current).refreshes).toBe(1)
      const later = yield* dash.snapshot.fresh
      expect(later.refreshes).toBe(2)
      expect(later.tasks.map((t) => t.id)).not.toContain(a.id)
    }).pipe(Effect.scoped))
})
