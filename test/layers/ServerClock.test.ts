/**
 * ServerClock under TestClock with a scripted fake Storage: the host clock (TestClock) is set
 * 10 minutes away from the simulated server, and the learnt server time must be within 1 s of the
 * server's, at zero extra requests once responses flow, and exactly one probe when nothing is known.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, DateTime, Duration, Effect, Layer, Option, PubSub, Stream, TestClock } from "effect"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage, type DateSample, type StorageCapabilities, type StorageService } from "../../src/services/Storage.js"

const base = DateTime.unsafeMake("2024-01-15T10:30:00.123Z").epochMillis

/** How a fake remote store hands its samples over: a Stream only, or a listener too (as S3Storage). */
type Via = "stream" | "listener"

/**
 * A fake Storage: every request counts, takes `rttMillis` of (test) local time, and publishes a
 * Date sample (to `onDateSample`'s listeners too, with `via: "listener"`).
 */
const makeFakeStorage = (clock: StorageCapabilities["clock"], options: { skewMillis: number; rttMillis: number; via?: Via }) =>
  Effect.gen(function*() {
    const pubsub = yield* PubSub.unbounded<DateSample>()
    const listeners = new Set<(sample: DateSample) => void>()
    const calls = { get: 0, head: 0, put: 0, list: 0, delete: 0, other: 0 }
    // The server's clock: the host's (TestClock) plus a skew.
    const serverSkew = { millis: options.skewMillis }
    const respond = Effect.gen(function*() {
      const sentAtMillis = yield* Clock.currentTimeMillis
      // The server reads its clock half-way through the round trip.
      yield* TestClock.adjust(Duration.millis(options.rttMillis / 2))
      const serverNow = (yield* Clock.currentTimeMillis) + serverSkew.millis
      yield* TestClock.adjust(Duration.millis(options.rttMillis / 2))
      const receivedAtMillis = yield* Clock.currentTimeMillis
      if (clock === "remote") {
        const sample = { sentAtMillis, receivedAtMillis, serverDateMillis: Math.floor(serverNow / 1000) * 1000 }
        for (const listener of listeners) listener(sample)
        yield* PubSub.publish(pubsub, sample)
      }
    })
    const count = (kind: keyof typeof calls) => Effect.sync(() => void calls[kind]++).pipe(Effect.zipRight(respond))
    const storage: StorageService = {
      get: () => count("get").pipe(Effect.as(Option.none())),
      head: () => count("head").pipe(Effect.as(Option.none())),
      put: () => count("put").pipe(Effect.as("\"etag\"")),
      delete: () => count("delete"),
      deleteIfMatch: () => count("delete"),
      deleteMany: () => count("delete"),
      list: () => count("list").pipe(Effect.as({ objects: [], commonPrefixes: [], nextContinuationToken: undefined })),
      listAll: () => Stream.fromEffect(count("list")).pipe(Stream.drain),
      listVersions: () => count("list").pipe(Effect.as([])),
      getVersion: () => count("get").pipe(Effect.as(Option.none())),
      versioning: Effect.succeed("off"),
      capabilities: Effect.succeed({
        versioning: "off",
        conditionalWrites: true,
        conditionalDelete: false,
        ifMatchEtag: "not-applicable",
        clock
      }),
      dateSamples: Stream.fromPubSub(pubsub),
      ...(options.via === "listener"
        ? {
          onDateSample: (listener: (sample: DateSample) => void) =>
            Effect.asVoid(Effect.acquireRelease(
              Effect.sync(() => listeners.add(listener)),
              () => Effect.sync(() => listeners.delete(listener))
            ))
        }
        : {})
    }
    const total = () => Object.values(calls).reduce((a, b) => a + b, 0)
    const serverTimeMillis = Effect.map(Clock.currentTimeMillis, (t) => t + serverSkew.millis)
    return { storage, calls, total, serverTimeMillis, serverSkew }
  })

type Fake = Effect.Effect.Success<ReturnType<typeof makeFakeStorage>>

/** Builds the fake and a ServerClock on it (in the test's scope), with TestClock at `base`. */
const setup = (clock: StorageCapabilities["clock"], options: { skewMillis: number; rttMillis: number; via?: Via }) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(base)
    const fake = yield* makeFakeStorage(clock, options)
    const context = yield* Layer.build(ServerClockLayer.layer.pipe(Layer.provide(Layer.succeed(Storage, fake.storage))))
    return { fake, serverClock: Context.get(context, ServerClock) }
  })

/** Ordinary traffic: `n` requests spread over a few seconds of local time so the Date headers tick. */
const traffic = (fake: Fake, n: number) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
    Effect.zipRight(
      i % 3 === 0 ? Effect.asVoid(fake.storage.get(`tasks/0/${i}.json`)) : Effect.asVoid(fake.storage.list("ready/0/")),
      TestClock.adjust(Duration.millis(173))
    ), { discard: true })

