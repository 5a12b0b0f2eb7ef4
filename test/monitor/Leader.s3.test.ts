/**
 * Issue 5, acceptances 2 and 5 on the real S3 server (Ceph RGW), in real time (the memory versions,
 * on MemoryStorage + TestClock, are in Monitor.worker.test.ts, LeaderLease.test.ts and
 * ShardLeasing.test.ts):
 *
 * - Acceptance 2: five real Workers, each with its embedded monitor, on one RGW prefix: exactly one
 *   instance LISTs `leases/` per window of several check periods (the others none); the active one
 *   is killed (no graceful release: its storage fails from that instant on) and another instance
 *   takes over within one leader TTL (+ one check period + clock/RGW slack), the stored lease
 *   `control/leader/monitor.json` names it, and the fleet keeps completing tasks throughout.
 * - Acceptance 5: a release never overwrites a lease someone else has just taken over. Leader A's
 *   renewal hangs (a FaultyStorage Delay rule: A's process is "paused"), so its lease runs out by
 *   server time while A still holds the old ETag; B takes over; then A's release runs (late, raced
 *   with jitter, or first). Every landed write on the lease object is recorded with the ETag it was
 *   conditioned on: A never writes on top of a B write, and B's tenure (holder, lease_id, ETag
 *   chain) survives every round. The same race for shard leases (LeaseManager.releaseShard).
 */
import { expect, it } from "@effect/vitest"
import { Cause, DateTime, Duration, Effect, Exit, Layer, Option, Random, Ref, Scope, SubscriptionRef } from "effect"
import { decodeObject, encodeObject } from "../../src/domain/Codec.js"
import { shardLeaseKey } from "../../src/domain/Keys.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault } from "../../src/layers/FaultyStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as LeaderLease from "../../src/programs/LeaderLease.js"
import type * as Monitor from "../../src/programs/Monitor.js"
import * as Worker from "../../src/programs/Worker.js"
import type { AcquireResult, HeldShardLease, LeaseManagerService } from "../../src/services/LeaseManager.js"
import { ServerClock, type ServerClockService } from "../../src/services/ServerClock.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"
import { describeS3, s3Layer } from "../support/s3.js"
import { countingLeaseWalks, startProcess } from "./fleet.js"
import { processServices } from "./support.js"

const env = () => ServerClockLayer.layer.pipe(Layer.provideMerge(s3Layer()))

const monitorKey = LeaderLease.leaderLeaseKey("monitor")

/** The stored leader lease `name` (none if never written). */
const storedLeader = (storage: StorageService, key: string) =>
  Effect.gen(function*() {
    const found = yield* storage.get(key)
    if (Option.isNone(found)) return Option.none<{ readonly record: LeaderLease.LeaderLeaseRecord; readonly etag: string }>()
    return Option.some({ record: yield* decodeObject(LeaderLease.LeaderLeaseRecord, key, found.value.body), etag: found.value.etag })
  })

