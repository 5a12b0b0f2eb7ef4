/**
 * Two connections in one process (Promise API, RGW): `connect()` twice, to two key prefixes of one
 * bucket with different shard prefix lengths (1 and 2), each with a worker that runs the SAME task
 * types and a DAG workflow of the SAME name, and runs with the SAME ids. Nothing leaks: each
 * connection's tasks, flow children, follow-ups and workflow steps run on its own worker only; a
 * signal sent to A's run wakes A's run, never B's; each lists only its own runs; closing A (its
 * worker included) leaves B's worker running new work. Real time; outcomes only.
 */
import { expect, it } from "vitest"
import { connect, Workflow } from "../../src/promise.js"
import type { Queue, WorkflowRun } from "../../src/promise.js"
import { connectOptions, describeS3, prefixesEmptiedAfterAll } from "../support/s3.js"

const freshPrefix = prefixesEmptiedAfterAll()

const until = async (queue: Queue, id: string, done: (run: WorkflowRun) => boolean): Promise<WorkflowRun> => {
  for (let i = 0; i < 1500; i++) {
    const run = await queue.workflows.get(id)
    if (run !== undefined && done(run)) return run
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`run ${id} never got there: ${JSON.stringify(await queue.workflows.get(id))}`)
}

/** One connection's worker: every handler notes `{connection} {what} {task id}` in `ran`. */
const startWorker = (queue: Queue, name: string, ran: Array<string>) => {
  const order = Workflow.define<{ readonly n: number }>("order")
    .step("reserve", {
      run: (ctx) => {
        ran.push(`${name} step reserve ${ctx.task.taskId}`)
        return `${name}-reserved`
      }
    })
    .step("approve", {
      dependsOn: ["reserve"],
      run: async (ctx) => {
        const signal = await ctx.waitForSignal("approval")
        ran.push(`${name} step approve ${ctx.task.taskId}`)
        return signal
      }
    })
  const worker = queue.worker({ concurrency: 4, signals: false, wakeUp: true })
    .workflow(order)
    .task("part", async (input: { readonly n: number }, ctx) => {
      ran.push(`${name} part ${ctx.taskId}`)
      return input.n
    })
    .task("report", async (_input: unknown, ctx) => {
      ran.push(`${name} report ${ctx.taskId}`)
      return (await ctx.childrenResults()).reduce((sum, c) => sum + (c.output as number), 0)
    })
    .task("buy", async (_input: unknown, ctx) => {
      await ctx.enqueue("ship", {})
      ran.push(`${name} buy ${ctx.taskId}`)
      return name
    })
    .task("ship", async (_input: unknown, ctx) => {
      ran.push(`${name} ship ${ctx.taskId}`)
      return name
    })
  return { order, worker, running: worker.run() }
}

describeS3("two connections in one process (Promise API, RGW)", (settings) => {
  it("same types, same workflow, same run ids: nothing of A is run by, listed in or woken by B; closing A leaves B working", async () => {
    const a = await connect({ ...connectOptions(settings, freshPrefix(settings)), shardPrefixLen: 1, quiet: true, typeCheck: "off" })
    const b = await connect({ ...connectOptions(settings, freshPrefix(settings)), shardPrefixLen: 2, quiet: true, typeCheck: "off" })
    const ranA: Array<string> = []
    const ranB: Array<string> = []
    try {
      const wa = startWorker(a, "A", ranA)
      const wb = startWorker(b, "B", ranB)

      const flowA = await a.flow({ name: "report", children: [1, 2].map((n) => ({ name: "part", input: { n } })) })
      const flowB = await b.flow({ name: "report", children: [10, 20, 30].map((n) => ({ name: "part", input: { n } })) })
      const buyA = await a.submit("buy", {})
      const buyB = await b.submit("buy", {})
      await a.workflows.start(wa.order, { n: 1 }, { id: "run-1" })
      await b.workflows.start(wb.order, { n: 2 }, { id: "run-1" })
      await a.workflows.start(wa.order, { n: 3 }, { id: "only-a" })

      expect((await a.waitFor(flowA.id, { timeoutMs: 150_000 })).output).toBe(3)
      expect((await b.waitFor(flowB.id, { timeoutMs: 150_000 })).output).toBe(60)
      const doneA = await a.waitFor(buyA.id, { timeoutMs: 150_000 })
      const doneB = await b.waitFor(buyB.id, { timeoutMs: 150_000 })
      expect([doneA.output, doneB.output]).toEqual(["A", "B"])
      const shipA = doneA.followUps!.ids[0]!
      const shipB = doneB.followUps!.ids[0]!
      expect((await a.waitFor(shipA, { timeoutMs: 150_000 })).output).toBe("A")
      expect((await b.waitFor(shipB, { timeoutMs: 150_000 })).output).toBe("B")
      // each connection sees only its own tasks
      expect(await b.get(shipA)).toBeUndefined()
      expect(await a.get(flowB.id)).toBeUndefined()

      // A's signal wakes A's run-1; B's run-1 (same id) keeps waiting until B's own signal
      await until(a, "run-1", (r) => r.steps.find((s) => s.name === "reserve")?.status === "completed")
      await until(b, "run-1", (r) => r.steps.find((s) => s.name === "reserve")?.status === "completed")
      await a.workflows.signal("run-1", "approval", "yes-a")
      const runA = await until(a, "run-1", (r) => r.status === "completed")
      expect(runA.steps.find((s) => s.name === "approve")?.result).toBe("yes-a")
      expect(runA.steps.find((s) => s.name === "reserve")?.result).toBe("A-reserved")
      expect((await b.workflows.get("run-1"))?.status).not.toBe("completed")
      expect((await a.workflows.list()).runs.map((r) => r.id).sort()).toEqual(["only-a", "run-1"])
      expect((await b.workflows.list()).runs.map((r) => r.id)).toEqual(["run-1"])
      await b.workflows.signal("run-1", "approval", "yes-b")
      const runB = await until(b, "run-1", (r) => r.status === "completed")
      expect([runB.steps.find((s) => s.name === "reserve")?.result, runB.steps.find((s) => s.name === "approve")?.result]).toEqual(["B-reserved", "yes-b"])

      // every task a handler ran is its own connection's
      const idsOf = (ran: ReadonlyArray<string>) => ran.map((l) => l.split(" ").at(-1)!)
      for (const id of idsOf(ranA)) expect(await a.get(id), `A ran ${id}`).toBeDefined()
      for (const id of idsOf(ranB)) expect(await b.get(id), `B ran ${id}`).toBeDefined()
      expect(ranA.filter((l) => l.startsWith("A part ")).length).toBe(2)
      expect(ranB.filter((l) => l.startsWith("B part ")).length).toBe(3)
      expect(ranB.some((l) => !l.startsWith("B "))).toBe(false)

      // closing A stops A's worker and only it: B's worker runs new work
      await a.close()
      await wa.running
      const later = await b.flow({ name: "report", children: [{ name: "part", input: { n: 5 } }] })
      expect((await b.waitFor(later.id, { timeoutMs: 150_000 })).output).toBe(5)
      await b.workflows.start(wb.order, { n: 4 }, { id: "after-close" })
      await until(b, "after-close", (r) => r.steps.find((s) => s.name === "reserve")?.status === "completed")
      await wb.worker.stop()
      await wb.running
    } finally {
      await a.close()
      await b.close()
    }
  }, 400_000)
})
