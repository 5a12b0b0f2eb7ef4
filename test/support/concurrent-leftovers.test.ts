/**
 * The leftover clean-up (test/support/setup.ts) with tests that run at once (`it.concurrent`, as
 * test/cli/reference.test.ts's rows do): a test that ends must not stop the processes of a test that
 * is still running. It did: the first row to end SIGTERMed every other row's CLI, and four of them
 * failed in CI ("stopped 1 process(es) the test left running" under each).
 */
import { existsSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { spawnFixture, terminate } from "./processes.js"

const fixture = join(import.meta.dirname, "fixtures", "stubborn.ts")
const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 1_100; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe("leftover clean-up with concurrent tests", () => {
  let quickEnded = false
  it.concurrent("a quick test ends while the other still runs", async () => {
    await new Promise((r) => setTimeout(r, 200))
    quickEnded = true
  })

  it.concurrent("the other test's process lives until that test ends", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "buquet-proc-")), "ready")
    const mine = spawnFixture(fixture, { READY_FILE: file })
    try {
      const alive = () => mine.child.exitCode === null && mine.child.signalCode === null
      await until(() => quickEnded && (existsSync(file) || !alive()), "the quick test to end and the process to be ready")
      // the quick test's afterEach has run by now
      await new Promise((r) => setTimeout(r, 1_000))
      expect(alive(), `stopped by another test's clean-up: ${mine.child.signalCode}`).toBe(true)
    } finally {
      await terminate(mine, 5_000)
    }
  }, 150_000)
})
