/**
 * The deterministic simulation's fixed seeds (issue 15): each drives real workers, monitors with
 * leader changes and retention, producers and operators over a faulty in-memory bucket for some
 * simulated minutes, with crashes and pauses, and checks the invariants of test/sim/sim.ts.
 * A failure names the seed and the command that replays it exactly (`npm run sim -- --seed N …`).
 */
import { describe, expect, it } from "vitest"
import { replayCommand, runSeed, type SimOptions } from "./sim.js"

const options: SimOptions = { minutes: 4 }
const seeds = [1, 2, 3, 4, 5, 6]

describe("deterministic simulation", () => {
  for (const seed of seeds) {
    it(`seed ${seed}: no invariant is violated`, async () => {
      const result = await runSeed(seed, options)
      expect(result.violations, `replay: ${replayCommand(seed, options)}`).toEqual([])
      expect(result.stats.submitted).toBeGreaterThan(0)
    }, 120_000)
  }

  it("is deterministic: the same seed gives the same run", async () => {
    const a = await runSeed(7, { minutes: 2 })
    const b = await runSeed(7, { minutes: 2 })
    expect(b.stats).toEqual(a.stats)
  }, 120_000)
})
