/**
 * The bound arithmetic of the server clock: intervals from Date headers, intersection, midpoint,
 * recovery from contradictions, drift, and (property) soundness: the true offset always stays inside.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as CB from "../../src/domain/ClockBounds.js"

const noDrift: CB.ClockBoundsConfig = { driftPpm: 0, historySize: 16 }

/** A faithful sample: the server (local + offset) reads its clock at `sent + phase × rtt`. */
const sampleOf = (sent: number, rtt: number, offset: number, phase = 0.5): CB.DateSampleLike => {
  const serverNow = sent + phase * rtt + offset
  return { sentAtMillis: sent, receivedAtMillis: sent + rtt, serverDateMillis: Math.floor(serverNow / 1000) * 1000 }
}

describe("sampleBound", () => {
  it("bounds the offset by [date − received, date + 1000 − sent]", () => {
    expect(CB.sampleBound({ sentAtMillis: 10_000, receivedAtMillis: 10_050, serverDateMillis: 70_000 })).toEqual({
      lo: 59_950,
      hi: 61_000,
      atMillis: 10_050,
      spanMillis: 50
    })
  })

  it("rejects samples that cannot be true", () => {
    expect(CB.sampleBound({ sentAtMillis: 10, receivedAtMillis: 9, serverDateMillis: 0 })).toBeUndefined()
    expect(CB.sampleBound({ sentAtMillis: Number.NaN, receivedAtMillis: 9, serverDateMillis: 0 })).toBeUndefined()
    expect(CB.addSample(CB.empty, { sentAtMillis: 10, receivedAtMillis: 9, serverDateMillis: 0 })).toBe(CB.empty)
  })

  it("keeps a sample with a huge round trip: valid but barely informative", () => {
    const b = CB.addSample(CB.empty, { sentAtMillis: 0, receivedAtMillis: 120_000, serverDateMillis: 500_000 }, noDrift)
    expect(b.interval).toEqual({ lo: 380_000, hi: 501_000 })
    const e = CB.estimateAt(b, 120_000, noDrift)!
    expect(e.offsetMillis).toBe(440_500)
    expect(e.uncertaintyMillis).toBe(60_500)
    // A precise sample afterwards narrows it to its own width.
    const c = CB.addSample(b, { sentAtMillis: 130_000, receivedAtMillis: 130_010, serverDateMillis: 570_000 }, noDrift)
    expect(c.interval).toEqual({ lo: 439_990, hi: 441_000 })
  })
})

describe("intersection and estimate", () => {
  it("narrows as samples at different phases of the second arrive, and the estimate is the midpoint", () => {
    // True offset 600 250 ms; 20 ms round trips.
    const offset = 600_250
    let b = CB.addSample(CB.empty, sampleOf(1_000, 20, offset), noDrift)
    const width = (x: CB.ClockBounds) => x.interval!.hi - x.interval!.lo
    expect(width(b)).toBe(1020)
    const widths = [width(b)]
    for (const sent of [1_300, 1_600, 1_720, 1_745, 1_900, 2_100]) {
      b = CB.addSample(b, sampleOf(sent, 20, offset), noDrift)
      widths.push(width(b))
      expect(b.interval!.lo).toBeLessThanOrEqual(offset)
      expect(b.interval!.hi).toBeGreaterThanOrEqual(offset)
    }
    for (let i = 1; i < widths.length; i++) expect(widths[i]).toBeLessThanOrEqual(widths[i - 1]!)
    expect(width(b)).toBeLessThanOrEqual(50)
    const e = CB.estimateAt(b, 2_120, noDrift)!
    expect(e.offsetMillis).toBe(Math.round((b.interval!.lo + b.interval!.hi) / 2))
    expect(Math.abs(e.offsetMillis - offset)).toBeLessThanOrEqual(e.uncertaintyMillis)
    expect(e.samples).toBe(7)
  })

  it("intersect and widen", () => {
    expect(CB.intersect({ lo: 0, hi: 10 }, { lo: 5, hi: 20 })).toEqual({ lo: 5, hi: 10 })
    expect(CB.intersect({ lo: 0, hi: 10 }, { lo: 10, hi: 20 })).toEqual({ lo: 10, hi: 10 })
    expect(CB.intersect({ lo: 0, hi: 10 }, { lo: 11, hi: 20 })).toBeUndefined()
    expect(CB.widen({ lo: 0, hi: 10 }, 3)).toEqual({ lo: -3, hi: 13 })
    expect(CB.widen({ lo: 0, hi: 10 }, -3)).toEqual({ lo: 0, hi: 10 })
  })

  it("has no estimate before the first sample", () => {
    expect(CB.estimateAt(CB.empty, 0)).toBeUndefined()
  })

  it("accepts samples out of order (concurrent requests)", () => {
    const offset = -600_400
    const late = sampleOf(5_000, 30, offset)
    const early = { ...sampleOf(4_300, 900, offset), receivedAtMillis: 5_200 } // a slow request that finished last
    const b = CB.addSamples(CB.empty, [late, early], noDrift)
    expect(b.samples).toBe(2)
    expect(b.interval!.lo).toBeLessThanOrEqual(offset)
    expect(b.interval!.hi).toBeGreaterThanOrEqual(offset)
  })
})

