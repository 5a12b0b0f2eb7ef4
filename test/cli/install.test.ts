/**
 * Installing buquet into a project from a checkout on which `npm ci` never ran (issue 16 item 17):
 * the command the README's Install section gives, typed into a fresh project against a fresh
 * `git clone` (no node_modules, no dist/), must give a working `buquet/promise` and `buquet`
 * executable. Needs the npm registry (npm installs the build tools to build dist/); slow (about
 * 3 minutes, mostly npm), so it is the only test of its kind.
 */
import { execFile } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { root, tempDir } from "./support.js"

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeoutMs = 120_000): Promise<Run> =>
  new Promise((resolve) =>
    execFile(
      command,
      args,
      // the user's own environment (npm's cache and registry settings), minus buquet's settings
      { cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...withoutBuquetSettings(process.env), CI: "true" } },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
    )
  )

const withoutBuquetSettings = (env: NodeJS.ProcessEnv): Record<string, string> =>
  Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] =>
      e[1] !== undefined && !/^(S3_|BUQUET_|AWS_)/.test(e[0])
    )
  )

/** The one `npm install …` line of the README's Install section, as a user copies it. */
const readmeInstallCommand = (): ReadonlyArray<string> => {
  const readme = readFileSync(join(root, "README.md"), "utf8")
  const section = readme.slice(readme.indexOf("\n## Install"), readme.indexOf("\n## ", readme.indexOf("\n## Install") + 1))
  const lines = [...section.matchAll(/^npm install (.+?)(?:\s+#.*)?$/gm)].map((m) => m[1]!.trim())
  expect(lines, "the README's Install section gives exactly one `npm install` command").toHaveLength(1)
  return lines[0]!.split(/\s+/)
}

describe("npm install from a checkout without npm ci", () => {
  it("gives a project buquet/promise and the buquet executable", async () => {
    const args = readmeInstallCommand()
    const placeholder = args.findIndex((a) => a.includes("/path/to/buquet"))
    expect(placeholder, `the README's command names the checkout as /path/to/buquet: ${args.join(" ")}`).toBeGreaterThanOrEqual(0)

    const scratch = tempDir("buquet-install-")
    const checkout = join(scratch, "buquet")
    const clone = await run("git", ["clone", "--quiet", root, checkout], scratch)
    expect(clone.code, clone.stderr).toBe(0)
    expect(existsSync(join(checkout, "node_modules")) || existsSync(join(checkout, "dist"))).toBe(false)

    const project = join(scratch, "app")
    mkdirSync(project)
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
    const install = await run(
      "npm",
      ["install", "--no-audit", "--no-fund", ...args.map((a, i) => (i === placeholder ? a.replace("/path/to/buquet", checkout) : a))],
      project,
      540_000
    )
    expect(install.code, install.stdout + install.stderr).toBe(0)

    // the library: a task submitted and run through the Promise API of the installed package
    const script = `
      import { connect } from "buquet/promise"
      const queue = await connect({ memory: true, quiet: true })
      const worker = queue.worker({ signals: false, monitor: false })
      worker.task("add", async (input) => ({ sum: input.a + input.b }))
      const running = worker.run()
      const task = await queue.submit("add", { a: 2, b: 3 })
      const done = await queue.waitFor(task.id, { timeoutMs: 30000 })
      await worker.stop()
      await running
      await queue.close()
      console.log(JSON.stringify({ status: done.status, output: done.output }))
    `
    const library = await run(process.execPath, ["--input-type=module", "-e", script], project)
    expect(library.code, library.stderr).toBe(0)
    expect(JSON.parse(library.stdout.trim())).toEqual({ status: "completed", output: { sum: 5 } })
    expect(library.stderr).toBe("")

    // the executable, as npm linked it, on a store in the project
    const executable = join(project, "node_modules", ".bin", "buquet")
    const version = await run(executable, ["--version"], project)
    expect(version.code, version.stderr).toBe(0)
    expect(version.stdout).toContain(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version)
    const submit = await run(executable, ["submit", "--storage", "file://./jobs", "-t", "add", "-i", "{\"a\":1}", "--json"], project)
    expect(submit.code, submit.stderr).toBe(0)
    expect(JSON.parse(submit.stdout)).toMatchObject({ status: "pending", task_type: "add" })
  }, 600_000)
})
