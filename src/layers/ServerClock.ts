/**
 * The ServerClock layer (design.md §4): the bucket's time, learnt for free from the `Date` header
 * of ordinary responses.
 *
 * - Stores whose clock is the local one (`capabilities.clock === "local"`: MemoryStorage,
 *   FileStorage) get the ambient Effect `Clock` as the server clock, offset 0, so `TestClock`
 *   drives everything in tests.
 * - Remote stores (S3): every response's Date sample is folded into {@link ClockBounds} as it
 *   arrives (`storage.onDateSample`; where a store has no such listener, a fiber in the layer's
 *   scope folds `storage.dateSamples`); server time = local time + the current offset estimate. Nothing is
 *   written or polled: the only request this layer ever makes is one `HEAD control/clock` when the
 *   time is asked for before any response has been seen (a 404 carries a `Date` header too).
 *
 * The "local" clock is the Effect `Clock` in scope when the layer is built: build this layer (and
 * the Storage layer) with the host clock, not under the server clock (see {@link withServerClock}).
 *
 * @module
 */
import { Clock, Deferred, Duration, DateTime, Effect, Exit, Layer, MutableRef, Queue, Schedule, Stream } from "effect"
import * as ClockBounds from "../domain/ClockBounds.js"
import { controlKey } from "../domain/Keys.js"
import type { StorageReadError } from "../domain/StorageError.js"
import { ServerClock, type ServerClockService, type ServerTimeEstimate } from "../services/ServerClock.js"
import { Storage, type StorageService } from "../services/Storage.js"

/**
 * Options of the remote server clock.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerClockOptions {
  /** Drift allowance and history size of the bounds (defaults: 100 ppm, 16 samples). */
  readonly bounds?: Partial<ClockBounds.ClockBoundsConfig> | undefined
  /** How long to wait for the probe's sample before probing again (default 5 s of local time). */
  readonly probeTimeout?: Duration.DurationInput | undefined
}

/**
 * The key the one-off probe reads; it need not exist.
 *
 * @since 0.1.0
 * @category constants
 */
export const probeKey: string = controlKey("clock")

const HostClock: unique symbol = Symbol.for("buquet/ServerClock/HostClock")

/** A server clock, which remembers the host clock it adds the offset to. */
interface ServerTimeClock extends Clock.Clock {
  readonly [HostClock]: Clock.Clock
}

const isServerTimeClock = (clock: Clock.Clock): clock is ServerTimeClock => HostClock in clock

/**
 * The host clock under a clock: the local clock a ServerClock's `clock` is built on, or the clock
 * itself. Storage layers that time requests on the calling fiber's clock should time them on
 * `hostClockOf(clock)`, so that code run under {@link withServerClock} cannot feed server-time
 * samples back into the estimate.
 *
 * @since 0.1.0
 * @category utils
 */
export const hostClockOf = (clock: Clock.Clock): Clock.Clock => (isServerTimeClock(clock) ? clock[HostClock] : clock)

/**
 * The host's local time in milliseconds as Date samples are measured against it: the storage
 * layer stamps `sentAtMillis`/`receivedAtMillis` with it, and the remote ServerClock adds its
 * offset to it. It is the clock's MONOTONIC reading (`currentTimeNanos`: `performance.now` from
 * the time of day at start-up in Effect's default clock), not its time of day: a host clock
 * stepped by NTP, a restored VM or `date -s` must not move the server time (it would, by the whole
 * step and with the old small uncertainty, until two answers had contradicted it).
 *
 * @since 0.1.0
 * @category utils
 */
export const localMillis = (clock: Clock.Clock): number =>
  Number(hostClockOf(clock).unsafeCurrentTimeNanos() / 1_000_000n)

