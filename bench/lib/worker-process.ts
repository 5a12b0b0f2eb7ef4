/**
 * A benchmark worker process (forked by the bench, never run by hand): a buquet Worker on a
 * counted store, or a BullMQ Worker on the local Redis, with the same no-op (or sleeping)
 * handler. It builds everything, says `Ready`, starts on `Go`, reports progress every 200 ms,
 * and on `Stop` shuts down gracefully and sends its `Final` counts before exiting.
 *
 * @module
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { Deferred, Duration, Effect, Exit, Layer, Metric, Option, Schema } from "effect"
import { claimsConflict } from "../../src/services/Metrics.js"
import * as Worker from "../../src/programs/Worker.js"
import { RequestCounter } from "../../src/services/RequestCounter.js"
import type { RequestCounts } from "../../src/services/RequestCounter.js"
import { ChildConfig, decodeToChild } from "./protocol.js"
import type { ToParent } from "./protocol.js"
import { countedOn, storageLayer, zeroCounts } from "./stack.js"
import type { Backend } from "./stack.js"
import { layerWorkerServices } from "../../src/Buquet.js"
import { tracedLayer } from "./trace.js"
import type { TracedRequest } from "./trace.js"

process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] = "true"
const config = Schema.decodeUnknownSync(Schema.parseJson(ChildConfig))(process.env["BENCH_CHILD"] ?? "")

const send = (message: ToParent): void => {
  process.send?.(message)
}

let peakRss = 0
const sampleRss = (): number => {
  const rss = process.memoryUsage().rss
  if (rss > peakRss) peakRss = rss
  return rss
}
const rssTimer = setInterval(sampleRss, 100)

// BENCH_MEM_TRACE=1: one line of memory use per second on stderr (diagnosing the RSS)
if (process.env["BENCH_MEM_TRACE"] === "1") {
  const mb = (x: number) => (x / 1e6).toFixed(1)
  const v8 = await import("node:v8")
  setInterval(() => {
    const m = process.memoryUsage()
    const spaces = v8.getHeapSpaceStatistics().map((s) => `${s.space_name.replace("_space", "")}=${mb(s.space_used_size)}/${mb(s.space_size)}`)
    console.error(`[mem] rss=${mb(m.rss)} heapTotal=${mb(m.heapTotal)} heapUsed=${mb(m.heapUsed)} external=${mb(m.external)} arrayBuffers=${mb(m.arrayBuffers)} completed=${completions.length} ${spaces.join(" ")}`)
  }, 1000).unref()
}

// BENCH_HEAP_SNAPSHOT=dir (diagnosing the live heap): after a full GC, the heap used on stderr and a
// heap snapshot in dir, at idle (built, before Ready) and mid-drain (at BENCH_HEAP_SNAPSHOT_AT completions)
const heapSnapshotDir = process.env["BENCH_HEAP_SNAPSHOT"]
const heapSnapshot = async (name: string): Promise<void> => {
  if (heapSnapshotDir === undefined || heapSnapshotDir === "") return
  const v8 = await import("node:v8")
  const vm = await import("node:vm")
  v8.setFlagsFromString("--expose-gc")
  const gc = vm.runInNewContext("gc") as () => void
  gc()
  console.error(`[mem] ${name}: heapUsed after GC ${(process.memoryUsage().heapUsed / 1e6).toFixed(2)} MB`)
  v8.writeHeapSnapshot(join(heapSnapshotDir, `${config.workerId}-${name}.heapsnapshot`))
}

// completion timestamps (local ms), for the steady-state rate
const completions: Array<number> = []
// BENCH_TRACE_DIR (bench/timeline.ts): every storage request with its times, written at the end
const traceDir = process.env["BENCH_TRACE_DIR"]
const trace: Array<TracedRequest> = []
const starts: Array<number> = []
let goAt = 0
const writeTrace = (): void => {
  if (traceDir === undefined || traceDir === "") return
  writeFileSync(join(traceDir, `${config.workerId}.json`), JSON.stringify({ workerId: config.workerId, goAt, starts, completions, requests: trace }))
}
// CPU time from Go to the latest completion (the idle time until Stop does not count), and at
// each completion (the steady CPU per task, p10–p90, and the process's fixed cost: bench/lib/worker-cpu.ts)
let cpuAtGo: NodeJS.CpuUsage | undefined
let cpuMicros = 0
let cpuToReadyMicros = 0
const completionCpuMicros: Array<number> = []
const ready = (): void => {
  const used = process.cpuUsage()
  cpuToReadyMicros = used.user + used.system
  send({ _tag: "Ready" })
}
const snapshotAt = Number(process.env["BENCH_HEAP_SNAPSHOT_AT"] ?? 0)

// BENCH_WORKER_CPU_PROFILE=dir (diagnosing the fixed cost): a CPU profile (node:inspector) from Go
// to the BENCH_WORKER_CPU_PROFILE_AT-th completion (default 50), written to dir as <workerId>.cpuprofile
const cpuProfileDir = process.env["BENCH_WORKER_CPU_PROFILE"]
const cpuProfileAt = Number(process.env["BENCH_WORKER_CPU_PROFILE_AT"] ?? 50)
const profiler = cpuProfileDir === undefined || cpuProfileDir === "" ? undefined : new (await import("node:inspector")).Session()
profiler?.connect()
const startProfile = (): void => {
  profiler?.post("Profiler.enable", () => profiler.post("Profiler.start"))
}
const stopProfile = (): void => {
  profiler?.post("Profiler.stop", (err, result) => {
    if (err === null) writeFileSync(join(cpuProfileDir!, `${config.workerId}.cpuprofile`), JSON.stringify(result.profile))
    else console.error("[bench worker] profile:", err)
  })
}

// BENCH_WORKER_HEAP_PROFILE=dir (diagnosing the plain-node peak): V8's sampling heap profile from Go
// to the BENCH_WORKER_HEAP_PROFILE_AT-th completion (default 900), written to dir as
// <workerId>.heapprofile. BENCH_WORKER_HEAP_PROFILE_KEEP says which samples it keeps: "promoted"
// (default: what the young generation's collections did not free, i.e. what lived long enough to be
// promoted to the old generation, garbage or not, by allocation site), "all" (every byte allocated)
// or "live" (what is still live at the end)
const heapProfileDir = process.env["BENCH_WORKER_HEAP_PROFILE"]
const heapProfileAt = Number(process.env["BENCH_WORKER_HEAP_PROFILE_AT"] ?? 900)
const heapProfiler = heapProfileDir === undefined || heapProfileDir === "" ? undefined : new (await import("node:inspector")).Session()
heapProfiler?.connect()
const startHeapProfile = (): void => {
  const keep = process.env["BENCH_WORKER_HEAP_PROFILE_KEEP"] ?? "promoted"
  heapProfiler?.post("HeapProfiler.enable", () =>
    heapProfiler.post("HeapProfiler.startSampling", {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: keep !== "live",
      includeObjectsCollectedByMinorGC: keep === "all"
    }))
}
const stopHeapProfile = (): void => {
  heapProfiler?.post("HeapProfiler.stopSampling", (err, result) => {
    if (err === null) writeFileSync(join(heapProfileDir!, `${config.workerId}.heapprofile`), JSON.stringify(result.profile))
    else console.error("[bench worker] heap profile:", err)
  })
}

// BENCH_WORKER_GC=1 (diagnosing the plain-node peak): node:v8's GCProfiler from Go to the last
// completion; at the end one line on stderr with, per task, the bytes the scavenges promoted to the
// old generation (what makes it grow until V8's next full collection), the bytes allocated in the
// young generation, and the collections of each kind
const gcProfiler = process.env["BENCH_WORKER_GC"] === "1" ? new (await import("node:v8")).GCProfiler() : undefined
interface GCSpace {
  readonly spaceName: string
  readonly spaceUsedSize: number
}
interface GCStat {
  readonly gcType: string
  readonly beforeGC: { readonly heapSpaceStatistics: ReadonlyArray<GCSpace> }
  readonly afterGC: { readonly heapSpaceStatistics: ReadonlyArray<GCSpace> }
}
const reportGc = (): void => {
  const result = gcProfiler?.stop()
  if (result === undefined) return
  const stats = result.statistics as unknown as ReadonlyArray<GCStat>
  const used = (spaces: ReadonlyArray<GCSpace>, name: string) => spaces.find((s) => s.spaceName === name)?.spaceUsedSize ?? 0
  let promoted = 0
  let young = 0
  let youngAfter = 0
  for (const s of stats) {
    young += Math.max(0, used(s.beforeGC.heapSpaceStatistics, "new_space") - youngAfter)
    youngAfter = used(s.afterGC.heapSpaceStatistics, "new_space")
    if (s.gcType === "Scavenge") promoted += Math.max(0, used(s.afterGC.heapSpaceStatistics, "old_space") - used(s.beforeGC.heapSpaceStatistics, "old_space"))
  }
  const n = Math.max(1, completions.length)
  const kb = (x: number) => Number((x / n / 1024).toFixed(1))
  console.error(`[gc] ${JSON.stringify({ tasks: completions.length, promotedKBPerTask: kb(promoted), youngAllocatedKBPerTask: kb(young), scavenges: stats.filter((s) => s.gcType === "Scavenge").length, markCompacts: stats.filter((s) => s.gcType === "MarkSweepCompact").length })}`)
}

const completed = (): void => {
  completions.push(Date.now())
  if (completions.length === heapProfileAt) stopHeapProfile()
  if (snapshotAt > 0 && completions.length === snapshotAt) void heapSnapshot("drain")
  const used = process.cpuUsage(cpuAtGo)
  cpuMicros = used.user + used.system
  completionCpuMicros.push(cpuMicros)
  if (completions.length === cpuProfileAt) stopProfile()
}
const progressTimer = setInterval(() => {
  send({ _tag: "Progress", completed: completions.length, lastAt: completions.at(-1) ?? 0 })
}, 200)

let finished = false
// the bench went away (killed, crashed): leave rather than keep polling the bucket
process.on("disconnect", () => {
  if (!finished) setTimeout(() => process.exit(1), 100)
})

const finish = (counts: RequestCounts): void => {
  finished = true
  reportGc()
  writeTrace()
  clearInterval(progressTimer)
  clearInterval(rssTimer)
  send({
    _tag: "Final",
    completed: completions.length,
    completions,
    counts,
    rss: sampleRss(),
    peakRss,
    heapUsed: process.memoryUsage().heapUsed,
    cpuMicros,
    completionCpuMicros,
    cpuToReadyMicros,
    lostClaims: Effect.runSync(Metric.value(claimsConflict)).count
  })
  // let the IPC message flush, then leave
  process.disconnect?.()
}

const runBuquet = Effect.gen(function*() {
  const counter = yield* RequestCounter
  const go = yield* Deferred.make<void>()
  const stop = yield* Deferred.make<void>()
  process.on("message", (raw: unknown) => {
    const m = decodeToChild(raw)
    if (Option.isNone(m)) return
    switch (m.value._tag) {
      case "Go":
        startProfile()
        startHeapProfile()
        gcProfiler?.start()
        cpuAtGo = process.cpuUsage()
        goAt = Date.now()
        return Deferred.unsafeDone(go, Exit.void)
      case "Stop":
        return Deferred.unsafeDone(stop, Exit.void)
      case "ResetCounts":
        return Effect.runSync(counter.reset)
      case "ReadCounts":
        return send({ _tag: "CountsNow", counts: Effect.runSync(counter.snapshot), rss: sampleRss() })
    }
  })
  yield* Effect.promise(() => heapSnapshot("idle"))
  ready()
  yield* Deferred.await(go)
  const handler = Worker.handler("noop", (_input, ctx) =>
    Effect.gen(function*() {
      if (traceDir !== undefined) starts.push(Date.now())
      if (config.reportStarts) send({ _tag: "Started", taskId: ctx.taskId, at: Date.now() })
      if (config.handlerMillis > 0) yield* Effect.sleep(Duration.millis(config.handlerMillis))
    }))
  const worker = yield* Worker.make(
    {
      id: config.workerId,
      concurrency: config.concurrency,
      // BENCH_WORKER_MONITOR (diagnosis): "off" without the embedded monitor, "nosweep" without its sweeper
      ...(process.env["BENCH_WORKER_MONITOR"] === "off"
        ? { monitor: false }
        : process.env["BENCH_WORKER_MONITOR"] === "nosweep"
        ? { monitor: { sweepInterval: 0 } }
        : {}),
      hooks: { Completed: () => Effect.sync(completed) }
    },
    [handler]
  )
  yield* Deferred.await(stop)
  // BENCH_WORKER_STATS=1 (diagnosis): the worker's counters (passes, LISTs, claims) on stderr
  if (process.env["BENCH_WORKER_STATS"] === "1") {
    const s = yield* worker.stats
    const c = yield* counter.snapshot
    console.error(`[bench worker ${config.workerId}] stats ${JSON.stringify({ ...s, running: s.running.length, counts: c })}`)
  }
  yield* worker.stop
  return yield* counter.snapshot
}).pipe(Effect.scoped)

const runBullmq = async (): Promise<void> => {
  // loaded only here, so the buquet worker's memory does not include BullMQ and ioredis
  const { Worker: BullWorker } = await import("bullmq")
  const worker = new BullWorker(
    config.queueName ?? "bench",
    async (job) => {
      if (config.reportStarts) send({ _tag: "Started", taskId: job.id ?? "", at: Date.now() })
      if (config.handlerMillis > 0) await new Promise((r) => setTimeout(r, config.handlerMillis))
    },
    { connection: { host: "127.0.0.1", port: config.redisPort ?? 6379, maxRetriesPerRequest: null }, concurrency: config.concurrency, autorun: false }
  )
  worker.on("completed", completed)
  await worker.waitUntilReady()
  let running: Promise<void> | undefined
  await new Promise<void>((resolve) => {
    process.on("message", (raw: unknown) => {
      const m = decodeToChild(raw)
      if (Option.isNone(m)) return
      if (m.value._tag === "Go") {
        cpuAtGo = process.cpuUsage()
        running = worker.run()
      }
      if (m.value._tag === "Stop") resolve()
      if (m.value._tag === "ReadCounts") send({ _tag: "CountsNow", counts: zeroCounts, rss: sampleRss() })
    })
    ready()
  })
  await worker.close()
  await running
  finish(zeroCounts)
}

if (config.engine === "buquet") {
  const backend = config.backend as Backend
  const raw = storageLayer(backend, Math.max(64, config.concurrency * 2))
  const layer = Layer.provideMerge(layerWorkerServices(), countedOn(traceDir === undefined || traceDir === "" ? raw : tracedLayer(raw, trace)))
  Effect.runPromise(runBuquet.pipe(Effect.provide(Layer.fresh(layer)))).then(finish, (e: unknown) => {
    console.error("[bench worker] failed:", e)
    process.exit(1)
  })
} else {
  runBullmq().catch((e: unknown) => {
    console.error("[bench worker] failed:", e)
    process.exit(1)
  })
}
