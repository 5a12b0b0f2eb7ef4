/**
 * Scale-out through realistic latency: a delay proxy (bench/lib/delay-proxy.ts, 30 ms ± 5 ms per
 * direction, seeded) sits between the worker processes and RGW, and 1, 2, 4 and 8 worker
 * processes × concurrency 2 drain a batch each (the batch grows with the workers). The producer
 * submits directly. Every handler start is reported, so a task run twice is counted.
 *
 *   node --import tsx bench/scaleout.ts [--quick]     this scenario alone, printed as JSON
 *
 * @module
 */
import { Effect } from "effect"
import { Queue } from "../src/services/Queue.js"
import type { RequestCounts } from "../src/services/RequestCounter.js"
import { prepareWorkerEntry, spawnAll, stopAll, waitUntil } from "./lib/children.js"
import { startDelayProxy } from "./lib/delay-proxy.js"
import { ensureS3, log, round } from "./lib/env.js"
import type { S3Target } from "./lib/env.js"
import { cpuColumns } from "./lib/worker-cpu.js"
import type { CpuColumns } from "./lib/worker-cpu.js"
import { addCounts, producerOn, storageLayer, wipe, zeroCounts } from "./lib/stack.js"
import type { Backend } from "./lib/stack.js"

export interface ScaleOutRow {
  readonly workers: number
  readonly tasks: number
  readonly completed: number
  readonly seconds: number
  readonly tasksPerSec: number
  /** Handler starts beyond the first, summed over tasks. */
  readonly duplicateExecutions: number
  readonly workerCpuMs: number
  /** Steady CPU per task and fixed cost per process (bench/lib/worker-cpu.ts); absent in older results. */
  readonly cpu?: CpuColumns | undefined
  readonly lostClaims: number
  readonly requests: RequestCounts
  readonly error?: string | undefined
}

export interface ScaleOutResult {
  readonly delayMillis: number
  readonly jitterMillis: number
  readonly seed: number
  readonly concurrency: number
  readonly rows: ReadonlyArray<ScaleOutRow>
}

export const SCALE_OUT_WORKERS: ReadonlyArray<number> = [1, 2, 4, 8]

const submit = (backend: Backend, n: number) =>
  Effect.runPromise(
    Effect.flatMap(Queue, (q) =>
      q.submitMany(Array.from({ length: n }, (_, i) => ({ taskType: "noop", input: { i } })), { concurrency: 32 })).pipe(
      Effect.flatMap((results) => {
        const failed = results.filter((r) => r._tag === "Failed").length
        return failed > 0 ? Effect.dieMessage(`${failed} of ${n} submits failed`) : Effect.void
      }),
      Effect.scoped,
      Effect.provide(producerOn(storageLayer(backend)))
    )
  )

const row = async (target: S3Target, proxyEndpoint: string, keyPrefix: string, workers: number, concurrency: number, n: number): Promise<ScaleOutRow> => {
  const direct: Backend = { kind: "s3", target, keyPrefix }
  const proxied: Backend = { kind: "s3", target: { ...target, endpoint: proxyEndpoint }, keyPrefix }
  try {
    await submit(direct, n)
    const children = await spawnAll(
      Array.from({ length: workers }, (_, w) => ({
        engine: "buquet" as const,
        backend: proxied,
        concurrency,
        handlerMillis: 0,
        reportStarts: true,
        workerId: `bench-proxy-w${w}-${process.pid}`
      }))
    )
    const starts = new Map<string, number>()
    for (const c of children) c.onStarted = (taskId) => starts.set(taskId, (starts.get(taskId) ?? 0) + 1)
    const t0 = Date.now()
    for (const c of children) c.send({ _tag: "Go" })
    const total = () => children.reduce((s, c) => s + c.progress().completed, 0)
    const done = await waitUntil(() => total() >= n, Math.min(600_000, 60_000 + n * 1000))
    const finals = await stopAll(children)
    const completed = finals.reduce((s, f) => s + f.completed, 0)
    const seconds = (Math.max(...finals.map((f) => f.completions.at(-1) ?? 0)) - t0) / 1000
    return {
      workers,
      tasks: n,
      completed,
      seconds: round(seconds, 2),
      tasksPerSec: round(completed / seconds),
      duplicateExecutions: [...starts.values()].reduce((s, k) => s + k - 1, 0),
      workerCpuMs: round(finals.reduce((s, f) => s + f.cpuMicros, 0) / 1000),
      cpu: cpuColumns(finals),
      lostClaims: finals.reduce((s, f) => s + f.lostClaims, 0),
      requests: finals.map((f) => f.counts).reduce(addCounts, zeroCounts),
      error: done ? undefined : `only ${completed} of ${n} completed before the timeout`
    }
  } catch (e) {
    return {
      workers,
      tasks: n,
      completed: 0,
      seconds: 0,
      tasksPerSec: Number.NaN,
      duplicateExecutions: 0,
      workerCpuMs: Number.NaN,
      lostClaims: 0,
      requests: zeroCounts,
      error: String(e)
    }
  } finally {
    await Effect.runPromise(wipe.pipe(Effect.scoped, Effect.provide(storageLayer(direct))))
  }
}

export const runScaleOut = async (target: S3Target, runId: string, quick: boolean, delayMillis = 30): Promise<ScaleOutResult> => {
  const url = new URL(target.endpoint)
  const proxy = await startDelayProxy({ upstreamHost: url.hostname, upstreamPort: Number(url.port || 80), delayMillis })
  const concurrency = 2
  const rows: Array<ScaleOutRow> = []
  try {
    for (const workers of SCALE_OUT_WORKERS) {
      const n = workers * (quick ? 15 : 50)
      log(`scale-out through a ${proxy.delayMillis} ms proxy: ${workers} worker(s) × ${concurrency}, ${n} tasks`)
      const r = await row(target, proxy.endpoint, `bench/${runId}/proxy-w${workers}/`, workers, concurrency, n)
      rows.push(r)
      log(`  → ${r.tasksPerSec} tasks/s, ${r.duplicateExecutions} duplicate executions${r.error !== undefined ? ` ERROR ${r.error}` : ""}`)
    }
  } finally {
    await proxy.close()
  }
  return { delayMillis: proxy.delayMillis, jitterMillis: proxy.jitterMillis, seed: proxy.seed, concurrency, rows }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = ensureS3()
  prepareWorkerEntry()
    .then(() => runScaleOut(target, `so-${Date.now().toString(36)}-${process.pid}`, process.argv.includes("--quick")))
    .then((r) => {
      console.log(JSON.stringify(r, null, 2))
      process.exit(0)
    }, (e: unknown) => {
      console.error("scale-out bench failed:", e)
      process.exit(1)
    })
}
