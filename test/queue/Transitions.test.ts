import { describe, expect, it } from "@effect/vitest"
import { DateTime, Duration } from "effect"
import { parseIndexKey } from "../../src/domain/Keys.js"
import { readyMarkerKey, readyMarkerKeyFor, scanReadyKey } from "../../src/domain/ReadyIndex.js"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import { bucketOf } from "../../src/domain/Shard.js"
import { maxTaskEvents } from "../../src/domain/Task.js"
import * as T from "../../src/domain/Transitions.js"

const t0 = DateTime.unsafeMake("2024-01-15T10:30:00Z")
const at = (s: number) => DateTime.addDuration(t0, Duration.seconds(s))
const id = "6f1c1c2e-8a4b-4c1e-9f0a-2b3c4d5e6f70"

const fresh = (extra: Partial<T.NewTaskParams> = {}) =>
  T.newTask({
    id,
    shard: "6",
    taskType: "send_email",
    input: { to: "a@b.c" },
    now: t0,
    availableAt: t0,
    timeoutSeconds: 30,
    maxRetries: 2,
    retryPolicy: RetryPolicy.default,
    ...extra
  })

describe("Transitions", () => {
  it("walks pending → running → pending (retry) → running → completed and logs each step", () => {
    const a = fresh()
    expect(T.canClaim(a, t0)).toBe(true)
    const b = T.claim(a, { now: at(1), workerId: "w1", leaseId: "l1" })
    expect(b.status).toBe("running")
    expect(b.attempt).toBe(1)
    expect(DateTime.toEpochMillis(b.leaseExpiresAt!)).toBe(DateTime.toEpochMillis(at(31)))
    const c = T.retry(b, { now: at(2), error: "boom", random: 0.5 })
    expect(c.status).toBe("pending")
    expect(c.retryCount).toBe(1)
    expect(c.leaseId).toBeNull()
    expect(DateTime.toEpochMillis(c.availableAt)).toBe(DateTime.toEpochMillis(at(3))) // 1000 ms, no jitter at 0.5
    expect(T.canClaim(c, at(2))).toBe(false)
    const d = T.claim(c, { now: at(4), workerId: "w2", leaseId: "l2" })
    const e = T.complete(d, { now: at(5), output: { sent: true } })
    expect(e.status).toBe("completed")
    expect(e.output).toEqual({ sent: true })
    expect(e.workerId).toBeNull()
    expect(e.events!.map((x) => `${x.from ?? "∅"}>${x.to}`)).toEqual([
      "∅>pending", "pending>running", "running>pending", "pending>running", "running>completed"
    ])
    expect(e.events![2]!.error).toBe("boom")
    expect(e.events![3]!.workerId).toBe("w2")
  })

  it("replay resets the budget; expire and cancel set their timestamps", () => {
    const failed = T.fail(T.claim(T.retry(T.claim(fresh(), { now: at(1), workerId: "w", leaseId: "l" }), { now: at(2), error: "x", random: 0 }), { now: at(5), workerId: "w", leaseId: "m" }), { now: at(6), error: "bad" })
    expect(failed.status).toBe("failed")
    expect(T.canReplay(failed)).toBe(true)
    const r = T.replay(failed, { now: at(7) })
    expect([r.status, r.retryCount, r.attempt, r.rescheduleCount, r.lastError, r.completedAt]).toEqual(["pending", 0, 0, 0, null, null])
    const x = T.expire(fresh({ expiresAt: at(10) }), { now: at(10) })
    expect(x.status).toBe("expired")
    expect(x.expiredAt).toBeDefined()
    expect(T.replay(x, { now: at(11) }).expiresAt).toBeUndefined()
    const c = T.cancel(fresh(), { now: at(1), reason: "no longer needed", cancelledBy: "ops" })
    expect([c.status, c.cancelledBy, c.lastError]).toEqual(["cancelled", "ops", "no longer needed"])
  })

  it("recovers an expired lease by retrying, then by failing when retries are used up", () => {
    const running = T.claim(fresh({ maxRetries: 0 }), { now: at(0), workerId: "w", leaseId: "l" })
    expect(T.canRecoverLease(running, at(30))).toBe(false)
    expect(T.canRecoverLease(running, at(31))).toBe(true)
    const failed = T.recoverExpiredLease(running, { now: at(31), random: 0 })
    expect(failed.status).toBe("failed")
    const retried = T.recoverExpiredLease(T.claim(fresh(), { now: at(0), workerId: "w", leaseId: "l" }), { now: at(31), random: 0 })
    expect([retried.status, retried.retryCount, retried.workerId]).toEqual(["pending", 1, null])
  })

  it("reschedule does not consume a retry and is bounded; extendLease moves the lease", () => {
    const running = T.claim(fresh({ maxReschedules: 1 }), { now: at(0), workerId: "w", leaseId: "l" })
    const r = T.reschedule(running, { now: at(1), delay: "1 minute" })
    expect([r.status, r.retryCount, r.rescheduleCount]).toEqual(["pending", 0, 1])
    expect(T.canReschedule(r)).toBe(false)
    const ext = T.extendLease(running, { now: at(10), by: "60 seconds" })
    expect(DateTime.toEpochMillis(ext.leaseExpiresAt!)).toBe(DateTime.toEpochMillis(at(90)))
  })

  it("keeps the event log bounded", () => {
    let task = fresh({ maxReschedules: 1000 })
    for (let i = 0; i < 40; i++) {
      task = T.reschedule(T.claim(task, { now: at(i), workerId: "w", leaseId: `l${i}` }), { now: at(i), delay: 0 })
    }
    expect(task.events!.length).toBe(maxTaskEvents)
    expect(task.events!.at(-1)!.to).toBe("pending")
  })
})

describe("ReadyIndex", () => {
  it("keeps default markers in the reference's format and puts priorities first, highest first", () => {
    const plain = readyMarkerKey(fresh())
    expect(plain).toBe(`ready/6/${String(bucketOf(DateTime.toEpochMillis(t0))).padStart(10, "0")}/${id}`)
    const p5 = readyMarkerKeyFor("6", id, t0, 5)
    const p100 = readyMarkerKeyFor("6", id, at(3600), 100)
    const sorted = [plain, p5, p100].sort()
    expect(sorted).toEqual([p100, p5, plain])
    expect(parseIndexKey(p5)).toMatchObject({ kind: "ready", priority: 5, taskId: id })
    expect(parseIndexKey(plain)).toMatchObject({ kind: "ready", priority: 0 })
    const nowBucket = bucketOf(DateTime.toEpochMillis(t0))
    expect(scanReadyKey(p5, nowBucket)._tag).toBe("Due")
    const skip = scanReadyKey(p100, nowBucket)
    expect(skip._tag).toBe("SkipRank")
    if (skip._tag === "SkipRank") {
      expect(skip.startAfter > p100).toBe(true)
      expect(skip.startAfter < p5).toBe(true)
    }
    expect(scanReadyKey(readyMarkerKeyFor("6", id, at(3600), 0), nowBucket)._tag).toBe("Stop")
    expect(scanReadyKey("ready/6/junk", nowBucket)._tag).toBe("Invalid")
  })
})
