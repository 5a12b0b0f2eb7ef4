/**
 * Vitest set-up file (every test file): stops the processes a test or a file spawned through
 * test/support/processes.ts and left running — after a failure or a timeout the test's own stop
 * may never have run. A leftover gets SIGTERM, then SIGKILL after a grace.
 *
 * @module
 */
import { afterAll, afterEach, beforeEach } from "vitest"
import { setOwner, stopLeftovers } from "./processes.js"

beforeEach(() => setOwner("test"))
afterEach(async () => {
  const n = await stopLeftovers("test")
  setOwner("file")
  if (n > 0) console.warn(`stopped ${n} process(es) the test left running`)
})
afterAll(async () => {
  await stopLeftovers("file")
})
