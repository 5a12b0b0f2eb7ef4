/**
 * Pickup latency (warm and idle) and the idle worker's request cost.
 *
 * Pickup latency = the local time the handler starts (reported by the worker process) minus the
 * local time `submit` returned in the producer (same machine, same clock). One task at a time.
 * - warm: a worker that has just been busy; the next task is submitted `gapMillis` after the
 *   previous one started;
 * - idle: a worker left without work for `idleMinutes` (its requests over that window are counted
 *   and scaled to an hour), then one task; then more samples, each after `idleGapSeconds` without
 *   work (the worker is back in its idle state after a few empty passes).
 *
 * @module
 */
import { Queue as BullQueue } from "bullmq"
import { Effect, ManagedRuntime } from "effect"
import type { RequestCounts } from "../src/services/RequestCounter.js"
import { Queue } from "../src/services/Queue.js"
import { spawnAll, stopAll, withTimeout } from "./lib/children.js"
import type { WorkerChild } from "./lib/children.js"
import { log, percentile, round, sleep } from "./lib/env.js"
import { backendName, producerOn, storageLayer } from "./lib/stack.js"
import type { Backend } from "./lib/stack.js"

export interface LatencyStats {
  readonly samples: number
  readonly p50Millis: number
  readonly p99Millis: number
  readonly maxMillis: number
  readonly meanMillis: number
}

export const statsOf = (values: ReadonlyArray<number>): LatencyStats => ({
  samples: values.length,
  p50Millis: round(percentile(values, 50)),
  p99Millis: round(percentile(values, 99)),
  maxMillis: round(Math.max(...values)),
  meanMillis: round(values.reduce((a, b) => a + b, 0) / Math.max(1, values.length))
})

export interface WarmLatencyResult {
  readonly engine: "buquet" | "bullmq"
  readonly backend: string
  readonly concurrency: number
  readonly gapMillis: number
  readonly stats: LatencyStats
}

export interface IdleResult {
  readonly backend: string
  readonly idleMinutes: number
  /** Requests of the idle worker over the measured window. */
  readonly window: RequestCounts
  readonly windowSeconds: number
  /** How long the worker was left after its last task before counting began. */
  readonly settleSeconds: number
  readonly perHour: { readonly putPlusList: number; readonly put: number; readonly list: number; readonly get: number; readonly head: number; readonly delete: number }
  readonly getPlusHeadPerSec: number
  /** The first task after the full idle window. */
  readonly firstPickupMillis: number
  /** All idle samples (the first one included). */
  readonly stats: LatencyStats
  readonly rssMB: number
}

/** Submits one task and resolves with (handler start − submit returned), bounded in time. */
const pickupOnce = async (
  child: WorkerChild,
  submit: () => Promise<string>
): Promise<number> => {
  const started = new Map<string, number>()
  let wake: (() => void) | undefined
  child.onStarted = (taskId, at) => {
    started.set(taskId, at)
    wake?.()
  }
  const id = await submit()
  const returned = Date.now()
  await withTimeout(
    new Promise<void>((resolve) => {
      wake = () => {
        if (started.has(id)) resolve()
      }
      wake()
    }),
    1_500_000, // an idle worker's safety net is 20 min: wait beyond it, then give up
    `pickup of ${id}`
  )
  return started.get(id)! - returned
}

const buquetSubmitter = (backend: Backend) => {
  const runtime = ManagedRuntime.make(producerOn(storageLayer(backend)))
  const submit = () => runtime.runPromise(Effect.map(Effect.flatMap(Queue, (q) => q.submit("noop", {})), (t) => t.id))
  return { submit, dispose: () => runtime.dispose() }
}

export const warmLatency = async (backend: Backend, samples: number, gapMillis: number): Promise<WarmLatencyResult> => {
  const producer = buquetSubmitter(backend)
  const [child] = await spawnAll([
    { engine: "buquet", backend, concurrency: 8, handlerMillis: 0, reportStarts: true, workerId: `bench-lat-${process.pid}` }
  ])
  try {
    child!.send({ _tag: "Go" })
    // warm up: a few tasks so connections and the clock are settled
    for (let i = 0; i < 3; i++) await pickupOnce(child!, producer.submit)
    const values: Array<number> = []
    for (let i = 0; i < samples; i++) {
      await sleep(gapMillis)
      values.push(await pickupOnce(child!, producer.submit))
    }
    return { engine: "buquet", backend: backendName(backend), concurrency: 8, gapMillis, stats: statsOf(values) }
  } finally {
    await stopAll([child!]).catch(() => {})
    await producer.dispose()
  }
}