/** Polls `cond` every `stepMillis` until it holds; fails the test after `timeoutMillis`. */
const waitUntil = <E, R>(what: string, cond: Effect.Effect<boolean, E, R>, timeoutMillis: number, stepMillis = 100) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMillis
    while (!(yield* cond)) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out after ${timeoutMillis} ms waiting for: ${what}`)
      yield* Effect.sleep(Duration.millis(stepMillis))
    }
  })

/** Sleeps until the server time (as this process's ServerClock estimates it) is past `millis` + its uncertainty. */
const sleepUntilServerTime = (clock: ServerClockService, millis: number) =>
  Effect.gen(function*() {
    const now = yield* clock.currentTimeMillis
    const uncertainty = Duration.toMillis((yield* clock.estimate).uncertainty)
    const wait = millis + uncertainty + 1 - now
    if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
  })

const jitter = (maxMillis: number) => Effect.flatMap(Random.nextIntBetween(0, maxMillis + 1), (ms) => Effect.sleep(Duration.millis(ms)))

describeS3("Monitor leader election on the real S3 server (acceptance 2)", () => {
  it.scopedLive("five workers with embedded monitors: one LISTs leases/ per window; kill it, another takes over within one leader TTL", () =>
    Effect.gen(function*() {
      const real = yield* Storage
      const clock = yield* ServerClock
      const queue = yield* QueueLayer.make({})
      const ttlMillis = 4_000
      const periodMillis = 1_000
      const windowMillis = 3 * periodMillis
      // quiet: false — an idle leader must not stretch its periods or its lease TTL in this test.
      const monitorOptions = (id: string): Monitor.MonitorOptions => ({
        checkInterval: `${periodMillis} millis`,
        sweepInterval: 0, // the sweeper LISTs tasks/, not leases/; off to keep RGW load down
        leader: { ttl: `${ttlMillis} millis`, renewInterval: "1 second", holderId: id },
        quiet: false
      })

      // LISTs of `leases/` per instance (only those that reached the bucket and answered).
      const lists = new Map<string, number>()
      const counting = countingLeaseWalks(lists)
      const done = yield* Ref.make(0)
      const handlers = [Worker.handler("job", () => Effect.as(Ref.update(done, (n) => n + 1), { ok: true }))]
      const ids = ["L1", "L2", "L3", "L4", "L5"]
      // Each process: a real Worker with its embedded monitor (fleet.startProcess passes
      // `worker.monitor` through), in its own Scope, on its own killable view of the bucket.
      const procs = yield* Effect.forEach(ids, (id) =>
        startProcess(real, clock, {
          id,
          worker: { concurrency: 2, shutdownGracePeriod: "1 second", monitor: monitorOptions(id) },
          handlers,
          wrap: counting(id)
        }))
      const snapshot = () => procs.map((p) => lists.get(p.id) ?? 0)
      const scannersSince = (before: ReadonlyArray<number>) =>
        procs.filter((p, i) => (lists.get(p.id) ?? 0) > before[i]!).map((p) => p.id)

      // Someone is elected and scanning.
      const start = snapshot()
      yield* waitUntil("a first monitor LIST of leases/", Effect.sync(() => scannersSince(start).length > 0), 20_000)

      // Several windows of 3 check periods: exactly one instance LISTs leases/ (2+ walks), always the same.
      let active: string | undefined
      for (let w = 0; w < 4; w++) {
        const before = snapshot()
        yield* Effect.sleep(Duration.millis(windowMillis))
        const who = scannersSince(before)
        expect(who, `window ${w}: instances that listed leases/`).toHaveLength(1)
        if (active !== undefined) expect(who[0], `window ${w}`).toBe(active)
        active = who[0]
        const i = ids.indexOf(active!)
        expect(snapshot()[i]! - before[i]!, `window ${w}: walks by ${active}`).toBeGreaterThanOrEqual(2)
      }
      const stored = Option.getOrThrow(yield* storedLeader(real, monitorKey)).record
      expect(stored.holder).toBe(active)
      expect(stored.released).toBe(false)

      // The fleet works meanwhile.
      yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => queue.submit("job", {}), { discard: true })
      yield* waitUntil("6 tasks completed", Effect.map(Ref.get(done), (n) => n >= 6), 30_000)

      // Kill the active process: from now on none of its requests reaches the bucket (no release).
      const victim = procs.find((p) => p.id === active)!
      const held = Option.getOrThrow(yield* storedLeader(real, monitorKey)).record
      expect(held.holder).toBe(victim.id)
      yield* victim.die
      const killedAt = yield* clock.currentTimeMillis
      const killedAtLocal = Date.now()
      // A renewal already in flight may still land after `held` was read, but it was sent before the
      // kill, so the victim's last expires_at is at most killedAt + ttl (server time).
      expect(DateTime.toEpochMillis(held.expiresAt) - killedAt).toBeLessThanOrEqual(ttlMillis)
      const before = snapshot()
      // Bound: one leader TTL (the standby must wait out the victim's last lease) + one check period
      // (walk start) + 2 s of slack: the server clock's uncertainty (RGW's Date header has a 1 s
      // resolution; a standby adds its uncertainty before taking over), the standby's poll step and
      // RGW latency on a shared 2-core machine.
      const bound = ttlMillis + periodMillis + 2_000
      // (a LIST the victim sent before the kill may still answer after it: the victim is not a successor)
      const others = () => scannersSince(before).filter((id) => id !== victim.id)
      yield* waitUntil("another instance LISTs leases/", Effect.sync(() => others().length > 0), bound + 10_000, 50)
      const tookOver = Date.now() - killedAtLocal
      const successor = others()
      console.log(`RGW leader takeover: ${victim.id} killed, ${successor.join(",")} scanning after ${tookOver} ms (bound ${bound} ms)`)
      expect(successor).toHaveLength(1)
      expect(successor[0]).not.toBe(victim.id)
      expect(tookOver).toBeLessThanOrEqual(bound)

      // The stored lease names the new holder: a fresh tenure, taken only after the victim's lease expired.
      const next = Option.getOrThrow(yield* storedLeader(real, monitorKey)).record
      expect(next.holder).toBe(successor[0])
      expect(next.released).toBe(false)
      expect(next.leaseId).not.toBe(held.leaseId)
      expect(DateTime.toEpochMillis(next.acquiredAt)).toBeGreaterThan(DateTime.toEpochMillis(held.expiresAt))

      // From now on only the successor scans (the dead victim's counter cannot move).
      for (let w = 0; w < 2; w++) {
        const b = snapshot()
        yield* Effect.sleep(Duration.millis(windowMillis))
        expect(scannersSince(b), `window ${w} after the takeover`).toEqual(successor)
      }
      // And the four survivors still run work.
      yield* Effect.forEach([1, 2, 3, 4], () => queue.submit("job", {}), { discard: true })
      yield* waitUntil("10 tasks completed", Effect.map(Ref.get(done), (n) => n >= 10), 30_000)
      expect(yield* Ref.get(done)).toBe(10)

      // Stop: kill the rest too (no bucket writes from their shutdowns) before the prefix is emptied.
      yield* Effect.forEach(procs, (p) => p.die, { discard: true })
    }).pipe(Effect.provide(env())), 120_000)
})

/** One conditional write on a lease object, as its writer saw it. */
interface WriteRecord {
  readonly who: string
  readonly key: string
  readonly ifMatch: string | undefined
  /** landed = 2xx; refused = 412; unknown = OutcomeUnknown (RGW answers some CAS losers 500); interrupted = never sent. */
  readonly outcome: "landed" | "refused" | "unknown" | "failed" | "interrupted"
  readonly etag: string | undefined
  readonly body: Uint8Array
}

/** Records every PUT through `s` to a key `track` accepts, with its condition and outcome. */
const recording = (s: StorageService, who: string, track: (key: string) => boolean, log: Array<WriteRecord>): StorageService => ({
  ...s,
  put: (key, body, condition) =>
    !track(key) ? s.put(key, body, condition) : s.put(key, body, condition).pipe(Effect.onExit((exit) =>
      Effect.sync(() => {
        const ifMatch = condition !== undefined && "ifMatch" in condition ? condition.ifMatch : undefined
        if (Exit.isSuccess(exit)) return log.push({ who, key, ifMatch, outcome: "landed", etag: exit.value, body })
        const failure = Cause.failureOption(exit.cause)
        const outcome = Cause.isInterruptedOnly(exit.cause)
          ? "interrupted"
          : Option.isNone(failure)
          ? "failed"
          : failure.value._tag === "PreconditionFailed"
          ? "refused"
          : failure.value._tag === "OutcomeUnknown"
          ? "unknown"
          : "failed"
        log.push({ who, key, ifMatch, outcome, etag: undefined, body })
      })
    ))
})

/**
 * Landed writes of `who` on `key` that were conditioned on an ETag a landed write of `other`
 * produced: `who` overwrote `other`'s lease. (Writes with an unknown outcome are covered by the
 * stored-state checks: had one landed, the stored ETag would not be `other`'s.)
 */
const overwrites = (log: ReadonlyArray<WriteRecord>, key: string, who: string, other: string): ReadonlyArray<WriteRecord> => {
  const theirs = new Set(log.filter((w) => w.key === key && w.who === other && w.outcome === "landed").map((w) => w.etag))
  return log.filter((w) => w.key === key && w.who === who && w.outcome === "landed" && w.ifMatch !== undefined && theirs.has(w.ifMatch))
}

type Mode = "late release" | "raced" | "release first"
const modes: ReadonlyArray<Mode> = ["late release", "raced", "release first"]

describeS3("A release never overwrites a lease someone else has just taken over, on the real S3 server (acceptance 5)", () => {
  it.live("leader lease: A's renewal hangs past its TTL, B takes over, A's release runs late / raced / first — 21 rounds, B's lease survives every one", () =>
    Effect.gen(function*() {
      const real = yield* Storage
      const clock = yield* ServerClock
      const ttlMillis = 1_500
      const renewMillis = 300
      const observed = { aLeaderWhenBTookOver: 0, releaseRefused: 0, releaseLanded: 0 }

      const round = (r: number) =>
        Effect.gen(function*() {
          const mode = modes[r % modes.length]!
          const name = `race-${r}`
          const key = LeaderLease.leaderLeaseKey(name)
          const log: Array<WriteRecord> = []
          const faulty = yield* FaultyStorage.make(real)
          const options = { name, ttl: Duration.millis(ttlMillis), renewInterval: Duration.millis(renewMillis) }
          const start = (storage: StorageService, holderId: string) =>
            Effect.gen(function*() {
              const scope = yield* Scope.make()
              const lease = yield* LeaderLease.make({ ...options, holderId }).pipe(
                Effect.provideService(Storage, storage),
                Effect.provideService(ServerClock, clock),
                Scope.extend(scope)
              )
              return { lease, close: Scope.close(scope, Exit.void) }
            })
          const a = yield* start(recording(faulty.storage, "a", (k) => k === key, log), `a-${r}`)
          yield* Effect.timeoutFail(a.lease.awaitLeadership, { duration: "15 seconds", onTimeout: () => `round ${r}: A never became leader` })
          // Let at least one renewal land, then A's process "pauses": its next renewal hangs before
          // reaching the bucket, so A keeps the ETag of its last landed write while its lease runs out.
          yield* Effect.sleep(Duration.millis(renewMillis + 100))
          // (every put of A's hangs, not just one: a retried renewal that got through would keep A
          // leading — a live process, not a paused one; the rules are lifted for A's release)
          yield* faulty.injector.addRule({ operation: "put", key, fault: Fault.delay("5 minutes"), times: Infinity })
          // …and so does every read it makes afterwards (once it steps down it would look at the
          // lease again): only its release, a write on the ETag it holds, gets out.
          yield* faulty.injector.addRule({ operation: "get", key, fault: Fault.delay("5 minutes"), times: Infinity })
          yield* waitUntil(`round ${r}: A's renewal hangs`, Effect.map(faulty.injector.injected, (l) => l.some((f) => f.kind === "Delay")), 5_000, 20)
          const aLast = log.filter((w) => w.who === "a" && w.outcome === "landed").at(-1)!
          const stored0 = Option.getOrThrow(yield* storedLeader(real, key))
          // The stored lease is A's: normally its last landed write; on a loaded server, a renewal A
          // gave up on at its local deadline (logged as not landed) can still land after it, and
          // then A holds an older ETag than the stored one, which only makes its release lose sooner.
          const aGaveUp = log.some((w) => w.who === "a" && w.outcome !== "landed" && w.outcome !== "refused")
          if (!aGaveUp) expect(stored0.etag, `round ${r}: A's last landed write is the stored one`).toBe(aLast.etag)
          expect(stored0.record.holder, `round ${r}: the stored lease is A's`).toBe(`a-${r}`)
          const aRecord = stored0.record

          let b: Effect.Effect.Success<ReturnType<typeof start>> | undefined
          const startB = Effect.flatMap(start(recording(real, "b", (k) => k === key, log), `b-${r}`), (x) => Effect.sync(() => (b = x)))
          const awaitB = Effect.suspend(() =>
            Effect.timeoutFail(b!.lease.awaitLeadership, { duration: "15 seconds", onTimeout: () => `round ${r} (${mode}): B never became leader` })
          )
          if (mode === "late release") {
            // B waits out A's lease and takes over; a moment later A's release arrives with the old ETag.
            yield* startB
            yield* awaitB
            // A's hung renewal is bounded by its local deadline: it stepped down before B could take over.
            if (yield* SubscriptionRef.get(a.lease.isLeader)) observed.aLeaderWhenBTookOver++
            expect(yield* SubscriptionRef.get(a.lease.isLeader), `round ${r}: A still leader when B took over`).toBe(false)
            yield* jitter(200)
            yield* faulty.injector.reset
            yield* a.lease.release
          } else {
            // A's lease has expired by server time (+ the clock's uncertainty): B may take it at once.
            yield* sleepUntilServerTime(clock, DateTime.toEpochMillis(aRecord.expiresAt) + 50)
            if (mode === "raced") {
              yield* faulty.injector.reset
              yield* Effect.all([Effect.zipRight(jitter(150), a.lease.release), Effect.zipRight(jitter(150), startB)], {
                concurrency: "unbounded",
                discard: true
              })
            } else {
              yield* faulty.injector.reset
              yield* a.lease.release
              yield* startB
            }
            yield* awaitB
          }
          // B keeps leading across its next renewals: the ETag it holds was not changed under it.
          yield* Effect.sleep(Duration.millis(2 * renewMillis + 200))
          expect(yield* SubscriptionRef.get(b!.lease.isLeader), `round ${r} (${mode}): B still leader`).toBe(true)
          expect(yield* SubscriptionRef.get(a.lease.isLeader), `round ${r} (${mode}): A not leader`).toBe(false)

          // B's tenure is one unbroken chain: one lease_id from its takeover on (had A's release landed
          // on top of it, B's renewal would have lost and B would have re-acquired with a new one), and
          // the stored object is a write of B's, not released. (B keeps renewing: a renewal that landed
          // just before our GET may be logged only when its response arrives, so wait for it.)
          const stored = Option.getOrThrow(yield* storedLeader(real, key))
          const bLanded = () => log.filter((w) => w.who === "b" && w.outcome === "landed")
          yield* waitUntil(`round ${r} (${mode}): the stored ETag is one of B's writes`, Effect.sync(() => bLanded().some((w) => w.etag === stored.etag)), 3_000, 20)
            .pipe(Effect.catchAllDefect(() => Effect.void))
          const bWrites = bLanded()
          expect(bWrites.length, `round ${r} (${mode}): B's takeover and at least one renewal`).toBeGreaterThanOrEqual(2)
          const bLeaseIds = yield* Effect.forEach(bWrites, (w) => Effect.map(decodeObject(LeaderLease.LeaderLeaseRecord, key, w.body), (x) => x.leaseId))
          expect(new Set(bLeaseIds).size, `round ${r} (${mode}): B's tenures`).toBe(1)
          expect(bWrites.map((w) => w.etag), `round ${r} (${mode}): the stored lease is a write of B's`).toContain(stored.etag)
          expect(stored.record.holder, `round ${r} (${mode})`).toBe(`b-${r}`)
          expect(stored.record.leaseId, `round ${r} (${mode})`).toBe(bLeaseIds[0])
          expect(stored.record.released, `round ${r} (${mode})`).toBe(false)
          expect(overwrites(log, key, "a", "b"), `round ${r} (${mode}): A wrote on top of B`).toEqual([])

          // A's release: A stepped down at its local deadline while its renewal hung, so usually it
          // holds nothing to release and sends nothing; if it still sent one, it was exactly one write
          // conditioned on A's old ETag (never a delete, never unconditional).
          const aRelease = log.slice(log.indexOf(aLast) + 1).filter((w) => w.who === "a" && w.outcome !== "interrupted")
          const release = aRelease.filter((w) => w.ifMatch === aLast.etag)
          expect(release.length, `round ${r} (${mode}): A's writes on its old ETag after the hang`).toBeLessThanOrEqual(1)
          if (release.length === 1) {
            // RGW may answer a CAS loser 500 instead of 412: then LeaderLease re-reads and sees it lost
            if (mode === "late release") expect(["refused", "unknown"], `round ${r}: A's late release`).toContain(release[0]!.outcome)
            if (release[0]!.outcome !== "landed") observed.releaseRefused++
            else observed.releaseLanded++
          }

          yield* a.close
          yield* b!.close
        })

      yield* Effect.forEach(Array.from({ length: 21 }, (_, r) => r), round, { concurrency: 7, discard: true })
      console.log(`RGW leader release race: 21 rounds, A's release refused ${observed.releaseRefused}×, landed first ${observed.releaseLanded}×; ` +
        `A still believed it led when B took over in ${observed.aLeaderWhenBTookOver}/7 late-release rounds`)
      expect(observed.aLeaderWhenBTookOver).toBe(0)

      // The release itself, raced on RGW: A leads and believes it still does while a taker CASes the
      // lease object with A's current ETag (a takeover A's clock did not see coming); A's release,
      // sent at a jittered moment around it, must never overwrite the taker's lease.
      let refused = 0
      let releasedFirst = 0
      for (let r = 0; r < 20; r++) {
        const name = `intruder-${r}`
        const key = LeaderLease.leaderLeaseKey(name)
        const scope = yield* Scope.make()
        const a = yield* LeaderLease.make({ name, holderId: `a-${r}`, ttl: "30 seconds" }).pipe(
          Effect.provideService(Storage, real),
          Effect.provideService(ServerClock, clock),
          Scope.extend(scope)
        )
        yield* Effect.timeoutFail(a.awaitLeadership, { duration: "15 seconds", onTimeout: () => `round ${r}: A never led` })
        const held = Option.getOrThrow(yield* storedLeader(real, key))
        const intruder = new LeaderLease.LeaderLeaseRecord({
          ...held.record,
          holder: `intruder-${r}`,
          leaseId: `intruder-lease-${r}`,
          released: false
        })
        const [taken] = yield* Effect.all([
          Effect.zipRight(jitter(60), real.put(key, encodeObject(LeaderLease.LeaderLeaseRecord, intruder), { ifMatch: held.etag }).pipe(Effect.option)),
          Effect.zipRight(jitter(60), a.release)
        ], { concurrency: "unbounded" })
        const stored = Option.getOrThrow(yield* storedLeader(real, key))
        if (Option.isSome(taken)) {
          refused++
          // the taker won its CAS: A's release (before or after) did not touch the taker's lease
          expect(stored.etag, `intruder round ${r}`).toBe(taken.value)
          expect(stored.record.leaseId).toBe(`intruder-lease-${r}`)
          expect(stored.record.released).toBe(false)
        } else {
          releasedFirst++
          // A's release landed first: the taker's CAS on the old ETag was refused
          expect(stored.record.holder).toBe(`a-${r}`)
          expect(stored.record.released).toBe(true)
        }
        yield* Scope.close(scope, Exit.void)
      }
      console.log(`RGW release vs takeover CAS: 20 rounds, taker won ${refused}×, release first ${releasedFirst}×`)
      expect(refused + releasedFirst).toBe(20)
    }).pipe(Effect.provide(env())), 120_000)

  it.live("shard lease: A's lease runs out, B takes it over, A's release (late / raced / first / raced while live) — 20 rounds, B's lease is never lost", () =>
    Effect.gen(function*() {
      const real = yield* Storage
      const clock = yield* ServerClock
      const ttl = "1 second"
      const log: Array<WriteRecord> = []
      // Two processes: A's and B's LeaseManager, each on its own recording view of the bucket.
      const services = (who: string) => processServices(recording(real, who, (k) => k.startsWith("shard-leases/"), log), clock)
      const { lm: a } = yield* services("a")
      const { lm: b } = yield* services("b")
      const shardModes = ["late release", "raced", "release first", "raced while live"] as const
      const observed = { takenOver: 0, releasedFirst: 0, bAcquired: 0, releaseToTakeover: [] as Array<number> }

      const expired = (held: HeldShardLease) => sleepUntilServerTime(clock, DateTime.toEpochMillis(held.lease.leaseExpiresAt) + 50)
      const acquireUntil = (lm: LeaseManagerService, shard: string, workerId: string) =>
        Effect.gen(function*() {
          const deadline = Date.now() + 10_000
          for (;;) {
            const got: AcquireResult = yield* lm.acquireShard(shard, workerId, ttl)
            if (got._tag === "Acquired") return got.held
            if (Date.now() > deadline) return yield* Effect.dieMessage(`${workerId} could not take shard ${shard}: ${got._tag}`)
            yield* Effect.sleep("100 millis")
          }
        })

      const round = (r: number) =>
        Effect.gen(function*() {
          const mode = shardModes[r % shardModes.length]!
          const shard = r.toString(16).padStart(2, "0")
          const key = shardLeaseKey(shard)
          const mine = yield* acquireUntil(a, shard, "w-a")
          let theirs: AcquireResult | undefined
          let released: string
          if (mode === "late release") {
            theirs = { _tag: "Acquired", held: yield* acquireUntil(b, shard, "w-b") } // as soon as A's lease runs out
            yield* jitter(200)
            released = yield* a.releaseShard(mine)
            expect(released, `shard ${shard}: A's late release`).toBe("taken_over")
          } else if (mode === "release first") {
            yield* expired(mine)
            released = yield* a.releaseShard(mine)
            expect(released, `shard ${shard}: A's release of its own lease`).toBe("released")
            // The release writes an expiry a minute in the past: B takes it at its first attempt,
            // whatever its clock uncertainty (RGW's Date header has 1 s resolution).
            const releasedAt = Date.now()
            const first = yield* b.acquireShard(shard, "w-b", ttl)
            expect(first._tag, `shard ${shard}: B's first attempt after the release`).toBe("Acquired")
            theirs = first
            observed.releaseToTakeover.push(Date.now() - releasedAt)
          } else {
            if (mode === "raced") yield* expired(mine)
            const [rel, got] = yield* Effect.all([
              Effect.zipRight(jitter(150), a.releaseShard(mine)),
              Effect.zipRight(jitter(150), b.acquireShard(shard, "w-b", ttl))
            ], { concurrency: "unbounded" })
            released = rel
            theirs = got
          }
          expect(["released", "taken_over"], `shard ${shard} (${mode})`).toContain(released)
          const stored = Option.getOrThrow(yield* a.readShardLease(shard))
          if (theirs._tag === "Acquired") {
            observed.bAcquired++
            // B's lease is exactly what B wrote: A's release did not touch it.
            expect(stored.lease.workerId, `shard ${shard} (${mode})`).toBe("w-b")
            expect(stored.etag, `shard ${shard} (${mode})`).toBe(theirs.held.etag)
            expect(DateTime.toEpochMillis(stored.lease.leaseExpiresAt)).toBe(DateTime.toEpochMillis(theirs.held.lease.leaseExpiresAt))
            // A's renewal with its stale ETag fails: it learns it lost the shard.
            expect(Option.isNone(yield* a.renewShard(mine, ttl)), `shard ${shard} (${mode}): A's stale renewal`).toBe(true)
          } else {
            // B lost the race to A's release (or A's lease was live): then A's release is what landed.
            expect(released, `shard ${shard} (${mode}): B did not get it`).toBe("released")
            expect(stored.lease.workerId).toBe("w-a")
          }
          if (released === "taken_over") observed.takenOver++
          else observed.releasedFirst++
          expect(overwrites(log, key, "a", "b"), `shard ${shard} (${mode}): A wrote on top of B`).toEqual([])
        })

      yield* Effect.forEach(Array.from({ length: 20 }, (_, r) => r), round, { concurrency: 5, discard: true })
      console.log(`RGW shard release race: 20 rounds, B acquired ${observed.bAcquired}×, A's release taken_over ${observed.takenOver}× / released ${observed.releasedFirst}×; ` +
        `release → B's takeover ${observed.releaseToTakeover.join(", ")} ms`)
      expect(observed.takenOver).toBeGreaterThanOrEqual(5) // every late release at least
      expect(observed.releasedFirst).toBeGreaterThanOrEqual(5) // every release-first at least
    }).pipe(Effect.provide(env())), 120_000)
})
