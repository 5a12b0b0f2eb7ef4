#!/usr/bin/env bash
# npm test: `vitest run` with the default reporter plus a JSON report (test-results/vitest.json),
# then exactly one final line "N passed, N failed[, N skipped]" computed from that report by
# scripts/test-summary.mjs (also written to test-results/summary.json). Exits non-zero when anything failed or vitest
# crashed. Extra arguments go to vitest (e.g. `npm test -- test/storage`).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p test-results
rm -f test-results/vitest.json test-results/summary.json

npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json "$@"
rc=$?

node scripts/test-summary.mjs report test-results/vitest.json "$rc" test-results/summary.json
