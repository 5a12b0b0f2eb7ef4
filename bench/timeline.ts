/**
 * A timeline of one drain, for diagnosis (not part of `npm run bench`): W worker processes × C
 * drain N no-op tasks, straight to the store or through the delay proxy, and every storage
 * request of every worker is traced (bench/lib/trace.ts). Printed: when each worker made its
 * first request, started its first task and finished its last; completions per interval; what
 * the workers did before their first task and after 90 % of the tasks were done (requests by
 * kind and key family); lost claims.
 *
 *   node --import tsx bench/timeline.ts [--workers 4] [--concurrency 8] [--tasks 500]
 *     [--proxy 30] [--file] [--bucket-ms 500] [--json out.json]
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { Queue } from "../src/services/Queue.js"
import { prepareWorkerEntry, spawnAll, stopAll, waitUntil } from "./lib/children.js"
import { startDelayProxy } from "./lib/delay-proxy.js"
import type { DelayProxy } from "./lib/delay-proxy.js"
import { ensureS3, log, percentile, round } from "./lib/env.js"
import { producerOn, storageLayer, wipe } from "./lib/stack.js"
import type { Backend } from "./lib/stack.js"
import type { TracedRequest } from "./lib/trace.js"

interface WorkerTrace {
  readonly workerId: string
  readonly goAt: number
  readonly starts: ReadonlyArray<number>
  readonly completions: ReadonlyArray<number>
  readonly requests: ReadonlyArray<TracedRequest>
}

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? fallback : Number(process.argv[i + 1])
}
const argString = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? undefined : process.argv[i + 1]
}

/** The key family of a request: `tasks`, `ready`, `leases`, `control/<name>`, … */
const family = (key: string): string => {
  const parts = key.split("/")
  if (parts[0] === "control" || parts[0] === "monitor") return `${parts[0]}/${(parts[1] ?? "").replace(/\.json$/, "")}`
  return parts[0] === "" ? "(root)" : parts[0]!
}

const tally = (requests: ReadonlyArray<TracedRequest>): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const r of requests) {
    const k = `${r.op} ${family(r.key)}${r.outcome === "ok" ? "" : ` ${r.outcome}`}`
    out[k] = (out[k] ?? 0) + 1
  }
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]))
}

