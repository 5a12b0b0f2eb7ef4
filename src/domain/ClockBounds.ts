/**
 * The arithmetic of learning the server's clock from `Date` headers (design.md §4). Pure: no
 * Effect services, no I/O; `layers/ServerClock.ts` folds samples into it.
 *
 * A response sent at local time `sent` and received at `received` carries a `Date` header `date`
 * (whole seconds). At some local instant in [sent, received] the server's clock read a time in
 * [date, date + 1000). So the offset (server − local) lies in [date − received, date + 1000 − sent].
 * Intersecting the intervals of many samples narrows it; the estimate is the midpoint and the
 * uncertainty the half-width.
 *
 * Two clocks that are each a little wrong drift apart, so an interval learnt at local time `t0`
 * is widened by `driftPpm × |t − t0|` when it is used at `t`. If a sample contradicts the
 * current interval (the server's clock was stepped, the host's clock was stepped, or the sample is
 * bogus), the bounds restart from the newest samples that agree with each other; a lone
 * contradicting sample is held as a suspect until a second one confirms it, so one bogus `Date`
 * header cannot move the clock by itself.
 *
 * @module
 */

/** The resolution of an HTTP `Date` header: whole seconds. */
export const dateResolutionMillis = 1000

/** What one response says about the server's clock (structurally the Storage port's `DateSample`). */
export interface DateSampleLike {
  /** Local time when the request was sent. */
  readonly sentAtMillis: number
  /** Local time when the response arrived. */
  readonly receivedAtMillis: number
  /** The response's `Date` header, in epoch milliseconds (a whole second). */
  readonly serverDateMillis: number
}

/** A closed interval of possible offsets (server − local), in milliseconds. */
export interface OffsetInterval {
  readonly lo: number
  readonly hi: number
}

/** One sample's offset interval and when (local time) it was observed. */
export interface SampleBound extends OffsetInterval {
  /** Local time the response arrived. */
  readonly atMillis: number
  /** The round trip (received − sent): the sample is anywhere in it, so drift is counted over it too. */
  readonly spanMillis: number
}

/** Tuning of the bounds. */
export interface ClockBoundsConfig {
  /**
   * How fast the two clocks may drift apart, in parts per million of elapsed local time. Quartz
   * clocks are within ±50 ppm; the default 100 ppm (6 ms per minute) allows for both ends.
   */
  readonly driftPpm: number
  /** How many recent samples are kept to restart from when the current interval is contradicted. */
  readonly historySize: number
}

/** The default tuning: 100 ppm drift allowance, 16 samples of history. */
export const defaultConfig: ClockBoundsConfig = { driftPpm: 100, historySize: 16 }

/** The folded state: what is known about the offset. */
export interface ClockBounds {
  /** The intersection of the contributing samples as of `asOfMillis`, or undefined before the first sample. */
  readonly interval: OffsetInterval | undefined
  /** The local time the interval refers to (the newest contributing sample). */
  readonly asOfMillis: number
  /** How many samples contributed since the last restart. */
  readonly samples: number
  /** The most recent valid samples, oldest first, at most `historySize`. */
  readonly recent: ReadonlyArray<SampleBound>
  /** How many times the bounds restarted because samples contradicted them. */
  readonly restarts: number
  /** How many samples were held back as suspects (contradicting both the bounds and the previous sample). */
  readonly suspects: number
}

/** The state before any sample. */
export const empty: ClockBounds = {
  interval: undefined,
  asOfMillis: 0,
  samples: 0,
  recent: [],
  restarts: 0,
  suspects: 0
}

/** The estimate at some local instant. */
export interface OffsetEstimate {
  /** Best estimate of server − local, in whole milliseconds (the interval's midpoint). */
  readonly offsetMillis: number
  /** Half-width of the interval the true offset lies in, widened for drift, in whole milliseconds (rounded up). */
  readonly uncertaintyMillis: number
  /** How many samples contributed. */
  readonly samples: number
}

/**
 * The offset interval of one sample: [date − received, date + 1000 − sent]. Undefined for a
 * sample that cannot be true (non-finite numbers, or received before sent).
 */
export const sampleBound = (sample: DateSampleLike): SampleBound | undefined => {
  const { receivedAtMillis: received, sentAtMillis: sent, serverDateMillis: date } = sample
  if (!Number.isFinite(sent) || !Number.isFinite(received) || !Number.isFinite(date) || received < sent) {
    return undefined
  }
  return {
    lo: date - received,
    hi: date + dateResolutionMillis - sent,
    atMillis: received,
    spanMillis: received - sent
  }
}

/** The intersection of two intervals, or undefined if they are disjoint. */
export const intersect = (a: OffsetInterval, b: OffsetInterval): OffsetInterval | undefined => {
  const lo = Math.max(a.lo, b.lo)
  const hi = Math.min(a.hi, b.hi)
  return lo <= hi ? { lo, hi } : undefined
}

/** Widens an interval by `by` milliseconds on each side. */
export const widen = (interval: OffsetInterval, by: number): OffsetInterval =>
  by <= 0 ? interval : { lo: interval.lo - by, hi: interval.hi + by }