describe("contradictions", () => {
  const learnt = (offset: number) =>
    CB.addSamples(CB.empty, [0, 333, 666, 999, 1_250, 1_500].map((t) => sampleOf(t, 10, offset)), noDrift)

  it("holds a lone contradicting sample as a suspect and keeps the estimate", () => {
    const b = learnt(1_000)
    const bogus = CB.addSample(b, sampleOf(2_000, 10, 3_600_000), noDrift)
    expect(bogus.interval).toEqual(b.interval)
    expect(bogus.suspects).toBe(1)
    expect(bogus.restarts).toBe(0)
    // The next good sample is accepted as usual.
    const next = CB.addSample(bogus, sampleOf(2_400, 10, 1_000), noDrift)
    expect(next.restarts).toBe(0)
    expect(next.samples).toBe(b.samples + 1)
  })

  it("restarts from the newest samples when the server's clock is stepped, instead of getting stuck", () => {
    const b = learnt(1_000)
    const jumped = CB.addSamples(b, [2_000, 2_400].map((t) => sampleOf(t, 10, 1_000 + 3_600_000)), noDrift)
    expect(jumped.restarts).toBe(1)
    expect(jumped.samples).toBe(2)
    const e = CB.estimateAt(jumped, 2_410, noDrift)!
    expect(Math.abs(e.offsetMillis - 3_601_000)).toBeLessThanOrEqual(e.uncertaintyMillis)
    // And keeps narrowing from there.
    const more = CB.addSamples(jumped, [2_700, 3_100, 3_500].map((t) => sampleOf(t, 10, 3_601_000)), noDrift)
    expect(more.samples).toBe(5)
    expect(more.restarts).toBe(1)
  })

  it("recovers from a small step too (the host's clock stepped by 300 ms)", () => {
    const b = learnt(1_000)
    const stepped = CB.addSamples(b, [2_000, 2_300, 2_600, 2_950, 3_200].map((t) => sampleOf(t, 10, 1_300)), noDrift)
    const e = CB.estimateAt(stepped, 3_210, noDrift)!
    expect(Math.abs(e.offsetMillis - 1_300)).toBeLessThanOrEqual(e.uncertaintyMillis)
  })
})

describe("drift", () => {
  it("widens the interval with elapsed local time", () => {
    const config: CB.ClockBoundsConfig = { driftPpm: 100, historySize: 16 }
    const b = CB.addSamples(CB.empty, [0, 400, 800, 1_100].map((t) => sampleOf(t, 10, 0)), config)
    const now = CB.estimateAt(b, 1_110, config)!
    const hourLater = CB.estimateAt(b, 1_110 + 3_600_000, config)!
    expect(hourLater.offsetMillis).toBe(now.offsetMillis)
    // 100 ppm of an hour is 360 ms on each side.
    expect(hourLater.uncertaintyMillis - now.uncertaintyMillis).toBeGreaterThanOrEqual(359)
    expect(hourLater.uncertaintyMillis - now.uncertaintyMillis).toBeLessThanOrEqual(361)
  })

  it("tracks a clock drifting within the allowance without ever contradicting it", () => {
    const config: CB.ClockBoundsConfig = { driftPpm: 100, historySize: 16 }
    // The offset grows 50 ppm (3 ms per minute) for 10 hours, one sample about every 7 s.
    let b = CB.empty
    for (let t = 0; t < 10 * 3_600_000; t += 7_137) {
      const offset = 42_000 + t * 50e-6
      b = CB.addSample(b, sampleOf(t, 15, offset), config)
      const iv = CB.intervalAt(b, t + 15, config)!
      expect(iv.lo).toBeLessThanOrEqual(offset + 1)
      expect(iv.hi).toBeGreaterThanOrEqual(offset - 1)
    }
    expect(b.restarts).toBe(0)
    expect(b.suspects).toBe(0)
    expect(CB.estimateAt(b, 10 * 3_600_000, config)!.uncertaintyMillis).toBeLessThan(100)
  })

  it("recovers (restarts) when the real drift exceeds the allowance", () => {
    const config: CB.ClockBoundsConfig = { driftPpm: 0, historySize: 16 }
    let b = CB.empty
    for (let t = 0; t < 3_600_000; t += 5_003) {
      const offset = t * 1e-3 // 1000 ppm, far beyond an allowance of 0
      b = CB.addSample(b, sampleOf(t, 5, offset), config)
    }
    expect(b.restarts).toBeGreaterThan(0)
    const e = CB.estimateAt(b, 3_600_000, config)!
    expect(Math.abs(e.offsetMillis - 3_600)).toBeLessThan(1_100)
  })
})