const main = async () => {
  const workers = arg("workers", 4)
  const concurrency = arg("concurrency", 8)
  const n = arg("tasks", 500)
  const delay = arg("proxy", 0)
  const bucketMs = arg("bucket-ms", 500)
  const useFile = process.argv.includes("--file")
  const runId = `tl-${Date.now().toString(36)}-${process.pid}`
  const traceDir = mkdtempSync(join(os.tmpdir(), "buquet-timeline-"))
  process.env["BENCH_TRACE_DIR"] = traceDir
  await prepareWorkerEntry()
  let proxy: DelayProxy | undefined
  let fileDir: string | undefined
  let direct: Backend
  let workerBackend: Backend
  if (useFile) {
    fileDir = mkdtempSync(join(os.tmpdir(), "buquet-timeline-store-"))
    direct = { kind: "file", dir: fileDir }
    workerBackend = direct
  } else {
    const target = ensureS3()
    direct = { kind: "s3", target, keyPrefix: `bench/${runId}/` }
    workerBackend = direct
    if (delay > 0) {
      const url = new URL(target.endpoint)
      proxy = await startDelayProxy({ upstreamHost: url.hostname, upstreamPort: Number(url.port || 80), delayMillis: delay })
      workerBackend = { kind: "s3", target: { ...target, endpoint: proxy.endpoint }, keyPrefix: direct.keyPrefix }
    }
  }
  try {
    await Effect.runPromise(
      Effect.flatMap(Queue, (q) => q.submitMany(Array.from({ length: n }, (_, i) => ({ taskType: "noop", input: { i } })), { concurrency: 32 })).pipe(
        Effect.scoped,
        Effect.provide(producerOn(storageLayer(direct)))
      )
    )
    log(`timeline: ${workers} × ${concurrency}, ${n} tasks${proxy !== undefined ? `, through a ${delay} ms proxy` : ""}${useFile ? " (FileStorage)" : ""}; load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`)
    const children = await spawnAll(Array.from({ length: workers }, (_, w) => ({
      engine: "buquet" as const,
      backend: workerBackend,
      concurrency,
      handlerMillis: 0,
      reportStarts: false,
      workerId: `tl-w${w}-${process.pid}`
    })))
    const t0 = Date.now()
    for (const c of children) c.send({ _tag: "Go" })
    const total = () => children.reduce((s, c) => s + c.progress().completed, 0)
    await waitUntil(() => total() >= n, Math.min(600_000, 60_000 + n * 1000))
    await stopAll(children)
    const traces: Array<WorkerTrace> = children.map((_, w) => JSON.parse(readFileSync(join(traceDir, `tl-w${w}-${process.pid}.json`), "utf8")) as WorkerTrace)
    const at = (t: number) => round((t - t0) / 1000, 2)
    const all = traces.flatMap((t) => t.completions).sort((a, b) => a - b)
    const last = all.at(-1) ?? t0
    const p = (q: number) => at(percentile(all, q))
    const summary = {
      workers,
      concurrency,
      tasks: n,
      completed: all.length,
      seconds: at(last),
      tasksPerSec: round(all.length / ((last - t0) / 1000)),
      steadyTasksPerSec: round((all.length * 0.8) / ((percentile(all, 90) - percentile(all, 10)) / 1000)),
      firstCompletion: at(all[0] ?? t0),
      p10: p(10),
      p50: p(50),
      p90: p(90),
      p99: p(99),
      last: at(last),
      load: os.loadavg().map((l) => round(l, 1))
    }
    console.log("summary", JSON.stringify(summary))
    for (const t of traces) {
      const firstStart = t.starts[0] ?? Number.NaN
      const before = t.requests.filter((r) => r.start < firstStart)
      console.log(`${t.workerId}: go +${at(t.goAt)} s, first request +${at(t.requests[0]?.start ?? Number.NaN)}, first start +${at(firstStart)}, last completion +${at(t.completions.at(-1) ?? Number.NaN)}, ${t.completions.length} tasks, ${t.requests.length} requests`)
      console.log(`  before the first start (${before.length}):`, JSON.stringify(tally(before)))
      // the first requests in order, with their round trips
      console.log("  first 14:", t.requests.slice(0, 14).map((r) => `${r.op} ${family(r.key)} +${at(r.start)}→${round(r.end - r.start)}ms${r.outcome === "ok" ? "" : ` ${r.outcome}`}`).join(" | "))
    }
    const p90At = percentile(all, 90)
    const tail = traces.flatMap((t) => t.requests.filter((r) => r.start >= p90At))
    console.log(`after 90 % (+${at(p90At)} s → +${at(last)} s), all workers (${tail.length}):`, JSON.stringify(tally(tail)))
    console.log("whole run:", JSON.stringify(tally(traces.flatMap((t) => t.requests))))
    const buckets: Array<number> = []
    for (const c of all) {
      const b = Math.floor((c - t0) / bucketMs)
      buckets[b] = (buckets[b] ?? 0) + 1
    }
    console.log(`completions per ${bucketMs} ms:`, Array.from(buckets, (x) => x ?? 0).join(" "))
    // per worker: completions per bucket
    for (const t of traces) {
      const per: Array<number> = []
      for (const c of t.completions) {
        const b = Math.floor((c - t0) / bucketMs)
        per[b] = (per[b] ?? 0) + 1
      }
      console.log(`  ${t.workerId}:`, Array.from(per, (x) => x ?? 0).join(" "))
    }
    const out = argString("json")
    if (out !== undefined) writeFileSync(out, JSON.stringify({ t0, summary, traces }))
  } finally {
    await Effect.runPromise(wipe.pipe(Effect.scoped, Effect.provide(storageLayer(direct))))
    await proxy?.close()
    rmSync(traceDir, { recursive: true, force: true })
    if (fileDir !== undefined) rmSync(fileDir, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error("timeline failed:", e)
  process.exit(1)
})
