/**
 * Issue 18, settlement effects in the Promise API: `ctx.enqueue` in an async handler resolves with
 * the follow-up's id, the follow-ups exist once the parent completes (the task shows `followUps`
 * and each child its `parentId`), and a bad option rejects with a typed `BuquetError`. A follow-up
 * is checked as a submit is: against its type's published JSON Schema and a typed contract's
 * Schema (`SchemaValidationFailed`), and its input must have a JSON form. In memory, real time;
 * `buquet get` (spawned) shows a parent's follow-ups and a follow-up's parent.
 */
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { TaskType } from "../../src/index.js"
import { BuquetError, connect } from "../../src/promise.js"
import { runCli, tempDir } from "../cli/support.js"

const refusal = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e)

describe("ctx.enqueue (Promise)", () => {
  it("creates the follow-ups with the completion; a bad option is an InvalidArgument the handler can catch", async () => {
    const queue = await connect({ memory: true, quiet: true })
    try {
      const worker = queue.worker({ concurrency: 2, signals: false, monitor: false })
      const returned: Array<string> = []
      let refused: unknown
      worker.task<{ readonly items: ReadonlyArray<string> }>("order", async (input, ctx) => {
        for (const item of input.items) returned.push(await ctx.enqueue("ship", { item }, { tags: ["order"] }))
        refused = await ctx.enqueue("ship", {}, { maxRetries: -1 }).then(() => undefined, (e: unknown) => e)
        return { queued: input.items.length }
      })
      worker.task<{ readonly item: string }>("ship", async (input) => ({ shipped: input.item }))
      const running = worker.run()
      const order = await queue.submit("order", { items: ["book", "pen"] }, { typeCheck: "off" })
      const done = await queue.waitFor(order.id, { timeoutMs: 20_000 })
      expect(done.status).toBe("completed")
      expect(done.followUps?.ids).toEqual(returned)
      expect(done.followUps?.createdAt).toBeInstanceOf(Date)
      expect(refused).toBeInstanceOf(BuquetError)
      expect((refused as BuquetError)._tag).toBe("InvalidArgument")
      expect((refused as BuquetError).message).toContain("maxRetries")
      const children = await Promise.all(returned.map((id) => queue.waitFor(id, { timeoutMs: 20_000 })))
      expect(children.map((c) => [c.parentId, c.status, c.output, c.tags])).toEqual([
        [order.id, "completed", { shipped: "book" }, ["order"]],
        [order.id, "completed", { shipped: "pen" }, ["order"]]
      ])
      await worker.stop()
      await running
    } finally {
      await queue.close()
    }
  }, 60_000)

  it("a follow-up is checked like a submit: its published JSON Schema, a contract's Schema, a JSON form", async () => {
    const queue = await connect({ memory: true, quiet: true })
    try {
      await queue.schemas.publish("ship", { input: { type: "object", required: ["item"], properties: { item: { type: "string" } } } })
      const Ship = TaskType.make("ship", { input: Schema.Struct({ item: Schema.String }) })
      // what a submit says of each input
      const submitted = await refusal(queue.submit("ship", { item: 5 }, { typeCheck: "off" }))
      expect((submitted as BuquetError)._tag).toBe("SchemaValidationFailed")
      const refused: Record<string, unknown> = {}
      let queued: string | undefined
      const worker = queue.worker({ concurrency: 2, signals: false, monitor: false })
      worker.task("order", async (_input, ctx) => {
        refused["published"] = await refusal(ctx.enqueue("ship", { item: 5 }))
        refused["typed"] = await refusal(ctx.enqueue(Ship, { item: 5 } as never))
        refused["bigint"] = await refusal(ctx.enqueue("ship", { item: 5n }))
        queued = await ctx.enqueue(Ship, { item: "book" })
        return { ok: true }
      })
      worker.task<{ readonly item: string }>("ship", async (input) => ({ shipped: input.item }))
      const running = worker.run()
      const order = await queue.submit("order", {}, { typeCheck: "off" })
      const done = await queue.waitFor(order.id, { timeoutMs: 20_000 })
      expect(done.status).toBe("completed")
      expect(refused["published"]).toBeInstanceOf(BuquetError)
      expect(refused["published"]).toMatchObject({ _tag: "SchemaValidationFailed", message: expect.stringContaining("published JSON Schema") })
      expect(refused["typed"]).toMatchObject({ _tag: "SchemaValidationFailed" })
      expect(refused["bigint"]).toMatchObject({ _tag: "InvalidArgument", message: expect.stringContaining("JSON-serialisable") })
      // only the good one was created
      expect(done.followUps?.ids).toEqual([queued])
      expect((await queue.waitFor(queued!, { timeoutMs: 20_000 })).output).toEqual({ shipped: "book" })
      await worker.stop()
      await running
    } finally {
      await queue.close()
    }
  }, 60_000)

  it("buquet get shows a parent's follow-ups (ids, types, when created) and a follow-up's parent", async () => {
    const cwd = tempDir()
    const queue = await connect({ directory: `${cwd}/.buquet`, quiet: true })
    let parent: string
    let children: ReadonlyArray<string>
    try {
      const worker = queue.worker({ concurrency: 1, signals: false, monitor: false })
      worker.task("order", async (_input, ctx) => ({ queued: [await ctx.enqueue("ship", { item: "book" }), await ctx.enqueue("bill", {})] }))
      const running = worker.run()
      parent = (await queue.submit("order", {}, { typeCheck: "off" })).id
      const done = await queue.waitFor(parent, { timeoutMs: 20_000 })
      children = done.followUps?.ids ?? []
      expect(children).toHaveLength(2)
      await worker.stop()
      await running
    } finally {
      await queue.close()
    }
    const [shown, child, json] = await Promise.all([
      runCli(["get", parent], { cwd, timeoutMs: 230_000 }),
      runCli(["get", children[0]!], { cwd, timeoutMs: 230_000 }),
      runCli(["get", parent, "--json"], { cwd, timeoutMs: 230_000 })
    ])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(/^follow-ups \(2\)\s+created \d{4}-/m)
    expect(shown.stdout).toMatch(new RegExp(`^ {4}${children[0]} {2}ship$`, "m"))
    expect(shown.stdout).toMatch(new RegExp(`^ {4}${children[1]} {2}bill$`, "m"))
    expect(child.code, child.stderr).toBe(0)
    expect(child.stdout).toMatch(new RegExp(`^parent\\s+${parent}$`, "m"))
    expect(json.code, json.stderr).toBe(0)
    const doc = JSON.parse(json.stdout) as { follow_ups?: { tasks: ReadonlyArray<{ id: string; task_type: string }> } }
    expect(doc.follow_ups?.tasks.map((t) => [t.id, t.task_type])).toEqual([[children[0], "ship"], [children[1], "bill"]])
  }, 240_000)
})
