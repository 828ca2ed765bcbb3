#!/usr/bin/env bash
# The test command. On a fresh machine it obtains everything first (apt, Go, Maven, PyPI,
# npm; cached under .cache/) and builds, then type-checks, lints, and runs every jest suite
# once against real servers that the harness starts on loopback and stops after.
#   bash scripts/test.sh [jest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
start=$(date +%s)
bash scripts/setup.sh all
echo "  test: typecheck, lint and format" >&2
npx tsc -p tsconfig.json --noEmit
npx eslint . --max-warnings 0
npx prettier --check . --log-level warn
rm -f .cache/test-summary.txt
set +e
npx jest "$@"
code=$?
set -e
echo "  test: finished in $(( $(date +%s) - start )) s" >&2
exit $code
