/**
 * `FaultyStorage`: wraps the {@link Storage} in context and injects faults (design.md §3), so the
 * protocols can be tested against everything a real bucket does to them.
 *
 * Two sources of faults:
 * - **Seeded random faults** at configured rates (same seed and same sequence of calls → same
 *   faults; concurrent callers may reach the generator in a different order from run to run):
 *   - `unavailable` — a 5xx before the request has any effect → `StorageUnavailable`;
 *   - `slowDown` — 503 SlowDown → `StorageUnavailable`;
 *   - `latency` — an added delay of up to `maxLatency`, slept on Effect's `Clock` (so `TestClock`
 *     drives it);
 *   - `ambiguous` — mutations only: the write lands and the server answers 500 → `OutcomeUnknown`
 *     for a put or a `deleteIfMatch`, `StorageUnavailable` for a plain delete;
 *   - `lostResponse` — mutations only: the write lands and the response is lost → `OutcomeUnknown`
 *     for a conditional put, `StorageUnavailable` otherwise (what the S3 layer reports);
 *   - `conditional500` — conditional puts and deletes only: a 500 without the write landing (Ceph RGW's answer
 *     to some CAS losers) → `OutcomeUnknown`.
 *   One uniform draw picks at most one of the non-latency faults per call (cumulative rates, so
 *   their sum should stay ≤ 1); a second draw decides the latency.
 * - **Scripted rules** through the {@link FaultInjector} service: "the next PUT whose key matches
 *   /^leases\// fails with X after it lands", "die right after the PUT to tasks/… lands", …
 *   Scripted rules are checked first; a call that matches one gets no random fault.
 *
 * Reads and writes that carry a write-only error (`PreconditionFailed`, `OutcomeUnknown`) on an
 * operation whose type cannot (get, list, delete, …) fail with `StorageUnavailable` instead.
 *
 * @module
 */
import { Context, Duration, Effect, Layer, Option, Random } from "effect"
import { OutcomeUnknown, StorageUnavailable } from "../domain/StorageError.js"
import type { StorageReadError, StorageWriteError } from "../domain/StorageError.js"
import { listAllFromList, Storage } from "../services/Storage.js"
import type { ListOptions, PutCondition, StorageService } from "../services/Storage.js"
import { conditionOf } from "./MemoryStorage.js"

/**
 * The port's operations, as rules and the injection log name them.
 *
 * @since 0.1.0
 * @category models
 */
export type Operation =
  | "get"
  | "head"
  | "put"
  | "delete"
  | "deleteIfMatch"
  | "deleteMany"
  | "list"
  | "listVersions"
  | "getVersion"

/**
 * Probabilities (0–1) of each random fault per call (see the module doc).
 *
 * @since 0.1.0
 * @category models
 */
export interface FaultRates {
  readonly unavailable?: number | undefined
  readonly slowDown?: number | undefined
  readonly latency?: number | undefined
  readonly ambiguous?: number | undefined
  readonly lostResponse?: number | undefined
  readonly conditional500?: number | undefined
}

/**
 * Options of `FaultyStorage.layer` / `FaultyStorage.make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface FaultyStorageOptions {
  /** Seed of the fault generator (default 0). */
  readonly seed?: number | string | undefined
  /** Random fault rates (default: none). */
  readonly rates?: FaultRates | undefined
  /** Upper bound of an injected latency (default 200 ms). */
  readonly maxLatency?: Duration.DurationInput | undefined
}

/**
 * What a scripted rule does to the matching call.
 *
 * @since 0.1.0
 * @category models
 */
export type ScriptedFault =
  | { readonly _tag: "Fail"; readonly error: StorageWriteError }
  | { readonly _tag: "Unavailable" }
  | { readonly _tag: "SlowDown" }
  | { readonly _tag: "OutcomeUnknown" }
  | { readonly _tag: "Die"; readonly defect: unknown }
  | { readonly _tag: "Interrupt" }
  | { readonly _tag: "Delay"; readonly duration: Duration.DurationInput }

