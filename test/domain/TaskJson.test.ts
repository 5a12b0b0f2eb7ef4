/**
 * domain/TaskJson.ts against the Schema it stands in for: the same bytes when encoding, the same
 * task (fields, key order, equality) when decoding, and never a task where the Schema finds an
 * error: on the golden documents, on random valid tasks (the Schema's own Arbitrary), on random
 * breakages of valid documents, on the malformed fixtures and on invalid tasks built in memory.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, DateTime, Effect, Either, FastCheck as fc, Schema } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import { decodeTask, Task, TaskEvent } from "../../src/domain/Task.js"
import { decodeTaskBody, encodeTaskBody, eventFields, taskFields, taskFromJson, taskToJson } from "../../src/domain/TaskJson.js"

const dir = join(import.meta.dirname, "../fixtures/tasks")
const encodeWithSchema = Schema.encodeSync(Task)
const decodeWithSchema = Schema.decodeUnknownEither(Task)
const schemaText = (task: Task): string => JSON.stringify(encodeWithSchema(task))

/** The fast decode agrees with the Schema: a task only where the Schema gives the same one. */
const expectSameDecode = (json: unknown): Task | undefined => {
  const fast = taskFromJson(json)
  const slow = decodeWithSchema(json)
  if (fast !== undefined) {
    expect(Either.isRight(slow), `the Schema refuses what the fast path decoded: ${JSON.stringify(json)}`).toBe(true)
    const expected = Either.getOrThrow(slow)
    expect(fast).toBeInstanceOf(Task)
    expect(fast).toEqual(expected)
    expect(Object.keys(fast)).toEqual(Object.keys(expected))
    expect(schemaText(fast)).toBe(schemaText(expected))
  }
  return fast
}

const usesSchemaOnlyFields = (t: Task) => t.followUps !== undefined || t.flow !== undefined || t.parentWaits !== undefined

