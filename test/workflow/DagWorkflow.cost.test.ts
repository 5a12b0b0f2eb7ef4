/**
 * What DAG workflow runs cost in S3 requests (issue 18: "write down the S3 requests per step and
 * per workflow"; the table is in BENCHMARKS.md "DAG workflows"), on MemoryStorage through two
 * CountingStorage wrappers: one for the runs' objects (`workflow/…`), one for the queue. The tasks
 * a run makes (orchestrator passes, step tasks) are run one at a time by hand, in the order they
 * were submitted, so each one's requests are its own; each is held to an upper bound. What the
 * queue spends to claim and complete each of those tasks is the per-task cost in BENCHMARKS.md
 * ("S3 requests per completed task"), counted here as tasks.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, DateTime, Effect, Layer, Option, Schema } from "effect"
import { layerWorkerServices } from "../../src/Buquet.js"
import type { Task } from "../../src/domain/Task.js"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import * as DagWorkflow from "../../src/programs/DagWorkflow.js"
import type { TaskContext } from "../../src/programs/worker/Handler.js"
import { Queue } from "../../src/services/Queue.js"
import type { RequestCounterService, RequestCounts } from "../../src/services/RequestCounter.js"
import { Storage } from "../../src/services/Storage.js"
import type { StorageService } from "../../src/services/Storage.js"

const RunCounter = Context.GenericTag<RequestCounterService>("test/RunCounter")
const QueueCounter = Context.GenericTag<RequestCounterService>("test/QueueCounter")

/** One MemoryStorage; calls for keys (or LIST prefixes) under `workflow/` counted apart from the rest. */
const counted = Layer.effectContext(Effect.gen(function*() {
  const memory = yield* Effect.provide(Storage, MemoryStorage.layer())
  const runs = yield* CountingStorage.make(memory)
  const rest = yield* CountingStorage.make(memory)
  const r = runs.storage
  const q = rest.storage
  const ours = (key: string) => key.startsWith("workflow/")
  const storage: StorageService = {
    ...q,
    get: (key) => (ours(key) ? r.get(key) : q.get(key)),
    head: (key) => (ours(key) ? r.head(key) : q.head(key)),
    put: (key, body, condition) => (ours(key) ? r.put(key, body, condition) : q.put(key, body, condition)),
    delete: (key) => (ours(key) ? r.delete(key) : q.delete(key)),
    list: (prefix, options) => (ours(prefix) ? r.list(prefix, options) : q.list(prefix, options)),
    listAll: (prefix, options) => (ours(prefix) ? r.listAll(prefix, options) : q.listAll(prefix, options))
  }
  return Context.make(Storage, storage).pipe(Context.add(RunCounter, runs.counter), Context.add(QueueCounter, rest.counter))
}))
const layer = Layer.provideMerge(Layer.merge(QueueLayer.layer(), layerWorkerServices()), Layer.provideMerge(ServerClockLayer.layer, counted))

const plain = (name: string) => ({ output: Schema.String, run: () => Effect.succeed(name) })
/** A chain of three steps. */
const Chain = DagWorkflow.make("chain", { data: Schema.Struct({}) })
  .step("a", plain("a"))
  .step("b", { ...plain("b"), dependsOn: ["a"] })
  .step("c", { ...plain("c"), dependsOn: ["b"] })
/** A fan-out of 4 and a fan-in. */
const Fan = DagWorkflow.make("fan", { data: Schema.Struct({}) })
  .step("a", plain("a"))
  .step("b1", { ...plain("b1"), dependsOn: ["a"] })
  .step("b2", { ...plain("b2"), dependsOn: ["a"] })
  .step("b3", { ...plain("b3"), dependsOn: ["a"] })
  .step("b4", { ...plain("b4"), dependsOn: ["a"] })
  .step("c", { ...plain("c"), dependsOn: ["b1", "b2", "b3", "b4"] })

type Kinds = Pick<RequestCounts, "GET" | "HEAD" | "PUT" | "LIST">
const kinds = (c: RequestCounts): Kinds => ({ GET: c.GET, HEAD: c.HEAD, PUT: c.PUT, LIST: c.LIST })
const take = Effect.all({ runs: Effect.flatMap(RunCounter, (c) => c.take), queue: Effect.flatMap(QueueCounter, (c) => c.take) })
const measured = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    yield* take
    const value = yield* effect
    const { queue, runs } = yield* take
    return { value, runs: kinds(runs), queue: queue.total }
  })
const atMost = (what: string, found: Kinds, bound: Partial<Kinds>) => {
  for (const kind of ["GET", "HEAD", "PUT", "LIST"] as const) expect(found[kind], `${what}: ${kind}`).toBeLessThanOrEqual(bound[kind] ?? 0)
}

