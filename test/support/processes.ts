/**
 * Spawned worker processes for the suites that run them as a user would (`node --import tsx
 * fixture.ts`), and the line logs their handlers append to.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { Effect } from "effect"

/** A spawned process and its exit. */
export interface Spawned {
  readonly child: ChildProcess
  readonly exit: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** Runs `fixture` in a node process with tsx, `env` on top of this process's; stderr is passed through. */
export const spawnFixture = (fixture: string, env: Record<string, string>): Spawned => {
  const child = spawn(process.execPath, ["--import", "tsx", fixture], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] })
  return { child, exit: new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal }))) }
}

/** The lines of a log file, split on spaces (none if it does not exist yet). */
export const logLines = (file: string): ReadonlyArray<ReadonlyArray<string>> =>
  existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => l.split(" ")) : []

/** Polls `check` every `everyMs` (real time) until true; dies after `maxMs`. */
export const waitUntil = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, maxMs = 90_000, everyMs = 250) =>
  Effect.gen(function*() {
    for (let i = 0; i < Math.ceil(maxMs / everyMs); i++) {
      if (yield* check) return
      yield* Effect.sleep(everyMs)
    }
    return yield* Effect.dieMessage(`timed out waiting until ${what}`)
  })
