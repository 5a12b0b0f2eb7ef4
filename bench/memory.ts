/**
 * Worker memory at concurrency 64: one worker process on RGW with 64 slots and a handler that
 * sleeps 100 ms (so the slots really fill), draining a batch of tasks. RSS is sampled every
 * 100 ms inside the worker process; the peak and the RSS before any work are reported.
 *
 * @module
 */
import { Effect } from "effect"
import { Queue } from "../src/services/Queue.js"
import { executableNodeFlags, spawnAll, stopAll, waitUntil } from "./lib/children.js"
import { round } from "./lib/env.js"
import { backendName, producerOn, storageLayer, wipe } from "./lib/stack.js"
import type { Backend } from "./lib/stack.js"

export interface MemoryResult {
  readonly backend: string
  readonly concurrency: number
  readonly handlerMillis: number
  readonly tasks: number
  readonly completed: number
  readonly idleRssMB: number
  readonly peakRssMB: number
  readonly finalRssMB: number
  readonly heapUsedMB: number
  readonly tasksPerSec: number
  /** Node flags the worker process ran with (none under plain node, else the `buquet` executable's). */
  readonly nodeFlags: ReadonlyArray<string>
}

/**
 * `plainNode`: the worker process runs under plain `node`, as a worker embedded in a user's
 * process would (no heap flags); otherwise with the `buquet` executable's flags.
 */
export const workerMemory = async (backend: Backend, tasks: number, plainNode = true): Promise<MemoryResult> => {
  const concurrency = 64
  const handlerMillis = 100
  await Effect.runPromise(
    Effect.flatMap(Queue, (q) =>
      q.submitMany(Array.from({ length: tasks }, (_, i) => ({ taskType: "noop", input: { i } })), { concurrency: 32 })).pipe(
      Effect.scoped,
      Effect.provide(producerOn(storageLayer(backend)))
    )
  )
  const [child] = await spawnAll([
    { engine: "buquet", backend, concurrency, handlerMillis, reportStarts: false, workerId: `bench-rss-${process.pid}`, plainNode }
  ])
  try {
    const idle = await child!.readCounts()
    const t0 = Date.now()
    child!.send({ _tag: "Go" })
    await waitUntil(() => child!.progress().completed >= tasks, 600_000, 100)
    const [final] = await stopAll([child!])
    const seconds = ((final!.completions.at(-1) ?? Date.now()) - t0) / 1000
    return {
      backend: backendName(backend),
      concurrency,
      handlerMillis,
      tasks,
      completed: final!.completed,
      idleRssMB: round(idle.rss / 1e6),
      peakRssMB: round(final!.peakRss / 1e6),
      finalRssMB: round(final!.rss / 1e6),
      heapUsedMB: round(final!.heapUsed / 1e6),
      tasksPerSec: round(final!.completed / seconds),
      nodeFlags: plainNode ? [] : executableNodeFlags()
    }
  } finally {
    if (child!.process.exitCode === null) child!.process.kill("SIGKILL")
    if (backend.kind === "s3") await Effect.runPromise(wipe.pipe(Effect.scoped, Effect.provide(storageLayer(backend))))
  }
}
