import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Fiber, Layer, Option, TestClock } from "effect"
import { PreconditionFailed } from "../../src/domain/StorageError.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault, FaultInjector } from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import { Storage } from "../../src/services/Storage.js"
import type { StorageService } from "../../src/services/Storage.js"
import { storageConformance } from "./conformance.js"

const faulty = (options?: FaultyStorage.FaultyStorageOptions) =>
  FaultyStorage.layer(options).pipe(Layer.provide(MemoryStorage.layer()))

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)
const bodyOf = (storage: StorageService, key: string) =>
  Effect.map(storage.get(key), Option.map((o) => dec(o.body)))

// Without faults the wrapper is transparent.
storageConformance("FaultyStorage (no faults) over MemoryStorage", faulty())

describe("FaultyStorage random faults", () => {
  it.effect("a 500 to a conditional write surfaces as OutcomeUnknown and the write does not land", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const { underlying } = yield* FaultInjector
      const e1 = yield* underlying.put("t", enc("v1"))
      const cas = yield* Effect.either(storage.put("t", enc("v2"), { ifMatch: e1 }))
      expect(Either.isLeft(cas) && cas.left._tag).toBe("OutcomeUnknown")
      const create = yield* Effect.either(storage.put("new", enc("x"), { ifNoneMatch: "*" }))
      expect(Either.isLeft(create) && create.left._tag).toBe("OutcomeUnknown")
      expect(yield* bodyOf(underlying, "t")).toEqual(Option.some("v1"))
      expect(yield* underlying.head("new")).toEqual(Option.none())
      // Unconditional writes and reads are not conditional: untouched by this fault.
      yield* storage.put("plain", enc("p"))
      expect(yield* bodyOf(storage, "plain")).toEqual(Option.some("p"))
      const log = yield* (yield* FaultInjector).injected
      expect(log.map((f) => [f.kind, f.landed])).toEqual([["Conditional500", false], ["Conditional500", false]])
    }).pipe(Effect.provide(faulty({ rates: { conditional500: 1 } }))))

  it.effect("an ambiguous outcome lands the write and answers OutcomeUnknown", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const { underlying } = yield* FaultInjector
      const e1 = yield* underlying.put("t", enc("v1"))
      const cas = yield* Effect.either(storage.put("t", enc("v2"), { ifMatch: e1 }))
      expect(Either.isLeft(cas) && cas.left._tag).toBe("OutcomeUnknown")
      expect(yield* bodyOf(underlying, "t")).toEqual(Option.some("v2"))
      // A delete lands too; its error is StorageUnavailable (deletes cannot be OutcomeUnknown).
      const del = yield* Effect.either(storage.delete("t"))
      expect(Either.isLeft(del) && del.left._tag).toBe("StorageUnavailable")
      expect(yield* underlying.head("t")).toEqual(Option.none())
      // Reads are not mutations: no ambiguous faults for them.
      expect(yield* storage.get("t")).toEqual(Option.none())
    }).pipe(Effect.provide(faulty({ rates: { ambiguous: 1 } }))))

  it.effect("a lost response: the write landed, the caller sees StorageUnavailable (unconditional) or OutcomeUnknown (conditional)", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const { underlying } = yield* FaultInjector
      const plain = yield* Effect.either(storage.put("a", enc("1")))
      expect(Either.isLeft(plain) && plain.left._tag).toBe("StorageUnavailable")
      const cond = yield* Effect.either(storage.put("b", enc("2"), { ifNoneMatch: "*" }))
      expect(Either.isLeft(cond) && cond.left._tag).toBe("OutcomeUnknown")
      expect(yield* bodyOf(underlying, "a")).toEqual(Option.some("1"))
      expect(yield* bodyOf(underlying, "b")).toEqual(Option.some("2"))
      // A lost response to a write that lost its precondition: the real answer (412) comes back.
      const lost = yield* Effect.either(storage.put("b", enc("3"), { ifNoneMatch: "*" }))
      expect(Either.isLeft(lost) && lost.left._tag).toBe("PreconditionFailed")
    }).pipe(Effect.provide(faulty({ rates: { lostResponse: 1 } }))))

  it.effect("5xx and SlowDown fail before anything lands", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const injector = yield* FaultInjector
      const results = yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) =>
        Effect.either(storage.put(`k${i}`, enc("x"))))
      for (const r of results) expect(Either.isLeft(r) && r.left._tag).toBe("StorageUnavailable")
      expect((yield* injector.underlying.list("")).objects).toEqual([])
      const kinds = new Set((yield* injector.injected).map((f) => f.kind))
      expect(kinds).toEqual(new Set(["Unavailable", "SlowDown"]))
    }).pipe(Effect.provide(faulty({ seed: 7, rates: { unavailable: 0.5, slowDown: 0.5 } }))))

  it.effect("latency is slept on Effect's Clock: TestClock drives it", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      yield* (yield* FaultInjector).underlying.put("k", enc("v"))
      const fiber = yield* Effect.fork(storage.get("k"))
      yield* TestClock.adjust(Duration.millis(0))
      expect(yield* Fiber.poll(fiber)).toEqual(Option.none())
      yield* TestClock.adjust(Duration.seconds(1))
      const got = yield* Fiber.join(fiber)
      expect(Option.map(got, (o) => dec(o.body))).toEqual(Option.some("v"))
      expect((yield* (yield* FaultInjector).injected).map((f) => f.kind)).toEqual(["Latency"])
    }).pipe(Effect.provide(faulty({ rates: { latency: 1 }, maxLatency: Duration.seconds(1) }))))

  it.effect("same seed → same fault sequence; another seed → another; reset replays it", () =>
    Effect.gen(function*() {
      const rates = { unavailable: 0.1, slowDown: 0.05, ambiguous: 0.1, lostResponse: 0.05, conditional500: 0.1 }
      const workload = Effect.gen(function*() {
        const storage = yield* Storage
        const injector = yield* FaultInjector
        const outcomes: Array<string> = []
        for (let i = 0; i < 300; i++) {
          const key = `k${i % 17}`
          const op = i % 3 === 0
            ? storage.put(key, enc(String(i)), { ifNoneMatch: "*" })
            : i % 3 === 1
            ? storage.put(key, enc(String(i)))
            : Effect.as(storage.get(key), "read")
          const r = yield* Effect.either(op)
          outcomes.push(Either.isLeft(r) ? r.left._tag : "ok")
        }
        return { outcomes, injected: yield* injector.injected }
      })
      const a = yield* Effect.provide(workload, faulty({ seed: 42, rates }))
      const b = yield* Effect.provide(workload, faulty({ seed: 42, rates }))
      const c = yield* Effect.provide(workload, faulty({ seed: 43, rates }))
      expect(a.injected.length).toBeGreaterThan(30)
      expect(b).toEqual(a)
      expect(c.injected).not.toEqual(a.injected)
      expect(new Set(a.injected.map((f) => f.kind))).toEqual(
        new Set(["Unavailable", "SlowDown", "Ambiguous", "LostResponse", "Conditional500"])
      )
      // reset restarts the generator: the same workload on a fresh store... replays the sequence.
      const replay = yield* Effect.provide(
        Effect.gen(function*() {
          const injector = yield* FaultInjector
          yield* Effect.either(workload)
          yield* injector.reset
          yield* injector.underlying.deleteMany(Array.from({ length: 17 }, (_, i) => `k${i}`))
          return yield* workload
        }),
        faulty({ seed: 42, rates })
      )
      expect(replay.injected).toEqual(a.injected)
    }))
})