/**
 * Builds a ServerClock whose server time is `local` itself (offset 0, no uncertainty).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromLocalClock = (local: Clock.Clock): ServerClockService => {
  const currentTimeMillis = local.currentTimeMillis
  return {
    now: Effect.map(currentTimeMillis, (millis) => DateTime.unsafeMake(millis)),
    currentTimeMillis,
    estimate: Effect.succeed({ offsetMillis: 0, uncertainty: Duration.zero, samples: 0 }),
    clock: local
  }
}

/**
 * Builds a ServerClock that learns the server's time from `storage.dateSamples`, measured against
 * `local`. The sample-folding fiber lives in the surrounding scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRemote = Effect.fn("ServerClock.makeRemote")(function*(
  storage: StorageService,
  local: Clock.Clock,
  options?: ServerClockOptions
) {
  const config: ClockBounds.ClockBoundsConfig = { ...ClockBounds.defaultConfig, ...options?.bounds }
  const probeTimeout = Duration.decode(options?.probeTimeout ?? Duration.seconds(5))
  // A MutableRef, not a Ref: `Clock.unsafeCurrentTimeMillis` must read it synchronously.
  const state = MutableRef.make(ClockBounds.empty)
  const firstSample = yield* Deferred.make<void>()
  const probeLock = yield* Effect.makeSemaphore(1)

  /** Folds one sample into the bounds: the bounds before and after. */
  const foldSample = (sample: ClockBounds.DateSampleLike) => {
    const before = MutableRef.get(state)
    const after = ClockBounds.addSample(before, sample, config)
    MutableRef.set(state, after)
    return { before, after }
  }
  const warnRestart = (before: ClockBounds.ClockBounds, after: ClockBounds.ClockBounds) =>
    Effect.logWarning("server clock: responses contradicted the learnt offset; restarted from the newest ones").pipe(
      Effect.annotateLogs({
        previous: JSON.stringify(before.interval),
        current: JSON.stringify(after.interval)
      })
    )

  if (storage.onDateSample !== undefined) {
    // Folded where each response arrives (no fiber woken per response); a restart's warning is
    // logged by a fiber that wakes for restarts only.
    const restarts = yield* Queue.unbounded<{ readonly before: ClockBounds.ClockBounds; readonly after: ClockBounds.ClockBounds }>()
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(restarts), ({ after, before }) => warnRestart(before, after))))
    let known = false
    yield* storage.onDateSample((sample) => {
      const { after, before } = foldSample(sample)
      if (after.restarts > before.restarts) Queue.unsafeOffer(restarts, { before, after })
      if (!known && after.interval !== undefined) {
        known = true
        Deferred.unsafeDone(firstSample, Exit.void)
      }
    })
  } else {
    const fold = (sample: ClockBounds.DateSampleLike) =>
      Effect.suspend(() => {
        const { after, before } = foldSample(sample)
        const log = after.restarts > before.restarts ? warnRestart(before, after) : Effect.void
        return after.interval === undefined ? log : Effect.zipRight(log, Deferred.succeed(firstSample, undefined))
      })
    yield* storage.dateSamples.pipe(Stream.runForEach(fold), Effect.forkScoped)
    // Let the fiber subscribe before anyone can trigger a request whose sample it must see.
    yield* Effect.yieldNow()
  }

  const offsetAt = (localMillis: number): number =>
    ClockBounds.estimateAt(MutableRef.get(state), localMillis, config)?.offsetMillis ?? 0

  const isKnown = (): boolean => MutableRef.get(state).interval !== undefined

  // One cheap request whose response carries a Date header, then wait for its sample. Repeated
  // (with backoff) only if the request fails or its sample never arrives.
  const probe = storage.head(probeKey).pipe(
    Effect.tapError((error: StorageReadError) =>
      Effect.logWarning(`server clock: probe request failed, retrying: ${error.message}`)
    ),
    Effect.ignore,
    Effect.zipRight(Effect.timeout(Deferred.await(firstSample), probeTimeout)),
    Effect.retry(Schedule.exponential(Duration.millis(200)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(10))))),
    // The schedule never ends, so the retry cannot fail.
    Effect.orDie,
    Effect.withSpan("ServerClock.probe")
  )

  const ensureKnown: Effect.Effect<void> = Effect.suspend(() =>
    isKnown() ? Effect.void : probeLock.withPermits(1)(Effect.suspend(() => (isKnown() ? Effect.void : probe)))
  )

  // The host's monotonic time (see localMillis): its time of day may be stepped.
  const localNow = Effect.sync(() => localMillis(local))

  const currentTimeMillis: Effect.Effect<number> = Effect.zipRight(
    ensureKnown,
    Effect.map(localNow, (millis) => millis + offsetAt(millis))
  )

  const estimate: Effect.Effect<ServerTimeEstimate> = Effect.map(localNow, (millis) => {
    const bounds = MutableRef.get(state)
    const est = ClockBounds.estimateAt(bounds, millis, config)
    return est === undefined
      ? { offsetMillis: 0, uncertainty: Duration.infinity, samples: 0 }
      : { offsetMillis: est.offsetMillis, uncertainty: Duration.millis(est.uncertaintyMillis), samples: est.samples }
  })

  const clock: ServerTimeClock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    [HostClock]: local,
    // Synchronous reads cannot probe: before the first sample they return local time.
    unsafeCurrentTimeMillis: () => {
      const millis = localMillis(local)
      return millis + offsetAt(millis)
    },
    currentTimeMillis,
    unsafeCurrentTimeNanos: () => {
      const nanos = local.unsafeCurrentTimeNanos()
      return nanos + BigInt(offsetAt(Number(nanos / 1_000_000n))) * 1_000_000n
    },
    currentTimeNanos: Effect.zipRight(
      ensureKnown,
      Effect.map(local.currentTimeNanos, (nanos) => nanos + BigInt(offsetAt(Number(nanos / 1_000_000n))) * 1_000_000n)
    ),
    // Durations are the same on both clocks; only the origin differs.
    sleep: (duration) => local.sleep(duration)
  }

  const service: ServerClockService = {
    now: Effect.map(currentTimeMillis, (millis) => DateTime.unsafeMake(millis)),
    currentTimeMillis,
    estimate,
    clock
  }
  return service
})

