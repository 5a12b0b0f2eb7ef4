/**
 * The dashboard's workflow pages in headless Chromium (issue 18): the list of runs with status
 * and progress (a malformed state named, the rest listed), the status filter, and one run drawn as
 * its DAG — each step a node with its state, each dependency of its recorded definition an edge —
 * that follows the run live (over SSE) as its steps complete. Hostile text in a stored run (a step name, an error) renders as text; the page loads
 * nothing from elsewhere. Screenshots in test-results/.
 */
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { artifacts, available, executablePath, inCI, step, watchedPage } from "./chromium.js"
import { makeStack, startDashboard } from "./support.js"
import type { Stack } from "./support.js"

const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString()

const stepState = (status: string, extra: Record<string, unknown> = {}) => ({
  status,
  started_at: status === "pending" ? null : at(10),
  completed_at: status === "completed" || status === "failed" ? at(5) : null,
  error: null,
  attempt: status === "pending" ? 0 : 1,
  ...extra
})

const storeRun = (stack: Stack, id: string, status: string, steps: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  stack.raw.put(
    `workflow/${id}/state.json`,
    new TextEncoder().encode(JSON.stringify({
      id,
      type: "order",
      definition_hash: "sha256:0123456789abcdef",
      status,
      current_steps: [],
      data: { order: 7 },
      steps,
      signals: {},
      created_at: at(20),
      updated_at: at(1),
      ...extra
    }))
  ).pipe(Effect.orDie)

const hostileStep = "<img src=x onerror=alert(1)>"

/** A recorded definition: reserve fans out to ship and notify, which fan in to close. */
const fanOutIn = {
  name: "order",
  steps: [
    { name: "reserve" },
    { name: "ship", depends_on: ["reserve"] },
    { name: "notify", depends_on: ["reserve"] },
    { name: "close", depends_on: ["ship", "notify"] }
  ]
}

describe("Dashboard workflow pages in headless Chromium", () => {
  if (!available && inCI) {
    it("has Chromium (required in CI)", () => {
      expect.fail(`${executablePath} not found: .ci/run must apt-get install -y chromium`)
    })
    return
  }
  it.live.skipIf(!available)("runs list → filter → one run's DAG, live as a step completes; hostile text stays text", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      yield* storeRun(stack, "run-a", "failed", {
        reserve: stepState("completed"),
        charge: stepState("failed", { error: "<script>alert(2)</script> declined", attempt: 3 }),
        [hostileStep]: stepState("pending")
      }, { error: { type: "StepFailed", message: "step charge failed", step: "charge" } })
      const bSteps = { reserve: stepState("completed"), ship: stepState("running"), notify: stepState("completed"), close: stepState("pending") }
      yield* storeRun(stack, "run-b", "running", bSteps, { definition: fanOutIn })
      yield* storeRun(stack, "run-x", "running", {}, { id: "run-elsewhere" })
      const dash = yield* startDashboard(stack, { refreshInterval: "300 millis" })

      const { page, dialogs, external } = yield* watchedPage(dash.url)

      // the list, reached from the navigation
      yield* step(() => page.goto(`${dash.url}/`))
      yield* step(() => Promise.all([page.waitForURL(/\/workflows$/), page.click("header >> text=Workflows")]))
      const ids = () => page.locator("#workflow-runs tbody tr[data-run-id]").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-run-id")))
      expect(yield* step(ids)).toEqual(["run-a", "run-b"])
      expect(yield* step(() => page.locator("#malformed-runs").textContent())).toMatch(/workflow\/run-x\/state\.json is malformed/)
      expect(yield* step(() => page.locator("tr[data-run-id=run-a] td").nth(3).textContent())).toBe("1/3")
      yield* step(() => page.screenshot({ path: join(artifacts, "dashboard-workflow-runs.png"), fullPage: true }))

      // filtered to failed
      yield* step(() => page.selectOption("#filter-run-status", "failed"))
      yield* step(() => Promise.all([page.waitForURL(/status=failed/), page.click("#apply-run-filter")]))
      expect(yield* step(ids)).toEqual(["run-a"])

      // one run: a node per step with its state; the hostile name and error are text
      yield* step(() => Promise.all([page.waitForURL(/\/workflows\/run-a$/), page.click(".run-link")]))
      expect(yield* step(() => page.locator("#run-status").textContent())).toBe("failed")
      const nodes = () =>
        page.locator("#dag g.node").evaluateAll((gs) => gs.map((g): [string | null, string | null] => [g.getAttribute("data-step"), g.getAttribute("data-status")]))
      expect(new Map(yield* step(nodes))).toEqual(new Map([["reserve", "completed"], ["charge", "failed"], [hostileStep, "pending"]]))
      expect(yield* step(() => page.locator("tr[data-step-row=charge]").textContent())).toContain("<script>alert(2)</script> declined")
      expect(yield* step(() => page.locator("#run-error").textContent())).toBe("StepFailed: step charge failed (step charge)")
      expect(yield* step(() => page.locator("img").count())).toBe(0)

      // live: the page follows run-b as its running step completes
      yield* step(() => page.goto(`${dash.url}/workflows/run-b`))
      const ship = page.locator("#dag g.node[data-step=ship]")
      expect(yield* step(() => ship.getAttribute("data-status"))).toBe("running")
      // the recorded definition's dependencies are the edges
      const edges = () => page.locator("#dag path.edge").evaluateAll((ps) => ps.map((p) => `${p.getAttribute("data-from")}->${p.getAttribute("data-to")}`).sort())
      expect(yield* step(edges)).toEqual(["notify->close", "reserve->notify", "reserve->ship", "ship->close"])
      expect(yield* step(() => page.locator("#dag-note").count())).toBe(0)
      yield* storeRun(stack, "run-b", "completed", { ...bSteps, ship: stepState("completed"), close: stepState("completed") }, { definition: fanOutIn })
      yield* step(() => page.locator("#dag g.node[data-step=close][data-status=completed]").waitFor({ timeout: 30_000 }))
      expect(yield* step(() => page.locator("#run-status").textContent())).toBe("completed")
      expect(yield* step(() => page.locator("#run-progress").textContent())).toBe("4/4")
      yield* step(() => page.screenshot({ path: join(artifacts, "dashboard-workflow-run.png"), fullPage: true }))

      expect(dialogs).toEqual([])
      expect(external).toEqual([])
    }).pipe(Effect.scoped), 120_000)
})
