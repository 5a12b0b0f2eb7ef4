/**
 * Shard leasing (opt-in, for large fleets; design.md §5.4): each worker owns a share of the shards
 * through lease objects `shard-leases/{shard}.json`, so that N workers do not all LIST every shard.
 *
 * How it works (one background fiber per worker, in the worker's Scope — renewals never wait for
 * a task to finish: the reference renewed only between tasks, trap 5.2 #5):
 * 1. Every `renewInterval` the worker announces itself (`control/shard-members/{id}.json`, one
 *    PUT) and LISTs the announcements: a member is live while its Last-Modified + `leaseTtl` lies
 *    in the future (server time).
 * 2. The live members, sorted, split the shards into contiguous ranges of ⌊S/N⌋ or ⌈S/N⌉
 *    ({@link assignedShards}), capped by `shardsPerWorker`. Every worker computes the same split
 *    from the same LIST, so N workers converge to about S/N each.
 * 3. Shards it holds but is no longer assigned are dropped from the owned set FIRST, then released
 *    with a conditional write that marks them expired now (never an unconditional delete: a lease
 *    someone else already took over stays theirs — trap 5.2 #8).
 * 4. Assigned shards it holds are renewed (`If-Match`); assigned shards it lacks are acquired
 *    (create-only, or `If-Match` takeover once expired by server time minus the clock's
 *    uncertainty). One held by a live member is waited for: that member releases it on its next
 *    tick, so the worker looks again after `handoffPoll`. One held by a member that has vanished
 *    is looked at again the moment it expires.
 * 5. The worker wakes early when another member's announcement lapses, so the shards of a crashed
 *    worker are re-owned as soon as its leases expire: within one lease TTL of its last renewal.
 * 6. No task is stranded: announcements carry the task types each member handles, and a worker
 *    also polls, without a lease, its share of the shards whose designated owner cannot run one of
 *    its types or that have no owner at all because the `shardsPerWorker` caps are too small
 *    ({@link extraShards}; claims are CAS, so polling a shard twice is safe). Shards without an
 *    owner are logged as a warning whenever their number changes.
 *
 * A shard is in {@link ShardLeasing.owned} only while the lease is surely ours: from the write
 * that won it until its expiry minus `safetyMargin` and the clock's uncertainty (if renewals keep
 * failing, the worker stops using the shard before anyone may take it over).
 *
 * Worker hook: the Worker reads `polled` (a `SubscriptionRef`, or its `changes` stream: the owned
 * shards plus the extra ones) to decide which shards to poll — poll `SubscriptionRef.get(leasing.polled)`
 * each round, or restart the shard rotation on each value of `leasing.polled.changes`. An empty set
 * means "poll nothing".
 *
 * ```ts
 * const leasing = yield* ShardLeasing.make({ workerId, shardPrefixLen: 1 })  // in the worker's Scope
 * const shards = yield* SubscriptionRef.get(leasing.owned)                      // ReadonlyArray<string>
 * ```
 *
 * @module
 */
import { DateTime, Duration, Effect, Fiber, Option, Ref, SubscriptionRef } from "effect"
import { InvalidArgument } from "../domain/QueueError.js"
import { allShards, isShard } from "../domain/Shard.js"
import { assignedShards, designatedOwners, extraShards, isValidWorkerId } from "../domain/ShardLease.js"
import { LeaseManager, type HeldShardLease } from "../services/LeaseManager.js"
import { ServerClock } from "../services/ServerClock.js"

/**
 * Options of {@link make}; the CLI maps `[worker.shard_leasing]` onto them:
 * `shards_per_worker` → `shardsPerWorker`, `lease_ttl_secs` → `leaseTtl`,
 * `renewal_interval_secs` → `renewInterval` (`enabled` decides whether the worker calls `make`).
 */
