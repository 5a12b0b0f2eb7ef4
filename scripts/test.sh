#!/usr/bin/env bash
# npm test: `vitest run` with the default reporter plus a JSON report (test-results/vitest.json),
# then exactly one final line "N passed, N failed[, N skipped]" computed from that report
# (also written to test-results/summary.json). Exits non-zero when anything failed or vitest
# crashed. Extra arguments go to vitest (e.g. `npm test -- test/storage`).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p test-results
rm -f test-results/vitest.json test-results/summary.json

npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json "$@"
rc=$?

node - "$rc" <<'JS'
const fs = require("node:fs")
const rc = Number(process.argv[2])
let passed = 0, failed = 0, skipped = 0, report
try {
  report = JSON.parse(fs.readFileSync("test-results/vitest.json", "utf8"))
} catch {
  report = undefined
}
if (report !== undefined) {
  passed = report.numPassedTests ?? 0
  failed = report.numFailedTests ?? 0
  skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0)
  // a file that failed without a failing test (import error, failing hook) is a failure too
  for (const file of report.testResults ?? []) {
    const failedTests = (file.assertionResults ?? []).filter((t) => t.status === "failed").length
    if (file.status === "failed" && failedTests === 0) failed += 1
  }
}
// vitest failed (or crashed before reporting) although no test is counted as failed
if (rc !== 0 && failed === 0) failed = 1
fs.writeFileSync("test-results/summary.json", JSON.stringify({ passed, failed, skipped, vitestExitCode: rc }) + "\n")
console.log(`${passed} passed, ${failed} failed` + (skipped > 0 ? `, ${skipped} skipped` : ""))
process.exit(failed > 0 ? 1 : 0)
JS