describe("properties", () => {
  const sampleArb = fc.record({
    sent: fc.integer({ min: 0, max: 4_000_000 }),
    rtt: fc.integer({ min: 0, max: 5_000 }),
    phase: fc.double({ min: 0, max: 1, noNaN: true })
  })

  it.prop(
    "the true offset stays inside the bounds and within the reported uncertainty (soundness)",
    [fc.integer({ min: -3_600_000, max: 3_600_000 }), fc.array(sampleArb, { minLength: 1, maxLength: 40 })],
    ([offset, specs]) => {
      const sorted = [...specs].sort((a, b) => a.sent - b.sent)
      const b = CB.addSamples(CB.empty, sorted.map((s) => sampleOf(s.sent, s.rtt, offset, s.phase)))
      expect(b.restarts).toBe(0)
      expect(b.suspects).toBe(0)
      expect(b.samples).toBe(specs.length)
      const last = sorted[sorted.length - 1]!
      const at = last.sent + last.rtt
      const iv = CB.intervalAt(b, at)!
      expect(iv.lo).toBeLessThanOrEqual(offset)
      expect(iv.hi).toBeGreaterThanOrEqual(offset)
      const e = CB.estimateAt(b, at)!
      expect(Math.abs(e.offsetMillis - offset)).toBeLessThanOrEqual(e.uncertaintyMillis)
    }
  )

  it.prop(
    "adding a consistent sample never widens the bounds (without drift)",
    [fc.integer({ min: -3_600_000, max: 3_600_000 }), fc.array(sampleArb, { minLength: 2, maxLength: 30 })],
    ([offset, specs]) => {
      let b = CB.empty
      let width = Number.POSITIVE_INFINITY
      for (const s of specs) {
        b = CB.addSample(b, sampleOf(s.sent, s.rtt, offset, s.phase), noDrift)
        const w = b.interval!.hi - b.interval!.lo
        expect(w).toBeLessThanOrEqual(width)
        width = w
      }
    }
  )

  it.prop(
    "with small round trips spread over a few seconds, the offset is known to well under a second",
    [
      fc.integer({ min: -3_600_000, max: 3_600_000 }),
      fc.integer({ min: 0, max: 10_000_000 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 30, maxLength: 30 })
    ],
    ([offset, start, rtts]) => {
      // Requests every 137 ms (incommensurate with the second) for about 4 s.
      const b = CB.addSamples(CB.empty, rtts.map((rtt, i) => sampleOf(start + i * 137, rtt, offset, 0.5)))
      const e = CB.estimateAt(b, start + 30 * 137)!
      expect(Math.abs(e.offsetMillis - offset)).toBeLessThanOrEqual(e.uncertaintyMillis)
      expect(e.uncertaintyMillis).toBeLessThanOrEqual(150)
    }
  )

  it.prop(
    "after any history, two agreeing samples of a new offset are followed (never stuck)",
    [
      fc.integer({ min: -3_600_000, max: 3_600_000 }),
      fc.integer({ min: -3_600_000, max: 3_600_000 }),
      fc.array(sampleArb, { minLength: 1, maxLength: 20 })
    ],
    ([offset, newOffset, specs]) => {
      const sorted = [...specs].sort((a, b) => a.sent - b.sent)
      let b = CB.addSamples(CB.empty, sorted.map((s) => sampleOf(s.sent, s.rtt, offset, s.phase)))
      const t = 5_000_000
      b = CB.addSamples(b, [sampleOf(t, 10, newOffset), sampleOf(t + 400, 10, newOffset)])
      const iv = CB.intervalAt(b, t + 410)!
      expect(iv.lo).toBeLessThanOrEqual(newOffset)
      expect(iv.hi).toBeGreaterThanOrEqual(newOffset)
    }
  )
})

describe("the sample history", () => {
  it("keeps the newest historySize samples, oldest first, without changing the bounds it came from", () => {
    for (const historySize of [1, 3, 16]) {
      const config: CB.ClockBoundsConfig = { driftPpm: 0, historySize }
      let bounds = CB.empty
      const seen: Array<CB.SampleBound> = []
      for (let i = 0; i < 20; i++) {
        const sample = sampleOf(1_000 * i, 10 + i, 5_000)
        const before = bounds.recent
        bounds = CB.addSample(bounds, sample, config)
        seen.push(CB.sampleBound(sample)!)
        expect(bounds.recent).toEqual(seen.slice(-historySize))
        expect(before).toEqual(seen.slice(0, -1).slice(-historySize))
      }
    }
  })
})