export interface ShardLeasingOptions {
  /** This worker's id (unique in the fleet; letters, digits and `_ . : @ -`). */
  readonly workerId: string
  /** The queue's shard prefix length, 1–4 (default 1: 16 shards). */
  readonly shardPrefixLen?: number | undefined
  /** The shards to share (default: every shard of the prefix length). */
  readonly shards?: ReadonlyArray<string> | undefined
  /** Most shards one worker owns (default: no cap — the fair share). */
  readonly shardsPerWorker?: number | undefined
  /** Lease lifetime without renewal (default 30 s). A crashed worker's shards are re-owned after this. */
  readonly leaseTtl?: Duration.DurationInput | undefined
  /** How often leases are renewed and the assignment recomputed (default 10 s; must be < leaseTtl). */
  readonly renewInterval?: Duration.DurationInput | undefined
  /** How long before expiry an unrenewed shard stops counting as owned (default leaseTtl / 6). */
  readonly safetyMargin?: Duration.DurationInput | undefined
  /** How often to look again at an assigned shard a live member still holds (default renewInterval / 5). */
  readonly handoffPoll?: Duration.DurationInput | undefined
  /**
   * The task types this worker handles, announced to the group so shards whose owner cannot run a
   * type are also polled by a worker that can (default: not announced; the worker polls only what it owns).
   */
  readonly taskTypes?: ReadonlyArray<string> | undefined
}

/** A running shard-leasing participant; lives in the Scope it was made in. */
export interface ShardLeasing {
  readonly workerId: string
  /** The shards this worker owns now, sorted. Subscribe with `owned.changes`. */
  readonly owned: SubscriptionRef.SubscriptionRef<ReadonlyArray<string>>
  /** The shards to poll now: the owned ones plus the extra ones no capable owner covers, sorted. */
  readonly polled: SubscriptionRef.SubscriptionRef<ReadonlyArray<string>>
  /** Releases every held shard (conditional writes), withdraws from the group and stops. Also done on scope close. */
  readonly stop: Effect.Effect<void>
}

interface Held {
  readonly held: HeldShardLease
  /** Server epoch ms until which the shard surely is ours. */
  readonly deadline: number
}