/**
 * Builds the ServerClock for the current Storage: the ambient clock for local stores, the learnt
 * offset for remote ones. The ambient `Clock` at build time is taken as the host clock.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("ServerClock.make")(function*(options?: ServerClockOptions) {
  const storage = yield* Storage
  const local = hostClockOf(yield* Effect.clock)
  // Subscribe before detecting the capabilities, so the samples of the detection's own requests
  // are not lost (local stores publish none, and their sample stream ends at once).
  const remote = yield* makeRemote(storage, local, options)
  const capabilities = yield* storage.capabilities
  return capabilities.clock === "local" ? fromLocalClock(local) : remote
})

/**
 * The ServerClock layer (requires Storage): `ServerClockLayer.layer`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<ServerClock, StorageReadError, Storage> = Layer.scoped(ServerClock, make())

/**
 * The ServerClock layer with non-default options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: ServerClockOptions): Layer.Layer<ServerClock, StorageReadError, Storage> =>
  Layer.scoped(ServerClock, make(options))

/**
 * A ServerClock on the ambient clock, needing no Storage (for tests and tools that have no bucket).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocal: Layer.Layer<ServerClock> = Layer.effect(
  ServerClock,
  Effect.map(Effect.clock, (clock) => fromLocalClock(hostClockOf(clock)))
)

/**
 * Runs `self` with the server clock as its default `Clock`, so `Clock.currentTimeMillis`,
 * `DateTime.now` and Schedules read the bucket's time.
 *
 * Storage requests made inside it must be timed on the host clock ({@link hostClockOf}): a Storage
 * layer that timed them on this clock would feed server-time samples back into the estimate.
 *
 * @since 0.1.0
 * @category utils
 */
export const withServerClock = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | ServerClock> =>
  Effect.flatMap(ServerClock, (serverClock) => Effect.withClock(self, serverClock.clock))
