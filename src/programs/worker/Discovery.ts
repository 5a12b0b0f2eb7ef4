/**
 * Discovery (design.md §5.4): per shard, ONE LIST of `ready/{shard}/` from a per-shard cursor in
 * key order, stopping at the first marker that is not yet due (never minute by minute: one LIST
 * covers every past minute). Shards are visited in a rotating order, so each pass starts one shard
 * further and no shard waits behind the others.
 *
 * The probe (idle cost, design.md §5.4 "Idle cost"): a pass of a worker that claimed nothing in its
 * previous pass (idle, or going idle) first LISTs the whole `ready/` prefix once (one page, from the
 * first polled shard on). A shard with no key in that page needs no LIST of its own when the page
 * is complete, or when the shard's keys would all sort before the page's last key; every other
 * polled shard (one with a marker in the page, or possibly past its end) gets its normal per-shard
 * LIST, so cursors, remembered markers and the next due time work exactly as without the probe.
 * Cost of one pass over S shards of which M have markers: without the probe S LISTs; with it
 * 1 + M when the markers fit in one page (an empty bucket: 1 LIST instead of 16 at shard prefix
 * length 1, 4,096 at length 3); at worst S + 1. The probe is skipped when it cannot pay: one shard,
 * after a pass that claimed something (busy: plain per-shard passes), and after a pass that saw no
 * empty shard (every shard has markers, e.g. other workers' task types); a failed probe is logged
 * and the pass LISTs every shard. An idle worker's safety-net passes (3 per hour, WakeUp.ts) thus
 * cost 3 LIST/h on an empty bucket instead of 3 × 16.
 *
 * The walk (many shards): from prefix length 2 on (256+ shards), every pass probes, busy or not,
 * and the probe follows `ready/` page after page (at most `walkMaxPages`), so a pass costs LISTs in
 * proportion to the ready markers, not to the shards (4,096 shards, 1,500 ready tasks: 2 LISTs
 * instead of ~100 per busy pass). Past the walk's end the shards are listed one by one as before.
 *
 * Priority across shards: a shard whose every marker is in the probe page needs no LIST of its
 * own, and the due candidates of all such shards are tried in ONE order (highest priority, then
 * oldest due minute, then at random, so the workers reading the same page seldom race for the
 * same task), so a priority-100 task in shard f runs before the priority-0 tasks of shards 0–e. While the last probe page was complete (the ready index fits one page), the
 * next pass probes again, busy or not: one LIST instead of one per shard with markers. Beyond one
 * page, shards past the page's end are listed one by one as before, and priority holds per shard.
 *
 * A shard's own LIST is tried in the same order (priority, due minute, then at random), not in key
 * order: workers listing one shard at once walked it in step, each losing the race for the markers
 * another reached first. A batch of which a quarter was taken elsewhere leaves the rest of that
 * shard to the worker working through it, for this pass (`more`: the next pass lists it again).
 *
 * The fleet's slices (`slice`): a worker that knows it is worker `index` of `count` live workers
 * tries, within one priority and due minute, the candidates of its own slice (a hash of the task id
 * mod `count`) first, in the order of a second hash (seeded by `count`), then the next workers' slices, each from its
 * far end (that order reversed). Workers reading the same page then start on disjoint tasks instead
 * of meeting by chance (random batches of 32 from one page of 1,000 met often: 0.2 lost claim CAS
 * per task at 4 × 32 on RGW, two wasted PUTs each), and a worker helping with a slice its owner has
 * not finished meets the owner only where both end.
 * Only an order: a worker whose slice is done, or whose slice's owner is gone or slow, takes the
 * other slices' tasks in the same pass, and priority and due minute still come first. The slice is
 * read only when a pass has more due candidates than free slots (the order then matters).
 *
 * No starvation: what a marker led to is remembered by marker key (a type this worker does not
 * handle: forever; a task not yet available: until its `available_at`; a task someone else runs:
 * Claim.ts's `busyMemoryMillis`, 10 s), so such markers cost no GET on later passes, and the cursor
 * moves past a leading run of markers that will never be ours, so a page of 1000 foreign markers
 * is read once, not forever.
 * The cursor wraps to the start of the shard when the LIST reaches the end or a future marker (or
 * when the probe shows the shard empty).
 *
 * Stale markers (finished or vanished tasks) are deleted when provably stale (see Claim.ts); a
 * marker whose task does not exist is deleted only once no submit can still create its task with
 * it (Markers.isDeletable: its bucket over by more than the submit window, and the marker missing
 * its task for longer than the orphan grace). A submit writes its marker just before its task, and
 * may stall in between. Until then it is looked at again, less often the longer it stays missing.
 *
 * Each pass also reports the earliest moment something known becomes due (the first future marker
 * of each shard, the `available_at` of tasks read too early), which the idle worker waits for.
 *
 * @module
 */