/** Starts shard leasing for one worker in a background fiber of the current Scope. */
export const make = Effect.fn("ShardLeasing.make")(function*(options: ShardLeasingOptions) {
  const lm = yield* LeaseManager
  const clock = yield* ServerClock
  const workerId = options.workerId
  if (!isValidWorkerId(workerId)) {
    return yield* new InvalidArgument({
      argument: "workerId",
      message: `shard leasing needs a worker id of letters, digits and _ . : @ - (1–200 characters), got ${JSON.stringify(workerId)}`
    })
  }
  const prefixLen = options.shardPrefixLen ?? 1
  if (!Number.isInteger(prefixLen) || prefixLen < 1 || prefixLen > 4) {
    return yield* new InvalidArgument({ argument: "shardPrefixLen", message: "shardPrefixLen must be an integer from 1 to 4" })
  }
  const shards = [...(options.shards ?? allShards(prefixLen))].sort()
  const bad = shards.find((s) => !isShard(s, prefixLen))
  if (bad !== undefined) {
    return yield* new InvalidArgument({ argument: "shards", message: `"${bad}" is not a shard for prefix length ${prefixLen} (${prefixLen} hex characters)` })
  }
  // a cap of 0 leases nothing (the loop would spin on an empty assignment); a fraction is no count
  const cap = options.shardsPerWorker ?? Number.POSITIVE_INFINITY
  if (cap !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(cap) && cap >= 1)) {
    return yield* new InvalidArgument({
      argument: "shardsPerWorker",
      message: `shardsPerWorker must be a positive integer (the most shards this worker owns; leave it out for no cap), got ${cap}`
    })
  }
  const ttl = Duration.decode(options.leaseTtl ?? Duration.seconds(30))
  const ttlMillis = Duration.toMillis(ttl)
  const renewMillis = Duration.toMillis(Duration.decode(options.renewInterval ?? Duration.millis(ttlMillis / 3)))
  if (!(ttlMillis > 0) || !Number.isFinite(ttlMillis) || !(renewMillis > 0) || renewMillis >= ttlMillis) {
    return yield* new InvalidArgument({
      argument: "leaseTtl",
      // the values as given: the caller may have set them as options, flags or config keys
      message: `shard leasing needs a lease TTL above 0 and a renewal interval above 0 and below it (e.g. 30 s and 10 s; ` +
        `[worker.shard_leasing] lease_ttl_secs and renewal_interval_secs in a config file), got a TTL of ${ttlMillis} ms ` +
        `and a renewal interval of ${renewMillis} ms`
    })
  }
  const safetyMillis = Duration.toMillis(Duration.decode(options.safetyMargin ?? Duration.millis(ttlMillis / 6)))
  const handoffMillis = Math.max(1, Duration.toMillis(Duration.decode(options.handoffPoll ?? Duration.millis(renewMillis / 5))))

  const owned = yield* SubscriptionRef.make<ReadonlyArray<string>>([])
  const polled = yield* SubscriptionRef.make<ReadonlyArray<string>>([])
  const extraRef = yield* Ref.make<ReadonlyArray<string>>([])
  const unownedRef = yield* Ref.make(0)
  const heldRef = yield* Ref.make(new Map<string, Held>())
  const uncertainty = Effect.map(clock.estimate, (e) => Duration.toMillis(e.uncertainty))

  const deadlineOf = (h: HeldShardLease, margin: number) =>
    DateTime.toEpochMillis(h.lease.leaseExpiresAt) - safetyMillis - margin

  const setIfChanged = (ref: SubscriptionRef.SubscriptionRef<ReadonlyArray<string>>, next: ReadonlyArray<string>) =>
    Effect.flatMap(SubscriptionRef.get(ref), (prev) =>
      prev.length !== next.length || prev.some((s, i) => s !== next[i]) ? SubscriptionRef.set(ref, next) : Effect.void)

  /** Drops shards past their local deadline and publishes the owned set (only if it changed). */
  const publish = Effect.gen(function*() {
    const now = yield* clock.currentTimeMillis
    const map = yield* Ref.get(heldRef)
    for (const [shard, h] of map) if (h.deadline <= now) map.delete(shard)
    const next = [...map.keys()].sort()
    yield* setIfChanged(owned, next)
    yield* setIfChanged(polled, [...new Set([...next, ...(yield* Ref.get(extraRef))])].sort())
  })

  const setHeld = (shard: string, h: Held | undefined) =>
    Ref.update(heldRef, (m) => {
      if (h === undefined) m.delete(shard)
      else m.set(shard, h)
      return m
    })

  /** One round; returns how long to sleep (ms). */
  const tick = Effect.gen(function*() {
    const margin = yield* uncertainty
    yield* lm.announce(workerId, ttl, options.taskTypes)
    const live = yield* lm.members(ttl)
    const ids = new Set(live.map((m) => m.workerId))
    ids.add(workerId)
    const assigned = new Set(assignedShards(workerId, [...ids], shards, cap))
    const group = [...live.filter((m) => m.workerId !== workerId), { workerId, taskTypes: options.taskTypes }]
    yield* Ref.set(extraRef, options.taskTypes === undefined ? [] : extraShards(workerId, group, shards, cap))
    const unowned = shards.length - designatedOwners([...ids], shards, cap).size
    if (unowned !== (yield* Ref.getAndSet(unownedRef, unowned)) && unowned > 0) {
      yield* Effect.logWarning(
        `shard leasing: ${unowned} of ${shards.length} shards have no owner (shards_per_worker ${cap} × ${ids.size} live worker(s) < ${shards.length}); ` +
          `the workers that handle their task types poll them without a lease, so every worker LISTs more: raise shards_per_worker or add workers`
      )
    }
    const nowMillis = yield* clock.currentTimeMillis
    let wake = nowMillis + renewMillis
    for (const m of live) {
      const at = DateTime.toEpochMillis(m.expiresAt)
      if (m.workerId !== workerId && at > nowMillis) wake = Math.min(wake, at + margin + 1)
    }

    // 1. Release what is no longer ours to keep: out of the owned set first, then the conditional write.
    const map = yield* Ref.get(heldRef)
    const toRelease = [...map.entries()].filter(([shard]) => !assigned.has(shard))
    for (const [shard] of toRelease) yield* setHeld(shard, undefined)
    yield* publish
    yield* Effect.forEach(toRelease, ([, h]) =>
      lm.releaseShard(h.held).pipe(
        Effect.catchAll((e) => Effect.logWarning(`shard leasing: could not release shard ${h.held.lease.shard} (it expires on its own): ${e.message}`))
      ), { concurrency: 8, discard: true })

    // 2. Renew what we keep.
    const keepers = [...(yield* Ref.get(heldRef)).entries()]
    yield* Effect.forEach(keepers, ([shard, h]) =>
      lm.renewShard(h.held, ttl).pipe(
        Effect.flatMap(Option.match({
          onNone: () =>
            Effect.zipRight(
              Effect.logInfo(`shard leasing: lost shard ${shard} (taken over)`),
              setHeld(shard, undefined)
            ),
          onSome: (next) => setHeld(shard, { held: next, deadline: deadlineOf(next, margin) })
        })),
        Effect.catchAll((e) => Effect.logWarning(`shard leasing: could not renew shard ${shard}: ${e.message}`))
      ), { concurrency: 8, discard: true })

    // 3. Acquire what is assigned to us.
    const have = yield* Ref.get(heldRef)
    const wanted = [...assigned].filter((s) => !have.has(s))
    const waits = yield* Effect.forEach(wanted, (shard) =>
      lm.acquireShard(shard, workerId, ttl).pipe(
        Effect.flatMap((result): Effect.Effect<number> => {
          switch (result._tag) {
            case "Acquired":
              return Effect.as(setHeld(shard, { held: result.held, deadline: deadlineOf(result.held, margin) }), Number.POSITIVE_INFINITY)
            case "LostRace":
              return Effect.succeed(nowMillis + handoffMillis)
            case "HeldByOther": {
              const expires = DateTime.toEpochMillis(result.lease.leaseExpiresAt) + margin + 1
              // A live holder hands it over on its next round; a vanished one's lease just runs out.
              return Effect.succeed(ids.has(result.lease.workerId) ? Math.min(expires, nowMillis + handoffMillis) : expires)
            }
          }
        }),
        Effect.catchAll((e) =>
          Effect.as(Effect.logWarning(`shard leasing: could not acquire shard ${shard}: ${e.message}`), nowMillis + handoffMillis))
      ), { concurrency: 8 })
    for (const w of waits) wake = Math.min(wake, w)
    yield* publish
    for (const h of (yield* Ref.get(heldRef)).values()) wake = Math.min(wake, h.deadline)
    return Math.max(1, wake - (yield* clock.currentTimeMillis))
  })

  const loop = Effect.gen(function*() {
    for (;;) {
      const sleep = yield* tick.pipe(
        Effect.catchAll((e) =>
          Effect.as(Effect.logWarning(`shard leasing: round failed, retrying: ${e.message}`), Math.min(handoffMillis, renewMillis)))
      )
      yield* publish
      yield* Effect.sleep(Duration.millis(sleep))
      yield* publish
    }
  })

  const releaseAll = Effect.gen(function*() {
    const map = yield* Ref.get(heldRef)
    const all = [...map.values()]
    yield* Ref.set(heldRef, new Map())
    yield* SubscriptionRef.set(owned, [])
    yield* Ref.set(extraRef, [])
    yield* SubscriptionRef.set(polled, [])
    yield* Effect.forEach(all, (h) => Effect.ignore(lm.releaseShard(h.held)), { concurrency: 8, discard: true })
    yield* Effect.ignore(lm.withdraw(workerId))
  }).pipe(Effect.uninterruptible)

  const fiber = yield* Effect.forkScoped(loop)
  const stopped = yield* Ref.make(false)
  const stop = Effect.gen(function*() {
    if (yield* Ref.getAndSet(stopped, true)) return
    yield* Fiber.interrupt(fiber)
    yield* releaseAll
  })
  yield* Effect.addFinalizer(() => stop)

  return { workerId, owned, polled, stop } satisfies ShardLeasing
})
