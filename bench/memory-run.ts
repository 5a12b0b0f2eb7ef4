/**
 * `node --import tsx bench/memory-run.ts [tasks] [--flags]`: the worker-memory scenario of the bench
 * alone (bench/memory.ts), against the RGW of the environment (or the project's, started by
 * scripts/s3-start.sh), printed as JSON. For working on the worker's memory without the full run.
 *
 * @module
 */
import { prepareWorkerEntry } from "./lib/children.js"
import { ensureS3, log } from "./lib/env.js"
import { workerMemory } from "./memory.js"

const main = async (): Promise<void> => {
  const tasks = Number(process.argv[2] ?? 1000)
  const target = ensureS3()
  log(`worker processes run ${await prepareWorkerEntry()}`)
  // --flags: with the buquet executable's heap flags instead of plain node
  const result = await workerMemory({ kind: "s3", target, keyPrefix: `bench/mem-${Date.now().toString(36)}-${process.pid}/rss/` }, tasks, !process.argv.includes("--flags"))
  console.log(JSON.stringify(result, null, 2))
  process.exit(0)
}

main().catch((e: unknown) => {
  console.error("memory bench failed:", e)
  process.exit(1)
})