import { Effect, Option, type Random, Utils } from "effect"
import { readyShardPrefix } from "../../domain/Keys.js"
import { scanReadyKey } from "../../domain/ReadyIndex.js"
import type { ReadyEntry } from "../../domain/ReadyIndex.js"
import { bucketOf, bucketStartMillis } from "../../domain/Shard.js"
import { parseIndexKey } from "../../domain/Keys.js"
import { isDeletable } from "../../domain/Markers.js"
import { deleteMarkers } from "../../protocol/TaskObjects.js"
import { ServerClock } from "../../services/ServerClock.js"
import { type ListPage, Storage } from "../../services/Storage.js"
import type { ClaimOutcome } from "./Claim.js"

/**
 * The synchronous generator behind a `Random`, when it is Effect's own (`Random.make(seed)` and the
 * default service are): its `nextIntBetween(0, n)` is `PRNG.integer(n)`, so drawing from it
 * directly gives the same numbers in the same order without an effect per draw.
 */
const generatorOf = (random: Random.Random): Utils.PCGRandom | undefined => {
  const prng = (random as { readonly PRNG?: unknown }).PRNG
  return prng instanceof Utils.PCGRandom ? prng : undefined
}

/**
 * `Random.shuffle`'s permutation, drawing the same numbers from the same `Random` in the same
 * order (so a seeded run, such as the simulator's, takes the same path), without its per-element
 * effects: a busy pass shuffles every due marker of its probe page (hundreds in a backlog), and
 * those effects were a fifth of a worker's runtime steps per task in bench/cpu.ts. With Effect's
 * own generator the draws are plain calls (one effect for the whole shuffle); another `Random`
 * implementation is drawn from effect by effect.
 */
export const shuffle = <A>(elements: Iterable<A>): Effect.Effect<Array<A>> =>
  Effect.randomWith((random) => {
    const prng = generatorOf(random)
    if (prng !== undefined) {
      return Effect.sync(() => {
        const buffer = Array.from(elements)
        for (let n = buffer.length; n >= 2; n--) {
          const k = prng.integer(n)
          const swapped = buffer[n - 1]!
          buffer[n - 1] = buffer[k]!
          buffer[k] = swapped
        }
        return buffer
      })
    }
    return Effect.gen(function*() {
      const buffer = Array.from(elements)
      for (let n = buffer.length; n >= 2; n--) {
        const k = yield* random.nextIntBetween(0, n)
        const swapped = buffer[n - 1]!
        buffer[n - 1] = buffer[k]!
        buffer[k] = swapped
      }
      return buffer
    })
  })

/**
 * How soon a marker whose task did not exist is looked at again. Usually a submit is between its
 * marker and its task object; the submit's wake-up touch (sent once the task landed) makes an idle
 * worker look at once, this bounds it for a busy one.
 */
export const missingRecheckMillis = 5_000

/** The longest wait between two looks at a marker whose task stays missing (the wait grows with its age). */
export const missingRecheckMaxMillis = 30_000

/**
 * The longest wait between two looks at a marker whose task stays busy elsewhere (running, or
 * finished but the marker not provably stale yet). The wait grows with how long it has been seen
 * busy, from the claim's first answer (Claim.busyMemoryMillis): a marker left beside a task that runs
 * for an hour would otherwise cost every idle worker a GET every 10 s for that hour. A wake-up
 * signal and the task turning pending for us still end the wait at once (forgetBusy, forgetTask).
 */
export const busyRecheckMaxMillis = 120_000

/** This worker's place in the fleet: worker `index` (0-based) of `count` live workers. */
export interface FleetSlice {
  readonly index: number
  readonly count: number
}

/** FNV-1a's 32-bit offset basis: the default seed of `hashId`. */
const fnvOffsetBasis = 0x811c9dc5

/**
 * FNV-1a (32 bits) of a task id, from `seed`: spreads ids evenly over the slices, the same in
 * every worker.
 */