export const bullmqWarmLatency = async (redisPort: number, samples: number, gapMillis: number): Promise<WarmLatencyResult> => {
  const queueName = "bench-latency"
  const queue = new BullQueue(queueName, { connection: { host: "127.0.0.1", port: redisPort } })
  await queue.obliterate({ force: true })
  const [child] = await spawnAll([
    { engine: "bullmq", redisPort, queueName, concurrency: 8, handlerMillis: 0, reportStarts: true, workerId: "bull-lat" }
  ])
  const submit = async () => (await queue.add("noop", {}, { removeOnComplete: true })).id ?? ""
  try {
    child!.send({ _tag: "Go" })
    for (let i = 0; i < 3; i++) await pickupOnce(child!, submit)
    const values: Array<number> = []
    for (let i = 0; i < samples; i++) {
      await sleep(gapMillis)
      values.push(await pickupOnce(child!, submit))
    }
    return { engine: "bullmq", backend: "Redis", concurrency: 8, gapMillis, stats: statsOf(values) }
  } finally {
    await stopAll([child!]).catch(() => {})
    await queue.obliterate({ force: true }).catch(() => {})
    await queue.close()
  }
}

/** Time left between the idle worker's last task and the start of the counted window. */
const settleMillis = 90_000

export const idleLatencyAndCost = async (
  backend: Backend,
  idleMinutes: number,
  samples: number,
  idleGapSeconds: number
): Promise<IdleResult> => {
  const producer = buquetSubmitter(backend)
  const [child] = await spawnAll([
    { engine: "buquet", backend, concurrency: 8, handlerMillis: 0, reportStarts: true, workerId: `bench-idle-${process.pid}` }
  ])
  try {
    child!.send({ _tag: "Go" })
    // one task so the worker has been busy once, then let it settle into its idle state: adaptive
    // polling backs off to the wake-up watch within seconds, and its embedded monitor (the leader)
    // turns quiet after two empty lease walks 30 s apart
    await pickupOnce(child!, producer.submit)
    await sleep(settleMillis)
    child!.send({ _tag: "ResetCounts" })
    const from = Date.now()
    log(`idle: measuring an idle worker for ${idleMinutes} min`)
    await sleep(idleMinutes * 60_000)
    const { counts, rss } = await child!.readCounts()
    const windowSeconds = (Date.now() - from) / 1000
    const scale = 3600 / windowSeconds
    const values: Array<number> = [await pickupOnce(child!, producer.submit)]
    log(`idle: first pickup after ${idleMinutes} min idle: ${round(values[0]!)} ms`)
    for (let i = 1; i < samples; i++) {
      await sleep(idleGapSeconds * 1000)
      values.push(await pickupOnce(child!, producer.submit))
    }
    return {
      backend: backendName(backend),
      idleMinutes,
      window: counts,
      windowSeconds: round(windowSeconds),
      settleSeconds: settleMillis / 1000,
      perHour: {
        putPlusList: round((counts.PUT + counts.LIST + counts["LIST-VERSIONS"]) * scale),
        put: round(counts.PUT * scale),
        list: round((counts.LIST + counts["LIST-VERSIONS"]) * scale),
        get: round(counts.GET * scale),
        head: round(counts.HEAD * scale),
        delete: round(counts.DELETE * scale)
      },
      getPlusHeadPerSec: round((counts.GET + counts.HEAD) / windowSeconds, 3),
      firstPickupMillis: round(values[0]!),
      stats: statsOf(values),
      rssMB: round(rss / 1e6)
    }
  } finally {
    await stopAll([child!]).catch(() => {})
    await producer.dispose()
  }
}

// `node --import tsx bench/latency.ts [samples] [gapMillis]`: the warm pickup on RGW alone, as JSON
if (import.meta.url === `file://${process.argv[1]}`) {
  const { ensureS3 } = await import("./lib/env.js")
  const { prepareWorkerEntry } = await import("./lib/children.js")
  const target = ensureS3()
  const samples = Number(process.argv[2] ?? 60)
  const gap = Number(process.argv[3] ?? 250)
  await prepareWorkerEntry()
  const backend: Backend = { kind: "s3", target, keyPrefix: `bench/lat-${Date.now().toString(36)}-${process.pid}/` }
  const r = await warmLatency(backend, samples, gap)
  const { wipe } = await import("./lib/stack.js")
  await Effect.runPromise(wipe.pipe(Effect.scoped, Effect.provide(storageLayer(backend))))
  console.log(JSON.stringify(r))
  process.exit(0)
}
