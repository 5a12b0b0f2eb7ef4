/**
 * ServerClock on the real server (Ceph RGW through S3Storage), with the host clock injected
 * ±10 minutes off: the learnt server time must be within 1 s of the server's own `Date` header
 * (read independently with a plain `fetch`, bracketed by real time), at zero extra requests once
 * responses flow, and with exactly one probe request when nothing is known.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Layer, Option } from "effect"
import { inject } from "vitest"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import { RequestCounter } from "../../src/services/RequestCounter.js"
import * as S3Storage from "../../src/layers/S3Storage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { ServerClock, type ServerClockService } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"

const s3 = inject("s3")
const settings = s3.available ? s3.settings : undefined

/** The real clock, `offsetMillis` off: what a host with a wrong wall clock would read. */
const skewedClock = (offsetMillis: number): Clock.Clock => {
  const real = Clock.make()
  const offsetNanos = BigInt(offsetMillis) * 1_000_000n
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => real.unsafeCurrentTimeMillis() + offsetMillis,
    currentTimeMillis: Effect.sync(() => real.unsafeCurrentTimeMillis() + offsetMillis),
    unsafeCurrentTimeNanos: () => real.unsafeCurrentTimeNanos() + offsetNanos,
    currentTimeNanos: Effect.sync(() => real.unsafeCurrentTimeNanos() + offsetNanos),
    sleep: (duration) => real.sleep(duration)
  }
}

/**
 * The server's time at the real instants [before, after] of a read, bounded from an independent
 * HEAD of the endpoint: its Date header was read by the server at some real instant in [a, b].
 */
const serverTimeBounds = (endpoint: string) =>
  Effect.promise(async () => {
    const a = Date.now()
    const response = await fetch(endpoint, { method: "HEAD" })
    const b = Date.now()
    const date = Date.parse(response.headers.get("date") ?? "")
    expect(Number.isFinite(date)).toBe(true)
    // Server time at real time r lies in [date + (r − b), date + 1000 + (r − a)].
    return (before: number, after: number) => ({ lo: date + (before - b), hi: date + 1000 + (after - a) })
  })

/** Reads the ServerClock between two real-time stamps and checks it against the server's Date header. */
const checkAgainstServer = (serverClock: ServerClockService, endpoint: string) =>
  Effect.gen(function*() {
    const boundsAt = yield* serverTimeBounds(endpoint)
    const before = Date.now()
    const learnt = yield* serverClock.currentTimeMillis
    const after = Date.now()
    const truth = boundsAt(before, after)
    const distance = learnt < truth.lo ? truth.lo - learnt : learnt > truth.hi ? learnt - truth.hi : 0
    const estimate = yield* serverClock.estimate
    // Within 1 s of the server's clock, and within the uncertainty the clock itself reports.
    expect(distance, `learnt ${learnt}, server in [${truth.lo}, ${truth.hi}]`).toBeLessThanOrEqual(1000)
    expect(distance).toBeLessThanOrEqual(Duration.toMillis(estimate.uncertainty) + 1)
    expect(Duration.toMillis(estimate.uncertainty)).toBeLessThan(1000)
    return { learnt, truth, estimate }
  })

const configFor = (run: string): S3Storage.S3StorageConfig | undefined =>
  settings === undefined ? undefined : {
    bucket: settings.bucket,
    endpoint: settings.endpoint,
    region: settings.region,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    keyPrefix: `test-serverclock-${run}-${process.pid}/`
  }

describe.skipIf(settings === undefined)(`ServerClock on the real server${s3.available ? "" : ` (skipped: ${s3.reason})`}`, () => {
  for (const hostErrorMillis of [10 * 60_000, -10 * 60_000]) {
    it.scopedLive(`host clock ${hostErrorMillis > 0 ? "+" : "−"}10 min: within 1 s of the server, no extra request`, () =>
      Effect.gen(function*() {
        const storage = yield* Storage
        const counter = yield* RequestCounter
        const serverClock = yield* ServerClock
        // Ordinary traffic (the capability detection made some already).
        for (let i = 0; i < 5; i++) {
          yield* storage.get(`tasks/0/missing-${i}.json`)
          yield* storage.list("ready/0/", { maxKeys: 1 })
        }
        const before = yield* counter.snapshot
        expect(before.total).toBe(10)
        for (let i = 0; i < 3; i++) {
          const { estimate } = yield* checkAgainstServer(serverClock, settings!.endpoint)
          expect(estimate.samples).toBeGreaterThanOrEqual(2)
          // The host is off by hostErrorMillis, so the learnt offset is about its negation.
          expect(Math.abs(estimate.offsetMillis + hostErrorMillis)).toBeLessThan(1000)
        }
        // Learnt from ordinary responses only: no probe (HEAD), no extra request of any kind.
        expect(yield* counter.snapshot).toEqual(before)
      }).pipe(
        // Built and run under the skewed clock: it is the host clock both the S3 layer and ServerClock see.
        Effect.provide(
          ServerClockLayer.layer.pipe(
            Layer.provideMerge(CountingStorage.layer),
            Layer.provide(S3Storage.layer(configFor(`skew${hostErrorMillis}`)!))
          )
        ),
        Effect.withClock(skewedClock(hostErrorMillis))
      ))
  }

  it.scopedLive("exactly one probe request when the time is asked for before any response", () =>
    Effect.gen(function*() {
      const { counter, storage } = yield* CountingStorage.make(yield* S3Storage.make(configFor("probe")!))
      const local = yield* Effect.clock
      // Straight to the remote clock: no capability detection, so nothing is known yet.
      const serverClock = yield* ServerClockLayer.makeRemote(storage, local)
      expect((yield* serverClock.estimate).samples).toBe(0)
      const [a, b] = yield* Effect.all([serverClock.now, serverClock.now], { concurrency: "unbounded" })
      expect(yield* counter.snapshot).toMatchObject({ HEAD: 1, total: 1 })
      expect(Math.abs(a.epochMillis - b.epochMillis)).toBeLessThan(1000)
      yield* checkAgainstServer(serverClock, settings!.endpoint)
      expect(yield* counter.snapshot).toMatchObject({ HEAD: 1, total: 1 })
      // The probe's key need not exist (a 404 carries a Date header too).
      expect(Option.isNone(yield* storage.head(ServerClockLayer.probeKey))).toBe(true)
    }).pipe(Effect.withClock(skewedClock(-10 * 60_000))))
})