/** The drift allowance, in milliseconds, for `elapsedMillis` of local time. */
export const driftAllowance = (config: ClockBoundsConfig, elapsedMillis: number): number =>
  (Math.abs(elapsedMillis) * config.driftPpm) / 1_000_000

/** A sample's interval as it stands at local time `atMillis` (widened for drift since it was taken). */
const boundAt = (sample: SampleBound, atMillis: number, config: ClockBoundsConfig): OffsetInterval =>
  widen(sample, driftAllowance(config, Math.abs(atMillis - sample.atMillis) + sample.spanMillis))

/**
 * The intersection of the newest samples of `recent` that agree with each other, as of `atMillis`:
 * walks back from the newest and stops before the first one that would empty the intersection.
 */
export const newestConsistent = (
  recent: ReadonlyArray<SampleBound>,
  atMillis: number,
  config: ClockBoundsConfig = defaultConfig
): { readonly interval: OffsetInterval; readonly count: number } | undefined => {
  let interval: OffsetInterval | undefined
  let count = 0
  for (let i = recent.length - 1; i >= 0; i--) {
    const bound = boundAt(recent[i]!, atMillis, config)
    const next = interval === undefined ? bound : intersect(interval, bound)
    if (next === undefined) break
    interval = next
    count++
  }
  return interval === undefined ? undefined : { interval, count }
}

// `[...recent, bound].slice(-size)` in one array: this runs for every S3 response a worker gets
const appendBounded = <A>(recent: ReadonlyArray<A>, last: A, size: number): ReadonlyArray<A> => {
  const from = Math.max(0, recent.length + 1 - size)
  const out = new Array<A>(recent.length + 1 - from)
  for (let i = from; i < recent.length; i++) out[i - from] = recent[i]!
  out[out.length - 1] = last
  return out
}

/**
 * Folds one sample into the bounds. A sample that cannot be true is ignored. A sample that agrees
 * with the bounds narrows them. A sample that contradicts them restarts the bounds from the newest
 * mutually consistent samples if at least two agree; otherwise it is held as a suspect and the
 * bounds stay as they were (a second sample on its side will confirm it).
 */
export const addSample = (
  bounds: ClockBounds,
  sample: DateSampleLike,
  config: ClockBoundsConfig = defaultConfig
): ClockBounds => {
  const bound = sampleBound(sample)
  if (bound === undefined) return bounds
  const recent = appendBounded(bounds.recent, bound, Math.max(1, config.historySize))
  if (bounds.interval === undefined) {
    return { ...bounds, interval: { lo: bound.lo, hi: bound.hi }, asOfMillis: bound.atMillis, samples: 1, recent }
  }
  // Out-of-order arrivals (concurrent requests) are fine: everything is compared at the later instant.
  const asOfMillis = Math.max(bounds.asOfMillis, bound.atMillis)
  const current = widen(bounds.interval, driftAllowance(config, asOfMillis - bounds.asOfMillis))
  const narrowed = intersect(current, boundAt(bound, asOfMillis, config))
  if (narrowed !== undefined) {
    return { ...bounds, interval: narrowed, asOfMillis, samples: bounds.samples + 1, recent }
  }
  const restart = newestConsistent(recent, asOfMillis, config)
  if (restart !== undefined && restart.count >= 2) {
    return {
      ...bounds,
      interval: restart.interval,
      asOfMillis,
      samples: restart.count,
      recent,
      restarts: bounds.restarts + 1
    }
  }
  return { ...bounds, recent, suspects: bounds.suspects + 1 }
}

/** Folds many samples, in order. */
export const addSamples = (
  bounds: ClockBounds,
  samples: Iterable<DateSampleLike>,
  config: ClockBoundsConfig = defaultConfig
): ClockBounds => {
  let out = bounds
  for (const sample of samples) out = addSample(out, sample, config)
  return out
}

/** The interval at local time `localNowMillis`, widened for drift since the bounds were last updated. */
export const intervalAt = (
  bounds: ClockBounds,
  localNowMillis: number,
  config: ClockBoundsConfig = defaultConfig
): OffsetInterval | undefined =>
  bounds.interval === undefined
    ? undefined
    : widen(bounds.interval, driftAllowance(config, localNowMillis - bounds.asOfMillis))

/** The estimate at local time `localNowMillis` (midpoint and half-width), or undefined before any sample. */
export const estimateAt = (
  bounds: ClockBounds,
  localNowMillis: number,
  config: ClockBoundsConfig = defaultConfig
): OffsetEstimate | undefined => {
  const interval = intervalAt(bounds, localNowMillis, config)
  if (interval === undefined) return undefined
  const mid = (interval.lo + interval.hi) / 2
  return {
    offsetMillis: Math.round(mid),
    // Rounding the midpoint moves it by up to ½ ms; the uncertainty covers that.
    uncertaintyMillis: Math.ceil((interval.hi - interval.lo) / 2 + Math.abs(Math.round(mid) - mid)),
    samples: bounds.samples
  }
}
