/**
 * The deterministic simulation's fixed seeds (issue 15): each drives real workers, monitors with
 * leader changes and retention, producers and operators over a faulty in-memory bucket for some
 * simulated minutes, with crashes and pauses, and checks the invariants of test/sim/sim.ts.
 * A failure names the seed and the command that replays it exactly (`npm run sim -- --seed N …`).
 */
import { describe, expect, it } from "vitest"
import { replayCommand, runSeed, type SimOptions } from "./sim.js"

const options: SimOptions = { minutes: 2 }
// 1–8, and seeds a long run found (kept so the fix stays fixed): 1140, a two-minute pause of a
// type whose backlog every worker read again on every pass (one task read 156 times), and 10966,
// an operator's migrate-shards under a 43 % fault rate that gave up at each attempt's first 503
const seeds = [...Array.from({ length: 8 }, (_, i) => i + 1), 1140, 10966]

describe("deterministic simulation", () => {
  for (const seed of seeds) {
    it(`seed ${seed}: no invariant is violated`, async () => {
      const result = await runSeed(seed, options)
      expect(result.violations, `replay: ${replayCommand(seed, options)}`).toEqual([])
      expect(result.stats.submitted).toBeGreaterThan(0)
    }, 120_000)
  }

  // The simulator can fail: with issue 15 fix 6 undone through a test seam (a task leaving
  // `running` has its old lease marker deleted a little later, even in an open bucket), seed 6 —
  // which passes above — finds a running task whose lease marker a late DELETE removed. (Seed 2
  // did until the quiet mode learnt to ignore finished tasks' markers, then seed 3 until the
  // sweeper left young indexed tasks unread and the claims' ready DELETEs were batched, each of
  // which changed the schedules; 6, 7 and 11 of the first 12 find it now.)
  it("fails when a fix is undone: seed 6 with Settle's old lease-marker DELETE", async () => {
    const undone: SimOptions = { ...options, seam: "settleDeletesLeaseMarker" }
    const result = await runSeed(6, undone)
    expect(result.violations.join("\n")).toMatch(/undiscoverable: running task \S+ has no leases\//)
  }, 120_000)

  // And with issue 15 fix 1 undone (the bucket ignores If-Match on DELETE, as retention's plain
  // DELETE did), seed 3 — which passes above — has an operator replay a failed task while
  // retention's slow DELETE of it is on its way: the DELETE removes the task the replay made live.
  it("fails when a fix is undone: seed 3 with retention's unconditional DELETE", async () => {
    const undone: SimOptions = { ...options, seam: "unconditionalDelete" }
    const result = await runSeed(3, undone)
    expect(result.violations.join("\n")).toMatch(/lost task: \S+ was deleted while (pending|running)/)
  }, 120_000)

  it("is deterministic: the same seed gives the same run", async () => {
    const a = await runSeed(7, { minutes: 1 })
    const b = await runSeed(7, { minutes: 1 })
    expect(b.stats).toEqual(a.stats)
  }, 120_000)
})
