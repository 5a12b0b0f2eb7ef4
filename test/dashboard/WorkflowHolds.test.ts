/**
 * The dashboard's run page and its JSON say which running step a pause switch holds and how to
 * resume it, as `buquet workflow show` does (a paused step type otherwise looks like a slow step).
 */
import { describe, expect, it } from "@effect/vitest"
import { DateTime, Effect } from "effect"
import { makeStack, request, startDashboard } from "./support.js"

describe("Dashboard workflow run page: steps held by a pause switch", () => {
  it.scoped("names the held step and its task type, in the page and the API; nothing once resumed", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const now = DateTime.formatIso(yield* stack.clock.now)
      const step = (status: string) => ({ status, started_at: now, completed_at: status === "completed" ? now : null, error: null, attempt: 1 })
      yield* stack.raw.put(
        "workflow/run-b/state.json",
        new TextEncoder().encode(JSON.stringify({
          id: "run-b",
          type: "order",
          definition_hash: "sha256:0123456789abcdef",
          status: "running",
          current_steps: ["approve", "ship"],
          data: {},
          steps: { reserve: step("completed"), approve: step("running"), ship: step("running") },
          signals: {},
          created_at: now,
          updated_at: now
        }))
      ).pipe(Effect.orDie)
      yield* Effect.orDie(stack.producer.pause("workflow.step:order:approve"))
      const dash = yield* startDashboard(stack)

      const held = yield* request(`${dash.url}/workflows/run-b`)
      expect(held.status).toBe(200)
      const notice = held.text.slice(held.text.indexOf(`id="run-held"`))
      expect(notice).toMatch(/^id="run-held"[^]*?step approve waits: its task type workflow\.step:order:approve is paused \(buquet resume workflow\.step:order:approve\)/)
      expect(notice).not.toMatch(/^[^<]*<[^]*?step ship waits/)
      const api = JSON.parse((yield* request(`${dash.url}/api/v1/workflows/run-b`)).text) as { held_by_pause: unknown }
      expect(api.held_by_pause).toEqual([{ step: "approve", task_type: "workflow.step:order:approve" }])

      // everything paused holds both running steps, and says so
      yield* Effect.orDie(stack.producer.pause())
      const all = JSON.parse((yield* request(`${dash.url}/api/v1/workflows/run-b`)).text) as { held_by_pause: ReadonlyArray<{ step: string }> }
      expect(all.held_by_pause.map((h) => h.step).sort()).toEqual(["approve", "ship"])
      expect((yield* request(`${dash.url}/workflows/run-b`)).text).toContain("the queue is paused (buquet resume)")

      yield* Effect.orDie(stack.producer.resume())
      yield* Effect.orDie(stack.producer.resume("workflow.step:order:approve"))
      const free = yield* request(`${dash.url}/workflows/run-b`)
      expect(free.text).not.toContain(`id="run-held"`)
      expect((JSON.parse((yield* request(`${dash.url}/api/v1/workflows/run-b`)).text) as { held_by_pause: unknown }).held_by_pause).toEqual([])
    }))
})
