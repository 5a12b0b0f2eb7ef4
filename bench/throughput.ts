/**
 * End-to-end throughput with the no-op handler: N tasks are submitted first (the submit rate is
 * recorded), then W workers × concurrency C drain them; tasks/s = N ÷ (last completion − start
 * signal). Workers are separate OS processes (RGW, FileStorage, BullMQ) or fibers in this process
 * (MemoryStorage, which lives in one process). Every request of the producer and the workers is
 * counted by kind, so requests per completed task come from the same rows.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs"
import { fileURLToPath } from "node:url"
import os from "node:os"
import { join } from "node:path"
import { Queue as BullQueue } from "bullmq"
import { Effect, Layer, Metric, Ref } from "effect"
import * as CountingStorage from "../src/layers/CountingStorage.js"
import type { RequestCounts } from "../src/services/RequestCounter.js"
import * as MemoryStorage from "../src/layers/MemoryStorage.js"
import * as ServerClockLayer from "../src/layers/ServerClock.js"
import * as Worker from "../src/programs/Worker.js"
import { claimsConflict } from "../src/services/Metrics.js"
import { Queue } from "../src/services/Queue.js"
import { RequestCounter } from "../src/services/RequestCounter.js"
import { Storage } from "../src/services/Storage.js"
import { prepareWorkerEntry, spawnAll, stopAll, waitUntil } from "./lib/children.js"
import { ensureS3, log, percentile, round } from "./lib/env.js"
import type { S3Target } from "./lib/env.js"
import { cpuColumns } from "./lib/worker-cpu.js"
import type { CpuColumns } from "./lib/worker-cpu.js"
import { addCounts, backendName, producerOn, storageLayer, wipe, zeroCounts } from "./lib/stack.js"
import type { Backend } from "./lib/stack.js"
import { layerWorkerServices } from "../src/Buquet.js"

export interface ThroughputRow {
  readonly engine: "buquet" | "bullmq"
  readonly backend: string
  readonly workers: number
  readonly concurrency: number
  readonly tasks: number
  readonly completed: number
  readonly seconds: number
  readonly tasksPerSec: number
  /** Rate between the 10th and the 90th percentile completion (ramp-up and tail excluded). */
  readonly steadyTasksPerSec: number
  readonly submitPerSec: number
  readonly producerRequests: RequestCounts
  readonly workerRequests: RequestCounts
  readonly peakRssMB: number
  /** Worker CPU time (user + system, all worker processes, start signal → last completion), ms. */
  readonly workerCpuMs: number
  /**
   * Steady worker CPU per task, fixed cost per process, CPU to ready and to the first completion
   * (bench/lib/worker-cpu.ts). Optional: results written before they were measured lack them.
   */
  readonly cpu?: CpuColumns | undefined
  /** Claim CAS the workers lost to each other (buquet_claims_conflict_total, summed). */
  readonly lostClaims: number
  readonly error?: string | undefined
}

const steadyRate = (completions: ReadonlyArray<number>): number => {
  if (completions.length < 10) return Number.NaN
  const a = percentile(completions, 10)
  const b = percentile(completions, 90)
  return b > a ? (completions.length * 0.8) / ((b - a) / 1000) : Number.NaN
}

const failedRow = (engine: "buquet" | "bullmq", backend: string, workers: number, concurrency: number, tasks: number, error: string): ThroughputRow => ({
  engine,
  backend,
  workers,
  concurrency,
  tasks,
  completed: 0,
  seconds: 0,
  tasksPerSec: Number.NaN,
  steadyTasksPerSec: Number.NaN,
  submitPerSec: Number.NaN,
  producerRequests: zeroCounts,
  workerRequests: zeroCounts,
  peakRssMB: Number.NaN,
  workerCpuMs: Number.NaN,
  lostClaims: Number.NaN,
  error
})

/** Submits `n` no-op tasks (32 at a time) on a counted producer; returns its counts and rate. */
const submitAll = (n: number) =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const counter = yield* RequestCounter
    yield* counter.reset
    const start = Date.now()
    const results = yield* queue.submitMany(Array.from({ length: n }, (_, i) => ({ taskType: "noop", input: { i } })), { concurrency: 32 })
    const seconds = (Date.now() - start) / 1000
    const failed = results.filter((r) => r._tag === "Failed").length
    if (failed > 0) return yield* Effect.dieMessage(`${failed} of ${n} submits failed`)
    return { counts: yield* counter.snapshot, submitPerSec: n / seconds }
  })

