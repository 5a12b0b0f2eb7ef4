/**
 * `npm run bench`: every scenario of issues 10 and 17 in one run, against the real RGW server (started
 * with scripts/s3-start.sh when S3_ENDPOINT is unset) and, for reference, FileStorage,
 * MemoryStorage and BullMQ on a local Redis; writes BENCHMARKS.md, bench/results/bench-results.json
 * and the SVG charts.
 *
 *   npm run bench                       the full run (5 min idle window, chaos long form)
 *   npm run bench -- --quick            development: small batches, 0.5 min idle, chaos short form,
 *                                       written to bench/results/quick/ (not the committed results)
 *   npm run bench -- --idle-minutes=N   another idle window
 *
 * @module
 */
import os from "node:os"
import { join } from "node:path"
import { runCapacity } from "./capacity.js"
import type { CapacityResult } from "./capacity.js"
import { longForm, runChaos, shortForm } from "./chaos.js"
import type { ChaosResult } from "./chaos.js"
import { simulateIdleHour } from "./idle-sim.js"
import type { IdleSimResult } from "./idle-sim.js"
import { bullmqWarmLatency, idleLatencyAndCost, warmLatency } from "./latency.js"
import type { IdleResult, WarmLatencyResult } from "./latency.js"
import { prepareWorkerEntry } from "./lib/children.js"
import { ensureS3, log, machineInfo, root, round, versions } from "./lib/env.js"
import { startRedis } from "./lib/redis.js"
import { workerMemory } from "./memory.js"
import type { MemoryResult } from "./memory.js"
import { writeReport } from "./report.js"
import type { BenchResults } from "./report.js"
import { runScaleOut } from "./scaleout.js"
import type { ScaleOutResult } from "./scaleout.js"
import { runBuquetGrid, runBullmqGrid } from "./throughput.js"
import type { ThroughputRow } from "./throughput.js"

const argValue = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1]

const attempt = async <A>(what: string, f: () => Promise<A>): Promise<A | { readonly error: string }> => {
  try {
    return await f()
  } catch (e) {
    log(`${what} FAILED: ${String(e)}`)
    return { error: String(e instanceof Error ? e.message : e) }
  }
}

const main = async (): Promise<void> => {
  const quick = process.argv.includes("--quick") || process.env["BENCH_QUICK"] === "1"
  const idleMinutes = Number(argValue("idle-minutes") ?? (quick ? 0.5 : 5))
  const outDir = quick ? join(root, "bench/results/quick") : join(root, "bench/results")
  const markdown = quick ? join(outDir, "BENCHMARKS.md") : join(root, "BENCHMARKS.md")
  const started = new Date()
  const runId = `${started.getTime().toString(36)}-${process.pid}`
  const loadBefore = os.loadavg().map((x) => round(x, 2))
  const loads: Array<number> = [loadBefore[0]!]
  const sampler = setInterval(() => loads.push(round(os.loadavg()[0]!, 2)), 10_000)
  log(`bench (${quick ? "quick" : "full"}), run ${runId}; load ${loadBefore.join(" ")}`)

  const target = ensureS3()
  const workerEntry = await prepareWorkerEntry()
  log(`worker processes run ${workerEntry}`)
  const capacitySeconds = quick ? 3 : 8

  const capacity = await attempt<CapacityResult>("capacity", () => runCapacity({ kind: "s3", target, keyPrefix: `bench/${runId}/capacity/` }, capacitySeconds))
  const rgw = await runBuquetGrid("rgw", target, runId, quick)
  const file = await runBuquetGrid("file", target, runId, quick)
  const memory = await runBuquetGrid("memory", target, runId, quick)
  const scaleOut = await attempt<ScaleOutResult>("scale-out through the delay proxy", () => runScaleOut(target, runId, quick))

  const warm: Array<WarmLatencyResult> = []
  const samples = quick ? 15 : 60
  let bullmq: ReadonlyArray<ThroughputRow> | { readonly unavailable: string }
  const redis = await startRedis()
  if ("unavailable" in redis) {
    bullmq = { unavailable: redis.unavailable }
  } else {
    try {
      bullmq = await runBullmqGrid(redis.port, quick)
      const w = await attempt("BullMQ warm latency", () => bullmqWarmLatency(redis.port, samples, 250))
      if (!("error" in w)) warm.push(w)
    } finally {
      await redis.stop()
    }
  }
  log("warm pickup latency on RGW and FileStorage")
  const warmRgw = await attempt("warm latency RGW", () => warmLatency({ kind: "s3", target, keyPrefix: `bench/${runId}/warm/` }, samples, 250))
  if (!("error" in warmRgw)) warm.unshift(warmRgw)
  const fileDir = join(os.tmpdir(), `buquet-bench-warm-${runId}`)
  const warmFile = await attempt("warm latency FileStorage", () => warmLatency({ kind: "file", dir: fileDir }, samples, 250))
  if (!("error" in warmFile)) warm.splice(1, 0, warmFile)

  log("worker memory at concurrency 64")
  const mem = await attempt<MemoryResult>("memory", () => workerMemory({ kind: "s3", target, keyPrefix: `bench/${runId}/rss/` }, quick ? 300 : 1000, true))
  log("worker memory at concurrency 64, with the buquet executable's heap flags")
  const memExecutable = await attempt<MemoryResult>("memory (executable flags)", () =>
    workerMemory({ kind: "s3", target, keyPrefix: `bench/${runId}/rss-flags/` }, quick ? 300 : 1000, false))
  log("idle worker-hour, simulated on MemoryStorage + TestClock")
  const idleSim = await attempt<IdleSimResult>("idle simulation", () => simulateIdleHour(60))
  const idle = await attempt<IdleResult>("idle", () =>
    idleLatencyAndCost({ kind: "s3", target, keyPrefix: `bench/${runId}/idle/` }, idleMinutes, quick ? 4 : 10, 8))
  log(`chaos (${quick ? "short" : "long"} form)`)
  const chaos = await attempt<ChaosResult>("chaos", () => runChaos(target, quick ? shortForm : longForm, runId))

  clearInterval(sampler)
  const finished = new Date()
  const loadAfter = os.loadavg().map((x) => round(x, 2))
  loads.push(loadAfter[0]!)
  const results: BenchResults = {
    mode: quick ? "quick" : "full",
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    minutes: round((finished.getTime() - started.getTime()) / 60_000),
    machine: machineInfo(),
    loadBefore,
    loadAfter,
    loadDuring: { min: Math.min(...loads), max: Math.max(...loads) },
    versions: versions(),
    settings: {
      idleMinutes,
      capacitySeconds,
      workerEntry,
      command: `npm run bench${quick ? " -- --quick" : ""}${argValue("idle-minutes") !== undefined ? ` --idle-minutes=${idleMinutes}` : ""}`
    },
    capacity,
    throughput: { rgw, file, memory, bullmq },
    warm,
    idle,
    idleSim,
    memory: mem,
    memoryExecutable: memExecutable,
    scaleOut,
    chaos
  }
  writeReport(results, outDir, markdown)
  log(`wrote ${markdown} and ${outDir}`)
  if (!("error" in chaos)) console.log(chaos.verdictLine)
  process.exit(0)
}

main().catch((e: unknown) => {
  console.error("bench failed:", e)
  process.exit(1)
})
