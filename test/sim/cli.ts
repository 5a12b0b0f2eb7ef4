/**
 * `npm run sim`: runs the deterministic simulation (test/sim/sim.ts) over many seeds.
 *
 *   npm run sim -- --seeds 10000 --minutes 60     # seeds 1…10000 (or --start N)
 *   npm run sim -- --seed 1234 --minutes 60       # replays one seed exactly, printing its violations
 *
 * Prints one line per failing seed with the command that replays it, and a summary (seeds/s).
 * Exit code 1 if any seed failed.
 */
import { replayCommand, runSeed, type SimOptions } from "./sim.js"

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

const hours = flag("hours")
const options: SimOptions = {
  minutes: hours !== undefined ? num("hours", 1) * 60 : num("minutes", 30),
  ...(flag("workers") !== undefined ? { workers: num("workers", 3) } : {})
}
const one = flag("seed")
const seeds = one !== undefined ? [num("seed", 0)] : Array.from({ length: num("seeds", 20) }, (_, i) => num("start", 1) + i)

const started = Date.now()
let failed = 0
let submitted = 0
for (const seed of seeds) {
  const result = await runSeed(seed, options)
  submitted += result.stats.submitted
  if (one !== undefined) console.log(JSON.stringify(result.stats))
  if (result.violations.length > 0) {
    failed++
    console.log(`FAIL seed ${seed}: ${result.violations[0]}`)
    if (one !== undefined) for (const v of result.violations.slice(1)) console.log(`  ${v}`)
    console.log(`  replay: ${replayCommand(seed, options)}`)
  }
}
const seconds = (Date.now() - started) / 1000
console.log(
  `${seeds.length} seeds × ${options.minutes} simulated minutes: ${failed} failed, ${submitted} tasks submitted, ` +
    `${seconds.toFixed(1)} s (${(seeds.length / seconds).toFixed(2)} seeds/s)`
)
process.exit(failed > 0 ? 1 : 0)
