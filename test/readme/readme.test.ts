// Issue 9, acceptance 3: the README as a new user meets it. Its first code block holds the two
// commands that work on a fresh machine; every ```ts block type-checks as written (with `buquet`
// and `buquet/promise` mapped to src/, as an installed package would resolve them) and runs to
// completion in an empty directory, where it uses the embedded store ./.buquet.
import { spawn } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { track } from "../support/processes.js"

const root = join(import.meta.dirname, "..", "..")
const readme = readFileSync(join(root, "README.md"), "utf8")
// inside the repository (so node_modules resolves), in the ignored .tmp/
const work = join(root, ".tmp", `readme-${process.pid}`)
afterAll(() => rmSync(work, { recursive: true, force: true }))

const blocks = (lang: string): ReadonlyArray<string> =>
  [...readme.matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1] ?? "")

/** Variables that would configure a store: a new user has none of them. */
const unconfigured = ["S3_BUCKET", "BUQUET_BUCKET", "BUQUET_STORAGE", "BUQUET_CONFIG", "BUQUET_PROFILE", "S3_ENDPOINT", "BUQUET_ENDPOINT"]

const run = (
  command: string,
  args: ReadonlyArray<string>,
  cwd: string,
  env: Record<string, string> = {},
  unset: ReadonlyArray<string> = [],
  guardMs = 110_000
) =>
  new Promise<{ code: number | null; killed: boolean; stdout: string; stderr: string }>((resolve, reject) => {
    const fullEnv: Record<string, string | undefined> = { ...process.env, ...env }
    for (const name of unset) delete fullEnv[name]
    const child = spawn(command, args, { cwd, env: fullEnv, stdio: ["ignore", "pipe", "pipe"] })
    // stopped after the test (SIGTERM, then SIGKILL) if it is still running then: test/support/setup.ts
    track(child)
    let stdout = ""
    let stderr = ""
    let killed = false
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const guard = setTimeout(() => {
      killed = true
      child.kill("SIGKILL")
    }, guardMs)
    child.on("error", reject)
    child.on("exit", (code) => {
      clearTimeout(guard)
      resolve({ code, killed, stdout, stderr })
    })
  })

describe("README", () => {
  it("starts with the demo and the test commands", () => {
    const first = blocks("sh")[0] ?? ""
    const commands = first.split("\n").map((l) => l.replace(/#.*$/, "").trim()).filter((l) => l !== "")
    expect(commands).toEqual(["npm ci && npm run demo", "npm test"])
    const scripts = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts
    expect(scripts["demo"]).toBeDefined()
    expect(scripts["test"]).toBeDefined()
  })

  const tour = blocks("ts")

  it("has a Promise tour and an Effect tour", () => {
    expect(tour.some((b) => b.includes(`from "buquet/promise"`))).toBe(true)
    expect(tour.some((b) => b.includes(`from "buquet"`))).toBe(true)
  })

  // the blocks and the tsconfig every test below uses (to type-check, and as tsx's for the runs),
  // written before any of them, so each test also runs alone (`-t`)
  beforeAll(() => {
    mkdirSync(work, { recursive: true })
    tour.forEach((code, i) => writeFileSync(join(work, `block${i}.ts`), code))
    writeFileSync(
      join(work, "tsconfig.json"),
      JSON.stringify({
        extends: "../../tsconfig.json",
        compilerOptions: {
          noEmit: true,
          baseUrl: ".",
          paths: { "buquet": ["../../src/index.ts"], "buquet/promise": ["../../src/promise.ts"] },
          allowImportingTsExtensions: true
        },
        include: ["block*.ts"]
      })
    )
  })

  it("every ts block type-checks as written", async () => {
    const tsc = await run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], work)
    expect(tsc.stdout + tsc.stderr).toBe("")
    expect(tsc.code).toBe(0)
  })

  it.each(tour.map((_, i) => i))("ts block %i runs to completion on the embedded store and exits by itself", async (i) => {
    const dir = join(work, `run${i}`)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, "main.ts"), tour[i] ?? "")
    // a fresh user: nothing configured, so the embedded store ./.buquet in this directory
    const env: Record<string, string> = { TSX_TSCONFIG_PATH: join(work, "tsconfig.json"), XDG_CONFIG_HOME: join(dir, "no-user-config") }
    const out = await run(process.execPath, ["--import", "tsx", "main.ts"], dir, env, unconfigured)
    expect(out.killed, `block ${i} did not finish; stderr:\n${out.stderr}`).toBe(false)
    expect(out.code, out.stderr).toBe(0)
    expect(out.stdout + out.stderr).toMatch(/completed/)
  })

  // issue 16 item 2: every setting of the connection applies to the worker by default
  it("the Effect tour completes on a queue whose shard prefix length is 2 (BUQUET_SHARD_PREFIX_LEN)", async () => {
    const i = tour.findIndex((b) => b.includes(`from "buquet"`) && b.includes("Worker.make"))
    expect(i).toBeGreaterThanOrEqual(0)
    const dir = join(work, "prefix2")
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, "main.ts"), tour[i] ?? "")
    const env: Record<string, string> = {
      TSX_TSCONFIG_PATH: join(work, "tsconfig.json"),
      XDG_CONFIG_HOME: join(dir, "no-user-config"),
      BUQUET_SHARD_PREFIX_LEN: "2"
    }
    const out = await run(process.execPath, ["--import", "tsx", "main.ts"], dir, env, unconfigured, 60_000)
    expect(out.killed, `the tour did not finish; stderr:\n${out.stderr}`).toBe(false)
    expect(out.code, out.stderr).toBe(0)
    expect(out.stdout + out.stderr).toMatch(/completed/)
    expect(out.stdout + out.stderr).toMatch(/\bshard\W+[0-9a-f]{2}\W/)
  }, 90_000)
})
