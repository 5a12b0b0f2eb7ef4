/**
 * Issue 16 item 12, the error path the spawned-CLI test cannot reach: a defect while answering (here
 * the store dies reading the task) is a 500 that says to look at the log and still carries the
 * security headers, and the dashboard keeps serving the next request.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import { Storage } from "../../src/services/Storage.js"
import type { StorageService } from "../../src/services/Storage.js"
import { makeStack, request, startDashboard } from "./support.js"

describe("Dashboard internal errors", () => {
  it.scoped("a defect is a 500 with nosniff and the CSP; the next request is served", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStorage.make()
      let broken = false
      const dying: StorageService = {
        ...memory,
        get: (key) => (broken && key.startsWith("tasks/") ? Effect.die(new Error("the disk is on fire")) : memory.get(key))
      }
      const stack = yield* makeStack({ storage: Layer.succeed(Storage, dying) })
      const task = yield* Effect.orDie(stack.producer.submit("email", { to: "a@example.com" }))
      const dash = yield* startDashboard(stack)
      broken = true
      const failed = yield* request(`${dash.url}/tasks/${task.id}`)
      expect(failed.status).toBe(500)
      expect(failed.text).toMatch(/log/)
      expect(failed.text).not.toContain("on fire")
      expect(failed.headers.get("x-content-type-options")).toBe("nosniff")
      expect(failed.headers.get("content-security-policy")).toMatch(/default-src 'none'/)
      broken = false
      const served = yield* request(`${dash.url}/tasks/${task.id}`)
      expect(served.status).toBe(200)
      expect(served.text).toContain(task.id)
    }))
})