/**
 * Constructors of {@link ScriptedFault}s.
 *
 * @since 0.1.0
 * @category constants
 */
export const Fault = {
  /** Fail with this error (write-only errors on read operations become `StorageUnavailable`). */
  fail: (error: StorageWriteError): ScriptedFault => ({ _tag: "Fail", error }),
  /** A 5xx: `StorageUnavailable`. */
  unavailable: { _tag: "Unavailable" } as ScriptedFault,
  /** 503 SlowDown: `StorageUnavailable`. */
  slowDown: { _tag: "SlowDown" } as ScriptedFault,
  /** `OutcomeUnknown` on a put (`StorageUnavailable` on other operations). */
  outcomeUnknown: { _tag: "OutcomeUnknown" } as ScriptedFault,
  /** A defect, as if the process crashed at this point. */
  die: (defect: unknown = "FaultyStorage: injected defect"): ScriptedFault => ({ _tag: "Die", defect }),
  /** Interrupts the calling fiber, as if it was stopped at this point. */
  interrupt: { _tag: "Interrupt" } as ScriptedFault,
  /** Sleeps (on Effect's `Clock`), then carries on normally. */
  delay: (duration: Duration.DurationInput): ScriptedFault => ({ _tag: "Delay", duration })
} as const

/**
 * A scripted fault: which calls it hits, when, and how often.
 *
 * @since 0.1.0
 * @category models
 */
export interface FaultRule {
  /** Operations it applies to (default: all). */
  readonly operation?: Operation | ReadonlyArray<Operation> | undefined
  /**
   * The key it applies to: a string is an exact key, a RegExp is tested (for `list` against the
   * prefix; for `deleteMany` a batch matches if any of its keys does). Default: every key.
   */
  readonly key?: string | RegExp | undefined
  /** For puts: only with this kind of precondition (default "any"). */
  readonly condition?: "ifNoneMatch" | "ifMatch" | "none" | "any" | undefined
  /**
   * "before" (default): the request never reaches the store. "after": the request is executed
   * first and the fault hits its response — only when it succeeded (a rule waiting for a landing
   * write is not used up by a write that lost its precondition).
   */
  readonly timing?: "before" | "after" | undefined
  /** What happens. */
  readonly fault: ScriptedFault
  /** How many matching calls it hits (default 1; `Infinity` for all). */
  readonly times?: number | undefined
  /** Matching calls to let through before it starts hitting (default 0). */
  readonly skip?: number | undefined
}

/**
 * One fault that was injected.
 *
 * @since 0.1.0
 * @category models
 */
export interface InjectedFault {
  /** Order of injection (0, 1, …) since the last reset. */
  readonly seq: number
  readonly operation: Operation
  readonly key: string | undefined
  /** The fault: a random kind (`Unavailable`, `SlowDown`, `Latency`, `Ambiguous`, `LostResponse`, `Conditional500`) or a scripted fault's tag. */
  readonly kind: string
  readonly source: "random" | "scripted"
  /** Whether the request reached the store (the write landed) before the fault. */
  readonly landed: boolean
}

/**
 * Control of a {@link FaultyStorage}: scripted rules, the injection log, the random faults.
 *
 * @since 0.1.0
 * @category models
 */
export interface FaultInjectorService {
  /** Adds a scripted rule (rules are tried in the order they were added). */
  readonly addRule: (rule: FaultRule) => Effect.Effect<void>
  /** Removes all rules, clears the log and restarts the random generator from its seed. */
  readonly reset: Effect.Effect<void>
  /** The faults injected since the last reset, in order. */
  readonly injected: Effect.Effect<ReadonlyArray<InjectedFault>>
  /** Turns the random faults on or off (scripted rules always apply). */
  readonly setRandomFaults: (enabled: boolean) => Effect.Effect<void>
  /** The wrapped store, without faults: to check what really landed. */
  readonly underlying: StorageService
}