/** What a worker would hand the handler (the parts the DAG's handlers read). */
const contextOf = (task: Task): TaskContext => ({
  taskId: task.id,
  attempt: task.attempt + 1,
  task,
  workerId: "cost",
  extendLease: () => Effect.void,
  progress: () => Effect.void,
  isCancelRequested: Effect.succeed(false),
  enqueue: (() => Effect.succeed("none")) as unknown as TaskContext["enqueue"],
  // a DAG step is no flow parent
  childrenResults: Effect.succeed([]),
  childResults: () => Effect.succeed([])
})

interface Row {
  readonly what: string
  readonly runs: Kinds
  readonly queue: number
}

/** Starts a run of `workflow` and runs its tasks one at a time, oldest first, until none is left; one row per task. */
const runByHand = (workflow: DagWorkflow.Any, id: string) =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const handlers = DagWorkflow.handlers(workflow)
    const rows: Array<Row> = []
    const started = yield* measured(DagWorkflow.start(workflow, {}, { id }))
    rows.push({ what: "start", runs: started.runs, queue: started.queue })
    const done = new Set<string>()
    for (;;) {
      const page = yield* queue.list({ limit: 1000 })
      const next = page.tasks.filter((t) => !done.has(t.id) && t.status === "pending" && handlers.some((h) => h.taskType === t.taskType))
        .sort((a, b) => DateTime.toEpochMillis(a.createdAt) - DateTime.toEpochMillis(b.createdAt))[0]
      if (next === undefined) break
      done.add(next.id)
      const h = handlers.find((x) => x.taskType === next.taskType)!
      const input = yield* queue.loadInput(next)
      const ran = yield* measured(h.run(input, contextOf(next)) as Effect.Effect<unknown, unknown, never>)
      const what = next.taskType.startsWith("workflow.orchestrate:") ? "orchestrator pass" : `step ${(input as { step: string }).step}`
      rows.push({ what, runs: ran.runs, queue: ran.queue })
    }
    return rows
  })

const sum = (rows: ReadonlyArray<Row>) =>
  rows.reduce((a, r) => ({ GET: a.GET + r.runs.GET, HEAD: a.HEAD + r.runs.HEAD, PUT: a.PUT + r.runs.PUT, LIST: a.LIST + r.runs.LIST, queue: a.queue + r.queue }), {
    GET: 0, HEAD: 0, PUT: 0, LIST: 0, queue: 0
  })

const print = (title: string, rows: ReadonlyArray<Row>) =>
  Effect.sync(() =>
    console.log(`${title}\n` + rows.map((r) => `| ${r.what} | ${r.runs.GET} | ${r.runs.PUT} | ${r.runs.LIST} | ${r.queue} |`).join("\n") +
      `\n| total | ${sum(rows).GET} | ${sum(rows).PUT} | ${sum(rows).LIST} | ${sum(rows).queue} |`))

describe("DAG workflows: S3 requests", () => {
  it.effect("per start, per orchestrator pass and per step task: within their bounds; per workflow: 3 steps and a fan-out of 4", () =>
    Effect.gen(function*() {
      const chain = yield* runByHand(Chain, "chain-1")
      yield* print("chain a -> b -> c", chain)
      expect((yield* DagWorkflow.get("chain-1")).pipe(Option.getOrThrow).status).toBe("completed")
      // start: the state's create-only PUT, then the first wake-up's idempotent submit
      atMost("start", chain[0]!.runs, { PUT: 1 })
      expect(chain[0]!.queue).toBeLessThanOrEqual(6)
      for (const r of chain.slice(1)) {
        if (r.what === "orchestrator pass") {
          // read the state, submit the ready steps (idempotent), CAS them running, read it again to see it settled
          atMost(r.what, r.runs, { GET: 3, PUT: 2 })
          expect(r.queue, r.what).toBeLessThanOrEqual(7)
        } else {
          // read the state and the result object, run, write the result once, CAS the step completed, wake the run
          atMost(r.what, r.runs, { GET: 3, HEAD: 0, PUT: 2 })
          expect(r.queue, r.what).toBeLessThanOrEqual(7)
        }
      }
      // one task per step and one orchestrator pass per step outcome, plus the first
      expect(chain.filter((r) => r.what.startsWith("step")).length).toBe(3)
      expect(chain.filter((r) => r.what === "orchestrator pass").length).toBe(4)

      const fan = yield* runByHand(Fan, "fan-1")
      yield* print("fan a -> b1..b4 -> c", fan)
      expect((yield* DagWorkflow.get("fan-1")).pipe(Option.getOrThrow).status).toBe("completed")
      expect(fan.filter((r) => r.what.startsWith("step")).length).toBe(6)
      expect(fan.filter((r) => r.what === "orchestrator pass").length).toBeLessThanOrEqual(7)
      const total = sum(fan)
      expect(total.LIST).toBe(0)
      expect(total.PUT).toBeLessThanOrEqual(1 + 6 * 2 + 7 * 2)
    }).pipe(Effect.provide(layer)))
})
