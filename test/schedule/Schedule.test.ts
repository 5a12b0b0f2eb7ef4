/**
 * The pure schedule domain: the records in the reference's JSON, cron parsing, next runs, the
 * missed-window plans, the firing identity and the deterministic jitter.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Option, Schema } from "effect"
import { encodeObject } from "../../src/domain/Codec.js"
import {
  applyUpdate,
  dueAt,
  firingKey,
  fromSpec,
  jitterMillis,
  LastRun,
  nextRuns,
  parseCron,
  planFirings,
  Schedule
} from "../../src/domain/Schedule.js"
import type { MissedPolicy } from "../../src/domain/Schedule.js"

const t = (iso: string) => DateTime.unsafeMake(iso)
const isos = (xs: ReadonlyArray<DateTime.Utc>) => xs.map((x) => DateTime.formatIso(x).replace(".000Z", "Z"))
const json = (value: unknown) => JSON.parse(new TextDecoder().decode(encodeObject(Schedule, value as Schedule)))

const referenceSchedule = {
  id: "nightly-report",
  task_type: "reports.nightly",
  input: { format: "pdf" },
  cron: "0 2 * * *",
  enabled: true,
  timeout_seconds: null,
  max_retries: 5,
  created_at: "2025-06-01T10:00:00Z",
  updated_at: "2025-06-01T10:00:00Z"
}

const schedule = (fields: Partial<ConstructorParameters<typeof Schedule>[0]> = {}) =>
  new Schedule({
    id: "s",
    taskType: "job",
    input: {},
    cron: "0 * * * *",
    enabled: true,
    createdAt: t("2025-06-02T07:30:00Z"),
    updatedAt: t("2025-06-02T07:30:00Z"),
    ...fields
  })

const lastRunAt = (iso: string) =>
  Option.some(new LastRun({ scheduleId: "s", lastRunAt: t(iso), lastTaskId: "x", nextRunAt: t(iso) }))

describe("Schedule records", () => {
  it("a schedule written by the reference decodes, and re-encodes with the reference's fields only", () => {
    const decoded = Schema.decodeUnknownSync(Schedule)(referenceSchedule)
    expect(decoded.taskType).toBe("reports.nightly")
    expect(decoded.timeoutSeconds).toBeUndefined()
    expect(decoded.maxRetries).toBe(5)
    expect(decoded.timezone).toBeUndefined()
    const { timeout_seconds: _, ...rest } = referenceSchedule
    expect(json(decoded)).toEqual({ ...rest, created_at: "2025-06-01T10:00:00.000Z", updated_at: "2025-06-01T10:00:00.000Z" })
  })

  it("our fields are snake_case and optional; a missing `enabled` means enabled", () => {
    const { enabled: _, ...withoutEnabled } = referenceSchedule
    expect(Schema.decodeUnknownSync(Schedule)(withoutEnabled).enabled).toBe(true)
    const ours = fromSpec({
      id: "berlin",
      taskType: "t",
      cron: "0 9 * * *",
      timezone: "Europe/Berlin",
      missed: "all",
      missedLimit: 10,
      jitterSeconds: 30,
      priority: 7,
      ttlSeconds: 600,
      tags: ["a"]
    }, t("2025-06-01T10:00:00Z"))
    const encoded = json(ours)
    expect(encoded).toMatchObject({
      timezone: "Europe/Berlin",
      missed: "all",
      missed_limit: 10,
      jitter_seconds: 30,
      priority: 7,
      ttl_seconds: 600,
      tags: ["a"],
      active_since: "2025-06-01T10:00:00.000Z",
      input: {}
    })
    expect(Schema.decodeUnknownSync(Schedule)(encoded)).toEqual(ours)
  })

  it("the last-run record has the reference's four fields", () => {
    const encoded = JSON.parse(new TextDecoder().decode(encodeObject(LastRun, new LastRun({
      scheduleId: "s",
      lastRunAt: t("2025-06-02T11:00:00Z"),
      lastTaskId: "0b6f7c1e-1111-4222-8333-944455556666",
      nextRunAt: t("2025-06-02T12:00:00Z")
    }))))
    expect(Object.keys(encoded).sort()).toEqual(["last_run_at", "last_task_id", "next_run_at", "schedule_id"])
  })
})

describe("cron", () => {
  it.effect("5 fields, 6 with seconds, names and ranges; UTC by default whatever the host's zone", () =>
    Effect.gen(function*() {
      const weekdays = yield* parseCron("30 9 * * mon-fri")
      expect(isos(nextRuns(weekdays, t("2025-06-06T10:00:00Z"), 2))).toEqual(["2025-06-09T09:30:00Z", "2025-06-10T09:30:00Z"])
      const seconds = yield* parseCron("*/15 * * * * *")
      expect(isos(nextRuns(seconds, t("2025-06-06T10:00:00.200Z"), 3))).toEqual([
        "2025-06-06T10:00:15Z",
        "2025-06-06T10:00:30Z",
        "2025-06-06T10:00:45Z"
      ])
      const sunday7 = yield* parseCron("0 0 * * 7")
      expect(isos(nextRuns(sunday7, t("2025-06-02T00:00:00Z"), 1))).toEqual(["2025-06-08T00:00:00Z"])
    }))

  it.effect("Europe/Berlin: 09:00 local is 08:00 UTC in winter and 07:00 UTC in summer", () =>
    Effect.gen(function*() {
      const cron = yield* parseCron("0 9 * * *", "Europe/Berlin")
      expect(isos(nextRuns(cron, t("2025-03-29T12:00:00Z"), 2))).toEqual(["2025-03-30T07:00:00Z", "2025-03-31T07:00:00Z"])
      expect(isos(nextRuns(cron, t("2025-10-25T12:00:00Z"), 2))).toEqual(["2025-10-26T08:00:00Z", "2025-10-27T08:00:00Z"])
    }))

  it("the firing identity is the schedule id and the instant's epoch seconds", () => {
    expect(firingKey("nightly", t("2025-06-02T11:00:00Z"))).toBe("schedule:nightly:1748862000")
  })
})