const hashId = (id: string, seed = fnvOffsetBasis): number => {
  let h = seed
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** Whether a task id falls in a worker's slice (every id is in exactly one slice of `count`). */
export const inSlice = (taskId: string, slice: FleetSlice): boolean => hashId(taskId) % slice.count === slice.index

/** Options of discovery. */
export interface DiscoveryOptions {
  /** The shards to poll, in key order. */
  readonly shards: ReadonlyArray<string>
  /**
   * When given, read at the start of every pass and used instead of `shards` (shard leasing: the
   * shards this worker owns now). Cursors and remembered markers of a shard survive losing and
   * regaining it.
   */
  readonly currentShards?: Effect.Effect<ReadonlyArray<string>> | undefined
  /** Keys per LIST (1–1000; default 1000: a LIST costs the same whatever it returns). */
  readonly pageSize?: number | undefined
  /** Most remembered markers (oldest forgotten first; default 100,000). */
  readonly maxRemembered?: number | undefined
  /** Where the shard rotation starts (workers of a fleet should differ: default 0). */
  readonly startOffset?: number | undefined
  /**
   * The pause switches now (the caller caches them: at most a read a second). When given, a marker
   * whose task was skipped as paused is not read again while its type stays paused: a paused
   * backlog would otherwise cost a GET per task on every pass of every worker.
   */
  readonly pausedTypes?: Effect.Effect<(taskType: string) => boolean> | undefined
  /**
   * This worker's slice of the fleet (the caller caches it), read when a pass has more due
   * candidates than free slots: its candidates are tried before the other slices' of the same
   * priority and due minute. Undefined (or a count below 2): no preference.
   */
  readonly slice?: Effect.Effect<FleetSlice | undefined> | undefined
}

/** What one pass did. */
export interface PassResult {
  /** Tasks claimed (and started). */
  readonly claimed: number
  /** Candidates that were due and ours but could not be taken now (paused, rate-limited, no slot). */
  readonly deferred: number
  /** Whether a candidate was skipped because its type is paused. */
  readonly sawPaused: boolean
  /** The earliest server time (epoch ms) something seen becomes due; Infinity if none. */
  readonly nextDueAt: number
  /** LIST requests made. */
  readonly lists: number
  /**
   * Whether a shard has more due markers past this pass's page and its cursor moved: the next pass
   * reads new keys, so the worker must not go idle (a run of foreign markers longer than a page
   * would otherwise hide the tasks behind it until the next wake-up signal).
   */
  readonly more: boolean
}

/** The prefix of every ready marker (the probe's prefix). */
const readyPrefix = "ready/"

/**
 * Which of `shards` still need their own LIST after a probe page of `ready/` (keys in bytewise
 * order, `truncated` when more keys follow): those with a key in the page and, when it was
 * truncated, those whose keys may sort after its last key. A shard absent from the page whose
 * prefix sorts before the last key (and is not a prefix of it) has every possible key before the
 * last key, so inside the listed range: it is empty. Keys of other shards are ignored.
 */
export const shardsLeftAfterProbe = (
  shards: ReadonlyArray<string>,
  keys: ReadonlyArray<string>,
  truncated: boolean
): ReadonlySet<string> => {
  const seen = new Set<string>()
  for (const key of keys) {
    if (!key.startsWith(readyPrefix)) continue
    const slash = key.indexOf("/", readyPrefix.length)
    if (slash > readyPrefix.length) seen.add(key.slice(readyPrefix.length, slash))
  }
  const last = keys.at(-1)
  return new Set(shards.filter((shard) => {
    if (seen.has(shard)) return true
    if (!truncated) return false
    if (last === undefined) return true
    const prefix = readyShardPrefix(shard)
    return prefix >= last || last.startsWith(prefix)
  }))
}

/** The probe's pages: their keys in order, whether more follow, and how many LISTs it took. */
interface ProbePage {
  readonly keys: ReadonlyArray<string>
  readonly truncated: boolean
  readonly pages: number
}

/**
 * Shard counts from which every pass walks `ready/` (busy or idle), page after page: at prefix
 * length 2 and more a per-shard LIST finds few markers each, so walking the index costs LISTs in
 * proportion to the markers instead of to the shards.
 */
export const walkFromShards = 256

/** Most pages the probe walks (then the shards past its end are listed one by one, as before). */
export const walkMaxPages = 16

const walkPages = (shards: number): number => (shards >= walkFromShards ? walkMaxPages : 1)

/**
 * Which of `shards` have every one of their markers in a probe page (so need no LIST of their
 * own): all of them when the page is complete; otherwise those whose keys all sort before its
 * last key (the prefix sorts before it and is not a prefix of it).
 */
export const shardsCoveredByProbe = (
  shards: ReadonlyArray<string>,
  keys: ReadonlyArray<string>,
  truncated: boolean
): ReadonlySet<string> => {
  if (!truncated) return new Set(shards)
  const last = keys.at(-1)
  if (last === undefined) return new Set()
  return new Set(shards.filter((shard) => {
    const prefix = readyShardPrefix(shard)
    return prefix < last && !last.startsWith(prefix)
  }))
}

/** Whether a try found its task taken by another worker (evidence that a shared page is stale). */
const takenElsewhere = (outcome: ClaimOutcome): boolean =>
  (outcome._tag === "Consumed" && outcome.elsewhere === true) || (outcome._tag === "Skip" && outcome.reason === "busy_elsewhere")

/** A due marker to try. */
interface Candidate {
  readonly key: string
  readonly entry: ReadyEntry
  readonly known: Remembered | undefined
}

interface Remembered {
  readonly until: number
  readonly permanent: boolean
  readonly missingSince?: number
  /** Seen busy elsewhere: its expiry is not a reason to wake an idle worker. */
  readonly busy?: boolean
  /** When it was first seen busy elsewhere, of this run of sightings (the wait grows with it). */
  readonly busySince?: number
  /** Skipped as paused: its task's type (a task's type never changes). */
  readonly pausedType?: string
}

/**
 * How long a marker of a paused task is left unread while its type stays paused: the task is read
 * again after this even so (a cancel or an expiry of a paused task is then handled as before).
 */
const pausedRecheckMillis = 5 * 60_000

/** A discovery loop's state and its pass. */
export interface Discovery {
  /**
   * One pass over the shards: claims up to `free()` tasks with `attempt`, handing each claim to
   * `started` (run in the pass's fiber or one it forked, so what it forks inherits the pass's
   * services). Storage failures of one shard are logged and the pass goes on with the next.
   */
  readonly pass: <E, R>(
    free: Effect.Effect<number>,
    attempt: (entry: ReadyEntry) => Effect.Effect<ClaimOutcome, E, R>,
    started: (claimed: Extract<ClaimOutcome, { readonly _tag: "Claimed" }>) => Effect.Effect<void, never, R>
  ) => Effect.Effect<PassResult, never, R | Storage | ServerClock>
  /**
   * On a wake-up signal (someone made work claimable): forgets the markers remembered as busy
   * elsewhere and looks again at once at those whose task was missing (keeping when it was first
   * missed, so an orphan marker is still deleted in time).
   */
  readonly forgetBusy: Effect.Effect<void>
  /** Forgets what was remembered about one task's markers (it is pending again: look at once). */
  readonly forgetTask: (taskId: string) => Effect.Effect<void>
}

/** Builds a discovery loop over `options.shards`. */
export const make = (options: DiscoveryOptions): Discovery => {
  const fixedShards = options.shards
  const pageSize = Math.min(Math.max(options.pageSize ?? 1000, 1), 1000)
  const maxRemembered = options.maxRemembered ?? 100_000
  const cursors = new Map<string, string>()
  const remembered = new Map<string, Remembered>()
  // The rotation position: each pass starts one shard further (modulo the shards of that pass).
  let offset = Math.abs(Math.floor(options.startOffset ?? 0))

  // Whether the next pass starts with the probe: after a pass that claimed nothing and saw an empty
  // shard (the first pass too). Busy workers and buckets with markers in every shard skip it.
  let probeNext = true
  // Whether the last probe page held every marker: then the next pass probes again, because one
  // probe replaces every per-shard LIST and orders the candidates of all shards by priority.
  let probeWasComplete = false
  // Whether markers skipped as paused may be remembered: then each pass reads the switches (cached).
  let rememberedPaused = false

  /** One LIST of `ready/` from the first polled shard on, or None when it failed (then every shard gets its LIST). */
  const probe = Effect.fn("Worker.discoverProbe")(function*(shards: ReadonlyArray<string>) {
    const storage = yield* Storage
    const first = shards.map(readyShardPrefix).reduce((a, b) => (b < a ? b : a))
    // `ready/{first}` (without its "/") sorts before every key of that shard and after the
    // prefixes of the shards before it.
    const keys: Array<string> = []
    let token: string | undefined = undefined
    for (let pages = 0; pages < walkPages(shards.length); pages++) {
      const page: Option.Option<ListPage> = yield* storage.list(
        readyPrefix,
        token === undefined ? { startAfter: first.slice(0, -1), maxKeys: pageSize } : { continuationToken: token, maxKeys: pageSize }
      ).pipe(
        Effect.tapError((e) => Effect.logWarning(`discovery: probe LIST of ${readyPrefix} failed, listing every shard: ${e.message}`)),
        Effect.option
      )
      if (page._tag === "None") return pages === 0 ? Option.none<ProbePage>() : Option.some<ProbePage>({ keys, truncated: true, pages: pages + 1 })
      for (const o of page.value.objects) keys.push(o.key)
      token = page.value.nextContinuationToken
      if (token === undefined) return Option.some<ProbePage>({ keys, truncated: false, pages: pages + 1 })
    }
    return Option.some<ProbePage>({ keys, truncated: true, pages: walkPages(shards.length) })
  })

  const remember = (key: string, entry: Remembered) => {
    remembered.delete(key)
    remembered.set(key, entry)
    if (remembered.size > maxRemembered) {
      const oldest = remembered.keys().next()
      if (oldest.done !== true) remembered.delete(oldest.value)
    }
  }

  /**
   * The order candidates are tried in: highest priority, then oldest due minute, then (when there
   * are more than `room` and this worker knows its slice) its own slice first and the others'
   * after it (see `slice`), else at random.
   */
  const ordered = (found: ReadonlyArray<Candidate>, room: number) =>
    Effect.gen(function*() {
      const shuffled = yield* shuffle(found)
      const slice = shuffled.length > room && options.slice !== undefined ? yield* options.slice : undefined
      if (slice === undefined || slice.count < 2) {
        return shuffled.sort((a, b) => b.entry.priority - a.entry.priority || a.entry.bucket - b.entry.bucket)
      }
      // Own slice first, in ascending rank; then the others' slices, the next one's first, each
      // in descending rank from its own start: the slice's g-th helper (g workers before its owner)
      // starts (g - 1) / count below the far end. The owner and its helpers then each walk their
      // own part and meet only where two parts end (helpers starting together at the far end lost
      // every race to each other once all slices ran dry at once, at the end of a drain).
      const key = new Map<Candidate, number>()
      for (const c of shuffled) {
        const group = (hashId(c.entry.taskId) % slice.count - slice.index + slice.count) % slice.count
        // The rank is a hash seeded by the count: workers that agree on the count share one order
        // (a helper meets the owner only at the end), and workers whose lists disagree (one fleet
        // starting, 1 of 2 and 3 of 4 hold the same ids) walk their common ids in unrelated orders.
        const rank = hashId(c.entry.taskId, fnvOffsetBasis ^ slice.count) / 2 ** 32
        const start = (group - 1) / slice.count
        key.set(c, group + (group === 0 ? rank : 1 - (rank + start) % 1))
      }
      return shuffled.sort((a, b) =>
        b.entry.priority - a.entry.priority || a.entry.bucket - b.entry.bucket || key.get(a)! - key.get(b)!
      )
    })

  const pass: Discovery["pass"] = (free, attempt, started) =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const clock = yield* ServerClock
      const shards = options.currentShards === undefined ? fixedShards : yield* options.currentShards
      const order = shards.map((_, i) => shards[(offset + i) % shards.length]!)
      offset = (offset + 1) % 1_000_000_007
      let claimed = 0
      let deferred = 0
      let sawPaused = false
      let nextDueAt = Number.POSITIVE_INFINITY
      let lists = 0
      let more = false
      // Evidence that the probe can pay next time: a shard seen empty.
      let sawEmpty = false
      // The switches, when a remembered marker may wait on them; else a skipped-as-paused marker
      // is simply tried (and read) again.
      const paused = rememberedPaused && options.pausedTypes !== undefined ? yield* options.pausedTypes : undefined
      let pausedAgain = false
      /** Whether a remembered marker is still to be left alone at `nowMillis`. */
      const stillRemembered = (known: Remembered, nowMillis: number): boolean => {
        if (known.pausedType === undefined) return known.permanent || known.until > nowMillis
        if (known.until <= nowMillis || paused === undefined || !paused(known.pausedType)) return false
        pausedAgain = true
        sawPaused = true
        deferred++
        return true
      }

      /**
       * Records what a claim attempt led to; true when the marker is dealt with for good (claimed,
       * consumed, deleted, never ours), so a shard's cursor may move past it.
       */
      const handle = (key: string, known: Remembered | undefined, outcome: ClaimOutcome, nowMillis: number) =>
        Effect.gen(function*() {
          switch (outcome._tag) {
            case "Claimed": {
              // its handler was started as soon as the claim was won (attemptAll)
              remembered.delete(key)
              claimed++
              return true
            }
            case "Consumed": {
              remembered.delete(key)
              return true
            }
            case "Missing": {
              // Judged at the pass's start, before the claim's read found nothing, and aged from
              // our first sighting (the marker is at least that old): both conservative.
              const since = known?.missingSince ?? nowMillis
              if (isDeletable({ key, lastModifiedMillis: since }, { exists: false }, nowMillis)) {
                yield* deleteMarkers([key]).pipe(Effect.ignore)
                remembered.delete(key)
                return true
              }
              const wait = Math.min(missingRecheckMaxMillis, Math.max(missingRecheckMillis, nowMillis - since))
              remember(key, { until: nowMillis + wait, permanent: false, missingSince: since })
              return false
            }
            case "Skip": {
              const permanent = outcome.until === Number.POSITIVE_INFINITY
              if (outcome.reason === "paused") sawPaused = true
              if (outcome.reason === "paused" || outcome.reason === "rate_limited") deferred++
              if (outcome.availableAt !== undefined) nextDueAt = Math.min(nextDueAt, outcome.availableAt)
              if (outcome.reason === "rate_limited") nextDueAt = Math.min(nextDueAt, outcome.until)
              if (outcome.reason === "paused" && outcome.taskType !== undefined && options.pausedTypes !== undefined) {
                rememberedPaused = true
                pausedAgain = true
                remember(key, { until: nowMillis + pausedRecheckMillis, permanent: false, pausedType: outcome.taskType })
              } else if (outcome.reason === "busy_elsewhere") {
                const since = known?.busySince ?? nowMillis
                const wait = Math.min(busyRecheckMaxMillis, Math.max(outcome.until - nowMillis, nowMillis - since))
                remember(key, { until: nowMillis + wait, permanent: false, busy: true, busySince: since })
              } else if (outcome.reason !== "paused") remember(key, { until: outcome.until, permanent })
              return permanent
            }
          }
        })

      /**
       * Tries `items` concurrently; a defect of one attempt is logged and treated as busy elsewhere.
       * A won claim's handler starts at once, not when the batch's slowest claim has answered. A
       * single item (a busy worker's usual batch: one slot freed) is tried in this fiber: a fiber
       * of its own would only wait for it.
       */
      const attemptAll = (items: ReadonlyArray<Candidate>, nowMillis: number) => {
        const tryOne = (item: Candidate) =>
          attempt(item.entry).pipe(
            Effect.catchAllCause((cause) =>
              Effect.as(
                Effect.logWarning(`discovery: could not try ${item.key}`, cause),
                { _tag: "Skip", until: nowMillis, reason: "busy_elsewhere" } as ClaimOutcome
              )
            ),
            Effect.tap((outcome) => outcome._tag === "Claimed" ? started(outcome) : Effect.void)
          )
        return items.length === 1
          ? Effect.map(tryOne(items[0]!), (outcome) => [outcome])
          : Effect.forEach(items, tryOne, { concurrency: "unbounded" })
      }

      /**
       * Scans one shard's keys (in key order) up to its first future default marker: the due
       * candidates not remembered as pointless for now. `onLeading` sees each key a cursor could
       * move past before the first candidate or remembered-for-now marker.
       */
      const scanKeys = (keys: ReadonlyArray<string>, nowMillis: number) => {
        const nowBucket = bucketOf(nowMillis)
        const candidates: Array<Candidate> = []
        let skipUntilKey: string | undefined = undefined
        for (const key of keys) {
          if (skipUntilKey !== undefined && key <= skipUntilKey) continue
          const step = scanReadyKey(key, nowBucket)
          if (step._tag === "Stop" || step._tag === "SkipRank") {
            const parsed = parseIndexKey(key)
            if (parsed !== undefined) nextDueAt = Math.min(nextDueAt, bucketStartMillis(parsed.bucket))
            if (step._tag === "Stop") break
            skipUntilKey = step.startAfter
            continue
          }
          if (step._tag === "Invalid") continue
          const known = remembered.get(key)
          if (known !== undefined && stillRemembered(known, nowMillis)) {
            if (!known.permanent && known.busy !== true && known.pausedType === undefined) nextDueAt = Math.min(nextDueAt, known.until)
            continue
          }
          candidates.push({ key, entry: step.entry, known })
        }
        return candidates
      }

      let toList: ReadonlySet<string> | undefined = undefined
      let covered: ReadonlySet<string> = new Set()
      let probeKeys: ReadonlyArray<string> = []
      const probing = (probeNext || probeWasComplete || shards.length >= walkFromShards) && shards.length > 1 &&
        (yield* free) > 0
      probeWasComplete = false
      if (probing) {
        const page = yield* probe(shards)
        lists += Option.match(page, { onNone: () => 1, onSome: (p) => p.pages })
        if (Option.isSome(page)) {
          probeKeys = page.value.keys
          toList = shardsLeftAfterProbe(shards, probeKeys, page.value.truncated)
          covered = shardsCoveredByProbe(shards, probeKeys, page.value.truncated)
          probeWasComplete = !page.value.truncated
          if (toList.size < shards.length) sawEmpty = true
        }
      }

      // The shards whose every marker is in the probe page need no LIST: their due candidates are
      // tried in ONE order across shards — highest priority first, then oldest due minute, then
      // at random — so priority is global, not per shard.
      if (covered.size > 0) {
        const nowMillis = yield* clock.currentTimeMillis
        const byShard = new Map<string, Array<string>>()
        for (const key of probeKeys) {
          const shard = key.slice(readyPrefix.length, key.indexOf("/", readyPrefix.length))
          if (!covered.has(shard)) continue
          const keys = byShard.get(shard)
          if (keys === undefined) byShard.set(shard, [key])
          else keys.push(key)
        }
        // Shuffled first, then stably sorted: within one priority and due minute the order is this
        // worker's slice first, each part at random, so the workers of a fleet, which all read the
        // same page, try different tasks instead of racing for the same first few (a lost race
        // costs a GET and two PUTs).
        const candidates = yield* ordered(
          order.filter((shard) => covered.has(shard)).flatMap((shard) => scanKeys(byShard.get(shard) ?? [], nowMillis)),
          yield* free
        )
        let next = 0
        while (next < candidates.length) {
          const room = yield* free
          if (room <= 0) {
            deferred++
            break
          }
          const items = candidates.slice(next, next + room)
          next += items.length
          const outcomes = yield* attemptAll(items, nowMillis)
          let elsewhere = 0
          for (let i = 0; i < items.length; i++) {
            yield* handle(items[i]!.key, items[i]!.known, outcomes[i]!, nowMillis)
            if (takenElsewhere(outcomes[i]!)) elsewhere++
          }
          // The page is going stale: other workers read it too and claim from it. List again (one
          // LIST) rather than walk on through markers their claims have emptied (a GET and a
          // DELETE each: four workers × 8 walked a 500-task page to its end, ~3 GETs per task).
          // Only once a quarter of the batch was taken: a fresh page also holds the markers of
          // claims in flight elsewhere, and re-listing at the first one cost more lost claim CAS
          // (two PUTs each) at 4 × 32 than it saved in GETs.
          if (elsewhere >= Math.ceil(items.length / 4) && next < candidates.length) {
            more = true
            break
          }
        }
        // read whole from the probe: nothing to continue from
        for (const shard of covered) cursors.delete(shard)
      }

      for (const shard of order) {
        if (covered.has(shard)) continue
        if (toList !== undefined && !toList.has(shard)) {
          // Empty: what its LIST would have done (reached the end: the cursor wraps).
          cursors.delete(shard)
          continue
        }
        if ((yield* free) <= 0) break
        const nowMillis = yield* clock.currentTimeMillis
        const nowBucket = bucketOf(nowMillis)
        const startAfter = cursors.get(shard)
        lists++
        const page = yield* storage.list(readyShardPrefix(shard), { startAfter, maxKeys: pageSize }).pipe(
          Effect.tapError((e) => Effect.logWarning(`discovery: LIST of shard ${shard} failed: ${e.message}`)),
          Effect.option
        )
        if (page._tag === "None") continue
        const objects = page.value.objects
        if (startAfter === undefined && objects.length === 0) sawEmpty = true
        let reachedEnd = page.value.nextContinuationToken === undefined
        let skipUntilKey: string | undefined = undefined
        let stoppedEarly = false
        // The page in key order, as the cursor sees it: a key it may move past ("pass": invalid,
        // never ours), one it must stop at ("hold": remembered for now, skipped with its rank), or
        // a candidate (moved past once dealt with for good).
        const walk: Array<{ readonly key: string; readonly step: "pass" | "hold" | Candidate }> = []
        for (const object of objects) {
          const key = object.key
          if (skipUntilKey !== undefined && key <= skipUntilKey) {
            walk.push({ key, step: "hold" })
            continue
          }
          const step = scanReadyKey(key, nowBucket)
          if (step._tag === "Stop") {
            const parsed = parseIndexKey(key)
            if (parsed !== undefined) nextDueAt = Math.min(nextDueAt, bucketStartMillis(parsed.bucket))
            reachedEnd = true
            break
          }
          if (step._tag === "SkipRank") {
            const parsed = parseIndexKey(key)
            if (parsed !== undefined) nextDueAt = Math.min(nextDueAt, bucketStartMillis(parsed.bucket))
            skipUntilKey = step.startAfter
            walk.push({ key, step: "hold" })
            continue
          }
          if (step._tag === "Invalid") {
            walk.push({ key, step: "pass" })
            continue
          }
          const known = remembered.get(key)
          if (known !== undefined && stillRemembered(known, nowMillis)) {
            if (!known.permanent) {
              if (known.busy !== true && known.pausedType === undefined) nextDueAt = Math.min(nextDueAt, known.until)
              walk.push({ key, step: "hold" })
            } else walk.push({ key, step: "pass" })
            continue
          }
          walk.push({ key, step: { key, entry: step.entry, known } })
        }

        // Tried in the probe's order (highest priority, then oldest due minute, then at random), not
        // in key order: the workers listing a shard at once would otherwise walk it in step, each
        // losing the race for the markers the other one reached first (4 × 8 on MemoryStorage:
        // 2.7 lost tries per claim, nearly all on this path). Candidates are tried in batches of
        // the free slots, concurrently: a claim is several sequential requests.
        const candidates = yield* ordered(walk.flatMap((w) => typeof w.step === "string" ? [] : [w.step]), yield* free)
        const advanced = new Set<string>()
        let next = 0
        while (next < candidates.length) {
          const room = yield* free
          if (room <= 0) {
            deferred++
            stoppedEarly = true
            break
          }
          const items = candidates.slice(next, next + room)
          next += items.length
          const outcomes = yield* attemptAll(items, nowMillis)
          let elsewhere = 0
          for (let i = 0; i < items.length; i++) {
            if (yield* handle(items[i]!.key, items[i]!.known, outcomes[i]!, nowMillis)) advanced.add(items[i]!.key)
            if (takenElsewhere(outcomes[i]!)) elsewhere++
          }
          // Another worker is working through this shard: leave it the rest and come back next pass.
          if (elsewhere >= Math.ceil(items.length / 4) && next < candidates.length) {
            stoppedEarly = true
            more = true
            break
          }
        }
        // The cursor moves over the leading run of keys dealt with for good.
        let cursor = startAfter
        for (const w of walk) {
          if (w.step === "pass" || (typeof w.step !== "string" && advanced.has(w.key))) cursor = w.key
          else break
        }
        if (!stoppedEarly && reachedEnd) cursors.delete(shard)
        else if (cursor !== undefined) cursors.set(shard, cursor)
        if (!stoppedEarly && !reachedEnd && cursor !== startAfter) more = true
      }
      // A pass over no shard at all (a leasing worker before its first lease round) is no evidence
      // either way: the next pass keeps what was decided before it, else it LISTs every shard.
      if (shards.length > 0) probeNext = claimed === 0 && sawEmpty
      rememberedPaused = pausedAgain
      return { claimed, deferred, sawPaused, nextDueAt, lists, more } satisfies PassResult
    }).pipe(Effect.withSpan("Worker.discover"))

  const forgetBusy = Effect.sync(() => {
    for (const [key, known] of remembered) {
      if (known.busy === true) remembered.delete(key)
      else if (known.missingSince !== undefined) remembered.set(key, { ...known, until: 0 })
    }
  })
  const forgetTask = (taskId: string) =>
    Effect.sync(() => {
      const suffix = `/${taskId}`
      for (const key of remembered.keys()) if (key.endsWith(suffix)) remembered.delete(key)
    })

  return { pass, forgetBusy, forgetTask }
}