const expectWithin = (actual: number, expected: number, tolerance: number) =>
  expect(Math.abs(actual - expected), `|${actual} - ${expected}|`).toBeLessThanOrEqual(tolerance)

for (const via of ["stream", "listener"] as const) {
describe(`ServerClock (remote, samples by ${via})`, () => {
  for (const skewMillis of [10 * 60_000, -10 * 60_000, 10 * 60_000 + 437, -(10 * 60_000 + 911)]) {
    it.scoped(`learns the server time when the host clock is off by ${-skewMillis} ms, at zero extra requests`, () =>
      Effect.gen(function*() {
        const { fake, serverClock } = yield* setup("remote", { skewMillis, rttMillis: 40, via })
        yield* traffic(fake, 20)
        const requests = fake.total()
        expect(requests).toBe(20)

        for (let i = 0; i < 5; i++) {
          const truth = yield* fake.serverTimeMillis
          const now = yield* serverClock.now
          const millis = yield* serverClock.currentTimeMillis
          const viaClock = yield* serverClock.clock.currentTimeMillis
          expectWithin(now.epochMillis, truth, 1000)
          expectWithin(millis, truth, 1000)
          expectWithin(viaClock, truth, 1000)
          expectWithin(serverClock.clock.unsafeCurrentTimeMillis(), truth, 1000)
          // The reported uncertainty is honest (covers the real error) and small.
          const estimate = yield* serverClock.estimate
          expectWithin(millis, truth, Duration.toMillis(estimate.uncertainty))
          expect(Duration.toMillis(estimate.uncertainty)).toBeLessThan(200)
          expect(estimate.samples).toBeGreaterThan(1)
          yield* TestClock.adjust(Duration.seconds(7))
        }
        // Reading the clock made no request at all.
        expect(fake.total()).toBe(requests)
        expect(fake.calls.head).toBe(0)
      }))
  }

  it.scoped("makes exactly one probe request when the time is asked for before any response", () =>
    Effect.gen(function*() {
      const { fake, serverClock } = yield* setup("remote", { skewMillis: -10 * 60_000, rttMillis: 30, via })
      const before = yield* serverClock.estimate
      expect(before.samples).toBe(0)
      expect(Duration.isFinite(before.uncertainty)).toBe(false)

      // Several concurrent readers share the one probe.
      const nows = yield* Effect.all([serverClock.now, serverClock.currentTimeMillis, serverClock.now], {
        concurrency: "unbounded"
      })
      expect(fake.calls.head).toBe(1)
      expect(fake.total()).toBe(1)
      const truth = yield* fake.serverTimeMillis
      expectWithin(nows[0].epochMillis, truth, 1100)
      expectWithin(nows[1], truth, 1100)

      // Once known, no further request.
      yield* serverClock.now
      yield* TestClock.adjust(Duration.minutes(5))
      expectWithin((yield* serverClock.now).epochMillis, yield* fake.serverTimeMillis, 1100)
      expect(fake.total()).toBe(1)
    }))

  it.scoped("follows the server when its clock is stepped, after two responses agree", () =>
    Effect.gen(function*() {
      const { fake, serverClock } = yield* setup("remote", { skewMillis: 10 * 60_000, rttMillis: 20, via })
      yield* traffic(fake, 12)
      expectWithin(yield* serverClock.currentTimeMillis, yield* fake.serverTimeMillis, 1000)
      fake.serverSkew.millis += 3_600_000 // the server's clock is stepped an hour forward
      yield* traffic(fake, 1)
      // One response alone is held as a suspect: the estimate has not moved by an hour.
      expectWithin(yield* serverClock.currentTimeMillis, (yield* fake.serverTimeMillis) - 3_600_000, 1000)
      yield* traffic(fake, 6)
      expectWithin(yield* serverClock.currentTimeMillis, yield* fake.serverTimeMillis, 1000)
    }))

  it.scoped("withServerClock makes DateTime.now and Clock read the server's time", () =>
    Effect.gen(function*() {
      const { fake, serverClock } = yield* setup("remote", { skewMillis: -10 * 60_000, rttMillis: 20, via })
      yield* traffic(fake, 10)
      const now = yield* ServerClockLayer.withServerClock(DateTime.now).pipe(Effect.provideService(ServerClock, serverClock))
      expectWithin(now.epochMillis, yield* fake.serverTimeMillis, 1000)
      // Sleeping on the server clock is sleeping on the local one.
      const slept = yield* Effect.fork(Effect.withClock(Effect.sleep(Duration.seconds(30)), serverClock.clock))
      yield* TestClock.adjust(Duration.seconds(30))
      expect((yield* slept.await)._tag).toBe("Success")
    }))
})
}

