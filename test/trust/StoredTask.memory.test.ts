/**
 * Nothing stored is trusted (issue 15 fix 12): a task body whose `id`, `shard`, `input_ref` or
 * `output_ref` does not belong to the key it is stored at is a `MalformedObject` naming that key —
 * for `get`, `list`, `history` and the worker — and the worker never writes a key built from it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Logger, Option, Ref, Stream } from "effect"
import { utf8 } from "../../src/domain/Codec.js"
import { parseIndexKey, taskKey } from "../../src/domain/Keys.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import { loadInput } from "../../src/protocol/Payloads.js"
import * as Worker from "../../src/programs/Worker.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { drive, hasStatus, queueLayer } from "../worker/support.js"

const textOf = (body: Uint8Array) => new TextDecoder().decode(body)

/** Stores `edit(body of task)` at the key of `atId` (in the shard that id names), with a ready marker. */
const plant = (fromId: string, atId: string, edit: (doc: Record<string, unknown>) => void) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const queue = yield* Queue
    const source = Option.getOrThrow(yield* queue.get(fromId))
    const found = Option.getOrThrow(yield* storage.get(taskKey(source.shard, source.id)))
    const doc = JSON.parse(textOf(found.body)) as Record<string, unknown>
    edit(doc)
    const shard = atId.slice(0, 1)
    const key = taskKey(shard, atId)
    yield* storage.put(key, utf8(JSON.stringify(doc)))
    yield* storage.put(readyMarkerKey({ ...source, id: atId, shard }), new Uint8Array(0))
    return key
  })

const otherId = (id: string) => `${id[0] === "a" ? "b" : "a"}${id.slice(1, -4)}beef`

describe("a stored task body is checked against its key", () => {
  it.effect("another task's id: get names the key, list reports it as malformed, the real task is untouched", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const real = yield* queue.submit("job", { n: 1 })
      const decoyId = otherId(real.id)
      const key = yield* plant(real.id, decoyId, () => {})
      const error = yield* Effect.flip(queue.get(decoyId))
      expect(error._tag).toBe("MalformedObject")
      expect(error.message).toContain(key)
      expect(error.message).toContain(`its id "${real.id}"`)
      const page = yield* queue.list({})
      expect(page.tasks.map((t) => t.id)).toEqual([real.id])
      expect(page.malformed.map((m) => m.key)).toEqual([key])
      expect(yield* Effect.flip(queue.history(decoyId))).toMatchObject({ _tag: "MalformedObject", key })
      expect(Option.getOrThrow(yield* queue.get(real.id)).id).toBe(real.id)
    }).pipe(Effect.provide(queueLayer())))

  it.effect("a hostile shard or id in the body is refused before any key is built from it", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const real = yield* queue.submit("job", {})
      const a = yield* plant(real.id, otherId(real.id), (d) => {
        d["id"] = otherId(real.id)
        d["shard"] = "../schedules/x"
      })
      const b = yield* plant(real.id, otherId(real.id).replace(/beef$/, "cafe"), (d) => {
        d["id"] = "../../x\"><img src=x onerror=alert(1)>"
      })
      const page = yield* queue.list({})
      expect(page.malformed.map((m) => m.key).sort()).toEqual([a, b].sort())
      expect(page.malformed.find((m) => m.key === a)!.message).toContain(`its shard "../schedules/x"`)
    }).pipe(Effect.provide(queueLayer())))

  it.effect("input_ref / output_ref naming any key but the task's own payload is malformed", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const real = yield* queue.submit("job", {})
      yield* storage.put("schedules/secret.json", utf8(JSON.stringify({ secret: true })))
      const decoyIn = otherId(real.id)
      const keyIn = yield* plant(real.id, decoyIn, (d) => {
        d["id"] = decoyIn
        d["shard"] = decoyIn[0]
        d["input"] = null
        d["input_ref"] = "schedules/secret.json"
      })
      const decoyOut = decoyIn.replace(/beef$/, "cafe")
      const keyOut = yield* plant(real.id, decoyOut, (d) => {
        d["id"] = decoyOut
        d["shard"] = decoyOut[0]
        d["output_ref"] = `payloads/${real.id}/output.json`
      })
      // another task's per-attempt output, and a lease id that is not one
      const decoyAttempt = decoyIn.replace(/beef$/, "f00d")
      const keyAttempt = yield* plant(real.id, decoyAttempt, (d) => {
        d["id"] = decoyAttempt
        d["shard"] = decoyAttempt[0]
        d["output_ref"] = `payloads/${real.id}/output-${real.id}.json`
      })
      const decoyPath = decoyIn.replace(/beef$/, "d00d")
      const keyPath = yield* plant(real.id, decoyPath, (d) => {
        d["id"] = decoyPath
        d["shard"] = decoyPath[0]
        d["output_ref"] = `payloads/${decoyPath}/output-../../schedules/secret.json`
      })
      for (const [id, key] of [[decoyAttempt, keyAttempt], [decoyPath, keyPath]] as const) {
        const error = yield* Effect.flip(queue.get(id))
        expect(error.message).toContain(key)
        expect(error.message).toContain("output_ref")
      }
      const inError = yield* Effect.flip(queue.get(decoyIn))
      expect(inError.message).toContain(keyIn)
      expect(inError.message).toContain(`input_ref "schedules/secret.json"`)
      const outError = yield* Effect.flip(queue.get(decoyOut))
      expect(outError.message).toContain(keyOut)
      expect(outError.message).toContain("output_ref")
      // and a task handed to the payload loader directly is checked too
      const forged = Option.getOrThrow(yield* queue.get(real.id))
      const loaded = yield* Effect.flip(loadInput({ ...forged, inputRef: "schedules/secret.json" } as typeof forged))
      expect(loaded._tag).toBe("MalformedObject")
    }).pipe(Effect.provide(queueLayer())))
})

describe("the worker and a planted task body", () => {
  it.scoped("skips it with one WARN naming the key, writes no key built from it, runs the real task once", () =>
    Effect.gen(function*() {
      const queue = yield* Queue
      const storage = yield* Storage
      const warnings = yield* Ref.make<Array<string>>([])
      const real = yield* queue.submit("job", {})
      const decoyId = otherId(real.id)
      const key = yield* plant(real.id, decoyId, (d) => {
        d["id"] = decoyId
        d["shard"] = "../../x\"><img src=x>"
      })
      const runs = yield* Ref.make(0)
      yield* Worker.make({ wakeUp: false }, [Worker.handler("job", () => Ref.update(runs, (n) => n + 1))]).pipe(
        Effect.provide(Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ logLevel, message }) => {
            if (logLevel._tag === "Warning") Effect.runSync(Ref.update(warnings, (w) => [...w, String(message)]))
          })
        ))
      )
      yield* drive(hasStatus(real.id, "completed"))
      expect(yield* Ref.get(runs)).toBe(1)
      const keys = Chunk.toReadonlyArray(yield* Stream.runCollect(storage.listAll(""))).map((m) => m.key)
      expect(keys.filter((k) => k.includes("..") || k.includes("<"))).toEqual([])
      for (const k of keys.filter((k) => k.startsWith("ready/") || k.startsWith("leases/"))) {
        expect(parseIndexKey(k)).toBeDefined()
      }
      // the claim path warns once (the embedded monitor's sweeper says so once more, in its own words)
      const about = (yield* Ref.get(warnings)).filter((w) => w.includes(key) && w.startsWith("skipping a malformed task"))
      expect(about).toHaveLength(1)
      expect(about[0]).toContain("is not the shard its key names")
    }).pipe(Effect.provide(queueLayer())))
})
