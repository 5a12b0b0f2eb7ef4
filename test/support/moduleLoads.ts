/**
 * Runs a script in a fresh Node process (the sources through tsx) and records every module it
 * loads, in stages: what a worker loads is how the lazy-import tests (issue 17, memory without
 * heap flags) prove a package stays out of a process until it is used.
 *
 * ```ts
 * const rec = moduleLoads("buquet-lazy-")
 * const out = await rec.run(`${rec.prelude} … loaded("worked") …`)
 * const [worked, after] = rec.stages("worked")
 * ```
 *
 * @module
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll } from "vitest"
import { root } from "../cli/support.js"

export interface ModuleLoads {
  /**
   * Script lines that import `connect` from `src/promise.ts` and define `loaded(stage)`, which
   * appends the CommonJS modules loaded so far (the ESM load hook does not see `require`) and a
   * stage separator.
   */
  readonly prelude: string
  /** Runs `script` as an ES module with the load hook registered. */
  readonly run: (script: string, env?: NodeJS.ProcessEnv) => Promise<{ code: number; stdout: string; stderr: string }>
  /** The record split at `=== stage`: what was loaded up to it, and after it. */
  readonly stages: (stage: string) => readonly [string, string]
}

/** A recorder in a temporary directory of its own, removed after the file's tests. */
export const moduleLoads = (dirPrefix: string): ModuleLoads => {
  const dir = mkdtempSync(join(tmpdir(), dirPrefix))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const log = join(dir, "loaded.txt")
  const hook = join(dir, "hook.mjs")
  writeFileSync(
    hook,
    `import { appendFileSync } from "node:fs"
export async function load(url, context, next) { appendFileSync(${JSON.stringify(log)}, url + "\\n"); return next(url, context) }
`
  )
  const register = join(dir, "register.mjs")
  writeFileSync(register, `import { register } from "node:module"\nregister(${JSON.stringify(pathToFileURL(hook).href)})\n`)
  const prelude = `
import { createRequire } from "node:module"
import { appendFileSync } from "node:fs"
const { connect } = await import(${JSON.stringify(pathToFileURL(join(root, "src", "promise.ts")).href)})
const loaded = (stage) => {
  const cjs = Object.keys(createRequire(import.meta.url).cache)
  appendFileSync(${JSON.stringify(log)}, cjs.map((p) => "cjs:" + p).join("\\n") + "\\n=== " + stage + "\\n")
}
`
  const run: ModuleLoads["run"] = (script, env) =>
    new Promise((resolve) =>
      execFile(
        process.execPath,
        ["--import", "tsx", "--import", register, "--input-type=module", "-e", script],
        { cwd: root, timeout: 120_000, ...(env === undefined ? {} : { env }) },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
      )
    )
  const stages = (stage: string): readonly [string, string] => {
    const [before = "", after = ""] = readFileSync(log, "utf8").split(new RegExp(`^=== ${stage}$`, "m"))
    return [before, after]
  }
  return { prelude, run, stages }
}