/**
 * The fault control service provided by `FaultyStorage.layer`.
 *
 * @since 0.1.0
 * @category tags
 */
export class FaultInjector extends Context.Tag("buquet/FaultInjector")<FaultInjector, FaultInjectorService>() {}

interface RuleState {
  readonly rule: FaultRule
  skipLeft: number
  timesLeft: number
}

interface Planned {
  readonly fault: ScriptedFault
  readonly timing: "before" | "after"
  readonly kind: string
  readonly source: "random" | "scripted"
  readonly rule: RuleState | undefined
}

interface Call {
  readonly operation: Operation
  readonly keys: ReadonlyArray<string>
  /** For puts (and `deleteIfMatch`, always "ifMatch"): the precondition kind. */
  readonly condition: "ifNoneMatch" | "ifMatch" | "none" | undefined
}

const isMutation = (op: Operation): boolean => op === "put" || op === "delete" || op === "deleteIfMatch" || op === "deleteMany"

const matchesKey = (pattern: string | RegExp | undefined, keys: ReadonlyArray<string>): boolean => {
  if (pattern === undefined) return true
  if (typeof pattern === "string") return keys.includes(pattern)
  return keys.some((k) => {
    pattern.lastIndex = 0
    return pattern.test(k)
  })
}

const matchesRule = (rule: FaultRule, call: Call): boolean => {
  const ops = rule.operation === undefined ? undefined : typeof rule.operation === "string" ? [rule.operation] : rule.operation
  if (ops !== undefined && !ops.includes(call.operation)) return false
  if (!matchesKey(rule.key, call.keys)) return false
  const cond = rule.condition ?? "any"
  if (cond !== "any" && (call.operation === "put" || call.operation === "deleteIfMatch") && call.condition !== cond) return false
  if (cond !== "any" && call.operation !== "put" && call.operation !== "deleteIfMatch") return false
  return true
}

/** Narrows an error to what a read (or delete) may fail with. */
const asReadError = (operation: Operation, key: string | undefined) => (e: StorageWriteError): StorageReadError =>
  e._tag === "PreconditionFailed" || e._tag === "OutcomeUnknown"
    ? new StorageUnavailable({ operation, key, message: `FaultyStorage: injected ${e._tag} on ${operation}` })
    : e