describe("planFirings", () => {
  const plan = (missed: MissedPolicy | undefined, last: string | undefined, now: string) =>
    planFirings({
      schedule: schedule(missed === undefined ? {} : { missed }),
      cron: Effect.runSync(parseCron("0 * * * *")),
      lastRun: last === undefined ? Option.none() : lastRunAt(last),
      now: t(now)
    })

  it("a new schedule is not due until its first instant after creation (created_at is the baseline)", () => {
    const p = plan(undefined, undefined, "2025-06-02T07:59:59Z")
    expect(p.firings).toEqual([])
    expect(Option.map(p.nextDueAt, (d) => isos([d])[0])).toEqual(Option.some("2025-06-02T08:00:00Z"))
    expect(isos(plan(undefined, undefined, "2025-06-02T08:00:00Z").firings)).toEqual(["2025-06-02T08:00:00Z"])
  })

  it("down from 09:00 to 13:30 (last run 08:00): skip → none, once → the 13:00 instant, all → 09:00 … 13:00", () => {
    const skip = plan("skip", "2025-06-02T08:00:00Z", "2025-06-02T13:30:00Z")
    expect(skip.firings).toEqual([])
    expect(Option.map(skip.nextDueAt, (d) => isos([d])[0])).toEqual(Option.some("2025-06-02T14:00:00Z"))
    expect(isos(plan("once", "2025-06-02T08:00:00Z", "2025-06-02T13:30:00Z").firings)).toEqual(["2025-06-02T13:00:00Z"])
    expect(isos(plan(undefined, "2025-06-02T08:00:00Z", "2025-06-02T13:30:00Z").firings)).toEqual(["2025-06-02T13:00:00Z"])
    const all = plan("all", "2025-06-02T08:00:00Z", "2025-06-02T13:30:00Z")
    expect(isos(all.firings)).toEqual([
      "2025-06-02T09:00:00Z",
      "2025-06-02T10:00:00Z",
      "2025-06-02T11:00:00Z",
      "2025-06-02T12:00:00Z",
      "2025-06-02T13:00:00Z"
    ])
    expect(Option.map(all.nextDueAt, (d) => isos([d])[0])).toEqual(Option.some("2025-06-02T14:00:00Z"))
  })

  it("an instant picked up a little late (within the lateness bound) fires under every policy, even skip", () => {
    expect(isos(plan("skip", "2025-06-02T08:00:00Z", "2025-06-02T09:00:40Z").firings)).toEqual(["2025-06-02T09:00:00Z"])
    expect(plan("skip", "2025-06-02T08:00:00Z", "2025-06-02T09:01:01Z").firings).toEqual([])
  })

  it("a last run written by the reference (wall time of the submit) gives the next instant", () => {
    expect(plan(undefined, "2025-06-02T10:00:05Z", "2025-06-02T10:30:00Z").firings).toEqual([])
    expect(isos(plan(undefined, "2025-06-02T10:00:05Z", "2025-06-02T11:00:00Z").firings)).toEqual(["2025-06-02T11:00:00Z"])
  })

  it("jitter is deterministic per firing, within [0, jitter), and delays when the firing is due", () => {
    const s = schedule({ jitterSeconds: 600 })
    const instants = Array.from({ length: 50 }, (_, i) => t(new Date(Date.parse("2025-06-02T00:00:00Z") + i * 3_600_000).toISOString()))
    const offsets = instants.map((i) => jitterMillis(s, i))
    expect(offsets.every((o) => o >= 0 && o < 600_000)).toBe(true)
    expect(new Set(offsets).size).toBeGreaterThan(40)
    expect(instants.map((i) => jitterMillis(schedule({ jitterSeconds: 600 }), i))).toEqual(offsets)
    const nine = t("2025-06-02T09:00:00Z")
    const due = dueAt(s, nine)
    const cron = Effect.runSync(parseCron("0 * * * *"))
    const before = planFirings({ schedule: s, cron, lastRun: lastRunAt("2025-06-02T08:00:00Z"), now: DateTime.subtract(due, { millis: 1 }) })
    expect(before.firings).toEqual([])
    expect(before.nextDueAt).toEqual(Option.some(due))
    const atDue = planFirings({ schedule: s, cron, lastRun: lastRunAt("2025-06-02T08:00:00Z"), now: due })
    expect(isos(atDue.firings)).toEqual(["2025-06-02T09:00:00Z"])
  })

  it("re-enabling or changing the cron moves the baseline to now; other updates keep it", () => {
    const s = schedule({ enabled: false, activeSince: t("2025-06-02T07:30:00Z") })
    const now = t("2025-06-02T12:10:00Z")
    expect(applyUpdate(s, { enabled: true }, now).activeSince).toEqual(now)
    expect(applyUpdate(schedule(), { cron: "0 */2 * * *" }, now).activeSince).toEqual(now)
    const kept = applyUpdate(schedule({ activeSince: t("2025-06-02T07:30:00Z") }), { input: { a: 1 }, priority: null }, now)
    expect(kept.activeSince).toEqual(t("2025-06-02T07:30:00Z"))
    expect(kept.input).toEqual({ a: 1 })
    expect(kept.updatedAt).toEqual(now)
  })
})
