/**
 * Spawned processes for the suites that run them as a user would (`node --import tsx fixture.ts`,
 * the CLI), the line logs their handlers append to, and the clean-up that always runs: every
 * process spawned here is tracked, and test/support/setup.ts stops the ones a test left running
 * (SIGTERM, then SIGKILL after a grace) after each test and each file — a failed or timed-out test
 * never leaks a worker into the rest of the run.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"

/** A spawned process and its exit. */
export interface Spawned {
  readonly child: ChildProcess
  readonly exit: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** Who a tracked process belongs to: the running test, or the file (spawned in a beforeAll). */
type Owner = "test" | "file"
let owner: Owner = "file"
const tracked = new Map<Spawned, Owner>()

/** Marks whether a test is running (test/support/setup.ts), so a leftover is stopped at the right end. */
export const setOwner = (o: Owner): void => {
  owner = o
}

/** Tracks a process spawned elsewhere (e.g. test/cli/support.ts), so the clean-up covers it too. */
export const track = (child: ChildProcess): Spawned => {
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // already gone (a spawn that failed, or a very short process)
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode })
    child.on("exit", (code, signal) => resolve({ code, signal }))
  })
  const spawned: Spawned = { child, exit }
  tracked.set(spawned, owner)
  void exit.then(() => tracked.delete(spawned))
  return spawned
}

const dieWithParent = join(dirname(fileURLToPath(import.meta.url)), "die-with-parent.mjs")

/**
 * Runs `fixture` in a node process with tsx, `env` on top of this process's; stderr is passed
 * through. The process ends itself if this one is killed (die-with-parent.mjs).
 */
export const spawnFixture = (fixture: string, env: Record<string, string>): Spawned =>
  track(spawn(process.execPath, ["--import", dieWithParent, "--import", "tsx", fixture], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] }))

const isRunning = (child: ChildProcess) => child.exitCode === null && child.signalCode === null

/**
 * Stops a process: SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves with its
 * exit (`code` 0 only when it stopped gracefully in time).
 */
export const terminate = async (s: Spawned, graceMs = 30_000): Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }> => {
  if (isRunning(s.child)) s.child.kill("SIGTERM")
  const stopped = await within(s.exit, graceMs)
  if (stopped !== undefined) return stopped
  if (isRunning(s.child)) s.child.kill("SIGKILL")
  // a process that never started has no exit to wait for
  return (await within(s.exit, 5_000)) ?? { code: s.child.exitCode, signal: s.child.signalCode }
}

/** `p`'s value, or undefined once `ms` have passed. */
const within = async <A>(p: Promise<A>, ms: number): Promise<A | undefined> => {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

/** {@link terminate} as an Effect. */
export const terminateEffect = (s: Spawned, graceMs?: number) => Effect.promise(() => terminate(s, graceMs))

/**
 * {@link spawnFixture} whose process is stopped ({@link terminate}) when the scope closes, however
 * it closes (a failure, an interrupted test after its timeout).
 */
export const spawnScoped = (fixture: string, env: Record<string, string>, graceMs?: number) =>
  Effect.acquireRelease(Effect.sync(() => spawnFixture(fixture, env)), (s) => terminateEffect(s, graceMs))

/** Stops every tracked process that `of` still owns (SIGTERM, SIGKILL after `graceMs`). */
export const stopLeftovers = async (of: Owner, graceMs = 3_000): Promise<number> => {
  const left = [...tracked].filter(([s, o]) => o === of && isRunning(s.child)).map(([s]) => s)
  await Promise.all(left.map((s) => terminate(s, graceMs)))
  return left.length
}

// the vitest worker exiting (e.g. torn down after a hung file) takes no process of ours along
process.on("exit", () => {
  for (const s of tracked.keys()) if (isRunning(s.child)) s.child.kill("SIGKILL")
})

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