// the CLI's diagnosis: each worker process's CPU ms per task in each tenth of its completions
let lastCurves: ReadonlyArray<ReadonlyArray<number>> = []
const curve = (cpu: ReadonlyArray<number>): ReadonlyArray<number> =>
  Array.from({ length: 10 }, (_, d) => {
    const a = Math.floor((d * cpu.length) / 10)
    const b = Math.floor(((d + 1) * cpu.length) / 10)
    return b > a ? round(((cpu[b - 1]! - (a === 0 ? 0 : cpu[a - 1]!)) / 1000) / (b - a), 1) : Number.NaN
  })

/** One row with worker processes (RGW or FileStorage). */
const processRow = async (backend: Backend, workers: number, concurrency: number, n: number): Promise<ThroughputRow> => {
  const name = backendName(backend)
  const producer = producerOn(storageLayer(backend))
  const submitted = await Effect.runPromise(submitAll(n).pipe(Effect.scoped, Effect.provide(producer)))
  const children = await spawnAll(
    Array.from({ length: workers }, (_, w) => ({
      engine: "buquet" as const,
      backend,
      concurrency,
      handlerMillis: 0,
      reportStarts: false,
      workerId: `bench-w${w}-${process.pid}`
    }))
  )
  const t0 = Date.now()
  for (const c of children) c.send({ _tag: "Go" })
  const total = () => children.reduce((s, c) => s + c.progress().completed, 0)
  const done = await waitUntil(() => total() >= n, Math.min(600_000, 60_000 + n * 200))
  const finals = await stopAll(children)
  const completions = finals.flatMap((f) => f.completions).sort((a, b) => a - b)
  const t1 = Math.max(...finals.map((f) => f.completions.at(-1) ?? 0))
  const completed = finals.reduce((s, f) => s + f.completed, 0)
  const seconds = (t1 - t0) / 1000
  lastCurves = finals.map((f) => curve(f.completionCpuMicros))
  return {
    engine: "buquet",
    backend: name,
    workers,
    concurrency,
    tasks: n,
    completed,
    seconds: round(seconds, 2),
    tasksPerSec: round(completed / seconds),
    steadyTasksPerSec: round(steadyRate(completions)),
    submitPerSec: round(submitted.submitPerSec),
    producerRequests: submitted.counts,
    workerRequests: finals.map((f) => f.counts).reduce(addCounts, zeroCounts),
    peakRssMB: round(Math.max(...finals.map((f) => f.peakRss)) / 1e6),
    workerCpuMs: round(finals.reduce((s, f) => s + f.cpuMicros, 0) / 1000),
    cpu: cpuColumns(finals),
    lostClaims: finals.reduce((s, f) => s + f.lostClaims, 0),
    error: done ? undefined : `only ${completed} of ${n} completed before the timeout`
  }
}

