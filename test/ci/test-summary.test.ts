/**
 * The one-line summary `npm test` and CI print (scripts/test-summary.mjs), run as they run it on
 * small vitest JSON reports shaped like vitest 3's: its counts agree with vitest's own summary —
 * a skipped test is never a failure, a file that failed outside its tests (a failing beforeAll
 * skips its tests) is one failure and is named, failed CI steps are added once each.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { describe, expect, it } from "vitest"

const root = resolve(import.meta.dirname, "../..")
const script = join(root, "scripts", "test-summary.mjs")

const run = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number; stdout: string }>((done) =>
    execFile(process.execPath, [script, ...args], { cwd: root, timeout: 60_000 }, (error, stdout) =>
      done({ code: error === null ? 0 : Number(error.code ?? 1), stdout: stdout.trim() })))

type Status = "passed" | "failed" | "skipped" | "pending" | "todo"

/** A vitest JSON report: files with their tests' statuses, and which files failed as a whole. */
const report = (files: ReadonlyArray<{ name: string; tests: ReadonlyArray<Status>; fileFailed?: boolean }>) => {
  const all = files.flatMap((f) => f.tests)
  return {
    numPassedTests: all.filter((s) => s === "passed").length,
    numFailedTests: all.filter((s) => s === "failed").length,
    numPendingTests: all.filter((s) => s === "skipped" || s === "pending").length,
    numTodoTests: all.filter((s) => s === "todo").length,
    testResults: files.map((f) => ({
      name: join(root, f.name),
      status: f.fileFailed === true || f.tests.includes("failed") ? "failed" : "passed",
      assertionResults: f.tests.map((status, i) => ({ title: `t${i}`, status }))
    }))
  }
}

const summarize = async (r: unknown, rc: number) => {
  const dir = mkdtempSync(join(tmpdir(), "buquet-summary-"))
  const input = join(dir, "vitest.json")
  const out = join(dir, "summary.json")
  if (r !== undefined) writeFileSync(input, JSON.stringify(r))
  const printed = await run(["report", input, String(rc), out])
  return { ...printed, summaryFile: out, summary: JSON.parse(readFileSync(out, "utf8")) as Record<string, unknown> }
}

describe("scripts/test-summary.mjs", () => {
  it("all passed, one skipped: the skipped test is not a failure; exit 0", async () => {
    const r = await summarize(report([{ name: "test/a.test.ts", tests: ["passed", "passed", "skipped"] }]), 0)
    expect(r.stdout).toBe("2 passed, 0 failed, 1 skipped")
    expect(r.code).toBe(0)
  })

  it("9 failed tests and 1 skipped elsewhere: '9 failed', as vitest says (CI's test step is not one more)", async () => {
    const files = [
      { name: "test/a.test.ts", tests: [...Array<Status>(9).fill("failed"), "passed"] as Array<Status> },
      { name: "test/b.test.ts", tests: ["passed", "skipped"] as Array<Status> }
    ]
    const r = await summarize(report(files), 1)
    expect(r.stdout).toBe("2 passed, 9 failed, 1 skipped")
    expect(r.code).toBe(1)
    // .ci/run adds only its other failed steps (e.g. lint), each once
    expect((await run(["line", r.summaryFile, "0"])).stdout).toBe("2 passed, 9 failed, 1 skipped")
    expect((await run(["line", r.summaryFile, "1"])).stdout).toBe("2 passed, 10 failed (9 tests, 1 CI step), 1 skipped")
  })

  it("a file whose beforeAll failed: its test stays skipped, the file is one failure and is named", async () => {
    const files = [
      { name: "test/a.test.ts", tests: ["passed", "failed"] as Array<Status> },
      { name: "test/hook.test.ts", tests: ["skipped"] as Array<Status>, fileFailed: true }
    ]
    const r = await summarize(report(files), 1)
    expect(r.stdout).toBe("1 passed, 2 failed (1 test, 1 file outside its tests: test/hook.test.ts), 1 skipped")
    expect(r.summary).toMatchObject({ passed: 1, failedTests: 1, fileErrors: ["test/hook.test.ts"], skipped: 1, failed: 2 })
    expect(r.code).toBe(1)
  })

  it("a file that failed to import (no tests at all) is a failure even when every test passed", async () => {
    const r = await summarize(report([{ name: "test/a.test.ts", tests: ["passed"] }, { name: "test/broken.test.ts", tests: [], fileFailed: true }]), 1)
    expect(r.stdout).toBe("1 passed, 1 failed (0 tests, 1 file outside its tests: test/broken.test.ts)")
    expect(r.code).toBe(1)
  })

  it("vitest failed with nothing failed in its report, or wrote no report: one failure, said why", async () => {
    const unexplained = await summarize(report([{ name: "test/a.test.ts", tests: ["passed"] }]), 1)
    expect(unexplained.stdout).toBe("1 passed, 1 failed (vitest exited 1 with no failed test or file)")
    expect(unexplained.code).toBe(1)
    const none = await summarize(undefined, 1)
    expect(none.stdout).toBe("0 passed, 1 failed (vitest wrote no report)")
    expect(none.code).toBe(1)
    // CI with no summary at all (the test step never ran to the end)
    expect((await run(["line", join(tmpdir(), "no-such-summary.json"), "0"])).stdout).toBe("0 passed, 1 failed (vitest wrote no report)")
  })

  it("todo tests are shown as todo, not skipped or failed", async () => {
    const r = await summarize(report([{ name: "test/a.test.ts", tests: ["passed", "todo"] }]), 0)
    expect(r.stdout).toBe("1 passed, 0 failed, 1 todo")
    expect(r.code).toBe(0)
  })

  it("bad usage exits 2", async () => {
    expect((await run(["frobnicate"])).code).toBe(2)
  })
})
