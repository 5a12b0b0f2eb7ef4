/**
 * LeaderLease on MemoryStorage with TestClock: one leader among several instances, standbys take
 * over only after a release or after the lease has expired by server time, a leader that cannot
 * renew steps down before anyone may take over, and a release never overwrites someone else's lease.
 */
import { describe, expect } from "@effect/vitest"
import { DateTime, Effect, Exit, Fiber, Option, Ref, Scope, SubscriptionRef, TestClock } from "effect"
import { decodeObject, encodeObject } from "../../src/domain/Codec.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as LeaderLease from "../../src/programs/LeaderLease.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

const key = LeaderLease.leaderLeaseKey("scheduler")

/** Starts one instance on `storage` in its own Scope (closed by the returned `stop`). */
const instance = (storage: StorageService, holderId: string, options: Partial<LeaderLease.LeaderLeaseOptions> = {}) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const clock = ServerClockLayer.fromLocalClock(yield* Effect.clock)
    const lease = yield* LeaderLease.make({ name: "scheduler", holderId, ttl: "30 seconds", ...options }).pipe(
      Effect.provideService(Storage, storage),
      Effect.provideService(ServerClock, clock),
      Scope.extend(scope)
    )
    return { lease, stop: Scope.close(scope, Exit.void) }
  })

const leaders = (leases: ReadonlyArray<LeaderLease.LeaderLease>) =>
  Effect.map(Effect.forEach(leases, (l) => SubscriptionRef.get(l.isLeader)), (flags) =>
    leases.filter((_, i) => flags[i]).map((l) => l.holderId))

const stored = (storage: StorageService) =>
  Effect.gen(function*() {
    const found = yield* storage.get(key)
    if (Option.isNone(found)) return Option.none<LeaderLease.LeaderLeaseRecord>()
    return Option.some(yield* decodeObject(LeaderLease.LeaderLeaseRecord, key, found.value.body))
  })

