/**
 * ServerClock on the real server (Ceph RGW through S3Storage), with the host clock injected
 * ±10 minutes off: the learnt server time must be within 1 s of the server's own `Date` header
 * (read independently with a plain `fetch`, bracketed by real time), at zero extra requests once
 * responses flow, and with exactly one probe request when nothing is known.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Option, Stream } from "effect"
import { inject } from "vitest"
import * as S3Storage from "../../src/layers/S3Storage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import type { ServerClockService } from "../../src/services/ServerClock.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"

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

/** Wraps a Storage and counts its requests (CountingStorage has not landed yet). */
const counting = (inner: StorageService) => {
  const counts = { get: 0, head: 0, put: 0, delete: 0, list: 0, capabilities: 0, probes: 0 }
  const count = <A, E>(kind: keyof typeof counts, effect: Effect.Effect<A, E>) =>
    Effect.zipRight(Effect.sync(() => void counts[kind]++), effect)
  const storage: StorageService = {
    get: (key) => count("get", inner.get(key)),
    head: (key) =>
      count(
        "head",
        Effect.zipRight(Effect.sync(() => void (key === ServerClockLayer.probeKey && counts.probes++)), inner.head(key))
      ),
    put: (key, body, condition) => count("put", inner.put(key, body, condition)),
    delete: (key) => count("delete", inner.delete(key)),
    deleteMany: (keys) => count("delete", inner.deleteMany(keys)),
    list: (prefix, options) => count("list", inner.list(prefix, options)),
    listAll: (prefix, options) => Stream.unwrap(count("list", Effect.succeed(inner.listAll(prefix, options)))),
    listVersions: (key) => count("list", inner.listVersions(key)),
    getVersion: (key, versionId) => count("get", inner.getVersion(key, versionId)),
    capabilities: count("capabilities", inner.capabilities),
    dateSamples: inner.dateSamples
  }
  const requests = () => counts.get + counts.head + counts.put + counts.delete + counts.list
  return { storage, counts, requests }
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
    // And the learnt offset undoes the host's error (the server runs on this machine's real clock).
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
        const config = configFor(`skew${hostErrorMillis}`)!
        const { storage, counts, requests } = counting(yield* S3Storage.make(config))
        // Built under the skewed clock: it is the host clock ServerClock measures against.
        const serverClock = yield* ServerClockLayer.make().pipe(Effect.provideService(Storage, storage))
        // Ordinary traffic (the capability detection made some already).
        for (let i = 0; i < 5; i++) {
          yield* storage.get(`tasks/0/missing-${i}.json`)
          yield* storage.list("ready/0/", { maxKeys: 1 })
        }
        const before = requests()
        expect(before).toBeGreaterThanOrEqual(10)
        for (let i = 0; i < 3; i++) {
          const { estimate } = yield* checkAgainstServer(serverClock, settings!.endpoint)
          expect(estimate.samples).toBeGreaterThanOrEqual(2)
          // The host is off by hostErrorMillis, so the learnt offset is about its negation.
          expect(Math.abs(estimate.offsetMillis + hostErrorMillis)).toBeLessThan(1000)
        }
        // Learnt from ordinary responses only: no probe, no extra request of any kind.
        expect(requests()).toBe(before)
        expect(counts.probes).toBe(0)
      }).pipe(Effect.withClock(skewedClock(hostErrorMillis))))
  }

  it.scopedLive("exactly one probe request when the time is asked for before any response", () =>
    Effect.gen(function*() {
      const config = configFor("probe")!
      const { storage, counts, requests } = counting(yield* S3Storage.make(config))
      const local = yield* Effect.clock
      // Straight to the remote clock: no capability detection, so nothing is known yet.
      const serverClock = yield* ServerClockLayer.makeRemote(storage, local)
      expect((yield* serverClock.estimate).samples).toBe(0)
      const [a, b] = yield* Effect.all([serverClock.now, serverClock.now], { concurrency: "unbounded" })
      expect(counts.probes).toBe(1)
      expect(requests()).toBe(1)
      expect(Math.abs(a.epochMillis - b.epochMillis)).toBeLessThan(1000)
      yield* checkAgainstServer(serverClock, settings!.endpoint)
      expect(requests()).toBe(1)
      // The probe's key need not exist (a 404 carries a Date header too).
      expect(Option.isNone(yield* storage.head(ServerClockLayer.probeKey))).toBe(true)
    }).pipe(Effect.withClock(skewedClock(-10 * 60_000))))
})