/** One row on MemoryStorage: the store lives in this process, so the workers are fibers here. */
const memoryRow = (workers: number, concurrency: number, n: number): Promise<ThroughputRow> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const memory = yield* MemoryStorage.make()
      const shared = Layer.succeed(Storage, memory)
      const submitted = yield* submitAll(n).pipe(Effect.provide(producerOn(shared)))
      const counted = yield* CountingStorage.make(memory)
      const completions = yield* Ref.make<Array<number>>([])
      const workerLayer = Layer.provideMerge(layerWorkerServices(), ServerClockLayer.layer.pipe(Layer.provideMerge(Layer.succeed(Storage, counted.storage)))).pipe(Layer.orDie)
      const lost0 = (yield* Metric.value(claimsConflict)).count
      const t0 = Date.now()
      const cpu0 = process.cpuUsage()
      let cpuAtLast = cpu0
      const completionCpuMicros: Array<number> = []
      const handles = yield* Effect.forEach(Array.from({ length: workers }, (_, w) => w), (w) =>
        Worker.make(
          {
            id: `bench-mem-w${w}`,
            concurrency,
            hooks: {
              Completed: () =>
                Ref.update(completions, (c) => {
                  c.push(Date.now())
                  cpuAtLast = process.cpuUsage(cpu0)
                  completionCpuMicros.push(cpuAtLast.user + cpuAtLast.system)
                  return c
                })
            }
          },
          [Worker.handler("noop", () => Effect.void)]
        ).pipe(Effect.provide(workerLayer)))
      const deadline = t0 + Math.min(600_000, 60_000 + n * 50)
      while ((yield* Ref.get(completions)).length < n && Date.now() < deadline) yield* Effect.sleep("20 millis")
      const done = yield* Ref.get(completions)
      const t1 = done.at(-1) ?? Date.now()
      const completed = done.length
      yield* Effect.forEach(handles, (h) => h.stop, { discard: true })
      const seconds = (t1 - t0) / 1000
      return {
        engine: "buquet" as const,
        backend: "MemoryStorage",
        workers,
        concurrency,
        tasks: n,
        completed,
        seconds: round(seconds, 2),
        tasksPerSec: round(completed / seconds),
        steadyTasksPerSec: round(steadyRate(done)),
        submitPerSec: round(submitted.submitPerSec),
        producerRequests: submitted.counts,
        workerRequests: yield* counted.counter.snapshot,
        peakRssMB: round(process.memoryUsage().rss / 1e6),
        // the workers are fibers of this process: its CPU, the bench's own polling included
        workerCpuMs: round((cpuAtLast.user + cpuAtLast.system) / 1000),
        // one process: the fixed cost of all the worker fibers together
        cpu: cpuColumns([{ completionCpuMicros }]),
        lostClaims: (yield* Metric.value(claimsConflict)).count - lost0,
        error: completed >= n ? undefined : `only ${completed} of ${n} completed before the timeout`
      } satisfies ThroughputRow
    }).pipe(Effect.scoped)
  )

export const GRID: ReadonlyArray<readonly [number, number]> = [1, 2, 4].flatMap((w) => [1, 8, 32].map((c) => [w, c] as const))

/**
 * Tasks per row: enough for a steady state, bounded so the whole grid stays within minutes. The RGW
 * rows at concurrency 8 and 32 drain 1,000, as the issue's own measurement did (a worker process's
 * fixed cost weighs half as much per task as over 500); the concurrency-1 rows, 3–4× slower, stay smaller.
 */
export const tasksFor = (engine: "rgw" | "file" | "memory" | "bullmq", concurrency: number, workers: number, quick: boolean): number => {
  const scale = quick ? 0.25 : 1
  const base = engine === "bullmq"
    ? 5000
    : engine === "memory"
    ? 2000
    : concurrency * workers === 1
    ? 200
    : engine === "rgw" && concurrency >= 8
    ? 1000
    : 500
  return Math.max(50, Math.round(base * scale))
}

export const runBuquetGrid = async (kind: "rgw" | "file" | "memory", target: S3Target, runId: string, quick: boolean): Promise<ReadonlyArray<ThroughputRow>> => {
  const rows: Array<ThroughputRow> = []
  for (const [workers, concurrency] of GRID) {
    const n = tasksFor(kind, concurrency, workers, quick)
    log(`throughput ${kind}: ${workers} worker(s) × concurrency ${concurrency}, ${n} tasks`)
    let dir: string | undefined
    try {
      if (kind === "memory") {
        rows.push(await memoryRow(workers, concurrency, n))
      } else {
        dir = kind === "file" ? mkdtempSync(join(os.tmpdir(), "buquet-bench-")) : undefined
        const backend: Backend = kind === "file"
          ? { kind: "file", dir: dir! }
          : { kind: "s3", target, keyPrefix: `bench/${runId}/tp-w${workers}-c${concurrency}/` }
        try {
          rows.push(await processRow(backend, workers, concurrency, n))
        } finally {
          if (backend.kind === "s3") await Effect.runPromise(wipe.pipe(Effect.scoped, Effect.provide(storageLayer(backend))))
        }
      }
    } catch (e) {
      rows.push(failedRow("buquet", kind === "rgw" ? "RGW" : kind === "file" ? "FileStorage" : "MemoryStorage", workers, concurrency, n, String(e)))
    } finally {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
    }
    const last = rows.at(-1)!
    log(`  → ${last.tasksPerSec} tasks/s (steady ${last.steadyTasksPerSec})${last.error !== undefined ? ` ERROR ${last.error}` : ""}`)
  }
  return rows
}

