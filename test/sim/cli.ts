/**
 * `npm run sim`: runs the deterministic simulation (test/sim/sim.ts) over many seeds.
 *
 *   npm run sim -- --seeds 10000                  # seeds 1…10000 (or --start N), 2 busy minutes each
 *   npm run sim -- --seeds 10000 --jobs 2         # the same, over 2 processes (one per core)
 *   npm run sim -- --seeds 100 --minutes 30       # the long form: longer runs per seed (--hours 24 too)
 *   npm run sim -- --seed 1234 --minutes 2        # replays one seed exactly, printing its violations
 *
 * Prints one line per failing seed with the command that replays it, and a summary (seeds/s, CPU).
 * Exit code 1 if any seed failed, 2 for bad arguments.
 */
import { fork } from "node:child_process"
import { replayCommand, runSeed, type SimOptions, type SimResult } from "./sim.js"

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}
const num = (name: string, fallback: number): number => {
  const v = flag(name)
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} must be a non-negative number, got ${v}`)
    process.exit(2)
  }
  return n
}

/** The busy phase of a seed by default, in simulated minutes (each seed also drains until settled). */
const defaultMinutes = 2

const hours = flag("hours")
const options: SimOptions = {
  minutes: hours !== undefined ? num("hours", 1) * 60 : num("minutes", defaultMinutes),
  ...(flag("workers") !== undefined ? { workers: num("workers", 3) } : {}),
  ...(flag("seam") === "unconditionalDelete" || flag("seam") === "settleDeletesLeaseMarker"
    ? { seam: flag("seam") as "unconditionalDelete" | "settleDeletesLeaseMarker" }
    : {})
}
if (flag("seam") !== undefined && options.seam === undefined) {
  console.error(`--seam must be unconditionalDelete or settleDeletesLeaseMarker, got ${flag("seam")}`)
  process.exit(2)
}
const one = flag("seed")
const all = one !== undefined ? [num("seed", 0)] : Array.from({ length: num("seeds", 20) }, (_, i) => num("start", 1) + i)
const jobs = Math.max(1, Math.floor(num("jobs", 1)))
// a child of --jobs runs every jobs-th seed from its offset and reports each result to the parent
const childOf = flag("child-of")
const offset = num("child", 0)
const seeds = childOf === undefined ? all : all.filter((_, i) => i % Number(childOf) === offset)

const started = Date.now()
const cpu0 = process.cpuUsage()
let failed = 0
let submitted = 0
let simulatedMillis = 0

let done = 0
const report = (result: SimResult) => {
  done++
  // a long run says how far it got (its summary comes only at the end)
  if (one === undefined && done % 500 === 0) {
    const seconds = (Date.now() - started) / 1000
    console.log(`progress: ${done}/${all.length} seeds, ${failed} failed, ${seconds.toFixed(0)} s, ${(done / seconds).toFixed(2)} seeds/s`)
  }
  submitted += result.stats.submitted
  simulatedMillis += result.stats.simulatedMillis
  if (one !== undefined) console.log(JSON.stringify(result.stats))
  if (result.violations.length > 0) {
    failed++
    console.log(`FAIL seed ${result.seed}: ${result.violations[0]}`)
    if (one !== undefined) for (const v of result.violations.slice(1)) console.log(`  ${v}`)
    console.log(`  replay: ${replayCommand(result.seed, options)}`)
  }
}

if (childOf !== undefined) {
  for (const seed of seeds) process.send!({ result: await runSeed(seed, options) })
  const cpu = process.cpuUsage(cpu0)
  process.send!({ cpuMicros: cpu.user + cpu.system }, () => process.exit(0))
} else {
  let childCpuMicros = 0
  if (jobs > 1 && one === undefined) {
    const passOn = args.filter((a, i) => a !== "--jobs" && args[i - 1] !== "--jobs")
    await Promise.all(Array.from({ length: jobs }, (_, j) =>
      new Promise<void>((resolve, reject) => {
        const child = fork(new URL(import.meta.url).pathname, [...passOn, "--child-of", String(jobs), "--child", String(j)], {
          execArgv: process.execArgv
        })
        child.on("message", (m: { result?: SimResult; cpuMicros?: number }) => {
          if (m.result !== undefined) report(m.result)
          if (m.cpuMicros !== undefined) childCpuMicros += m.cpuMicros
        })
        child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`sim: job ${j} exited with ${code}`))))
      })))
  } else {
    for (const seed of seeds) report(await runSeed(seed, options))
  }
  const seconds = (Date.now() - started) / 1000
  const cpu = process.cpuUsage(cpu0)
  const cpuSeconds = (cpu.user + cpu.system + childCpuMicros) / 1e6
  console.log(
    `${all.length} seeds × ${options.minutes} busy minutes (${(simulatedMillis / 3_600_000).toFixed(1)} simulated hours in all): ` +
      `${failed} failed, ${submitted} tasks submitted, ${seconds.toFixed(1)} s, ${(all.length / seconds).toFixed(2)} seeds/s` +
      `${jobs > 1 ? ` over ${jobs} jobs` : ""}, CPU ${cpuSeconds.toFixed(1)} s (${(all.length / cpuSeconds).toFixed(2)} seeds per CPU-second)`
  )
  process.exit(failed > 0 ? 1 : 0)
}
