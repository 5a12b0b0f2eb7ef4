/**
 * The Scheduler and its loop on MemoryStorage under TestClock (the acceptance 1, 2, 3, 5
 * and 6): first firing after creation, DST in a named timezone, the missed-window policies, a
 * failed submit retried without touching `last_run`, disable / enable / delete, and two loops
 * without leader election firing each instant once.
 */
import { describe, expect } from "@effect/vitest"
import { DateTime, Effect, Fiber, Layer, Option, TestClock } from "effect"
import { scheduleKey, scheduleLastRunKey } from "../../src/domain/Keys.js"
import type { MissedPolicy } from "../../src/domain/Schedule.js"
import * as FaultyStorage from "../../src/layers/FaultyStorage.js"
import { Fault, FaultInjector } from "../../src/layers/FaultyStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as LeaderLease from "../../src/programs/LeaderLease.js"
import * as SchedulerLoop from "../../src/programs/SchedulerLoop.js"
import { Scheduler } from "../../src/services/Scheduler.js"
import { Storage } from "../../src/services/Storage.js"
import { firings, iso, schedulerEnv, storedLastRun, tasksOf } from "./support.js"
// it.effect / it.scoped: TestClock yields without 1 ms timers (MemoryStorage only, no real I/O)
import { it } from "../support/immediateYields.js"

const at = (isoString: string) => TestClock.setTime(Date.parse(isoString))

/** Starts the loop (no leader election: these tests are about firing, not the election). */
const startLoop = (options: SchedulerLoop.SchedulerLoopOptions = {}) =>
  Effect.fork(SchedulerLoop.run({ leader: false, ...options }))

/** Steps the TestClock forward in `step`s until `end`, letting the loop run at every step. */
const stepTo = (isoEnd: string, stepMillis: number) =>
  Effect.gen(function*() {
    const end = Date.parse(isoEnd)
    while ((yield* TestClock.currentTimeMillis) + stepMillis <= end) yield* TestClock.adjust(stepMillis)
    yield* at(isoEnd)
  })

const memoryEnv = () => schedulerEnv(MemoryStorage.layer())

