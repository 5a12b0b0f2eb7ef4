/**
 * Flows in the CLI (issue 18): `buquet get PARENT` of a flow's parent shows that it waits, and each
 * child with its current state (human and --json); `buquet cancel PARENT` cancels the children.
 * Spawned CLI on the embedded file store; the flow is created through the Effect API.
 */
import { Effect, Layer } from "effect"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import * as Buquet from "../../src/Buquet.js"
import { flowNode } from "../../src/domain/FlowRequest.js"
import { Queue } from "../../src/services/Queue.js"
import { runCli, tempDir } from "./support.js"

const inStore = <A, E>(dir: string, body: Effect.Effect<A, E, Queue>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(body, Layer.fresh(Buquet.layerFile(join(dir, ".buquet"))))))

describe("buquet get / cancel of a flow's parent", () => {
  it("shows the parent waiting with its children's states, and cancel cancels the children", async () => {
    const dir = tempDir("buquet-flow-")
    const created = await inStore(dir, Effect.flatMap(Queue, (q) =>
      q.flow(flowNode("report", { month: 5 }, { children: [flowNode("fetch", { part: 1 }), flowNode("fetch", { part: 2 })] }))))
    const [a, b] = created.children
    // one child ends (cancelled): the parent records it and keeps waiting for the other
    await inStore(dir, Effect.flatMap(Queue, (q) => q.cancel(a!.id)))

    const shown = await runCli(["get", created.id], { cwd: dir })
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(/status\s+pending \(waiting for its children: 1 of 2 ended\)/)
    expect(shown.stdout).toMatch(/available at\s+when its children have ended/)
    expect(shown.stdout).toMatch(/children \(2\)\s+1 ended/)
    expect(shown.stdout).toContain(`${a!.id}  fetch  cancelled`)
    expect(shown.stdout).toContain(`${b!.id}  fetch  pending`)
    // a child names its parent
    expect((await runCli(["get", b!.id], { cwd: dir })).stdout).toMatch(new RegExp(`parent\\s+${created.id}`))

    const json = JSON.parse((await runCli(["get", created.id, "--json"], { cwd: dir })).stdout)
    expect(json.children).toEqual([
      { id: a!.id, task_type: "fetch", status: "cancelled" },
      { id: b!.id, task_type: "fetch", status: "pending" }
    ])
    expect(json.flow.children.map((c: { outcome?: string }) => c.outcome ?? null)).toEqual(["cancelled", null])

    const cancelled = await runCli(["cancel", created.id], { cwd: dir })
    expect(cancelled.code, cancelled.stderr).toBe(0)
    const after = JSON.parse((await runCli(["get", created.id, "--json"], { cwd: dir })).stdout)
    expect(after.status).toBe("cancelled")
    expect(after.children.map((c: { status: string }) => c.status)).toEqual(["cancelled", "cancelled"])
  }, 120_000)
})
