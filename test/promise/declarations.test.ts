/**
 * Issue 16 item 16: the shipped declaration files compile in a consumer's strict project with
 * `skipLibCheck: false`, and `buquet/promise`'s declarations carry no Effect types. The package is
 * built (tsc -p tsconfig.build.json) into a scratch `node_modules/buquet`; the .d.ts files reachable
 * from the `buquet/promise` export (following every import, re-export and `import("…")` type) are
 * walked for imports of `effect` or `@effect/*`; then tsc checks a small consumer importing `buquet`
 * and `buquet/promise` through the package's `exports` only. Slow (two compiler runs), so it is the
 * only test of its kind.
 */
import { execFile } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, relative, resolve } from "node:path"
import ts from "typescript"
import { describe, expect, it } from "vitest"
import { root } from "../cli/support.js"

const tsc = join(root, "node_modules", "typescript", "bin", "tsc")

/**
 * Every module specifier a .d.ts file imports or re-exports, including `import("…")` types and
 * triple-slash references, each with the file that names it; relative ones are followed.
 */
const reachableImports = (entry: string): ReadonlyArray<{ readonly file: string; readonly specifier: string }> => {
  const found: Array<{ file: string; specifier: string }> = []
  const seen = new Set<string>()
  const queue = [entry]
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue
    seen.add(file)
    const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true)
    for (const ref of [...info.importedFiles, ...info.referencedFiles, ...info.typeReferenceDirectives]) {
      found.push({ file, specifier: ref.fileName })
      if (ref.fileName.startsWith(".")) {
        const target = resolve(dirname(file), ref.fileName.replace(/\.js$/, ".d.ts"))
        expect(existsSync(target), `${file} imports ${ref.fileName}, which is not shipped`).toBe(true)
        queue.push(target)
      }
    }
  }
  return found
}

const run = (args: ReadonlyArray<string>, cwd: string): Promise<{ code: number; output: string }> =>
  new Promise((resolve) =>
    execFile(process.execPath, [tsc, ...args], { cwd, timeout: 400_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, output: stdout + stderr })))

describe("the shipped .d.ts files", () => {
  it("compile in a strict consumer with skipLibCheck: false", async () => {
    const scratch = mkdtempSync(join(tmpdir(), "buquet-dts-"))
    const pkg = join(scratch, "node_modules", "buquet")
    mkdirSync(pkg, { recursive: true })
    copyFileSync(join(root, "package.json"), join(pkg, "package.json"))
    // the package's own dependencies (effect, @types/node, …) resolve from the checkout
    symlinkSync(join(root, "node_modules"), join(pkg, "node_modules"), "dir")
    // the package's build script, each of its tsc runs into the scratch package
    const buildScript = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: { build: string } }).scripts.build
    for (const step of buildScript.split("&&")) {
      const [command, ...args] = step.trim().split(/\s+/)
      expect(command).toBe("tsc")
      const build = await run([...args, "--outDir", join(pkg, "dist")], root)
      expect(build.code, build.output).toBe(0)
    }
    // issue 17 (memory without heap flags): Node keeps every loaded module's source text in the heap,
    // so the shipped JavaScript carries no comments (-0.9 MB live heap for a worker); the
    // declarations keep their TSDoc for editors
    expect(readFileSync(join(pkg, "dist", "index.js"), "utf8")).not.toMatch(/\/\*\*|^\s*\/\/ /m)
    expect(readFileSync(join(pkg, "dist", "index.d.ts"), "utf8")).toMatch(/\/\*\*[\s\S]*@since/)

    const exportsMap = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).exports as Record<string, { types: string }>
    const imports = reachableImports(join(pkg, exportsMap["./promise"]!.types))
    expect(imports.length).toBeGreaterThan(0)
    const effectImports = imports
      .filter((i) => !i.specifier.startsWith(".") && !i.specifier.startsWith("node:"))
      .map((i) => `${relative(pkg, i.file)} -> ${i.specifier}`)
    expect(effectImports, "buquet/promise's declarations import no package (no effect, no @effect/*)").toEqual([])

    writeFileSync(join(scratch, "package.json"), JSON.stringify({ type: "module" }))
    writeFileSync(
      join(scratch, "consumer.ts"),
      [
        `import { connect, BuquetError } from "buquet/promise"`,
        `import type { MonitorSettings, Task, WorkerEvent } from "buquet/promise"`,
        `import { Queue, TaskType } from "buquet"`,
        `const queue = await connect({ memory: true })`,
        `const monitor: MonitorSettings = { checkIntervalMs: 60_000, sweepIntervalMs: 0, sweepMode: "on_demand", quietCheckIntervalMs: 0 }`,
        `const worker = queue.worker({ concurrency: 2, monitor })`,
        `worker.task<{ readonly to: string }, { readonly sent: boolean }>("send_email", async (input) => ({ sent: input.to.length > 0 }))`,
        `worker.once("progress", (e: WorkerEvent) => console.log(e.progress))`,
        `const task: Task = await queue.submit<{ to: string }>("send_email", { to: "a@example.com" })`,
        `const done = await queue.waitFor(task.id, { timeoutMs: 1000 }).catch((e: unknown) => (e instanceof BuquetError ? undefined : undefined))`,
        // a task type of the Effect API goes where the facade takes one
        `const plain = TaskType.untyped("plain")`,
        `worker.task(plain, async (input: unknown) => ({ got: input }))`,
        `await queue.submit(plain, { any: 1 })`,
        `console.log(done?.status, Queue)`
      ].join("\n")
    )
    writeFileSync(
      join(scratch, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "nodenext",
          moduleResolution: "nodenext",
          target: "es2022",
          strict: true,
          skipLibCheck: false,
          noEmit: true,
          types: ["node"],
          typeRoots: [join(root, "node_modules", "@types")]
        },
        files: ["consumer.ts"]
      })
    )
    const check = await run(["-p", join(scratch, "tsconfig.json")], scratch)
    expect(check.code, check.output).toBe(0)
  }, 600_000)
})
