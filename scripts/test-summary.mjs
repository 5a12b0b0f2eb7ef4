// The one-line test summary of `npm test` (scripts/test.sh) and CI (.ci/run), from vitest's JSON
// report, in vitest's own terms:
//   "1072 passed, 9 failed, 1 skipped"                          (vitest: 9 failed | 1072 passed | 1 skipped)
//   "1072 passed, 10 failed (9 tests, 1 file outside its tests: test/x.test.ts), 1 skipped"
// A test file that failed outside any test (an import error, a failing beforeAll/afterAll) adds
// one failure and is named, since vitest counts no failed test for it (the tests its failed
// beforeAll skipped stay "skipped", as vitest says, never "failed"); so do failed CI steps.
//
//   node scripts/test-summary.mjs report <vitest.json> <vitest exit code> <summary.json>
//     prints the line, writes the summary, exits 1 when anything failed
//   node scripts/test-summary.mjs line <summary.json> <failed CI steps>
//     prints the line from a summary (a missing one is a failure)
import { readFileSync, writeFileSync } from "node:fs"
import { relative } from "node:path"

/** The counts of a vitest JSON report (`undefined`: none was written); `rc` is vitest's exit code. */
export const summarize = (report, rc, root = process.cwd()) => {
  if (report === undefined) {
    return { passed: 0, failedTests: 0, fileErrors: [], skipped: 0, todo: 0, failed: 1, vitestExitCode: rc, noReport: true }
  }
  const fileErrors = (report.testResults ?? [])
    .filter((file) => file.status === "failed" && !(file.assertionResults ?? []).some((t) => t.status === "failed"))
    .map((file) => relative(root, file.name))
  const failedTests = report.numFailedTests ?? 0
  let failed = failedTests + fileErrors.length
  // vitest failed although neither a test nor a file did (e.g. an unhandled error)
  const unexplained = rc !== 0 && failed === 0
  if (unexplained) failed = 1
  return {
    passed: report.numPassedTests ?? 0,
    failedTests,
    fileErrors,
    skipped: report.numPendingTests ?? 0,
    todo: report.numTodoTests ?? 0,
    failed,
    vitestExitCode: rc,
    ...(unexplained ? { unexplained: true } : {})
  }
}

/** The line; `stepFailures` (failed CI steps: build, typecheck, ...) each add one failure. */
export const line = (s, stepFailures = 0) => {
  const failed = s.failed + stepFailures
  const parts = []
  if (s.noReport === true) parts.push("vitest wrote no report")
  else if (s.unexplained === true) parts.push(`vitest exited ${s.vitestExitCode} with no failed test or file`)
  else if (s.fileErrors.length > 0 || stepFailures > 0) parts.push(`${s.failedTests} test${s.failedTests === 1 ? "" : "s"}`)
  if (s.fileErrors.length > 0) {
    parts.push(`${s.fileErrors.length} file${s.fileErrors.length === 1 ? "" : "s"} outside ${s.fileErrors.length === 1 ? "its" : "their"} tests: ${s.fileErrors.join(", ")}`)
  }
  if (stepFailures > 0) parts.push(`${stepFailures} CI step${stepFailures === 1 ? "" : "s"}`)
  return `${s.passed} passed, ${failed} failed` + (parts.length > 0 && failed > 0 ? ` (${parts.join(", ")})` : "") +
    (s.skipped > 0 ? `, ${s.skipped} skipped` : "") + (s.todo > 0 ? `, ${s.todo} todo` : "")
}

const readJson = (file) => {
  try {
    return JSON.parse(readFileSync(file, "utf8"))
  } catch {
    return undefined
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [mode, file, n, out] = process.argv.slice(2)
  if (mode === "report" && file !== undefined && out !== undefined) {
    const s = summarize(readJson(file), Number(n ?? "1"))
    writeFileSync(out, JSON.stringify(s) + "\n")
    console.log(line(s))
    process.exit(s.failed > 0 ? 1 : 0)
  } else if (mode === "line" && file !== undefined) {
    const s = readJson(file) ?? summarize(undefined, 1)
    console.log(line(s, Number(n ?? "0")))
  } else {
    console.error("usage: test-summary.mjs report <vitest.json> <exit code> <summary.json> | line <summary.json> <failed steps>")
    process.exit(2)
  }
}