describe("Scheduler loop (TestClock)", () => {
  it.effect("1. a schedule created at 10:07 with `0 * * * *` first fires at 11:00, not at 10:07", () =>
    Effect.gen(function*() {
      yield* at("2025-06-02T10:07:00Z")
      const scheduler = yield* Scheduler
      const created = yield* scheduler.create({ id: "hourly", taskType: "report", cron: "0 * * * *" })
      expect(created.nextRuns.slice(0, 2).map(iso)).toEqual(["2025-06-02T11:00:00Z", "2025-06-02T12:00:00Z"])
      const loop = yield* startLoop()
      yield* TestClock.adjust("1 second")
      expect(yield* firings("report")).toEqual([]) // the reference fired here ("never ran")
      yield* stepTo("2025-06-02T10:59:59Z", 60_000)
      expect(yield* firings("report")).toEqual([])
      yield* at("2025-06-02T11:00:00Z")
      expect(yield* firings("report")).toEqual(["2025-06-02T11:00:00Z"])
      const last = Option.getOrThrow(yield* scheduler.lastRun("hourly"))
      expect(iso(last.lastRunAt)).toBe("2025-06-02T11:00:00Z")
      expect(iso(last.nextRunAt)).toBe("2025-06-02T12:00:00Z")
      const [task] = yield* tasksOf("report")
      expect(last.lastTaskId).toBe(task!.id)
      expect(Option.map(yield* scheduler.nextRun("hourly"), iso)).toEqual(Option.some("2025-06-02T12:00:00Z"))
      yield* Fiber.interrupt(loop)
    }).pipe(Effect.provide(memoryEnv())))

  for (
    const [season, start, end, expected] of [
      [
        "spring (CET → CEST)",
        "2025-03-28T12:00:00Z",
        "2025-04-01T12:00:00Z",
        ["2025-03-29T08:00:00Z", "2025-03-30T07:00:00Z", "2025-03-31T07:00:00Z", "2025-04-01T07:00:00Z"]
      ],
      [
        "autumn (CEST → CET)",
        "2025-10-24T12:00:00Z",
        "2025-10-28T12:00:00Z",
        ["2025-10-25T07:00:00Z", "2025-10-26T08:00:00Z", "2025-10-27T08:00:00Z", "2025-10-28T08:00:00Z"]
      ]
    ] as const
  ) {
    it.effect(`2. \`0 9 * * *\` in Europe/Berlin fires at 09:00 local across the ${season} switch`, () =>
      Effect.gen(function*() {
        yield* at(start)
        const scheduler = yield* Scheduler
        const created = yield* scheduler.create({ id: "berlin", taskType: "morning", cron: "0 9 * * *", timezone: "Europe/Berlin" })
        expect(created.nextRuns.slice(0, 4).map(iso)).toEqual(expected)
        const loop = yield* startLoop({ refreshInterval: "1 hour" })
        yield* stepTo(end, 3_600_000)
        expect(yield* firings("morning")).toEqual(expected)
        yield* Fiber.interrupt(loop)
      }).pipe(Effect.provide(memoryEnv())))
  }

  const outage = (policy: MissedPolicy, atRestart: ReadonlyArray<string>) =>
    it.effect(`3. scheduler down 09:00–13:30, hourly, missed: ${policy} → ${atRestart.length} firing(s) at 13:30`, () =>
      Effect.gen(function*() {
        yield* at("2025-06-02T07:30:00Z")
        const scheduler = yield* Scheduler
        yield* scheduler.create({ id: "hourly", taskType: "job", cron: "0 * * * *", missed: policy })
        const first = yield* startLoop()
        yield* stepTo("2025-06-02T08:30:00Z", 60_000)
        expect(yield* firings("job")).toEqual(["2025-06-02T08:00:00Z"])
        yield* Fiber.interrupt(first) // down from 08:30, so 09:00 … 13:00 are missed
        yield* at("2025-06-02T13:30:00Z")
        const second = yield* startLoop()
        yield* TestClock.adjust("1 second")
        const afterRestart = (yield* firings("job")).slice(1)
        expect(afterRestart).toEqual(atRestart)
        // catch-ups are submitted now (13:30), not backdated
        for (const task of (yield* tasksOf("job")).filter((t) => DateTime.toEpochMillis(t.createdAt) > Date.parse("2025-06-02T13:00:00Z"))) {
          expect(DateTime.toEpochMillis(task.createdAt)).toBeGreaterThanOrEqual(Date.parse("2025-06-02T13:30:00Z"))
        }
        yield* stepTo("2025-06-02T13:59:59Z", 60_000)
        expect((yield* firings("job")).slice(1)).toEqual(atRestart) // nothing more until 14:00
        yield* at("2025-06-02T14:00:00Z")
        expect((yield* firings("job")).slice(1)).toEqual([...atRestart, "2025-06-02T14:00:00Z"])
        yield* Fiber.interrupt(second)
      }).pipe(Effect.provide(memoryEnv())))

  outage("skip", [])
  outage("once", ["2025-06-02T13:00:00Z"])
  outage("all", [
    "2025-06-02T09:00:00Z",
    "2025-06-02T10:00:00Z",
    "2025-06-02T11:00:00Z",
    "2025-06-02T12:00:00Z",
    "2025-06-02T13:00:00Z"
  ])

  it.effect("3b. `all` is bounded: after a long outage only the most recent missed_limit instants fire", () =>
    Effect.gen(function*() {
      yield* at("2025-06-02T00:00:30Z")
      const scheduler = yield* Scheduler
      yield* scheduler.create({ id: "minutely", taskType: "tick", cron: "* * * * *", missed: "all", missedLimit: 10 })
      yield* at("2025-06-02T05:00:30Z") // 300 instants missed, no scheduler running
      const loop = yield* startLoop()
      yield* TestClock.adjust("1 second")
      // the 10 most recent missed instants (04:50 … 04:59), then 05:00, which is on time (30 s late)
      const fired = yield* firings("tick")
      expect(fired.length).toBe(11)
      expect(new Set(fired).size).toBe(11)
      expect(fired[0]).toBe("2025-06-02T04:50:00Z")
      expect(fired[9]).toBe("2025-06-02T04:59:00Z")
      expect(fired[10]).toBe("2025-06-02T05:00:00Z")
      yield* Fiber.interrupt(loop)
    }).pipe(Effect.provide(memoryEnv())))

  it.effect("5a. a failed submit leaves last_run untouched and the firing is retried (one task in the end)", () =>
    Effect.gen(function*() {
      yield* at("2025-06-02T10:07:00Z")
      const scheduler = yield* Scheduler
      const injector = yield* FaultInjector
      yield* scheduler.create({ id: "hourly", taskType: "report", cron: "0 * * * *" })
      // The firing's idempotency record lands, then the task's create-only PUT fails (twice).
      yield* injector.addRule({ operation: "put", key: /^tasks\//, fault: Fault.unavailable, times: 2 })
      const loop = yield* startLoop({ retryDelay: "5 seconds" })
      yield* at("2025-06-02T11:00:00Z")
      expect(yield* firings("report")).toEqual([])
      expect(Option.isNone(yield* storedLastRun(injector.underlying, "hourly"))).toBe(true)
      yield* TestClock.adjust("5 seconds")
      expect(yield* firings("report")).toEqual([])
      expect(Option.isNone(yield* storedLastRun(injector.underlying, "hourly"))).toBe(true)
      yield* TestClock.adjust("5 seconds")
      expect(yield* firings("report")).toEqual(["2025-06-02T11:00:00Z"])
      const last = Option.getOrThrow(yield* storedLastRun(injector.underlying, "hourly"))
      expect(iso(last.lastRunAt)).toBe("2025-06-02T11:00:00Z")
      expect((yield* injector.injected).filter((f) => f.operation === "put").length).toBe(2)
      yield* stepTo("2025-06-02T11:59:00Z", 60_000)
      expect(yield* firings("report")).toEqual(["2025-06-02T11:00:00Z"])
      yield* Fiber.interrupt(loop)
    }).pipe(Effect.provide(schedulerEnv(FaultyStorage.layer().pipe(Layer.provideMerge(MemoryStorage.layer()))))))

  it.effect("5b. disabling stops firings at the next due instant, even before the loop re-reads the list", () =>
    Effect.gen(function*() {
      yield* at("2025-06-02T10:00:30Z")
      const scheduler = yield* Scheduler
      yield* scheduler.create({ id: "minutely", taskType: "tick", cron: "* * * * *" })
      const loop = yield* startLoop({ refreshInterval: "1 hour" }) // the cached due time must not fire a disabled schedule
      yield* at("2025-06-02T10:01:00Z")
      expect(yield* firings("tick")).toEqual(["2025-06-02T10:01:00Z"])
      yield* at("2025-06-02T10:01:30Z")
      const disabled = yield* scheduler.disable("minutely")
      expect(disabled.enabled).toBe(false)
      expect(yield* scheduler.nextRun("minutely")).toEqual(Option.none())
      yield* stepTo("2025-06-02T10:10:00Z", 1_000)
      expect(yield* firings("tick")).toEqual(["2025-06-02T10:01:00Z"])
      yield* Fiber.interrupt(loop)
    }).pipe(Effect.provide(memoryEnv())))

  it.effect("5c. with the default refresh, disable is honoured within one tick, and re-enabling resumes at the next instant without catching up the disabled period", () =>
    Effect.gen(function*() {
      yield* at("2025-06-02T10:00:30Z")
      const scheduler = yield* Scheduler
      yield* scheduler.create({ id: "minutely", taskType: "tick", cron: "* * * * *" })
      const loop = yield* startLoop()
      yield* stepTo("2025-06-02T10:02:30Z", 1_000)
      yield* scheduler.disable("minutely")
      yield* stepTo("2025-06-02T10:10:00Z", 1_000)
      expect(yield* firings("tick")).toEqual(["2025-06-02T10:01:00Z", "2025-06-02T10:02:00Z"])
      yield* scheduler.enable("minutely")
      yield* stepTo("2025-06-02T10:11:00Z", 1_000)
      expect(yield* firings("tick")).toEqual(["2025-06-02T10:01:00Z", "2025-06-02T10:02:00Z", "2025-06-02T10:11:00Z"])
      yield* Fiber.interrupt(loop)
    }).pipe(Effect.provide(memoryEnv())))

  it.effect("5d. deleting removes both objects and stops firings", () =>
    Effect.gen(function*() {
      yield* at("2025-06-02T10:00:30Z")
      const scheduler = yield* Scheduler
      const storage = yield* Storage
      yield* scheduler.create({ id: "minutely", taskType: "tick", cron: "* * * * *" })
      const loop = yield* startLoop()
      yield* at("2025-06-02T10:01:00Z")
      expect(Option.isSome(yield* storage.get(scheduleKey("minutely")))).toBe(true)
      expect(Option.isSome(yield* storage.get(scheduleLastRunKey("minutely")))).toBe(true)
      expect(yield* scheduler.delete("minutely")).toBe(true)
      expect(Option.isNone(yield* storage.get(scheduleKey("minutely")))).toBe(true)
      expect(Option.isNone(yield* storage.get(scheduleLastRunKey("minutely")))).toBe(true)
      expect(yield* scheduler.list).toEqual([])
      yield* stepTo("2025-06-02T10:05:00Z", 1_000)
      expect(yield* firings("tick")).toEqual(["2025-06-02T10:01:00Z"])
      expect(Option.isNone(yield* storage.get(scheduleLastRunKey("minutely")))).toBe(true)
      expect(yield* scheduler.delete("minutely")).toBe(false)
      yield* Fiber.interrupt(loop)
    }).pipe(Effect.provide(memoryEnv())))

  it.effect("6. an invalid cron or an unknown timezone is refused at create, naming the bad field; nothing is stored", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler
      const refuse = (cron: string, timezone?: string) =>
        Effect.flip(scheduler.create({ id: "bad", taskType: "x", cron, timezone }))
      const hour = yield* refuse("0 25 * * *")
      expect(hour._tag).toBe("InvalidCron")
      expect(hour.message).toContain("hour field \"25\"")
      expect(hour.message).toContain("0–23")
      const minute = yield* refuse("61 * * * *")
      expect(minute.message).toContain("minute field \"61\"")
      expect(minute.message).toContain("0–59")
      const seconds = yield* refuse("*/0 * * * * *")
      expect(seconds.message).toContain("second field")
      const weekday = yield* refuse("0 9 * * funday")
      expect(weekday.message).toContain("day-of-week field \"funday\"")
      const month = yield* refuse("0 9 1 13 *")
      expect(month.message).toContain("month field \"13\"")
      const count = yield* refuse("* * * *")
      expect(count.message).toContain("has 4 fields")
      const neverFires = yield* refuse("0 0 30 2 *")
      expect(neverFires.message).toContain("never fires")
      const zone = yield* refuse("0 9 * * *", "Mars/Olympus_Mons")
      expect(zone._tag).toBe("UnknownTimezone")
      expect(zone.message).toContain("Mars/Olympus_Mons")
      const id = yield* Effect.flip(scheduler.create({ id: "../x", taskType: "x", cron: "* * * * *" }))
      expect(id._tag).toBe("InvalidArgument")
      const update = yield* Effect.flip(
        Effect.zipRight(scheduler.create({ id: "ok", taskType: "x", cron: "* * * * *" }), scheduler.update("ok", { cron: "0 24 * * *" }))
      )
      expect(update.message).toContain("hour field \"24\"")
      expect((yield* scheduler.list).map((s) => [s.id, s.cron])).toEqual([["ok", "* * * * *"]])
      const exists = yield* Effect.flip(scheduler.create({ id: "ok", taskType: "x", cron: "0 * * * *" }))
      expect(exists._tag).toBe("ScheduleExists")
    }).pipe(Effect.provide(memoryEnv())))

  it.effect("two loops without leader election submit each 2-second instant exactly once", () =>
    Effect.gen(function*() {
      yield* at("2025-06-02T10:00:00.500Z")
      const scheduler = yield* Scheduler
      yield* scheduler.create({ id: "fast", taskType: "fast", cron: "*/2 * * * * *" })
      const a = yield* startLoop()
      const b = yield* startLoop()
      yield* stepTo("2025-06-02T10:00:30.500Z", 250)
      const fired = yield* firings("fast")
      expect(fired.length).toBe(15)
      expect(new Set(fired).size).toBe(15)
      expect(fired[0]).toBe("2025-06-02T10:00:02Z")
      yield* Effect.all([Fiber.interrupt(a), Fiber.interrupt(b)])
    }).pipe(Effect.provide(memoryEnv())))

  it.effect("trigger now submits at once without moving last_run; status shows last and next run", () =>
    Effect.gen(function*() {
      yield* at("2025-06-02T10:07:00Z")
      const scheduler = yield* Scheduler
      yield* scheduler.create({ id: "hourly", taskType: "report", cron: "0 * * * *", input: { n: 1 }, priority: 5 })
      const task = yield* scheduler.triggerNow("hourly")
      expect(task.input).toEqual({ n: 1 })
      expect(task.priority).toBe(5)
      expect(yield* scheduler.lastRun("hourly")).toEqual(Option.none())
      const status = yield* scheduler.status("hourly")
      expect(Option.map(status.nextRun, iso)).toEqual(Option.some("2025-06-02T11:00:00Z"))
      const missing = yield* Effect.flip(scheduler.triggerNow("nope"))
      expect(missing._tag).toBe("ScheduleNotFound")
    }).pipe(Effect.provide(memoryEnv())))
})

