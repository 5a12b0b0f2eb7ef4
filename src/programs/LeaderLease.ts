/**
 * Leader election on the bucket: one lease object, `control/leader/{name}.json`, decides which of
 * any number of instances is the active one (the scheduler loop, the monitor, …). A reusable
 * primitive: give it a name, run your work under {@link LeaderLease.whileLeader}.
 *
 * The protocol (every write conditional, every decision on server time):
 * - **Acquire**: `If-None-Match: *` create when there is no lease; or `If-Match` takeover of a
 *   lease that is released or whose `expires_at` has passed by server time (minus the clock's
 *   uncertainty, so a takeover is never early). A lost race is a 412: stay standby.
 * - **Renew**: from a background fiber every `renewInterval`, `If-Match` on the ETag we hold with
 *   `expires_at = now + ttl`. A 412 means someone took it: step down at once.
 * - **Step down locally** before the lease can be taken over: the holder counts itself leader only
 *   until `expires_at − safetyMargin − uncertainty`, so if renewals fail (bucket unreachable) it
 *   stops acting before a standby may start.
 * - **Release** (scope close, or {@link LeaderLease.release}): an `If-Match` write of the same
 *   record marked `released` and expired now, so a standby takes over at once. Never an
 *   unconditional delete: if the lease was already taken over, the 412 leaves the new owner's
 *   lease alone.
 * - An ambiguous write (`OutcomeUnknown`) is settled by re-reading: we hold the lease iff the
 *   stored body is byte-for-byte what we wrote (it carries our fresh `lease_id`).
 *
 * Standbys sleep until the current lease would expire (capped by `pollInterval`, default the ttl),
 * so an idle standby costs about one GET per `pollInterval` and the leader one PUT per
 * `renewInterval`. A leader with little to do may write a longer ttl ({@link LeaderLease.setTtl}):
 * fewer renewals, and a crash is noticed later, which is the price.
 *
 * ```ts
 * const lease = yield* LeaderLease.make({ name: "scheduler" })
 * yield* lease.whileLeader(schedulerLoop) // runs while leader, interrupted on loss, restarted on regain
 * ```
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { DateTime, Duration, Effect, Fiber, Option, Queue, Ref, Schema, Stream, SubscriptionRef } from "effect"
import { decodeObject, encodeObject } from "../domain/Codec.js"
import { controlKey } from "../domain/Keys.js"
import { InvalidArgument, MalformedObject } from "../domain/QueueError.js"
import type { StorageReadError, StorageWriteError } from "../domain/StorageError.js"
import { Timestamp } from "../domain/Task.js"
import { ServerClock } from "../services/ServerClock.js"
import { Storage } from "../services/Storage.js"
import { field } from "../domain/SnakeCase.js"

/** The lease object stored at `control/leader/{name}.json` (snake_case JSON). */
export class LeaderLeaseRecord extends Schema.Class<LeaderLeaseRecord>("LeaderLeaseRecord")({
  name: Schema.String,
  /** Who holds (or last held) it. */
  holder: Schema.String,
  /** Fresh per acquisition: tells two tenures of the same holder apart. */
  leaseId: field(Schema.String, "lease_id"),
  acquiredAt: field(Timestamp, "acquired_at"),
  renewedAt: field(Timestamp, "renewed_at"),
  /** Server time after which a standby may take over. */
  expiresAt: field(Timestamp, "expires_at"),
  /** Set by a clean release: free now, whatever `expires_at` says. */
  released: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {}

/**
 * How long a leader lease that does not decode must stay unchanged before an instance takes it
 * over (or the instance's own ttl, if longer). `buquet repair control/leader/NAME.json` frees it at once.
 */
export const unreadableLeaseTakeover: Duration.Duration = Duration.minutes(30)

/** `control/leader/{name}.json`: the lease object of one leader election. */
export const leaderLeaseKey = (name: string): string => controlKey(`leader/${name}.json`)

/**
 * The stored lease `name` if someone holds it now: not released, and its `expires_at` still ahead
 * by the bucket's clock. For observers (e.g. "is a scheduler running?"); competing uses {@link make}.
 */
export const currentHolder = Effect.fn("LeaderLease.currentHolder")(function*(name: string) {
  const key = leaderLeaseKey(name)
  const found = yield* (yield* Storage).get(key)
  if (Option.isNone(found)) return Option.none<LeaderLeaseRecord>()
  const record = yield* decodeObject(LeaderLeaseRecord, key, found.value.body)
  const now = yield* (yield* ServerClock).now
  return !record.released && DateTime.lessThan(now, record.expiresAt) ? Option.some(record) : Option.none<LeaderLeaseRecord>()
})

/** Options of {@link make}. Durations accept anything `Duration.decode` does ("30 seconds", 30_000, …). */
export interface LeaderLeaseOptions {
  /** The election's name, e.g. `scheduler` or `monitor`: letters, digits, `_ . -`. */
  readonly name: string
  /** This instance's identity in the record (default `{hostname}-{random}`). */
  readonly holderId?: string | undefined
  /** How long a lease lasts without renewal (default 30 s). A crashed leader is replaced after this. */
  readonly ttl?: Duration.DurationInput | undefined
  /** How often the leader renews (default ttl / 3). */
  readonly renewInterval?: Duration.DurationInput | undefined
  /** Longest a standby sleeps between looks at the lease (default ttl). */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** How long before `expires_at` a leader that could not renew stops acting (default ttl / 6). */
  readonly safetyMargin?: Duration.DurationInput | undefined
}

/** A running leader election for one instance. Lives in the Scope it was made in. */
export interface LeaderLease {
  readonly name: string
  readonly holderId: string
  /** Whether this instance is the leader now; subscribe with `SubscriptionRef.changes`. */
  readonly isLeader: SubscriptionRef.SubscriptionRef<boolean>
  /**
   * Runs `work` whenever this instance becomes leader, interrupts it as soon as leadership is lost
   * (or locally given up), and runs it again on regaining it. Returns only if `work` fails (with
   * its error) or is interrupted from outside.
   */
  readonly whileLeader: <A, E, R>(work: Effect.Effect<A, E, R>) => Effect.Effect<never, E, R>
  /** Waits until this instance is leader. */
  readonly awaitLeadership: Effect.Effect<void>
  /** The stored lease, whoever holds it. */
  readonly current: Effect.Effect<Option.Option<LeaderLeaseRecord>, StorageReadError | MalformedObject>
  /** Gives up leadership now (conditional release) and stops competing. Also done on scope close. */
  readonly release: Effect.Effect<void>
  /**
   * Sets the ttl the next renewals write, renewing every ttl / 3 (`undefined`: back to the
   * configured ttl). A shorter ttl than the stored one is written at once, so a crash from now on
   * is noticed within it. Acquisitions always use the configured ttl.
   */
  readonly setTtl: (ttl: Duration.DurationInput | undefined) => Effect.Effect<void>
}

const leaseName = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$/

interface Held {
  readonly record: LeaderLeaseRecord
  readonly etag: string
}

type WriteOutcome = { readonly _tag: "Won"; readonly etag: string } | { readonly _tag: "Lost" }

/**
 * Starts competing for the lease `name` in a background fiber of the current Scope and returns the
 * handle. Closing the Scope releases the lease (if held) with a conditional write.
 */
export const make = Effect.fn("LeaderLease.make")(function*(options: LeaderLeaseOptions) {
  if (!leaseName.test(options.name) || options.name.includes("..")) {
    return yield* new InvalidArgument({
      argument: "name",
      message: `a leader lease name may contain only letters, digits and _ . - (1–200 characters), got ${JSON.stringify(options.name)}`
    })
  }
  const storage = yield* Storage
  const clock = yield* ServerClock
  const name = options.name
  const key = leaderLeaseKey(name)
  const holderId = options.holderId ?? `${hostname()}-${randomUUID().slice(0, 8)}`
  const ttl = Duration.decode(options.ttl ?? Duration.seconds(30))
  const ttlMillis = Duration.toMillis(ttl)
  const renewInterval = Duration.decode(options.renewInterval ?? Duration.millis(ttlMillis / 3))
  const pollInterval = Duration.decode(options.pollInterval ?? ttl)
  const safetyMarginMillis = Duration.toMillis(Duration.decode(options.safetyMargin ?? Duration.millis(ttlMillis / 6)))
  if (ttlMillis <= 0 || !Duration.isFinite(ttl) || Duration.greaterThanOrEqualTo(renewInterval, ttl)) {
    return yield* new InvalidArgument({
      argument: "ttl",
      message: "a leader lease needs a finite ttl > 0 and renewInterval < ttl (e.g. ttl 30 s, renew every 10 s)"
    })
  }

  const isLeader = yield* SubscriptionRef.make(false)
  const held = yield* Ref.make<Option.Option<Held>>(Option.none())
  /** The lease_id of our latest tenure: a stored record carrying it is ours (a takeover writes a fresh one). */
  const lastLeaseId = yield* Ref.make(Option.none<string>())
  const ttlOverride = yield* Ref.make(Option.none<Duration.Duration>())
  /** Cuts the leader's sleep short: a shorter ttl must be written now. */
  const renewNow = yield* Queue.sliding<void>(1)
  const renewalTtl = Effect.map(Ref.get(ttlOverride), Option.getOrElse(() => ttl))
  const renewalInterval = Effect.map(
    Ref.get(ttlOverride),
    Option.match({ onNone: () => renewInterval, onSome: (d) => Duration.millis(Duration.toMillis(d) / 3) })
  )

  /** A stored lease that does not decode: its version, when it was written, and why. */
  interface Unreadable {
    readonly _tag: "Unreadable"
    readonly etag: string
    readonly lastModifiedMillis: number
    readonly message: string
  }
  const read = storage.get(key).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed(Option.none<(Held & { readonly _tag: "Read"; readonly body: Uint8Array }) | Unreadable>()),
      onSome: (o) =>
        decodeObject(LeaderLeaseRecord, key, o.body).pipe(
          Effect.map((record) => Option.some({ _tag: "Read" as const, record, etag: o.etag, body: o.body })),
          Effect.catchTag("MalformedObject", (e) =>
            Effect.succeed(Option.some<Unreadable>({
              _tag: "Unreadable",
              etag: o.etag,
              lastModifiedMillis: DateTime.toEpochMillis(o.lastModified),
              message: e.message
            })))
        )
    }))
  )
  /**
   * How long a lease that does not decode must stay unchanged before it is taken over: longer than
   * any lease the fleet writes (a leader whose record was overwritten loses its next renewal and
   * stops within its own ttl; a quiet monitor's is 15 min by default), and at least our ttl.
   */
  const unreadableTakeoverMillis = Math.max(ttlMillis, Duration.toMillis(unreadableLeaseTakeover))
  const warnedUnreadable = yield* Ref.make<string | undefined>(undefined)

  const uncertaintyMillis = Effect.map(clock.estimate, (e) => Duration.toMillis(e.uncertainty))

  /** A conditional write; an ambiguous answer is settled by re-reading and comparing bytes. */
  const write = (body: Uint8Array, condition: { readonly ifNoneMatch: "*" } | { readonly ifMatch: string }) =>
    storage.put(key, body, condition).pipe(
      Effect.map((etag): WriteOutcome => ({ _tag: "Won", etag })),
      Effect.catchTag("PreconditionFailed", () => Effect.succeed<WriteOutcome>({ _tag: "Lost" })),
      Effect.catchTag("OutcomeUnknown", () =>
        storage.get(key).pipe(
          Effect.map((found): WriteOutcome =>
            Option.isSome(found) && sameBytes(found.value.body, body)
              ? { _tag: "Won", etag: found.value.etag }
              : { _tag: "Lost" }
          )
        ))
    )

  const setLeader = (value: Held | undefined) =>
    Effect.zipRight(
      Effect.zipRight(
        Ref.set(held, Option.fromNullable(value)),
        value === undefined ? Effect.void : Ref.set(lastLeaseId, Option.some(value.record.leaseId))
      ),
      SubscriptionRef.set(isLeader, value !== undefined)
    )

  /** One attempt to become leader; returns how long to wait before the next look. */
  const tryAcquire: Effect.Effect<Duration.Duration, StorageWriteError | MalformedObject> = Effect.gen(function*() {
    const now = yield* clock.now
    const margin = yield* uncertaintyMillis
    const existing = yield* read
    const record = (acquiredAt: DateTime.Utc) =>
      new LeaderLeaseRecord({
        name,
        holder: holderId,
        leaseId: randomUUID(),
        acquiredAt,
        renewedAt: now,
        expiresAt: DateTime.add(now, { millis: ttlMillis }),
        released: false
      })
    /** Leads only with a lease that is still surely ours when the write answered (a slow PUT may answer late). */
    const won = (mine: LeaderLeaseRecord, outcome: WriteOutcome) =>
      Effect.gen(function*() {
        if (outcome._tag === "Lost") return Duration.zero
        const deadline = DateTime.toEpochMillis(mine.expiresAt) - safetyMarginMillis - (yield* uncertaintyMillis)
        if ((yield* clock.currentTimeMillis) >= deadline) {
          yield* Effect.logWarning(`leader lease ${name}: the acquisition answered too late to lead on it`)
          return Duration.zero
        }
        yield* setLeader({ record: mine, etag: outcome.etag })
        return renewInterval
      })
    if (Option.isNone(existing)) {
      const mine = record(now)
      return yield* won(mine, yield* write(encodeObject(LeaderLeaseRecord, mine), { ifNoneMatch: "*" }))
    }
    if (existing.value._tag === "Unreadable") {
      // Nobody can lead on a lease nobody can read. Once it has stayed unchanged past any lease's
      // life, take it over by CAS on exactly that version; until then say so once, with the repair.
      const bad = existing.value
      const freeAt = bad.lastModifiedMillis + unreadableTakeoverMillis
      if (DateTime.toEpochMillis(now) - margin > freeAt) {
        yield* Effect.logWarning(`leader lease ${name}: ${bad.message}; unchanged for ${Duration.format(Duration.millis(unreadableTakeoverMillis))}: taking it over`)
        const mine = record(now)
        return yield* won(mine, yield* write(encodeObject(LeaderLeaseRecord, mine), { ifMatch: bad.etag }))
      }
      if ((yield* Ref.getAndSet(warnedUnreadable, bad.etag)) !== bad.etag) {
        yield* Effect.logWarning(
          `leader lease ${name}: ${bad.message}; no instance can lead while it is unreadable: it is taken over at ${
            DateTime.formatIso(DateTime.unsafeMake(freeAt))
          } if it stays unchanged, or remove it now with \`buquet repair ${key}\``
        )
      }
      return Duration.max(Duration.millis(1), Duration.min(pollInterval, Duration.millis(freeAt + margin - DateTime.toEpochMillis(now) + 1)))
    }
    const current = existing.value.record
    if (!current.released && current.holder === holderId && Option.contains(yield* Ref.get(lastLeaseId), current.leaseId)) {
      // Our own tenure: a renewal we gave up on (timed out) landed after all. Nobody has taken
      // over since (a takeover writes a fresh lease_id), so renew it by CAS and lead on at once
      // rather than waiting a whole ttl for our own record to expire.
      const mine = new LeaderLeaseRecord({ ...current, renewedAt: now, expiresAt: DateTime.add(now, { millis: ttlMillis }) })
      return yield* won(mine, yield* write(encodeObject(LeaderLeaseRecord, mine), { ifMatch: existing.value.etag }))
    }
    const expiresMillis = DateTime.toEpochMillis(current.expiresAt)
    const free = current.released || DateTime.toEpochMillis(now) - margin > expiresMillis
    if (!free) {
      // Sleep until it would expire (plus our uncertainty), but look again at least every pollInterval.
      const untilFree = expiresMillis + margin - DateTime.toEpochMillis(now) + 1
      return Duration.max(Duration.millis(1), Duration.min(pollInterval, Duration.millis(untilFree)))
    }
    const mine = record(now)
    return yield* won(mine, yield* write(encodeObject(LeaderLeaseRecord, mine), { ifMatch: existing.value.etag }))
  })

  /** Renews the lease we hold; steps down on a lost CAS or when the local deadline passes. */
  const renew = (h: Held): Effect.Effect<Duration.Duration, StorageWriteError> =>
    Effect.gen(function*() {
      const now = yield* clock.now
      const margin = yield* uncertaintyMillis
      const deadline = DateTime.toEpochMillis(h.record.expiresAt) - safetyMarginMillis - margin
      const next = new LeaderLeaseRecord({
        ...h.record,
        renewedAt: now,
        expiresAt: DateTime.addDuration(now, yield* renewalTtl)
      })
      // A renewal that has not answered by the deadline counts as failed: a hung PUT must not keep
      // us acting as leader after a standby may have taken over.
      const budget = Math.max(0, deadline - (yield* clock.currentTimeMillis))
      const outcome = yield* write(encodeObject(LeaderLeaseRecord, next), { ifMatch: h.etag }).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(budget),
          onTimeout: () => new Error(`no answer within ${budget} ms`)
        }),
        Effect.catchAll((error) =>
          // Could not reach the bucket: keep leading only while our last lease is surely ours.
          Effect.as(Effect.logWarning(`leader lease ${name}: renewal failed: ${error.message}`), undefined)
        )
      )
      if (outcome === undefined) {
        const after = yield* clock.currentTimeMillis
        if (after >= deadline) {
          yield* Effect.logWarning(`leader lease ${name}: could not renew before the safety margin; stepping down`)
          yield* setLeader(undefined)
          return Duration.zero
        }
        return Duration.min(yield* renewalInterval, Duration.millis(Math.max(1, Math.min(1000, deadline - after))))
      }
      if (outcome._tag === "Lost") {
        yield* Effect.logInfo(`leader lease ${name}: taken over by another instance; stepping down`)
        yield* setLeader(undefined)
        return Duration.zero
      }
      yield* Ref.set(held, Option.some({ record: next, etag: outcome.etag }))
      return yield* renewalInterval
    })

  /** Steps down locally if the lease we hold would reach its deadline before the next renewal. */
  const sleepAsLeader = (d: Duration.Duration) =>
    Effect.gen(function*() {
      const h = yield* Ref.get(held)
      if (Option.isNone(h)) return yield* Effect.sleep(d)
      const now = yield* clock.currentTimeMillis
      const margin = yield* uncertaintyMillis
      const deadline = DateTime.toEpochMillis(h.value.record.expiresAt) - safetyMarginMillis - margin
      const wait = Math.min(Duration.toMillis(d), Math.max(0, deadline - now))
      yield* Effect.sleep(Duration.millis(wait))
    })

  const step: Effect.Effect<void> = Effect.gen(function*() {
    const h = yield* Ref.get(held)
    const wait = yield* (Option.isSome(h) ? renew(h.value) : tryAcquire).pipe(
      Effect.catchAll((error) =>
        Effect.as(Effect.logWarning(`leader lease ${name}: ${error.message}`), pollInterval)
      )
    )
    yield* Effect.raceFirst(sleepAsLeader(wait), Queue.take(renewNow))
  })

  const release: Effect.Effect<void> = Effect.gen(function*() {
    const h = yield* Ref.get(held)
    yield* setLeader(undefined)
    if (Option.isNone(h)) return
    const now = yield* clock.now
    const freed = new LeaderLeaseRecord({ ...h.value.record, renewedAt: now, expiresAt: now, released: true })
    // Conditional: a lease someone else took over in the meantime stays theirs.
    yield* write(encodeObject(LeaderLeaseRecord, freed), { ifMatch: h.value.etag }).pipe(
      Effect.catchAll((error) => Effect.logWarning(`leader lease ${name}: release failed: ${error.message}`))
    )
  }).pipe(Effect.uninterruptible)

  const fiber = yield* Effect.forkScoped(Effect.forever(step))
  yield* Effect.addFinalizer(() => Effect.zipRight(Fiber.interrupt(fiber), release))

  const whileLeader = <A, E, R>(work: Effect.Effect<A, E, R>): Effect.Effect<never, E, R> =>
    isLeader.changes.pipe(
      Stream.changes,
      Stream.flatMap((leader) => (leader ? Stream.fromEffect(work) : Stream.empty), { switch: true }),
      Stream.runDrain,
      Effect.zipRight(Effect.never)
    )

  const awaitLeadership = isLeader.changes.pipe(
    Stream.filter((leader) => leader),
    Stream.take(1),
    Stream.runDrain
  )

  const current = Effect.flatMap(read, (found) =>
    Option.isNone(found)
      ? Effect.succeed(Option.none<LeaderLeaseRecord>())
      : found.value._tag === "Unreadable"
      ? Effect.fail(new MalformedObject({ key, message: found.value.message }))
      : Effect.succeed(Option.some(found.value.record)))

  const setTtl = (next: Duration.DurationInput | undefined) =>
    Effect.gen(function*() {
      const value = next === undefined ? Option.none<Duration.Duration>() : Option.some(Duration.decode(next))
      yield* Ref.set(ttlOverride, value)
      const h = yield* Ref.get(held)
      if (Option.isNone(h)) return
      const storedTtl = DateTime.toEpochMillis(h.value.record.expiresAt) - DateTime.toEpochMillis(h.value.record.renewedAt)
      if (Duration.toMillis(yield* renewalTtl) < storedTtl) yield* Queue.offer(renewNow, undefined)
    })

  return {
    name,
    holderId,
    isLeader,
    whileLeader,
    awaitLeadership,
    current,
    release: Effect.zipRight(Fiber.interrupt(fiber), release),
    setTtl
  } satisfies LeaderLease
})

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