describe("ServerClock (local)", () => {
  it.scoped("is the ambient (Test)Clock, with no request and no uncertainty", () =>
    Effect.gen(function*() {
      const { fake, serverClock } = yield* setup("local", { skewMillis: 0, rttMillis: 0 })
      expect((yield* serverClock.now).epochMillis).toBe(base)
      yield* TestClock.adjust(Duration.minutes(90))
      expect((yield* serverClock.now).epochMillis).toBe(base + 90 * 60_000)
      expect(yield* serverClock.currentTimeMillis).toBe(yield* TestClock.currentTimeMillis)
      expect(yield* serverClock.estimate).toEqual({ offsetMillis: 0, uncertainty: Duration.zero, samples: 0 })
      expect(fake.total()).toBe(0)
    }))

  it.effect("on MemoryStorage, the server time is TestClock's", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(base)
      const serverClock = yield* ServerClock
      expect((yield* serverClock.now).epochMillis).toBe(base)
      yield* TestClock.adjust(Duration.hours(3))
      expect(yield* serverClock.currentTimeMillis).toBe(base + 3 * 3_600_000)
      expect(yield* ServerClockLayer.withServerClock(Clock.currentTimeMillis)).toBe(base + 3 * 3_600_000)
    }).pipe(Effect.provide(ServerClockLayer.layer.pipe(Layer.provideMerge(MemoryStorage.layer())))))

  it.effect("layerLocal needs no Storage", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(base)
      const serverClock = yield* ServerClock
      expect((yield* serverClock.now).epochMillis).toBe(base)
    }).pipe(Effect.provide(ServerClockLayer.layerLocal)))
})

/**
 * A host clock whose time of day (millis) can be stepped — NTP stepping, a VM restored, `date -s`
 * — while its monotonic reading (nanos, `performance.now` in Effect's default clock) runs on. Both
 * follow TestClock otherwise.
 */
const steppableHost = (test: Clock.Clock) => {
  const state = { stepMillis: 0 }
  const clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => test.unsafeCurrentTimeMillis() + state.stepMillis,
    currentTimeMillis: Effect.sync(() => test.unsafeCurrentTimeMillis() + state.stepMillis),
    unsafeCurrentTimeNanos: () => test.unsafeCurrentTimeNanos(),
    currentTimeNanos: Effect.sync(() => test.unsafeCurrentTimeNanos()),
    sleep: (duration: Duration.Duration) => test.sleep(duration)
  } as Clock.Clock
  return { clock, state }
}

describe("ServerClock (remote) and a stepped host clock", () => {
  // Found by the simulation (test/sim, seeds 1, 4, 5, 6 with per-process clocks): a host clock
  // stepped by minutes moved the learnt server time by the same minutes, with an uncertainty of
  // ~100 ms, until two answers had contradicted it — long enough for a monitor to take a lease
  // that had minutes left, or a worker to run past its lease.
  for (const step of [10 * 60_000, -10 * 60_000]) {
    it.scoped(`a step of ${step / 60_000} min leaves the server time within its uncertainty, before and after the next answers`, () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(base)
        const test = yield* Effect.clock
        const host = steppableHost(test)
        const samples = yield* PubSub.unbounded<DateSample>()
        const serverSkew = 3_000
        const request = Effect.gen(function*() {
          const sentAtMillis = ServerClockLayer.localMillis(host.clock)
          yield* TestClock.adjust(Duration.millis(20))
          const serverNow = test.unsafeCurrentTimeMillis() + serverSkew
          yield* TestClock.adjust(Duration.millis(20))
          yield* PubSub.publish(samples, {
            sentAtMillis,
            receivedAtMillis: ServerClockLayer.localMillis(host.clock),
            serverDateMillis: Math.floor(serverNow / 1000) * 1000
          })
          // let the clock's fiber fold it
          for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        })
        const memory = yield* MemoryStorage.make()
        const serverClock = yield* ServerClockLayer.makeRemote({ ...memory, dateSamples: Stream.fromPubSub(samples) }, host.clock)
        yield* Effect.yieldNow()
        const honest = Effect.gen(function*() {
          const truth = test.unsafeCurrentTimeMillis() + serverSkew
          const estimate = yield* serverClock.estimate
          expectWithin(yield* serverClock.currentTimeMillis, truth, Duration.toMillis(estimate.uncertainty))
          expectWithin(serverClock.clock.unsafeCurrentTimeMillis(), truth, Duration.toMillis(estimate.uncertainty) + 1)
          expect(Duration.toMillis(estimate.uncertainty)).toBeLessThan(1000)
        })
        for (let i = 0; i < 10; i++) {
          yield* request
          yield* TestClock.adjust(Duration.millis(333))
        }
        yield* honest
        host.state.stepMillis += step
        yield* honest
        for (let i = 0; i < 3; i++) {
          yield* request
          yield* honest
        }
      }))
  }
})
