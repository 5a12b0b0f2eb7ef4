/**
 * Vitest set-up file (every test file): stops the processes a test or a file spawned through
 * test/support/processes.ts and left running — after a failure or a timeout the test's own stop
 * may never have run. A leftover gets SIGTERM, then SIGKILL after a grace.
 *
 * Tests that run at once (`it.concurrent`) share one owner mark, so a test's leftovers are stopped
 * only when no test is running: the first concurrent test to end must not stop the others'
 * processes (it did: four rows of test/cli/reference.test.ts lost their CLI in CI).
 *
 * @module
 */
import { afterAll, afterEach, beforeEach } from "vitest"
import { setOwner, stopLeftovers } from "./processes.js"

let running = 0

beforeEach(() => {
  running++
  setOwner("test")
})
afterEach(async () => {
  running--
  if (running > 0) return
  setOwner("file")
  const n = await stopLeftovers("test")
  if (n > 0) console.warn(`stopped ${n} process(es) the test left running`)
})
afterAll(async () => {
  await stopLeftovers("file")
})