/**
 * Wraps `underlying` with faults; returns the faulty store and its control.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  underlying: StorageService,
  options?: FaultyStorageOptions
): Effect.Effect<{ readonly storage: StorageService; readonly injector: FaultInjectorService }> =>
  Effect.sync(() => {
    const seed = options?.seed ?? 0
    const rates = options?.rates ?? {}
    const maxLatencyMillis = Duration.toMillis(Duration.decode(options?.maxLatency ?? Duration.millis(200)))
    let random = Random.make(seed)
    let randomEnabled = true
    let rules: Array<RuleState> = []
    let log: Array<InjectedFault> = []

    const record = (call: Call, kind: string, source: "random" | "scripted", landed: boolean) =>
      Effect.sync(() => {
        log.push({ seq: log.length, operation: call.operation, key: call.keys[0], kind, source, landed })
      })

    /** Picks the scripted rule hitting this call, consuming it now for "before" rules. */
    const takeRule = (call: Call): Planned | undefined => {
      for (const state of rules) {
        if (state.timesLeft <= 0 || !matchesRule(state.rule, call)) continue
        if (state.skipLeft > 0) {
          state.skipLeft--
          continue
        }
        const timing = state.rule.timing ?? "before"
        if (timing === "before") state.timesLeft--
        return { fault: state.rule.fault, timing, kind: state.rule.fault._tag, source: "scripted", rule: state }
      }
      return undefined
    }

    /** Draws the random faults of one call: a latency (maybe) and at most one other fault. */
    const drawRandom = (call: Call) =>
      Effect.gen(function*() {
        if (!randomEnabled) return { latency: 0, planned: undefined }
        const rng = random
        const u = yield* rng.next
        const v = yield* rng.next
        const latencyRate = rates.latency ?? 0
        const latency = v < latencyRate ? (v / latencyRate) * maxLatencyMillis : 0
        const mutation = isMutation(call.operation)
        const conditional = (call.operation === "put" && call.condition !== "none") || call.operation === "deleteIfMatch"
        const table: ReadonlyArray<readonly [number, boolean, () => Planned]> = [
          [rates.unavailable ?? 0, true, () => ({ fault: Fault.unavailable, timing: "before", kind: "Unavailable", source: "random", rule: undefined })],
          [rates.slowDown ?? 0, true, () => ({ fault: Fault.slowDown, timing: "before", kind: "SlowDown", source: "random", rule: undefined })],
          [rates.ambiguous ?? 0, mutation, () => ({ fault: Fault.outcomeUnknown, timing: "after", kind: "Ambiguous", source: "random", rule: undefined })],
          [rates.lostResponse ?? 0, mutation, () => ({
            fault: conditional ? Fault.outcomeUnknown : Fault.unavailable,
            timing: "after",
            kind: "LostResponse",
            source: "random",
            rule: undefined
          })],
          [rates.conditional500 ?? 0, conditional, () => ({ fault: Fault.outcomeUnknown, timing: "before", kind: "Conditional500", source: "random", rule: undefined })]
        ]
        let acc = 0
        for (const [rate, applies, plan] of table) {
          acc += rate
          if (u < acc) return { latency, planned: applies ? plan() : undefined }
        }
        return { latency, planned: undefined }
      })

    /** The effect of a fault on the response (Delay succeeds; everything else fails). */
    const applyFault = (call: Call, fault: ScriptedFault): Effect.Effect<void, StorageWriteError> => {
      const key = call.keys[0]
      switch (fault._tag) {
        case "Fail":
          return Effect.fail(fault.error)
        case "Unavailable":
          return Effect.fail(new StorageUnavailable({ operation: call.operation, key, message: "FaultyStorage: injected 503 Service Unavailable" }))
        case "SlowDown":
          return Effect.fail(new StorageUnavailable({ operation: call.operation, key, message: "FaultyStorage: injected 503 SlowDown" }))
        case "OutcomeUnknown":
          return Effect.fail(new OutcomeUnknown({ key: key ?? "", operation: call.operation, message: "FaultyStorage: injected 500 after the request was sent" }))
        case "Die":
          return Effect.die(fault.defect)
        case "Interrupt":
          return Effect.interrupt
        case "Delay":
          return Effect.sleep(fault.duration)
      }
    }

    /** Runs one call of the underlying store through the fault plan. */
    const inject = <A>(call: Call, run: Effect.Effect<A, StorageWriteError>): Effect.Effect<A, StorageWriteError> =>
      Effect.gen(function*() {
        const scripted = yield* Effect.sync(() => takeRule(call))
        const drawn = yield* drawRandom(call)
        if (drawn.latency > 0) {
          yield* record(call, "Latency", "random", false)
          yield* Effect.sleep(Duration.millis(drawn.latency))
        }
        const planned = scripted ?? drawn.planned
        if (planned === undefined) return yield* run
        if (planned.timing === "before") {
          yield* record(call, planned.kind, planned.source, false)
          yield* applyFault(call, planned.fault)
          return yield* run
        }
        const result = yield* run
        // An "after" rule is used up only by a call that landed (and only while it has uses left).
        const hit = yield* Effect.sync(() => {
          if (planned.rule === undefined) return true
          if (planned.rule.timesLeft <= 0) return false
          planned.rule.timesLeft--
          return true
        })
        if (!hit) return result
        yield* record(call, planned.kind, planned.source, true)
        yield* applyFault(call, planned.fault)
        return result
      })

    const read = <A>(call: Call, run: Effect.Effect<A, StorageReadError>): Effect.Effect<A, StorageReadError> =>
      inject(call, run).pipe(Effect.mapError(asReadError(call.operation, call.keys[0])))

    const one = (operation: Operation, key: string): Call => ({ operation, keys: [key], condition: undefined })

    const list = Effect.fn("FaultyStorage.list")(function*(prefix: string, options?: ListOptions) {
      return yield* read(one("list", prefix), underlying.list(prefix, options))
    })

    const storage: StorageService = {
      get: Effect.fn("FaultyStorage.get")(function*(key: string) {
        return yield* read(one("get", key), underlying.get(key))
      }),
      head: Effect.fn("FaultyStorage.head")(function*(key: string) {
        return yield* read(one("head", key), underlying.head(key))
      }),
      put: Effect.fn("FaultyStorage.put")(function*(key: string, body: Uint8Array, condition?: PutCondition) {
        const c = conditionOf(condition)
        const kind = c._tag === "IfNoneMatch" ? "ifNoneMatch" : c._tag === "IfMatch" ? "ifMatch" : "none"
        return yield* inject({ operation: "put", keys: [key], condition: kind }, underlying.put(key, body, condition))
      }),
      delete: Effect.fn("FaultyStorage.delete")(function*(key: string) {
        return yield* read(one("delete", key), underlying.delete(key))
      }),
      deleteIfMatch: Effect.fn("FaultyStorage.deleteIfMatch")(function*(key: string, etag: string) {
        return yield* inject({ operation: "deleteIfMatch", keys: [key], condition: "ifMatch" }, underlying.deleteIfMatch(key, etag))
      }),
      deleteMany: Effect.fn("FaultyStorage.deleteMany")(function*(keys: ReadonlyArray<string>) {
        return yield* read({ operation: "deleteMany", keys, condition: undefined }, underlying.deleteMany(keys))
      }),
      list,
      listAll: listAllFromList<StorageReadError>(list),
      listVersions: Effect.fn("FaultyStorage.listVersions")(function*(key: string) {
        return yield* read(one("listVersions", key), underlying.listVersions(key))
      }),
      getVersion: Effect.fn("FaultyStorage.getVersion")(function*(key: string, versionId: string) {
        return yield* read(one("getVersion", key), underlying.getVersion(key, versionId))
      }),
      capabilities: underlying.capabilities,
      versioning: underlying.versioning,
      dateSamples: underlying.dateSamples,
      onDateSample: underlying.onDateSample
    }

    const injector: FaultInjectorService = {
      addRule: (rule) =>
        Effect.sync(() => {
          rules.push({ rule, skipLeft: rule.skip ?? 0, timesLeft: rule.times ?? 1 })
        }),
      reset: Effect.sync(() => {
        rules = []
        log = []
        random = Random.make(seed)
      }),
      injected: Effect.sync(() => log.slice()),
      setRandomFaults: (enabled) =>
        Effect.sync(() => {
          randomEnabled = enabled
        }),
      underlying
    }
    return { storage, injector }
  })

/**
 * Wraps the {@link Storage} in context with faults, and provides the {@link FaultInjector}:
 * `FaultyStorage.layer({ seed: 1, rates: { ambiguous: 0.01 } }).pipe(Layer.provide(MemoryStorage.layer()))`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: FaultyStorageOptions): Layer.Layer<Storage | FaultInjector, never, Storage> =>
  Layer.effectContext(
    Effect.gen(function*() {
      const underlying = yield* Storage
      const { injector, storage } = yield* make(underlying, options)
      return Context.make(Storage, storage).pipe(Context.add(FaultInjector, injector))
    })
  )

/**
 * Namespace-style access: `FaultyStorage.layer(options)`, `FaultyStorage.make(storage, options)`.
 *
 * @since 0.1.0
 * @category constants
 */
export const FaultyStorage = { make, layer } as const

/**
 * Convenience: the first injected fault of a kind, if any (for assertions).
 *
 * @since 0.1.0
 * @category utils
 */
export const findInjected = (log: ReadonlyArray<InjectedFault>, kind: string): Option.Option<InjectedFault> =>
  Option.fromNullable(log.find((f) => f.kind === kind))
