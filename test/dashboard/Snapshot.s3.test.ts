import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { describeS3, s3Layer } from "../support/s3.js"
import { makeStack, openSse, startDashboard } from "./support.js"

/**
 * Acceptance 5, the shorter real run: real clock, real RGW, real sockets. N clients stay until
 * they have each received `events` snapshots; then the dashboard's requests are compared. No
 * timing is asserted: only that each refresh costs the same whatever the number of clients.
 */
const realRun = (clients: number, events: number) =>
  Effect.scoped(
    Effect.gen(function*() {
      const stack = yield* makeStack({ storage: s3Layer() })
      for (let i = 0; i < 10; i++) yield* Effect.orDie(stack.producer.submit("seed", { i }))
      const dash = yield* startDashboard(stack, { refreshInterval: "400 millis" })
      const sse = yield* Effect.all(Array.from({ length: clients }, () => openSse(dash.url)), { concurrency: "unbounded" })
      yield* Effect.forEach(sse, (c) => c.waitForId(events), { discard: true })
      const snapshot = yield* dash.snapshot.current
      const counted = yield* stack.counter.snapshot
      return { snapshot, counted }
    })
  )

describeS3("Dashboard SSE cost on the real server", () => {
  it.live("20 clients: every refresh costs what it costs with one client", () =>
    Effect.gen(function*() {
      const one = yield* realRun(1, 6)
      const twenty = yield* realRun(20, 6)
      for (const run of [one, twenty]) {
        // an idle queue: after the first refresh (3 LISTs + 10 GETs), 3 LISTs per refresh, nothing else
        expect(run.snapshot.lastCost.total).toBe(3)
        expect(run.snapshot.totalCost.GET).toBe(10)
        expect(run.snapshot.totalCost.total).toBe(3 * run.snapshot.refreshes + 10)
        // everything the dashboard asked the bucket is the refreshes' (a refresh may be under way: ≤ 3 more)
        expect(run.counted.total - run.snapshot.totalCost.total).toBeGreaterThanOrEqual(0)
        expect(run.counted.total - run.snapshot.totalCost.total).toBeLessThanOrEqual(3)
      }
      const perRefresh = (r: typeof one) => (r.snapshot.totalCost.total - 10) / r.snapshot.refreshes
      expect(Math.abs(perRefresh(twenty) - perRefresh(one))).toBeLessThanOrEqual(perRefresh(one) * 0.1)
    }))
})