describe("LeaderLease", () => {
  it.effect("one leader among three; standbys stay standby while it renews; the record is readable JSON", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      const a = yield* instance(storage, "a")
      yield* a.lease.awaitLeadership
      const b = yield* instance(storage, "b")
      const c = yield* instance(storage, "c")
      for (let s = 0; s < 300; s++) {
        yield* TestClock.adjust("1 second")
        expect(yield* leaders([a.lease, b.lease, c.lease])).toEqual(["a"])
      }
      const record = Option.getOrThrow(yield* stored(storage))
      expect(record.holder).toBe("a")
      expect(record.released).toBe(false)
      // renewed within the last renew interval (10 s): expires 20–30 s from now
      const left = DateTime.toEpochMillis(record.expiresAt) - (yield* TestClock.currentTimeMillis)
      expect(left).toBeGreaterThan(19_000)
      expect(left).toBeLessThanOrEqual(30_000)
      const json = JSON.parse(new TextDecoder().decode(Option.getOrThrow(yield* storage.get(key)).body))
      expect(Object.keys(json).sort()).toEqual(["acquired_at", "expires_at", "holder", "lease_id", "name", "released", "renewed_at"])
      yield* Effect.all([a.stop, b.stop, c.stop])
    }))

  it.effect("a clean release marks the lease released (no delete) and a standby takes over within one poll", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      const a = yield* instance(storage, "a")
      yield* a.lease.awaitLeadership
      const b = yield* instance(storage, "b")
      yield* TestClock.adjust("3 seconds")
      yield* a.stop
      const released = Option.getOrThrow(yield* stored(storage))
      expect(released.holder).toBe("a")
      expect(released.released).toBe(true)
      expect(yield* leaders([a.lease, b.lease])).toEqual([])
      yield* TestClock.adjust("30 seconds") // b's poll interval (default: the ttl)
      expect(yield* leaders([a.lease, b.lease])).toEqual(["b"])
      const taken = Option.getOrThrow(yield* stored(storage))
      expect(taken.holder).toBe("b")
      expect(taken.leaseId).not.toBe(released.leaseId)
      yield* b.stop
    }))

  it.effect("a leader that cannot renew steps down before its lease expires; a standby takes over only after expiry", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStorage.make()
      const faulty = yield* FaultyStorage.make(memory)
      const a = yield* instance(faulty.storage, "a")
      yield* a.lease.awaitLeadership
      const interrupted = yield* Ref.make(false)
      const work = yield* a.lease.whileLeader(Effect.never.pipe(Effect.onInterrupt(() => Ref.set(interrupted, true)))).pipe(
        Effect.fork
      )
      const b = yield* instance(memory, "b")
      yield* TestClock.adjust("1 second")
      const before = Option.getOrThrow(yield* stored(memory))
      // From now on a's writes never reach the bucket (a partition).
      yield* faulty.injector.addRule({ operation: "put", fault: Fault.unavailable, times: Infinity })
      let aDown: number | undefined
      let bUp: number | undefined
      for (let s = 0; s < 120; s++) {
        yield* TestClock.adjust("500 millis")
        const now = yield* TestClock.currentTimeMillis
        const who = yield* leaders([a.lease, b.lease])
        expect(who.length).toBeLessThanOrEqual(1)
        if (aDown === undefined && !who.includes("a")) aDown = now
        if (bUp === undefined && who.includes("b")) bUp = now
      }
      // a's last successful renewal is what b must wait out
      const last = DateTime.toEpochMillis(before.expiresAt)
      expect(aDown).toBeDefined()
      expect(bUp).toBeDefined()
      expect(aDown!).toBeLessThan(last)
      expect(bUp!).toBeGreaterThan(last)
      expect(yield* Ref.get(interrupted)).toBe(true)
      expect(Option.getOrThrow(yield* stored(memory)).holder).toBe("b")
      yield* Fiber.interrupt(work)
      yield* Effect.all([a.stop, b.stop])
    }))

  it.effect("a renewal that hangs (no answer at all) does not keep the leader acting past its deadline", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStorage.make()
      const faulty = yield* FaultyStorage.make(memory)
      const a = yield* instance(faulty.storage, "a")
      yield* a.lease.awaitLeadership
      const b = yield* instance(memory, "b")
      yield* TestClock.adjust("1 second")
      const before = Option.getOrThrow(yield* stored(memory))
      // a's PUTs hang for 2 minutes each (a stuck connection), then land
      yield* faulty.injector.addRule({ operation: "put", fault: Fault.delay("2 minutes"), times: Infinity })
      let aDown: number | undefined
      for (let s = 0; s < 120; s++) {
        yield* TestClock.adjust("500 millis")
        const now = yield* TestClock.currentTimeMillis
        const who = yield* leaders([a.lease, b.lease])
        expect(who.length, `at ${now}: ${who.join(",")}`).toBeLessThanOrEqual(1)
        if (aDown === undefined && !who.includes("a")) aDown = now
      }
      expect(aDown).toBeDefined()
      expect(aDown!).toBeLessThan(DateTime.toEpochMillis(before.expiresAt))
      expect(yield* leaders([a.lease, b.lease])).toEqual(["b"])
      yield* Effect.all([a.stop, b.stop])
    }))

  it.effect("a renewal that timed out but landed: the leader recognises its own record and leads on", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStorage.make()
      const faulty = yield* FaultyStorage.make(memory)
      const a = yield* instance(faulty.storage, "a")
      yield* a.lease.awaitLeadership
      const b = yield* instance(memory, "b")
      const tenure = Option.getOrThrow(yield* stored(memory)).leaseId
      // a's next renewal lands, but its answer comes 20 s late: past a's local deadline
      yield* faulty.injector.addRule({ operation: "put", timing: "after", fault: Fault.delay("20 seconds") })
      for (let s = 0; s < 80; s++) {
        yield* TestClock.adjust("500 millis")
        const now = yield* TestClock.currentTimeMillis
        // recognising its own tenure in the record, it leads on: no gap of a ttl without a leader
        expect(yield* leaders([a.lease, b.lease]), `at ${now}`).toEqual(["a"])
      }
      expect((yield* faulty.injector.injected).filter((f) => f.kind === "Delay" && f.landed).length).toBe(1)
      expect(Option.getOrThrow(yield* stored(memory)).leaseId).toBe(tenure)
      yield* Effect.all([a.stop, b.stop])
    }))

  it.effect("a release never overwrites a lease someone else holds now; the old leader steps down on its next renewal", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      const a = yield* instance(storage, "a")
      yield* a.lease.awaitLeadership
      // Someone takes the lease by CAS (as a standby would after an expiry a's clock did not see).
      const current = Option.getOrThrow(yield* storage.get(key))
      const intruder = new LeaderLease.LeaderLeaseRecord({
        name: "scheduler",
        holder: "intruder",
        leaseId: "intruder-lease",
        acquiredAt: DateTime.unsafeMake(0),
        renewedAt: DateTime.unsafeMake(0),
        expiresAt: DateTime.unsafeMake((yield* TestClock.currentTimeMillis) + 60_000),
        released: false
      })
      yield* storage.put(key, encodeObject(LeaderLease.LeaderLeaseRecord, intruder), { ifMatch: current.etag })
      yield* a.lease.release
      expect(Option.getOrThrow(yield* stored(storage)).holder).toBe("intruder")
      expect(yield* SubscriptionRef.get(a.lease.isLeader)).toBe(false)

      const b = yield* instance(storage, "b")
      const current2 = Option.getOrThrow(yield* storage.get(key))
      yield* storage.put(key, encodeObject(LeaderLease.LeaderLeaseRecord, intruder), { ifMatch: current2.etag })
      // the intruder's lease is live for 60 s: b waits it out, then takes over
      yield* TestClock.adjust("10 seconds")
      expect(yield* leaders([b.lease])).toEqual([])
      yield* TestClock.adjust("61 seconds")
      expect(yield* leaders([b.lease])).toEqual(["b"])
      yield* Effect.all([a.stop, b.stop])
    }))

  it.effect("a leader whose renewal CAS loses steps down at once and stops its work", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      const a = yield* instance(storage, "a")
      yield* a.lease.awaitLeadership
      const current = Option.getOrThrow(yield* stored(storage))
      const raw = Option.getOrThrow(yield* storage.get(key))
      const stolen = new LeaderLease.LeaderLeaseRecord({ ...current, holder: "thief", leaseId: "thief" })
      yield* storage.put(key, encodeObject(LeaderLease.LeaderLeaseRecord, stolen), { ifMatch: raw.etag })
      yield* TestClock.adjust("10 seconds") // a's next renewal
      expect(yield* SubscriptionRef.get(a.lease.isLeader)).toBe(false)
      expect(Option.getOrThrow(yield* stored(storage)).holder).toBe("thief")
      yield* a.stop
      expect(Option.getOrThrow(yield* stored(storage)).holder).toBe("thief")
    }))

  it.effect("rejects a name that is not safe in a key", () =>
    Effect.gen(function*() {
      const storage = yield* MemoryStorage.make()
      const error = yield* instance(storage, "a", { name: "../x" }).pipe(Effect.flip)
      expect(error._tag).toBe("InvalidArgument")
      expect(error.message).toContain("letters, digits")
    }))
})
