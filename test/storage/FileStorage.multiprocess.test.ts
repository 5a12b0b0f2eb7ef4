/**
 * FileStorage across OS processes: several `node` processes race CAS and create-only writes on
 * one directory; and a lock left by a killed process is recovered.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Option, Stream } from "effect"
import * as FileStorage from "../../src/layers/FileStorage.js"
import { track } from "../support/processes.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const workerScript = path.join(here, "support", "fileStorageWorker.ts")
const repoRoot = path.resolve(here, "..", "..")
const encoder = new TextEncoder()
const decoder = new TextDecoder()

interface Spawned {
  readonly child: ChildProcess
  /** Each stdout line, as a stream. */
  readonly lines: Stream.Stream<string, Error>
  readonly exit: Effect.Effect<number | null>
}

const spawnWorker = (args: ReadonlyArray<string>): Effect.Effect<Spawned> =>
  Effect.sync(() => {
    const child = spawn(process.execPath, ["--import", "tsx", workerScript, ...args], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "inherit"]
    })
    // stopped after the test (SIGTERM, then SIGKILL) if it is still running then: test/support/setup.ts
    track(child)
    const lines = Stream.async<string, Error>((emit) => {
      let buffer = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        buffer += chunk.toString("utf8")
        let nl = buffer.indexOf("\n")
        while (nl >= 0) {
          void emit.single(buffer.slice(0, nl))
          buffer = buffer.slice(nl + 1)
          nl = buffer.indexOf("\n")
        }
      })
      child.stdout!.on("end", () => void emit.end())
      child.on("error", (e) => void emit.fail(e))
    })
    const exit = Effect.async<number | null>((resume) => {
      if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.succeed(child.exitCode))
      child.once("exit", (code) => resume(Effect.succeed(code)))
    })
    return { child, lines, exit }
  })

interface RaceReport {
  readonly worker: string
  readonly casWins: ReadonlyArray<number>
  readonly createWins: ReadonlyArray<number>
  readonly conflicts: number
  readonly otherErrors: ReadonlyArray<string>
}

