/**
 * Worker CPU per no-op task, in process, on the real server (RGW): N tasks are submitted first,
 * then one Worker (concurrency C) drains them while `process.cpuUsage()` measures the process's
 * CPU time (user + system) and CountingStorage counts the worker's requests. CPU time and request
 * counts are robust to a loaded machine; wall time is not, so it is only printed for context.
 *
 *   npx tsx bench/cpu.ts [tasks=500] [concurrency=8]
 *   BENCH_CPU_PROFILE=1 → also writes a .cpuprofile of the drain (node:inspector)
 *   BENCH_CPU_BACKEND=memory → the same on an in-memory store (no HTTP: buquet's and Effect's share)
 *   BENCH_CPU_STEPS=1 → also counts fibers started and fiber-runtime steps per task, by span
 *     (an op-supervising Supervisor: slower, so its CPU figures are not comparable)
 *   BENCH_CPU_KEYS=1 → also counts the drain's requests by operation, key family and the span that
 *     made them (`GET tasks by Sweeper.step`, …), per task (reads the span chain per request)
 *   BENCH_CPU_ALLOC=1 → also measures the bytes allocated per task in the steady part (the used
 *     heap's growth between garbage collections, node:v8's GCProfiler), the collections' pause time
 *     per task, and where the bytes are allocated: V8's sampling heap profiler, counting objects
 *     already collected too, attributed to the allocating function and to the nearest frame in
 *     src/ (writes a .heapprofile; its sampling costs CPU, so CPU figures are not comparable)
 *
 * @module
 */
