/**
 * Golden task documents in the reference's JSON format (test/fixtures/tasks): each decodes and
 * re-encodes field for field; reference timestamps with micro/nanoseconds decode; malformed
 * documents give a typed MalformedObject naming the key and the field.
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect, Exit, Schema } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { decodeObject, encodeObject } from "../../src/domain/Codec.js"
import { Task } from "../../src/domain/Task.js"
import { allStatuses } from "../../src/domain/TaskStatus.js"

const dir = join(import.meta.dirname, "../fixtures/tasks")
const golden = readdirSync(dir).filter((f) => f.endsWith(".json") && f !== "reference-precision.json").sort()
const read = (path: string): Uint8Array => new Uint8Array(readFileSync(join(dir, path)))
const keyOf = (file: string) => `tasks/x/${file}`

describe("golden task documents", () => {
  it("cover every status, with optional fields both absent and present", () => {
    const docs = golden.map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Record<string, unknown>)
    expect(golden.length).toBeGreaterThanOrEqual(6)
    expect(new Set(docs.map((d) => d["status"]))).toEqual(new Set(allStatuses))
    for (
      const field of [
        "max_reschedules",
        "cancelled_at",
        "cancelled_by",
        "expires_at",
        "expired_at",
        "input_ref",
        "output_ref",
        "priority",
        "tags",
        "events",
        "progress",
        "traceparent"
      ]
    ) {
      expect(docs.some((d) => field in d), `${field} present somewhere`).toBe(true)
      expect(docs.some((d) => !(field in d)), `${field} absent somewhere`).toBe(true)
    }
    expect(docs.some((d) => d["input"] === null && typeof d["input_ref"] === "string")).toBe(true)
  })

  for (const file of golden) {
    it.effect(`${file} decodes and re-encodes field for field`, () =>
      Effect.gen(function*() {
        const body = read(file)
        const task = yield* decodeObject(Task, keyOf(file), body)
        const original: unknown = JSON.parse(new TextDecoder().decode(body))
        const reencoded: unknown = JSON.parse(new TextDecoder().decode(encodeObject(Task, task)))
        expect(reencoded).toEqual(original)
        // Key order is not part of the format, but every key must survive.
        expect(Object.keys(reencoded as object).sort()).toEqual(Object.keys(original as object).sort())
        // And decoding the re-encoded document gives the same task.
        expect(yield* decodeObject(Task, keyOf(file), encodeObject(Task, task))).toEqual(task)
      }))
  }

  it.effect("spot checks: snake_case maps to camelCase, timestamps are UTC instants", () =>
    Effect.gen(function*() {
      const running = yield* decodeObject(Task, "k", read("running-leased.json"))
      expect(running.taskType).toBe("reports.daily")
      expect(running.maxReschedules).toBe(10)
      expect(running.retryPolicy.multiplier).toBe(1.5)
      expect(running.leaseExpiresAt && DateTime.formatIso(running.leaseExpiresAt)).toBe("2024-01-15T10:32:02.456Z")
      const archived = yield* decodeObject(Task, "k", read("archived-offloaded.json"))
      expect(archived.input).toBeNull()
      expect(archived.inputRef).toBe("payloads/deadbeef-0000-4000-8000-000000000001/input.json")
      const pending = yield* decodeObject(Task, "k", read("pending-minimal.json"))
      expect(pending.maxReschedules).toBeUndefined()
      expect(pending.cancelledAt).toBeUndefined()
      const extras = yield* decodeObject(Task, "k", read("completed-with-extras.json"))
      expect(extras.events?.map((e) => e.to)).toEqual(["pending", "running", "completed"])
      expect(extras.priority).toBe(-5)
    }))

  it.effect("a reference timestamp with micro- or nanoseconds decodes (to the millisecond)", () =>
    Effect.gen(function*() {
      const task = yield* decodeObject(Task, "k", read("reference-precision.json"))
      expect(DateTime.formatIso(task.createdAt)).toBe("2024-01-15T10:30:00.123Z")
      expect(DateTime.formatIso(task.updatedAt)).toBe("2024-01-15T10:30:00.123Z")
      expect(DateTime.formatIso(task.availableAt)).toBe("2024-01-15T10:30:00.000Z")
      // We write our canonical millisecond form.
      const out = JSON.parse(new TextDecoder().decode(encodeObject(Task, task))) as Record<string, unknown>
      expect(out["created_at"]).toBe("2024-01-15T10:30:00.123Z")
    }))

  it.effect("our canonical encoding writes timestamps with millisecond precision", () =>
    Effect.gen(function*() {
      const encoded = Schema.encodeSync(Schema.DateTimeUtc)(DateTime.unsafeMake(Date.UTC(2024, 0, 15, 10, 30, 0, 5)))
      expect(encoded).toBe("2024-01-15T10:30:00.005Z")
    }))
})

describe("malformed task documents", () => {
  const cases: ReadonlyArray<readonly [file: string, mentions: string]> = [
    ["unknown-status.json", 'field "status"'],
    ["missing-task-type.json", 'field "task_type"'],
    ["timeout-as-string.json", 'field "timeout_seconds"'],
    ["negative-retry-count.json", 'field "retry_count"'],
    ["bad-timestamp.json", 'field "created_at"'],
    ["jitter-out-of-range.json", 'field "retry_policy.jitter_percent"'],
    ["fractional-attempt.json", 'field "attempt"'],
    ["truncated.json", "not valid JSON"]
  ]

  it("every malformed fixture has a case", () => {
    expect(readdirSync(join(dir, "malformed")).sort()).toEqual(cases.map(([f]) => f).sort())
  })

  for (const [file, mentions] of cases) {
    it.effect(`${file} → MalformedObject naming the key and ${mentions}`, () =>
      Effect.gen(function*() {
        const key = `tasks/0/${file}`
        const exit = yield* Effect.exit(decodeObject(Task, key, read(join("malformed", file))))
        expect(Exit.isFailure(exit)).toBe(true)
        const error = yield* Effect.flip(decodeObject(Task, key, read(join("malformed", file))))
        expect(error._tag).toBe("MalformedObject")
        expect(error.key).toBe(key)
        expect(error.message).toContain(key)
        expect(error.message).toContain(mentions)
      }))
  }

  it.effect("bytes that are not UTF-8 → MalformedObject", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(decodeObject(Task, "tasks/0/bin.json", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])))
      expect(error._tag).toBe("MalformedObject")
      expect(error.message).toContain("tasks/0/bin.json")
      expect(error.message).toContain("UTF-8")
    }))
})
