/**
 * A worker process's CPU split into its fixed cost and its steady cost per task, from the CPU time
 * the process sampled at each of its completions (`process.cpuUsage()` since the start signal).
 *
 * - steady ms/task: the CPU spent between the process's 10th- and 90th-percentile completions ÷ the
 *   completions in between (the middle 80 %, as the "steady tasks/s (p10–p90)" column does for the
 *   rate): start-up, JIT warm-up and the tail are left out;
 * - fixed ms: what the process spent beyond `steady × completed` from the start signal to its last
 *   completion (start-up requests and loops, the first passes, JIT warm-up).
 *
 * @module
 */

/** One worker process's samples: cumulative CPU µs since the start signal at each completion. */
export interface WorkerCpuSamples {
  /** CPU µs since the start signal at each completion, in completion order (non-decreasing). */
  readonly completionCpuMicros: ReadonlyArray<number>
}

/** Indices of the 10th and 90th percentile completions of `n` (nearest rank, as `percentile`). */
const ranks = (n: number): readonly [number, number] => [
  Math.min(n - 1, Math.max(0, Math.ceil(0.1 * n) - 1)),
  Math.min(n - 1, Math.max(0, Math.ceil(0.9 * n) - 1))
]

/**
 * Steady worker CPU ms per task over several processes: Σ CPU between each process's p10 and p90
 * completions ÷ Σ completions in those intervals. Processes with fewer than 10 completions are left
 * out; NaN when none is left.
 */
export const steadyCpuMsPerTask = (workers: ReadonlyArray<WorkerCpuSamples>): number => {
  let micros = 0
  let tasks = 0
  for (const w of workers) {
    const cpu = w.completionCpuMicros
    if (cpu.length < 10) continue
    const [a, b] = ranks(cpu.length)
    if (b <= a) continue
    micros += cpu[b]! - cpu[a]!
    tasks += b - a
  }
  return tasks > 0 ? micros / 1000 / tasks : Number.NaN
}

/**
 * Fixed CPU ms per process: (CPU from the start signal to its last completion − steady ms/task ×
 * its completions), averaged over the processes that have a steady figure. NaN when none has.
 */
export const fixedCpuMsPerProcess = (workers: ReadonlyArray<WorkerCpuSamples>): number => {
  const fixed: Array<number> = []
  for (const w of workers) {
    const steady = steadyCpuMsPerTask([w])
    const total = w.completionCpuMicros.at(-1)
    if (!Number.isFinite(steady) || total === undefined) continue
    fixed.push(total / 1000 - steady * w.completionCpuMicros.length)
  }
  return fixed.length > 0 ? fixed.reduce((s, x) => s + x, 0) / fixed.length : Number.NaN
}

const mean = (xs: ReadonlyArray<number>): number => xs.length === 0 ? Number.NaN : xs.reduce((s, x) => s + x, 0) / xs.length
const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits

/** The CPU columns of a bench row (all ms). */
export interface CpuColumns {
  /** Steady worker CPU per task (p10–p90 of each process's completions). */
  readonly steadyWorkerCpuMsPerTask: number
  /** A worker process's fixed cost: its CPU start signal → last completion − steady × its tasks (mean). */
  readonly fixedCpuMsPerProcess: number
  /** CPU a worker process spends from its start to ready (imports, layers built; mean). */
  readonly cpuToReadyMs: number
  /** CPU a worker process spends from the start signal to its first completion (mean). */
  readonly cpuToFirstCompletionMs: number
}

/** The CPU columns from the worker processes' (or the in-process fibers') samples at completions. */
export const cpuColumns = (workers: ReadonlyArray<WorkerCpuSamples & { readonly cpuToReadyMicros?: number }>): CpuColumns => ({
  steadyWorkerCpuMsPerTask: round(steadyCpuMsPerTask(workers), 2),
  fixedCpuMsPerProcess: round(fixedCpuMsPerProcess(workers), 1),
  cpuToReadyMs: round(mean(workers.flatMap((w) => w.cpuToReadyMicros === undefined ? [] : [w.cpuToReadyMicros / 1000])), 1),
  cpuToFirstCompletionMs: round(mean(workers.flatMap((w) => w.completionCpuMicros.length === 0 ? [] : [w.completionCpuMicros[0]! / 1000])), 1)
})