describe("FaultyStorage scripted rules", () => {
  it.effect("the next PUT whose key matches /^leases\\// fails after landing; other keys and later PUTs pass", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const injector = yield* FaultInjector
      yield* injector.addRule({ operation: "put", key: /^leases\//, timing: "after", fault: Fault.unavailable })
      yield* storage.put("tasks/0/a.json", enc("task"))
      const first = yield* Effect.either(storage.put("leases/0/1/a", enc("")))
      expect(Either.isLeft(first) && first.left._tag).toBe("StorageUnavailable")
      expect(Option.isSome(yield* injector.underlying.head("leases/0/1/a"))).toBe(true)
      yield* storage.put("leases/0/1/b", enc("")) // times: 1 — used up
      expect(yield* injector.injected).toEqual([
        { seq: 0, operation: "put", key: "leases/0/1/a", kind: "Unavailable", source: "scripted", landed: true }
      ])
    }).pipe(Effect.provide(faulty())))

  it.effect("a rule before landing: the write never happens; a custom error; skip and times", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const injector = yield* FaultInjector
      yield* injector.addRule({
        operation: "put",
        key: "k",
        fault: Fault.fail(new PreconditionFailed({ key: "k", message: "scripted 412" })),
        skip: 1,
        times: 2
      })
      yield* storage.put("k", enc("1")) // skipped
      const r2 = yield* Effect.either(storage.put("k", enc("2")))
      const r3 = yield* Effect.either(storage.put("k", enc("3")))
      expect([r2, r3].map((r) => Either.isLeft(r) && r.left._tag)).toEqual(["PreconditionFailed", "PreconditionFailed"])
      yield* storage.put("k", enc("4"))
      expect(yield* bodyOf(injector.underlying, "k")).toEqual(Option.some("4"))
      // A write-only error on a read becomes StorageUnavailable (reads cannot fail with 412).
      yield* injector.addRule({ operation: "get", fault: Fault.fail(new PreconditionFailed({ key: "k", message: "x" })) })
      const read = yield* Effect.either(storage.get("k"))
      expect(Either.isLeft(read) && read.left._tag).toBe("StorageUnavailable")
    }).pipe(Effect.provide(faulty())))

  it.effect("interrupt right after the PUT to tasks/… lands (a crash at that instant)", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const injector = yield* FaultInjector
      yield* injector.addRule({ operation: "put", key: /^tasks\//, condition: "ifMatch", timing: "after", fault: Fault.interrupt })
      const e1 = yield* storage.put("tasks/0/a.json", enc("pending"), { ifNoneMatch: "*" }) // not ifMatch: passes
      const exit = yield* Effect.exit(storage.put("tasks/0/a.json", enc("running"), { ifMatch: e1 }))
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(yield* bodyOf(injector.underlying, "tasks/0/a.json")).toEqual(Option.some("running"))
    }).pipe(Effect.provide(faulty())))

  it.effect("die before landing: a defect, and nothing written", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const injector = yield* FaultInjector
      yield* injector.addRule({ key: "tasks/0/b.json", fault: Fault.die("boom") })
      const exit = yield* Effect.exit(storage.put("tasks/0/b.json", enc("x")))
      expect(Exit.isFailure(exit) && Exit.causeOption(exit).pipe(Option.map((c) => c._tag))).toEqual(Option.some("Die"))
      expect(yield* injector.underlying.head("tasks/0/b.json")).toEqual(Option.none())
    }).pipe(Effect.provide(faulty())))

  it.effect("an 'after' rule is not used up by a write that lost its precondition", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const injector = yield* FaultInjector
      yield* storage.put("k", enc("v1"))
      yield* injector.addRule({ operation: "put", timing: "after", fault: Fault.outcomeUnknown })
      const lost = yield* Effect.either(storage.put("k", enc("v2"), { ifNoneMatch: "*" }))
      expect(Either.isLeft(lost) && lost.left._tag).toBe("PreconditionFailed")
      const landed = yield* Effect.either(storage.put("k", enc("v3")))
      expect(Either.isLeft(landed) && landed.left._tag).toBe("OutcomeUnknown")
      expect(yield* bodyOf(injector.underlying, "k")).toEqual(Option.some("v3"))
      yield* storage.put("k", enc("v4"))
      expect((yield* injector.injected).length).toBe(1)
    }).pipe(Effect.provide(faulty())))

  it.effect("reset removes the rules and clears the log; random faults can be switched off", () =>
    Effect.gen(function*() {
      const storage = yield* Storage
      const injector = yield* FaultInjector
      yield* injector.addRule({ fault: Fault.unavailable, times: Infinity })
      expect(Either.isLeft(yield* Effect.either(storage.get("k")))).toBe(true)
      yield* injector.reset
      expect(yield* injector.injected).toEqual([])
      yield* injector.setRandomFaults(false)
      expect(yield* storage.get("k")).toEqual(Option.none())
      yield* storage.put("k", enc("v"))
    }).pipe(Effect.provide(faulty({ rates: { unavailable: 1 } }))))
})