describe("FileStorage across processes", () => {
  it.live("3 processes race CAS and create-only for 40 rounds: one winner per round, no lost increments", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(path.join(tmpdir(), "buquet-file-mp-"))
      const storage = yield* FileStorage.make(dir)
      const rounds = 40
      const increments = 40
      const workers = 3
      yield* Effect.forEach(Array.from({ length: rounds }, (_, r) => r), (r) =>
        storage.put(`rounds/${r}`, encoder.encode("start"), { ifNoneMatch: "*" }), { discard: true })
      yield* storage.put("counter", encoder.encode("0"))

      const spawned = yield* Effect.forEach(Array.from({ length: workers }, (_, i) => i), (i) =>
        spawnWorker(["race", dir, `w${i}`, String(rounds), String(increments)]))
      // Each worker prints "ready" and then its report; start them together once all are ready.
      const outputs = yield* Effect.forEach(spawned, (s) => Stream.toPull(s.lines), { concurrency: "unbounded" }).pipe(
        Effect.flatMap((pulls) =>
          Effect.gen(function*() {
            for (const pull of pulls) yield* pull
            yield* storage.put("go", new Uint8Array(0))
            return yield* Effect.forEach(pulls, (pull) => pull, { concurrency: "unbounded" })
          })
        ),
        Effect.scoped
      )
      const reports = outputs.map((chunk) => JSON.parse(Chunk.unsafeHead(chunk)) as RaceReport)
      const codes = yield* Effect.forEach(spawned, (s) => s.exit)
      expect(codes).toEqual([0, 0, 0])

      for (const report of reports) expect(report.otherErrors).toEqual([])
      for (let r = 0; r < rounds; r++) {
        const casWinners = reports.filter((rep) => rep.casWins.includes(r)).map((rep) => rep.worker)
        expect(casWinners.length).toBe(1)
        const stored = Option.getOrThrow(yield* storage.get(`rounds/${r}`))
        expect(decoder.decode(stored.body)).toBe(`winner ${casWinners[0]!}`)
        const creators = reports.filter((rep) => rep.createWins.includes(r)).map((rep) => rep.worker)
        expect(creators.length).toBe(1)
        expect(decoder.decode(Option.getOrThrow(yield* storage.get(`created/${r}`)).body)).toBe(`creator ${creators[0]!}`)
      }
      // Every successful CAS increment counted: mutual exclusion held across processes.
      const counter = Option.getOrThrow(yield* storage.get("counter"))
      expect(decoder.decode(counter.body)).toBe(String(workers * increments))
      // The processes really contended (otherwise this test proves nothing).
      expect(reports.reduce((n, rep) => n + rep.conflicts, 0)).toBeGreaterThan(0)
    }), 120_000)

  it.live("a lock left by a killed process is recovered; a live holder is waited for", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(path.join(tmpdir(), "buquet-file-lock-"))
      const storage = yield* FileStorage.make(dir)
      const key = "tasks/a/t1.json"
      const e1 = yield* storage.put(key, encoder.encode("v1"))
      const lockFile = path.join(dir, "tasks", "a", `${FileStorage.encodeSegment("t1.json")}.lock`)
      mkdirSync(path.dirname(lockFile), { recursive: true })

      // A live process holds the lock: the CAS waits for it …
      const holder = yield* spawnWorker(["hold-lock", lockFile, "0"])
      const held = yield* Stream.runHead(holder.lines)
      expect(held).toEqual(Option.some("held"))
      // A store that waits only briefly gives up with StorageUnavailable rather than break a live lock.
      const impatient = yield* FileStorage.make(dir, { lockTimeout: "200 millis" })
      const gaveUp = yield* Effect.either(impatient.put(key, encoder.encode("never"), { ifMatch: e1 }))
      expect(Either.isLeft(gaveUp) && gaveUp.left._tag).toBe("StorageUnavailable")
      const cas = yield* Effect.fork(Effect.either(storage.put(key, encoder.encode("v2"), { ifMatch: e1 })))
      // … still waiting while the holder lives (the lock is fresh and its pid alive).
      yield* Effect.yieldNow()
      expect(yield* Fiber.poll(cas)).toEqual(Option.none())
      expect(Option.map(yield* storage.get(key), (o) => decoder.decode(o.body))).toEqual(Option.some("v1"))
      // … and proceeds once the holder is killed (SIGKILL: no chance to clean up).
      holder.child.kill("SIGKILL")
      yield* holder.exit
      const result = yield* Fiber.join(cas)
      expect(Either.isRight(result)).toBe(true)
      expect(Option.map(yield* storage.get(key), (o) => decoder.decode(o.body))).toEqual(Option.some("v2"))

      // A live holder is never robbed of its lock, however old: a process paused inside the
      // critical section (GC, SIGSTOP, a slow disk) must not find its write overtaken.
      const old = yield* spawnWorker(["hold-lock", lockFile, "3600000"])
      expect(yield* Stream.runHead(old.lines)).toEqual(Option.some("held"))
      const e2 = Either.isRight(result) ? result.right : ""
      const patient = yield* FileStorage.make(dir, { lockTimeout: "300 millis", staleLockAfter: "1 millis" })
      const waited = yield* Effect.either(patient.put(key, encoder.encode("v3"), { ifMatch: e2 }))
      expect(Either.isLeft(waited) && waited.left._tag).toBe("StorageUnavailable")
      expect(Option.map(yield* storage.get(key), (o) => decoder.decode(o.body))).toEqual(Option.some("v2"))
      old.child.kill("SIGKILL")
      yield* old.exit
      yield* patient.put(key, encoder.encode("v3"), { ifMatch: e2 })
      expect(Option.map(yield* storage.get(key), (o) => decoder.decode(o.body))).toEqual(Option.some("v3"))
    }), 60_000)

  it.live("temp files of a killed writer are removed; a live writer's are kept", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(path.join(tmpdir(), "buquet-file-temp-"))
      const storage = yield* FileStorage.make(dir)
      yield* storage.put("tasks/a/t1.json", encoder.encode("v1"))
      const objectDir = path.join(dir, "tasks", "a")
      const lockFile = path.join(objectDir, `${FileStorage.encodeSegment("t1.json")}.lock`)
      const temps = () => readdirSync(objectDir).filter((name) => name.includes(".tmp-"))
      // Each holder leaves a half-written temp object beside the key, as a write cut short does.
      const live = yield* spawnWorker(["hold-lock", lockFile, "0", "temp"])
      expect(yield* Stream.runHead(live.lines)).toEqual(Option.some("held"))
      yield* storage.list("tasks/")
      expect(temps().length).toBe(1)
      live.child.kill("SIGKILL")
      yield* live.exit
      // A listing that walks past a dead writer's temp file removes it; the object is untouched.
      const listed = yield* storage.list("tasks/")
      expect(listed.objects.map((o) => o.key)).toEqual(["tasks/a/t1.json"])
      expect(temps()).toEqual([])
      expect(Option.map(yield* storage.get("tasks/a/t1.json"), (o) => decoder.decode(o.body))).toEqual(Option.some("v1"))
    }), 60_000)
})
