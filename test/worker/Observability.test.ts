/**
 * The worker's metrics and spans (design.md §8): events recorded as Prometheus metrics (claims won
 * and lost, failures by reason), and claim / execute / complete spans that join the producer's
 * trace through the task's `traceparent`. MemoryStorage + TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Metric, Option, TestClock, Tracer } from "effect"
import { PermanentError, RetryableError } from "../../src/domain/HandlerErrors.js"
import { readyMarkerKey, scanReadyKey } from "../../src/domain/ReadyIndex.js"
import { bucketOf } from "../../src/domain/Shard.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import { tryClaim } from "../../src/programs/worker/Claim.js"
import type { ClaimEnv } from "../../src/programs/worker/Claim.js"
import * as Worker from "../../src/programs/Worker.js"
import * as Metrics from "../../src/services/Metrics.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, exactPolicy, hasStatus, queueLayer } from "./support.js"

const count = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (s) => s.count)
const failedCount = (taskType: string, reason: Metrics.FailureReason) =>
  count(Metric.tagged(Metric.tagged(Metrics.tasksFailed, "task_type", taskType), "reason", reason))

const env = (workerId: string): ClaimEnv => ({
  workerId,
  handles: () => true,
  isPaused: () => Effect.succeed(false),
  admit: () => Effect.succeed(true as const)
})

/** MemoryStorage whose CAS writes of task objects take 1 s (simulated): two claims read before either writes. */
const slowCas = Layer.effect(
  Storage,
  Effect.map(MemoryStorage.make(), (s) => ({
    ...s,
    put: (key: string, body: Uint8Array, condition?: Parameters<typeof s.put>[2]) =>
      key.startsWith("tasks/") && condition !== undefined && "ifMatch" in condition
        ? Effect.zipRight(Effect.sleep("1 second"), s.put(key, body, condition))
        : s.put(key, body, condition)
  }))
)

describe("Worker metrics", () => {
  it.scoped("a won claim counts a success (via the Claimed event), a lost one a conflict", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const task = yield* queue.submit("metered", {})
      const step = scanReadyKey(readyMarkerKey(task), bucketOf(DateTime.toEpochMillis(task.availableAt)))
      if (step._tag !== "Due") return yield* Effect.dieMessage("due")
      const conflicts = yield* count(Metrics.claimsConflict)
      // two claimers read the same version; one CAS wins, the other gets a 412
      const racing = yield* Effect.all([tryClaim(step.entry, env("w1")), tryClaim(step.entry, env("w2"))], { concurrency: 2 }).pipe(Effect.fork)
      yield* TestClock.adjust("2 seconds")
      const outcomes = yield* racing.await.pipe(Effect.flatten)
      expect(outcomes.map((o) => o._tag).sort()).toEqual(["Claimed", "Consumed"])
      expect((yield* count(Metrics.claimsConflict)) - conflicts).toBe(1)

      const successes = yield* count(Metrics.claimsSuccess)
      const other = yield* queue.submit("metered_ok", {})
      yield* Worker.make({ wakeUp: false, monitor: false }, [Worker.handler("metered_ok", () => Effect.succeed("ok"))])
      yield* drive(hasStatus(other.id, "completed"))
      expect((yield* count(Metrics.claimsSuccess)) - successes).toBe(1)
    }).pipe(Effect.provide(queueLayer(slowCas))))

  it.scoped("failed tasks are counted by reason: permanent, retries_exhausted, timeout", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const perm = yield* queue.submit("m_perm", {})
      const exhausted = yield* queue.submit("m_retry", {}, { maxRetries: 1, retryPolicy: exactPolicy })
      const timedOut = yield* queue.submit("m_hang", {}, { maxRetries: 0, timeoutSeconds: 3 })
      const before = {
        perm: yield* failedCount("m_perm", "permanent"),
        retry: yield* failedCount("m_retry", "retries_exhausted"),
        hang: yield* failedCount("m_hang", "timeout")
      }
      yield* Worker.make({ wakeUp: false, monitor: false, concurrency: 3 }, [
        Worker.handler("m_perm", () => Effect.fail(new PermanentError({ message: "no" }))),
        Worker.handler("m_retry", () => Effect.fail(new RetryableError({ message: "busy" }))),
        Worker.handler("m_hang", () => Effect.never)
      ])
      yield* drive(Effect.map(Effect.forEach([perm, exhausted, timedOut], (t) => hasStatus(t.id, "failed")), (a) => a.every(Boolean)))
      expect((yield* failedCount("m_perm", "permanent")) - before.perm).toBe(1)
      expect((yield* failedCount("m_retry", "retries_exhausted")) - before.retry).toBe(1)
      expect((yield* failedCount("m_hang", "timeout")) - before.hang).toBe(1)
    }).pipe(Effect.provide(queueLayer())))
})

describe("Worker spans", () => {
  it.scoped("claim, execute and complete spans join the producer's trace", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      const base = yield* Effect.tracer
      const capture = Tracer.make({
        span: (name, parent, context, links, startTime, kind, options) => {
          const span = base.span(name, parent, context, links, startTime, kind, options)
          spans.push(span)
          return span
        },
        context: (f, fiber) => base.context(f, fiber)
      })
      const program = Effect.gen(function*() {
        const queue = yield* Queue
        // the producer submits inside its own span
        const { task, traceId } = yield* Effect.gen(function*() {
          const span = yield* Effect.currentSpan
          const task = yield* queue.submit("traced", {})
          return { task, traceId: span.traceId }
        }).pipe(Effect.withSpan("producer"))
        expect(task.traceparent).toContain(traceId)
        // the worker runs outside that span (as in another process)
        yield* Worker.make({ wakeUp: false, monitor: false }, [Worker.handler("traced", () => Effect.succeed("ok"))])
        yield* drive(hasStatus(task.id, "completed"))
        return traceId
      })
      const traceId = yield* Effect.withTracer(program, capture)
      const named = (name: string) => spans.filter((s) => s.name === name)
      for (const name of ["buquet.claim", "buquet.execute", "buquet.complete"]) {
        expect(named(name).length).toBe(1)
        expect(named(name)[0]!.traceId).toBe(traceId)
        expect(Option.isSome(named(name)[0]!.parent)).toBe(true)
      }
      // and the worker's own loop is not in that trace
      expect(spans.filter((s) => s.name === "Worker.discover").every((s) => s.traceId !== traceId)).toBe(true)
    }).pipe(Effect.provide(queueLayer())))
})
