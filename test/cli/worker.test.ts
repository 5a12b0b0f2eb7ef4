/**
 * `buquet worker --handlers FILE` as a spawned process on the embedded file store: both module
 * shapes (a JavaScript object of async handlers, a TypeScript list of Worker.handler definitions)
 * run tasks to completion with their output, a failing handler fails its task, and SIGTERM stops
 * the worker gracefully with exit code 0 (it deregisters: `workers/` is empty afterwards).
 * Plus: `--json` failures print one document; an empty BUQUET_CONFIG means "not set"; a bad
 * handlers module is a one-line usage error.
 */
import { Effect, Layer, Option } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import * as Buquet from "../../src/Buquet.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { eventually, root, runCli, spawnCli, tempDir } from "./support.js"

const inStore = <A, E>(dir: string, body: Effect.Effect<A, E, Queue | Storage>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(body, Layer.fresh(Buquet.layerFile(join(dir, ".buquet"))))))

const fixtures = join(root, "test", "cli", "fixtures")

describe("buquet worker --handlers", () => {
  for (const [shape, file, via] of [
    ["a JavaScript object of async handlers", "handlers-map.mjs", undefined],
    ["a TypeScript list of Worker.handler definitions", "handlers-list.ts", "effect"]
  ] as const) {
    it(`runs ${shape} until SIGTERM, then exits 0`, async () => {
      const dir = tempDir("buquet-worker-")
      const [add, boom] = await inStore(dir, Effect.gen(function*() {
        const queue = yield* Queue
        return [yield* queue.submit("add", { a: 2, b: 3 }), yield* queue.submit("boom", {}, { maxRetries: 0 })]
      }))
      const worker = spawnCli(["worker", "--handlers", join(fixtures, file), "--no-monitor", "--concurrency", "2", "--poll-max-ms", "200", "--id", "w-test"], {
        cwd: dir
      })
      const settled = await eventually(async () => {
        const tasks = await inStore(dir, Effect.gen(function*() {
          const queue = yield* Queue
          return yield* Effect.forEach([add!.id, boom!.id], (id) => Effect.map(queue.get(id), Option.getOrUndefined))
        }))
        return tasks.every((t) => t?.status === "completed" || t?.status === "failed") ? tasks : undefined
      }, () => `the worker to settle both tasks (${JSON.stringify(worker.output())})`)
      expect(settled.map((t) => t?.status)).toEqual(["completed", "failed"])
      expect(settled[1]?.lastError).toContain("boom: this task always fails")

      const registered = await inStore(dir, Effect.flatMap(Storage, (s) => s.get("workers/w-test.json")))
      expect(Option.isSome(registered)).toBe(true)

      worker.signal("SIGTERM")
      const exit = await worker.exited
      expect(exit, worker.output().stderr).toEqual({ code: 0, signal: null })
      expect(worker.output().stderr).toMatch(/worker w-test running add, boom \(concurrency 2, shards all\)/)
      const after = await inStore(dir, Effect.flatMap(Storage, (s) => s.get("workers/w-test.json")))
      expect(Option.isNone(after), "the worker deregisters on SIGTERM").toBe(true)

      const get = await runCli(["get", add!.id], { cwd: dir })
      expect(get.code, get.stderr).toBe(0)
      expect(get.stdout).toMatch(/status\s+completed/)
      expect(get.stdout).toContain(via === undefined ? `{"sum":5}` : `{"sum":5,"via":"effect"}`)
    })
  }

  it("runs a TypeScript module of a CommonJS package (npm init's default) and a module compiled to CommonJS", async () => {
    // tsx compiles a .ts of a CommonJS package to CommonJS: imported as ESM that was "Cannot
    // require() ES Module … in a cycle"; and `export default` compiled to CommonJS arrives as
    // `{ default: handlers }` (with `__esModule`) under the import's default
    const dir = tempDir("buquet-worker-cjs-")
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "app", type: "commonjs" }))
    writeFileSync(join(dir, "handlers.ts"), "const handlers = { add: async (input: { a: number; b: number }) => ({ sum: input.a + input.b }) }\nexport default handlers\n")
    writeFileSync(
      join(dir, "compiled.js"),
      "\"use strict\";\nObject.defineProperty(exports, \"__esModule\", { value: true });\nexports.default = { add: async (input) => ({ sum: input.a + input.b, compiled: true }) };\n"
    )
    for (const [file, output] of [["handlers.ts", `{"sum":5}`], ["compiled.js", `{"sum":5,"compiled":true}`]] as const) {
      const task = await inStore(dir, Effect.flatMap(Queue, (queue) => queue.submit("add", { a: 2, b: 3 })))
      const r = await runCli(["worker", "--handlers", file, "--no-monitor", "--max-tasks", "1", "--poll-max-ms", "200"], { cwd: dir })
      expect(r.code, r.stderr).toBe(0)
      const get = await runCli(["get", task.id], { cwd: dir })
      expect(get.stdout).toMatch(/status\s+completed/)
      expect(get.stdout).toContain(output)
    }
  })

  it("a module without handlers is a usage error naming the flag", async () => {
    const r = await runCli(["worker", "--handlers", join(fixtures, "..", "support.ts")])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^buquet: --handlers .*support\.ts: the module has no default export/m)
  })
})

describe("rough edges", () => {
  it("with --json a failing command prints exactly one JSON document", async () => {
    const r = await runCli(["worker", "--handlers", "missing.js", "--json"])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { exit_code: 2 } })
  })

  it("an empty BUQUET_CONFIG means not set", async () => {
    const r = await runCli(["config", "paths", "--json"], { env: { BUQUET_CONFIG: "" } })
    expect(r.code, r.stderr).toBe(0)
    const files = JSON.parse(r.stdout) as Array<{ role: string }>
    expect(files.map((f) => f.role)).toEqual(["user", "project"])
  })
})