import { Deferred, Effect, Layer, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import type { Fiber } from "effect"
import { randomUUID } from "node:crypto"
import { writeFileSync } from "node:fs"
import { allocationMeter } from "./lib/alloc.js"
import { layerWorkerServices } from "../src/Buquet.js"
import * as MemoryStorage from "../src/layers/MemoryStorage.js"
import { RequestCounter } from "../src/services/RequestCounter.js"
import * as Worker from "../src/programs/Worker.js"
import { Queue } from "../src/services/Queue.js"
import { ensureS3 } from "./lib/env.js"
import { familyCounting } from "./lib/families.js"
import { countedOn, producerOn, storageLayer, wipe } from "./lib/stack.js"

const n = Number(process.argv[2] ?? 500)
const concurrency = Number(process.argv[3] ?? 8)
// BENCH_CPU_BACKEND=memory: the same drain on one in-memory store, to tell the cost of buquet's
// own code and Effect's runtime apart from HTTP, signing and the kernel's socket work
const inMemory = process.env["BENCH_CPU_BACKEND"] === "memory"
const backend = inMemory ? undefined : { kind: "s3" as const, target: ensureS3(), keyPrefix: `bench-cpu-${randomUUID()}/` }

/** Counts fibers started and runtime steps (grouped by the innermost span's name). */
class StepCounter extends Supervisor.AbstractSupervisor<void> {
  fibers = 0
  steps = 0
  readonly bySpan = new Map<string, number>()
  get value() {
    return Effect.void
  }
  override onStart() {
    this.fibers++
  }
  override onEffect<A, E>(fiber: Fiber.RuntimeFiber<A, E>) {
    this.steps++
    const span = fiber.currentSpan
    const name = span === undefined ? "(no span)" : span._tag === "Span" ? span.name : "(external)"
    this.bySpan.set(name, (this.bySpan.get(name) ?? 0) + 1)
  }
}
const steps = process.env["BENCH_CPU_STEPS"] === "1" ? new StepCounter() : undefined
const alloc = process.env["BENCH_CPU_ALLOC"] === "1" ? allocationMeter() : undefined
const byFamily = process.env["BENCH_CPU_KEYS"] === "1" ? new Map<string, number>() : undefined

const submit = Effect.gen(function*() {
  const queue = yield* Queue
  const results = yield* queue.submitMany(Array.from({ length: n }, (_, i) => ({ taskType: "noop", input: { i } })), { concurrency: 32 })
  const failed = results.filter((r) => r._tag === "Failed").length
  if (failed > 0) return yield* Effect.dieMessage(`${failed} of ${n} submits failed`)
})

const drain = Effect.gen(function*() {
  const counter = yield* RequestCounter
  yield* counter.reset
  byFamily?.clear()
  let done = 0
  const all = yield* Deferred.make<void>()
  const handler = Worker.handler("noop", () => Effect.void)
  const profile = process.env["BENCH_CPU_PROFILE"] === "1"
  const session = profile ? new (yield* Effect.promise(() => import("node:inspector"))).Session() : undefined
  if (session !== undefined) {
    session.connect()
    yield* Effect.promise(() => new Promise<void>((r) => session.post("Profiler.enable", () => session.post("Profiler.start", () => r()))))
  }
  // the first fifth warms the JIT and the worker's start (capabilities probe, first pass):
  // the steady figure counts the CPU of the other four fifths only
  const warm = Math.ceil(n / 5)
  let cpuWarm: NodeJS.CpuUsage | undefined
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const worker = yield* Worker.make(
    {
      id: "cpu-bench",
      concurrency,
      hooks: {
        Completed: () =>
          Effect.sync(() => {
            if (++done === warm) {
              cpuWarm = process.cpuUsage()
              alloc?.start()
            }
            if (done === n) Deferred.unsafeDone(all, Effect.void)
          })
      }
    },
    [handler]
  )
  yield* Deferred.await(all)
  const cpu = process.cpuUsage(cpu0)
  const steady = process.cpuUsage(cpuWarm)
  const wall = performance.now() - t0
  const counts = yield* counter.snapshot
  const families = byFamily === undefined ? undefined : Object.fromEntries([...byFamily].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Number((v / n).toFixed(3))]))
  const allocation = alloc === undefined ? undefined : yield* Effect.promise(() => alloc.stop(n - warm))
  if (session !== undefined) {
    yield* Effect.promise(() =>
      new Promise<void>((r) =>
        session.post("Profiler.stop", (_e, result) => {
          const file = `cpu-${Date.now()}.cpuprofile`
          writeFileSync(file, JSON.stringify((result as { profile: unknown }).profile))
          console.error(`[bench] profile written to ${file}`)
          r()
        })
      )
    )
  }
  yield* worker.stop
  const ms = (cpu.user + cpu.system) / 1000
  const per = (x: number) => (x / n).toFixed(2)
  console.log(JSON.stringify({
    tasks: n,
    concurrency,
    cpuMsPerTask: Number((ms / n).toFixed(2)),
    steadyCpuMsPerTask: Number(((steady.user + steady.system) / 1000 / (n - warm)).toFixed(2)),
    userMsPerTask: Number((cpu.user / 1000 / n).toFixed(2)),
    systemMsPerTask: Number((cpu.system / 1000 / n).toFixed(2)),
    requestsPerTask: { PUT: per(counts.PUT), GET: per(counts.GET), HEAD: per(counts.HEAD), LIST: per(counts.LIST), DELETE: per(counts.DELETE), total: per(counts.total) },
    wallSeconds: Number((wall / 1000).toFixed(1)),
    ...(families === undefined ? {} : { requestsPerTaskBy: families }),
    ...(allocation === undefined ? {} : { allocation }),
    ...(steps === undefined ? {} : {
      fibersPerTask: Number((steps.fibers / n).toFixed(1)),
      stepsPerTask: Number((steps.steps / n).toFixed(0)),
      stepsPerTaskBySpan: Object.fromEntries([...steps.bySpan].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, v]) => [k, Number((v / n).toFixed(0))]))
    })
  }))
})

const program = Effect.gen(function*() {
  // one store for the submit, the drain and the wipe: a memory store lives as long as its layer
  const store = backend === undefined
    ? Layer.succeedContext(yield* Layer.build(MemoryStorage.layer()))
    : storageLayer(backend)
  yield* Effect.scoped(submit).pipe(Effect.provide(producerOn(store)))
  const raw = backend === undefined ? store : storageLayer(backend, 64)
  const layer = Layer.provideMerge(layerWorkerServices(), countedOn(byFamily === undefined ? raw : familyCounting(raw, byFamily)))
  const measured = steps === undefined
    ? drain
    : drain.pipe(Effect.supervised(steps), Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision)))
  yield* Effect.scoped(measured).pipe(Effect.provide(Layer.fresh(layer)))
  if (backend !== undefined) yield* wipe.pipe(Effect.provide(store))
}).pipe(Effect.scoped)

Effect.runPromise(program).then(() => process.exit(0), (e: unknown) => {
  console.error(e)
  process.exit(1)
})
