#!/usr/bin/env bash
# Runs every test: unit tests and, as root, the kernel integration tests (each
# in network namespaces it creates and deletes). Sets the machine up first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--no-setup" ]; then
  bash scripts/setup.sh
fi

report=$(mktemp /tmp/portcullis-vitest.XXXXXX.json)
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?

# One closing line in the plain form CI reads: "N passed, N failed, N skipped".
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + (r.numTodoTests || 0);
  console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$report" || true
exit "$status"