export const runBullmqGrid = async (redisPort: number, quick: boolean): Promise<ReadonlyArray<ThroughputRow>> => {
  const rows: Array<ThroughputRow> = []
  for (const [workers, concurrency] of GRID) {
    const n = tasksFor("bullmq", concurrency, workers, quick)
    const queueName = `bench-w${workers}-c${concurrency}`
    log(`throughput BullMQ: ${workers} worker(s) × concurrency ${concurrency}, ${n} jobs`)
    const queue = new BullQueue(queueName, { connection: { host: "127.0.0.1", port: redisPort } })
    try {
      await queue.obliterate({ force: true })
      const start = Date.now()
      for (let i = 0; i < n; i += 1000) {
        await queue.addBulk(
          Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ name: "noop", data: { i: i + j }, opts: { removeOnComplete: true } }))
        )
      }
      const submitPerSec = n / ((Date.now() - start) / 1000)
      const children = await spawnAll(
        Array.from({ length: workers }, (_, w) => ({
          engine: "bullmq" as const,
          redisPort,
          queueName,
          concurrency,
          handlerMillis: 0,
          reportStarts: false,
          workerId: `bull-w${w}`
        }))
      )
      const t0 = Date.now()
      for (const c of children) c.send({ _tag: "Go" })
      const total = () => children.reduce((s, c) => s + c.progress().completed, 0)
      const done = await waitUntil(() => total() >= n, 120_000)
      const finals = await stopAll(children)
      const completions = finals.flatMap((f) => f.completions).sort((a, b) => a - b)
      const completed = finals.reduce((s, f) => s + f.completed, 0)
      const seconds = (Math.max(...finals.map((f) => f.completions.at(-1) ?? 0)) - t0) / 1000
      rows.push({
        engine: "bullmq",
        backend: "Redis",
        workers,
        concurrency,
        tasks: n,
        completed,
        seconds: round(seconds, 2),
        tasksPerSec: round(completed / seconds),
        steadyTasksPerSec: round(steadyRate(completions)),
        submitPerSec: round(submitPerSec),
        producerRequests: zeroCounts,
        workerRequests: zeroCounts,
        peakRssMB: round(Math.max(...finals.map((f) => f.peakRss)) / 1e6),
        workerCpuMs: round(finals.reduce((s, f) => s + f.cpuMicros, 0) / 1000),
        cpu: cpuColumns(finals),
        lostClaims: 0,
        error: done ? undefined : `only ${completed} of ${n} completed before the timeout`
      })
    } catch (e) {
      rows.push(failedRow("bullmq", "Redis", workers, concurrency, n, String(e)))
    } finally {
      await queue.obliterate({ force: true }).catch(() => {})
      await queue.close()
    }
    const last = rows.at(-1)!
    log(`  → ${last.tasksPerSec} jobs/s${last.error !== undefined ? ` ERROR ${last.error}` : ""}`)
  }
  return rows
}

// one row alone, printed as JSON (before/after pairs):
//   node --import tsx bench/throughput.ts [--workers 1] [--concurrency 8] [--tasks 1000] [--file | --memory]
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string, fallback: number): number => {
    const i = process.argv.indexOf(`--${name}`)
    return i < 0 ? fallback : Number(process.argv[i + 1])
  }
  const workers = arg("workers", 1)
  const concurrency = arg("concurrency", 8)
  const n = arg("tasks", 1000)
  const run = async (): Promise<ThroughputRow> => {
    if (process.argv.includes("--memory")) return await memoryRow(workers, concurrency, n)
    await prepareWorkerEntry()
    if (process.argv.includes("--file")) {
      const dir = mkdtempSync(join(os.tmpdir(), "buquet-bench-"))
      try {
        return await processRow({ kind: "file", dir }, workers, concurrency, n)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
    const backend: Backend = { kind: "s3", target: ensureS3(), keyPrefix: `bench/tp-${Date.now().toString(36)}-${process.pid}/` }
    try {
      return await processRow(backend, workers, concurrency, n)
    } finally {
      await Effect.runPromise(wipe.pipe(Effect.scoped, Effect.provide(storageLayer(backend))))
    }
  }
  run().then((row) => {
    const { producerRequests: _p, ...rest } = row
    console.log(JSON.stringify({ ...rest, load: os.loadavg().map((l) => round(l, 1)) }))
    for (const c of lastCurves) console.log("CPU ms/task by tenth of the process's completions:", c.join(" "))
    process.exit(0)
  }, (e: unknown) => {
    console.error("throughput row failed:", e)
    process.exit(1)
  })
}
