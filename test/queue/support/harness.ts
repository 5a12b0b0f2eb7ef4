/**
 * Runs one queue test body over a backend: MemoryStorage with TestClock, or the real RGW server.
 * Each run gets a fresh, empty store (a fresh key prefix on RGW), the Storage wrapped by
 * ScriptedStorage (write log, scripted faults), and a way to move server time forward:
 * `TestClock.adjust` on memory, a shifted ServerClock on the real server (no sleeping either way).
 *
 * @module
 */
import { Context, DateTime, Duration, Effect, Layer, Ref, TestClock } from "effect"
import type { Scope } from "effect"
import * as QueueLayer from "../../../src/layers/Queue.js"
import * as ServerClockLayer from "../../../src/layers/ServerClock.js"
import { Queue } from "../../../src/services/Queue.js"
import { ServerClock } from "../../../src/services/ServerClock.js"
import type { ServerClockService } from "../../../src/services/ServerClock.js"
import { Storage } from "../../../src/services/Storage.js"
import { wrap } from "./ScriptedStorage.js"
import type { ScriptedControl } from "./ScriptedStorage.js"

/** A storage backend the suite runs on. */
export interface QueueBackend {
  readonly name: string
  /** Talks to a real server: live clock, and time moves by shifting the ServerClock. */
  readonly realServer: boolean
  /** A fresh, empty store for one test. */
  readonly storage: () => Layer.Layer<Storage, unknown>
}

/** Test controls: the write log, scripted faults, and server time travel. */
export class TestControl extends Context.Tag("test/TestControl")<
  TestControl,
  ScriptedControl & { readonly advance: (d: Duration.DurationInput) => Effect.Effect<void> }
>() {}

const shifted = (inner: ServerClockService, offset: Ref.Ref<number>): ServerClockService => ({
  ...inner,
  now: Effect.zipWith(inner.now, Ref.get(offset), (now, ms) => DateTime.add(now, { millis: ms })),
  currentTimeMillis: Effect.zipWith(inner.currentTimeMillis, Ref.get(offset), (now, ms) => now + ms)
})

/** Provides Queue, Storage and TestControl, built fresh for this run. */
export const withQueue = (backend: QueueBackend, config: QueueLayer.QueueConfigInput = {}) =>
<A, E>(body: Effect.Effect<A, E, Queue | Storage | ServerClock | TestControl | Scope.Scope>) =>
  Effect.gen(function*() {
    const built = yield* Layer.build(backend.storage())
    const { service, control } = yield* wrap(Context.get(built, Storage))
    const base = yield* ServerClockLayer.make().pipe(Effect.provideService(Storage, service))
    const offset = yield* Ref.make(0)
    const clock = backend.realServer ? shifted(base, offset) : base
    const advance = (d: Duration.DurationInput) =>
      backend.realServer ? Ref.update(offset, (ms) => ms + Duration.toMillis(d)) : TestClock.adjust(d)
    const queue = yield* QueueLayer.make(config).pipe(
      Effect.provideService(Storage, service),
      Effect.provideService(ServerClock, clock)
    )
    return yield* body.pipe(
      Effect.provideService(Queue, queue),
      Effect.provideService(Storage, service),
      Effect.provideService(ServerClock, clock),
      Effect.provideService(TestControl, { ...control, advance })
    )
  }).pipe(Effect.scoped)