describe("TaskJson", () => {
  it("lists every field of Task and TaskEvent, in their order", () => {
    expect(taskFields.map((f) => f.name)).toEqual(Object.keys(Task.fields))
    expect(eventFields.map((f) => f.name)).toEqual(Object.keys(TaskEvent.fields))
  })

  const golden = readdirSync(dir).filter((f) => f.endsWith(".json")).sort()
  for (const file of golden) {
    it(`${file}: decoded as the Schema does, re-encoded to the same bytes`, () => {
      const json: unknown = JSON.parse(readFileSync(join(dir, file), "utf8"))
      const task = expectSameDecode(json)
      expect(task, "the fast path decodes a golden document").toBeDefined()
      expect(JSON.stringify(taskToJson(task!))).toBe(schemaText(task!))
      expect(new TextDecoder().decode(encodeTaskBody(task!))).toBe(schemaText(task!))
    })
  }

  /**
   * A random valid task without the nested records the fast path leaves to the Schema, and with an
   * input (a body without one decodes, inputless, only through the Schema; we never write one).
   */
  const plainTask = Arbitrary.make(Task).map((task) => {
    const { flow: _flow, followUps: _followUps, parentWaits: _parentWaits, ...rest } = task
    return new Task({ ...rest, input: rest.input === undefined ? null : rest.input }, true)
  })

  it.prop("random valid tasks: the same bytes as the Schema, and back to the same task", [plainTask], ([task]) => {
    const text = schemaText(task)
    expect(JSON.stringify(taskToJson(task))).toBe(text)
    expect(expectSameDecode(JSON.parse(text)), "the fast path decodes a task without flow records").toBeDefined()
  }, { fastCheck: { numRuns: 25 } })

  it.prop("random tasks with flow records: left to the Schema, same bytes", [Arbitrary.make(Task)], ([task]) => {
    const text = schemaText(task)
    expect(JSON.stringify(taskToJson(task))).toBe(text)
    const decoded = expectSameDecode(JSON.parse(text))
    if (usesSchemaOnlyFields(task)) expect(decoded).toBeUndefined()
  }, { fastCheck: { numRuns: 10 } })

  /** Values a broken document may hold where another was: each tried at every key. */
  const strange: ReadonlyArray<unknown> = [
    null, -1, 1.5, 0, 2, -0.5, Number.MAX_SAFE_INTEGER + 2, Number.POSITIVE_INFINITY, "", "x", "pending", "2024-01-15T10:30:00Z",
    "2024-01-15", "not a date", true, false, [], {}, ["a"], [1], [null], [{}], { a: 1 }
  ]
  const withEachBreak = (json: Record<string, unknown>, visit: (broken: unknown) => void): number => {
    let n = 0
    const targets: Array<(doc: Record<string, unknown>) => Record<string, unknown> | undefined> = [
      (doc) => doc,
      (doc) => doc["retry_policy"] as Record<string, unknown>,
      (doc) => (doc["events"] as Array<Record<string, unknown>> | undefined)?.[0]
    ]
    for (const at of targets) {
      const keys = Object.keys(at(json) ?? {})
      for (const key of [...keys, "parent_id", "follow_ups", "flow", "parent_waits", "worker_id"]) {
        for (const value of [undefined, ...strange]) {
          const doc = JSON.parse(JSON.stringify(json)) as Record<string, unknown>
          const target = at(doc)
          if (target === undefined) continue
          if (value === undefined) delete target[key]
          else target[key] = value
          visit(doc)
          n++
        }
      }
    }
    return n
  }

  it("broken documents (every key of the golden ones, set to each strange value or removed): never a task the Schema refuses", () => {
    let tried = 0
    for (const file of ["completed-with-extras.json", "running-leased.json", "failed.json"]) {
      tried += withEachBreak(JSON.parse(readFileSync(join(dir, file), "utf8")), expectSameDecode)
    }
    expect(tried).toBeGreaterThan(2000)
  })

  const breakage = fc.record({ task: plainTask, pick: fc.nat(), value: fc.jsonValue() })
  it.prop("random breakages of random tasks: never a task the Schema refuses", [breakage], ([{ task, pick, value }]) => {
    const json = JSON.parse(schemaText(task)) as Record<string, unknown>
    const keys = Object.keys(json)
    json[keys[pick % keys.length]!] = value
    expectSameDecode(json)
  }, { fastCheck: { numRuns: 25 } })

  it("the malformed fixtures: the same error as decodeTask", () =>
    Effect.gen(function*() {
      for (const file of readdirSync(join(dir, "malformed"))) {
        const body = new Uint8Array(readFileSync(join(dir, "malformed", file)))
        const key = "tasks/a/a0b1c2d3-e4f5-4061-8728-394a5b6c7d8e.json"
        const expected = yield* Effect.flip(decodeTask(key, body))
        expect(yield* Effect.flip(decodeTaskBody(key, body)), file).toEqual(expected)
      }
    }).pipe(Effect.runPromise))

  it("a body at the wrong key: the same error; a moved task takes its key's shard", () =>
    Effect.gen(function*() {
      const body = new Uint8Array(readFileSync(join(dir, "completed-with-extras.json")))
      const other = "tasks/a/00000000-0000-4000-8000-000000000000.json"
      expect(yield* Effect.flip(decodeTaskBody(other, body))).toEqual(yield* Effect.flip(decodeTask(other, body)))
      const moved = "tasks/a0/a0b1c2d3-e4f5-4061-8728-394a5b6c7d8e.json"
      const task = yield* decodeTaskBody(moved, body)
      expect(task.shard).toBe("a0")
      expect(task).toEqual(yield* decodeTask(moved, body))
    }).pipe(Effect.runPromise))

  it.prop(
    "timestamps anywhere in DateTime's range, in and across minutes (the formatted minute is kept): the same text as the Schema",
    [fc.array(fc.oneof(fc.integer({ min: -8.64e15, max: 8.64e15 }), fc.integer({ min: -200_000, max: 200_000 })), { minLength: 4, maxLength: 12 })],
    ([millis]) => {
      const body = readFileSync(join(dir, "completed-with-extras.json"), "utf8")
      const valid = taskFromJson(JSON.parse(body))!
      // each time, then the next millisecond and the next minute: the kept minute is reused and left
      for (const ms of millis.flatMap((t) => [t, t + 1, t + 59_999, t + 60_000].filter((m) => Math.abs(m) <= 8.64e15))) {
        const at = DateTime.unsafeMake(ms) as DateTime.Utc
        const task = new Task({ ...valid, createdAt: at, updatedAt: at, leaseExpiresAt: at }, true)
        expect(JSON.stringify(taskToJson(task))).toBe(schemaText(task))
      }
    },
    { fastCheck: { numRuns: 50 } }
  )

  it("an invalid task in memory is refused as the Schema refuses it (a defect, never written)", () => {
    const body = readFileSync(join(dir, "completed-with-extras.json"), "utf8")
    const valid = taskFromJson(JSON.parse(body))!
    const broken: ReadonlyArray<Task> = [
      new Task({ ...valid, retryCount: -1 }, true),
      new Task({ ...valid, attempt: 1.5 }, true),
      new Task({ ...valid, priority: 0.5 }, true),
      new Task({ ...valid, status: "sleeping" as Task["status"] }, true),
      new Task({ ...valid, taskType: 7 as unknown as string }, true),
      new Task({ ...valid, maxReschedules: undefined }, true),
      new Task({ ...valid, createdAt: new Date() as unknown as DateTime.Utc }, true),
      new Task({ ...valid, leaseId: undefined as unknown as null }, true),
      new Task({ ...valid, retryPolicy: new RetryPolicy({ ...valid.retryPolicy, multiplier: 0.5 }, true) }, true),
      new Task({ ...valid, retryPolicy: { ...valid.retryPolicy } as RetryPolicy }, true),
      new Task({ ...valid, events: [new TaskEvent({ ...valid.events![0]!, attempt: -2 }, true)] }, true),
      new Task({ ...valid, parentId: "not-a-uuid" }, true)
    ]
    const outcome = (encode: () => unknown) => {
      try {
        return JSON.stringify(encode())
      } catch {
        return "threw"
      }
    }
    for (const task of broken) expect(outcome(() => taskToJson(task))).toBe(outcome(() => encodeWithSchema(task)))
    // the ones the Schema itself refuses
    expect(broken.map((t) => outcome(() => taskToJson(t))).filter((o) => o === "threw").length).toBeGreaterThanOrEqual(broken.length - 1)
  })
})