describe("Scheduler loop leader election (TestClock)", () => {
  it.effect("a standby takes over after the leader is cut off from the bucket; every hourly instant fires once", () =>
    Effect.gen(function*() {
      yield* at("2025-06-02T10:50:00Z")
      const memory = yield* MemoryStorage.make()
      const faulty = yield* FaultyStorage.make(memory)
      const stack = (storage: typeof memory) => schedulerEnv(Layer.succeed(Storage, storage))
      const leaderOpts = { ttl: "30 seconds" } as const
      const a = yield* Effect.fork(SchedulerLoop.run({ leader: { ...leaderOpts, holderId: "a" } }).pipe(Effect.provide(stack(faulty.storage))))
      yield* TestClock.adjust("1 second")
      const b = yield* Effect.fork(SchedulerLoop.run({ leader: { ...leaderOpts, holderId: "b" } }).pipe(Effect.provide(stack(memory))))
      yield* Effect.gen(function*() {
        yield* (yield* Scheduler).create({ id: "hourly", taskType: "report", cron: "0 * * * *" })
      }).pipe(Effect.provide(stack(memory)))
      yield* stepTo("2025-06-02T11:30:00Z", 60_000)
      const lease = yield* LeaderLease.make({ name: "scheduler", holderId: "observer" }).pipe(
        Effect.flatMap((l) => l.current),
        Effect.provide(stack(memory)),
        Effect.scoped
      )
      expect(Option.map(lease, (l) => l.holder)).toEqual(Option.some("a"))
      // a is cut off: every request it makes fails from now on
      yield* faulty.injector.addRule({ fault: Fault.unavailable, times: Infinity })
      yield* stepTo("2025-06-02T13:00:30Z", 60_000)
      const after = yield* Effect.provide(firings("report"), stack(memory))
      expect(after).toEqual(["2025-06-02T11:00:00Z", "2025-06-02T12:00:00Z", "2025-06-02T13:00:00Z"])
      const holder = yield* Effect.provide(
        Effect.flatMap(Storage, (s) => s.get(LeaderLease.leaderLeaseKey("scheduler"))),
        stack(memory)
      )
      expect(new TextDecoder().decode(Option.getOrThrow(holder).body)).toContain("\"holder\":\"b\"")
      yield* Effect.all([Fiber.interrupt(a), Fiber.interrupt(b)])
    }))
})
