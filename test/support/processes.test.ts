/**
 * The clean-up of spawned test processes (test/support/processes.ts): a process is stopped when
 * its scope closes however it closes — also when the test's fiber is interrupted, as after a
 * timeout, where a generator's `finally` never runs — and one that ignores SIGTERM is SIGKILLed
 * after the grace. A graceful stop reports exit code 0.
 */
import { existsSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { spawnFixture, spawnScoped, type Spawned, stopLeftovers, terminate, waitUntil } from "./processes.js"

const fixture = join(import.meta.dirname, "fixtures", "stubborn.ts")

const readyFile = () => join(mkdtempSync(join(tmpdir(), "buquet-proc-")), "ready")
const ready = (file: string) => waitUntil("the process is ready", Effect.sync(() => existsSync(file)), 110_000, 100)
const running = (s: Spawned) => s.child.exitCode === null && s.child.signalCode === null

it.live("a process that ignores SIGTERM is SIGKILLed after the grace when its scope closes", () =>
  Effect.gen(function*() {
    const file = readyFile()
    const s = yield* Effect.scoped(Effect.tap(spawnScoped(fixture, { IGNORE_SIGTERM: "1", READY_FILE: file }, 500), () => ready(file)))
    expect(running(s)).toBe(false)
    expect((yield* Effect.promise(() => s.exit)).signal).toBe("SIGKILL")
  }), 120_000)

it.live("an interrupted test (a timeout) still stops its process: the scope's release runs, a finally would not", () =>
  Effect.gen(function*() {
    const file = readyFile()
    const spawned = yield* Deferred.make<Spawned>()
    const fiber = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
      const s = yield* spawnScoped(fixture, { IGNORE_SIGTERM: "1", READY_FILE: file }, 500)
      yield* ready(file)
      yield* Deferred.succeed(spawned, s)
      return yield* Effect.never
    })))
    const s = yield* Deferred.await(spawned)
    yield* Fiber.interrupt(fiber)
    expect(running(s)).toBe(false)
    expect((yield* Effect.promise(() => s.exit)).signal).toBe("SIGKILL")
  }), 120_000)

it.live("a graceful stop exits 0; a process the test left running is stopped by stopLeftovers", () =>
  Effect.gen(function*() {
    const file = readyFile()
    const graceful = spawnFixture(fixture, { READY_FILE: file })
    yield* ready(file)
    expect(yield* Effect.promise(() => terminate(graceful, 30_000))).toEqual({ code: 0, signal: null })
    const file2 = readyFile()
    const left = spawnFixture(fixture, { IGNORE_SIGTERM: "1", READY_FILE: file2 })
    yield* ready(file2)
    // spawned during a test (test/support/setup.ts marks it), so it is the test's leftover
    expect(yield* Effect.promise(() => stopLeftovers("test", 500))).toBe(1)
    expect((yield* Effect.promise(() => left.exit)).signal).toBe("SIGKILL")
  }), 120_000)
