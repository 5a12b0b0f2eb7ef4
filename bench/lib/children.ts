/**
 * The parent's side of the worker processes: fork, wait until ready, start, follow progress,
 * stop and collect the final counts. Every wait is bounded by a timeout.
 *
 * @module
 */
import { fork } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Option } from "effect"
import type { RequestCounts } from "../../src/services/RequestCounter.js"
import { root } from "./env.js"
import { decodeToParent } from "./protocol.js"
import type { ChildConfig, ToChild, ToParent } from "./protocol.js"

type Final = Extract<ToParent, { readonly _tag: "Final" }>

export interface WorkerChild {
  readonly process: ChildProcess
  readonly ready: Promise<void>
  readonly final: Promise<Final>
  /** Latest reported completions and the local time of the last one. */
  readonly progress: () => { readonly completed: number; readonly lastAt: number }
  readonly send: (m: ToChild) => void
  /** Handler start messages (pickup latency): called with each. */
  onStarted: ((taskId: string, at: number) => void) | undefined
  readonly readCounts: () => Promise<{ readonly counts: RequestCounts; readonly rss: number }>
}

const withTimeout = <A>(p: Promise<A>, ms: number, what: string): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    p.then((a) => {
      clearTimeout(t)
      resolve(a)
    }, (e: unknown) => {
      clearTimeout(t)
      reject(e)
    })
  })

/**
 * The worker process's entry as deployed code: bench/lib/worker-process.ts and the buquet sources
 * it imports bundled to one JavaScript file by esbuild (packages stay external, loaded from
 * node_modules), so the processes measured run plain JavaScript, not the tsx development loader
 * (whose extra loader thread and source maps would count in the RSS). Falls back to tsx when
 * esbuild (a dependency of tsx) cannot build it.
 */
let entry: { readonly script: string; readonly execArgv: ReadonlyArray<string> } | undefined
export const prepareWorkerEntry = async (): Promise<string> => {
  if (entry !== undefined) return entry.script.endsWith(".mjs") ? "bundled JavaScript (esbuild)" : "TypeScript through tsx"
  // under this checkout (.tmp/ is ignored), not node_modules/.cache: worktrees that share one
  // node_modules would overwrite each other's bundle while both measure
  const out = join(root, ".tmp/bench/worker-process.mjs")
  try {
    const esbuild = await import("esbuild")
    await esbuild.build({
      entryPoints: [join(root, "bench/lib/worker-process.ts")],
      outfile: out,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      logLevel: "error"
    })
    entry = { script: out, execArgv: [] }
    return "bundled JavaScript (esbuild)"
  } catch (e) {
    console.error(`[bench] could not bundle the worker process (${String(e)}); running it through tsx`)
    entry = { script: join(root, "bench/lib/worker-process.ts"), execArgv: ["--import", "tsx"] }
    return "TypeScript through tsx"
  }
}

/**
 * The Node flags the `buquet` executable runs with (its shebang line, bin/buquet.js), so the worker
 * processes measured here run as `buquet worker` does.
 */
export const executableNodeFlags = (): ReadonlyArray<string> => {
  const first = readFileSync(join(root, "bin/buquet.js"), "utf8").split("\n", 1)[0] ?? ""
  const words = first.replace(/^#!\S*env\s+(-S\s+)?/, "").split(/\s+/).filter((w) => w !== "")
  return words[0] === "node" ? words.slice(1) : []
}

export const spawnWorker = (config: ChildConfig): WorkerChild => {
  const { execArgv, script } = entry ?? { script: join(root, "bench/lib/worker-process.ts"), execArgv: ["--import", "tsx"] }
  // BENCH_CHILD_EXECARGV: extra Node flags for the worker processes (diagnosis, e.g. --heap-prof)
  const extra = (process.env["BENCH_CHILD_EXECARGV"] ?? "").split(" ").filter((a) => a !== "")
  const child = fork(script, [], {
    execArgv: [...(config.plainNode === true ? [] : executableNodeFlags()), ...execArgv, ...extra],
    env: { ...process.env, BENCH_CHILD: JSON.stringify(config) },
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  let progress = { completed: 0, lastAt: 0 }
  let readyResolve: () => void = () => {}
  let finalResolve: (f: Final) => void = () => {}
  let countsWaiters: Array<(c: { counts: RequestCounts; rss: number }) => void> = []
  const ready = new Promise<void>((r) => (readyResolve = r))
  const final = new Promise<Final>((resolve, reject) => {
    finalResolve = resolve
    child.on("exit", (code) => reject(new Error(`worker ${config.workerId} exited (${code}) before its final report`)))
  })
  // a rejected `final` nobody awaits yet must not crash the bench
  final.catch(() => {})
  const handle: WorkerChild = {
    process: child,
    ready,
    final,
    progress: () => progress,
    send: (m) => {
      if (child.connected) child.send(m)
    },
    onStarted: undefined,
    readCounts: () =>
      withTimeout(
        new Promise((resolve) => {
          countsWaiters.push(resolve)
          handle.send({ _tag: "ReadCounts" })
        }),
        10_000,
        "counts"
      )
  }
  child.on("message", (raw: unknown) => {
    const m = decodeToParent(raw)
    if (Option.isNone(m)) return
    const msg = m.value
    switch (msg._tag) {
      case "Ready":
        return readyResolve()
      case "Progress":
        progress = { completed: msg.completed, lastAt: msg.lastAt }
        return
      case "Started":
        return handle.onStarted?.(msg.taskId, msg.at)
      case "CountsNow": {
        const waiters = countsWaiters
        countsWaiters = []
        for (const w of waiters) w({ counts: msg.counts, rss: msg.rss })
        return
      }
      case "Final":
        progress = { completed: msg.completed, lastAt: msg.completions.at(-1) ?? progress.lastAt }
        return finalResolve(msg)
    }
  })
  return handle
}

/** Forks `configs`, waits until all are ready (bounded). */
export const spawnAll = async (configs: ReadonlyArray<ChildConfig>): Promise<ReadonlyArray<WorkerChild>> => {
  const children = configs.map(spawnWorker)
  await withTimeout(Promise.all(children.map((c) => c.ready)), 120_000, "worker processes ready")
  return children
}

/** Stops them gracefully and returns their final reports (kills any that hang). */
export const stopAll = async (children: ReadonlyArray<WorkerChild>): Promise<ReadonlyArray<Final>> => {
  for (const c of children) c.send({ _tag: "Stop" })
  try {
    return await withTimeout(Promise.all(children.map((c) => c.final)), 60_000, "worker processes final reports")
  } finally {
    for (const c of children) if (c.process.exitCode === null) c.process.kill("SIGKILL")
  }
}

/** Waits until `done()` or the deadline; polls every `every` ms. Returns whether it is done. */
export const waitUntil = async (done: () => boolean, timeoutMs: number, every = 50): Promise<boolean> => {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (done()) return true
    await new Promise((r) => setTimeout(r, every))
  }
  return done()
}

export { withTimeout }
