/**
 * One corrupt leader record must not stop its role for good (issue 15 fix 12): before, an
 * instance failed every attempt to lead on `control/leader/NAME.json` and warned every poll. Now
 * it warns once naming the key, the time it will take the lease over and the repair; it takes the
 * unchanged garbage over by CAS once it has outlived any lease (30 min); `buquet repair` (a
 * DELETE of the key) frees the role at once. MemoryStorage + TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Logger, Ref, Scope, SubscriptionRef, TestClock } from "effect"
import { utf8 } from "../../src/domain/Codec.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as LeaderLease from "../../src/programs/LeaderLease.js"
import { repair } from "../../src/programs/Repair.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"

const key = LeaderLease.leaderLeaseKey("scheduler")

const start = (storage: StorageService, warnings: Ref.Ref<Array<string>>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const clock = ServerClockLayer.fromLocalClock(yield* Effect.clock)
    return yield* LeaderLease.make({ name: "scheduler", holderId: "a", ttl: "30 seconds" }).pipe(
      Effect.provideService(Storage, storage),
      Effect.provideService(ServerClock, clock),
      Effect.provide(Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          if (logLevel._tag === "Warning") Effect.runSync(Ref.update(warnings, (w) => [...w, String(message)]))
        })
      )),
      Scope.extend(scope)
    )
  })

describe("a leader lease that does not decode", () => {
  it.scoped("is taken over once unchanged for 30 minutes, with one warning naming the key and the repair", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      const warnings = yield* Ref.make<Array<string>>([])
      yield* storage.put(key, utf8("garbage"))
      const lease = yield* start(storage, warnings)
      for (let minute = 0; minute < 29; minute++) {
        yield* TestClock.adjust("1 minute")
        expect(yield* SubscriptionRef.get(lease.isLeader)).toBe(false)
      }
      const about = (yield* Ref.get(warnings)).filter((w) => w.includes(key))
      expect(about).toHaveLength(1)
      expect(about[0]).toContain(`buquet repair ${key}`)
      yield* TestClock.adjust("2 minutes")
      expect(yield* SubscriptionRef.get(lease.isLeader)).toBe(true)
    }))

  it.scoped("repair frees the role at once", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      const warnings = yield* Ref.make<Array<string>>([])
      yield* storage.put(key, utf8("{\"name\": 1}"))
      const lease = yield* start(storage, warnings)
      yield* TestClock.adjust("5 seconds")
      expect(yield* SubscriptionRef.get(lease.isLeader)).toBe(false)
      const outcome = yield* repair(key).pipe(Effect.provideService(Storage, storage))
      expect(outcome._tag).toBe("Removed")
      yield* TestClock.adjust("31 seconds")
      expect(yield* SubscriptionRef.get(lease.isLeader)).toBe(true)
    }))
})
