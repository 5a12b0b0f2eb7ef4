/**
 * Bytes allocated per task and where (bench/cpu.ts, `BENCH_CPU_ALLOC=1`).
 *
 * - Bytes allocated: node 20's `v8.getHeapStatistics()` has no running total of allocations, so it
 *   is the used heap's growth between collections, summed: before each GC minus after the previous
 *   one (node:v8's `GCProfiler` records both), plus the growth after the last. Sweeping that frees
 *   memory between two collections makes this a slight undercount.
 * - Where: V8's sampling heap profiler (node:inspector) with the objects the young and old
 *   generation collections freed kept in the profile, so garbage counts as much as what lives.
 *   Each sample is attributed to its allocating function (self) and to the innermost frame in the
 *   project's `src/` on its stack (what in our code caused it).
 *
 * @module
 */
import { Session } from "node:inspector"
import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { GCProfiler, getHeapStatistics } from "node:v8"

interface ProfileNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<ProfileNode>
}

interface GCStat {
  readonly gcType: string
  readonly cost: number
  readonly beforeGC: { readonly heapStatistics: { readonly usedHeapSize: number } }
  readonly afterGC: { readonly heapStatistics: { readonly usedHeapSize: number } }
}

const post = <A>(session: Session, method: string, params?: object): Promise<A> =>
  new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (e, r) => (e === null ? resolve(r as A) : reject(e)))
  )

const short = (url: string): string => {
  const i = url.indexOf("/node_modules/")
  if (i >= 0) return url.slice(i + "/node_modules/".length)
  const s = url.search(/\/(src|bench|test)\//)
  return s >= 0 ? url.slice(s + 1) : url === "" ? "(native)" : url.replace(/^node:/, "node:")
}

const packageOf = (url: string): string => {
  if (url === "") return "(native/V8)"
  const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m !== null) return m[1]!
  if (/\/src\//.test(url)) return "buquet src/"
  if (url.startsWith("node:")) return "node internals"
  return short(url)
}

/**
 * The source module of each line of a bundle esbuild wrote (it heads each module's code with a
 * `// src/...ts` comment): a bundled run's frames are named by module, not by the bundle's name.
 */
const bundles = new Map<string, ReadonlyArray<string>>()
const moduleAt = (url: string, line: number): string | undefined => {
  if (!url.startsWith("file:") || url.includes("/node_modules/") || !url.endsWith(".mjs")) return undefined
  let modules = bundles.get(url)
  if (modules === undefined) {
    let current = "(bundle)"
    modules = readFileSync(fileURLToPath(url), "utf8").split("\n").map((text) => {
      const m = /^\/\/ ((?:src|bench)\/\S+\.ts)$/.exec(text)
      if (m !== null) current = m[1]!
      return current
    })
    bundles.set(url, modules)
  }
  return modules[line]
}

/** A frame's URL, as the module it comes from when it is a line of a bundle. */
const sourceOf = (url: string, line: number): string => {
  const module = moduleAt(url, line)
  return module === undefined ? url : `file:///${module}`
}

const isOurs = (url: string): boolean => /\/src\//.test(url) && !url.includes("/node_modules/")

export interface AllocationReport {
  readonly tasks: number
  readonly allocatedKBPerTask: number
  readonly gcMsPerTask: number
  readonly scavenges: number
  readonly markCompacts: number
  readonly sampledKBPerTask: number
  readonly byPackage: Record<string, number>
  readonly topSelf: Record<string, number>
  readonly topOurs: Record<string, number>
  readonly profileFile: string
}

/** Start it at the steady part's beginning; stop it with the number of tasks in between. */
export const allocationMeter = () => {
  const session = new Session()
  const gc = new GCProfiler()
  let usedAtStart = 0
  return {
    start: (): void => {
      session.connect()
      session.post("HeapProfiler.enable")
      session.post("HeapProfiler.startSampling", {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true
      })
      usedAtStart = getHeapStatistics().used_heap_size
      gc.start()
    },
    stop: async (tasks: number): Promise<AllocationReport> => {
      const usedAtEnd = getHeapStatistics().used_heap_size
      const stats = (gc.stop()?.statistics ?? []) as unknown as ReadonlyArray<GCStat>
      let allocated = 0
      let previous = usedAtStart
      let cost = 0
      for (const s of stats) {
        allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - previous)
        previous = s.afterGC.heapStatistics.usedHeapSize
        cost += s.cost
      }
      allocated += Math.max(0, usedAtEnd - previous)
      const { profile } = await post<{ profile: { head: ProfileNode } }>(session, "HeapProfiler.stopSampling")
      session.disconnect()
      const file = `alloc-${Date.now()}.heapprofile`
      writeFileSync(file, JSON.stringify(profile))
      const self = new Map<string, number>()
      const ours = new Map<string, number>()
      const packages = new Map<string, number>()
      let total = 0
      const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v)
      const walk = (node: ProfileNode, nearestOurs: string | undefined): void => {
        const f = node.callFrame
        const url = sourceOf(f.url, f.lineNumber)
        const name = `${f.functionName || "(anonymous)"} ${short(url)}:${f.lineNumber + 1}`
        const here = isOurs(url) ? name : nearestOurs
        if (node.selfSize > 0) {
          total += node.selfSize
          add(self, name, node.selfSize)
          add(ours, here ?? "(no src/ frame on the stack)", node.selfSize)
          add(packages, packageOf(url), node.selfSize)
        }
        for (const c of node.children) walk(c, here)
      }
      walk(profile.head, undefined)
      const perTask = (m: Map<string, number>, top: number) =>
        Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, Number((v / tasks / 1024).toFixed(1))]))
      return {
        tasks,
        allocatedKBPerTask: Number((allocated / tasks / 1024).toFixed(1)),
        gcMsPerTask: Number((cost / 1000 / tasks).toFixed(3)),
        scavenges: stats.filter((s) => s.gcType === "Scavenge").length,
        markCompacts: stats.filter((s) => s.gcType === "MarkSweepCompact").length,
        sampledKBPerTask: Number((total / tasks / 1024).toFixed(1)),
        byPackage: perTask(packages, 12),
        topSelf: perTask(self, 30),
        topOurs: perTask(ours, 30),
        profileFile: file
      }
    }
  }
}
