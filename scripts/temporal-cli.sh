#!/usr/bin/env bash
# Prints the path of a Temporal CLI, obtaining one if needed. Order:
#   1. $TEMPORAL_CLI (a path)   2. `temporal` on PATH   3. the cached copy in .cache/bin
#   4. `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into .cache/bin
# The SDK's own download of the dev server is not used (it cannot reach its host here).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}"
BIN_DIR="$ROOT/.cache/bin"

if [[ -n "${TEMPORAL_CLI:-}" ]]; then
  [[ -x "$TEMPORAL_CLI" ]] || { echo "TEMPORAL_CLI=$TEMPORAL_CLI is not an executable file" >&2; exit 1; }
  echo "$TEMPORAL_CLI"; exit 0
fi
if command -v temporal >/dev/null 2>&1; then command -v temporal; exit 0; fi
if [[ -x "$BIN_DIR/temporal" ]]; then echo "$BIN_DIR/temporal"; exit 0; fi
command -v go >/dev/null 2>&1 || { echo "no Temporal CLI found and no Go toolchain to build one: install Go, or set TEMPORAL_CLI" >&2; exit 1; }
echo "building the Temporal CLI $VERSION with go install (a few minutes the first time; cached after) ..." >&2
mkdir -p "$BIN_DIR"
GOBIN="$BIN_DIR" GOFLAGS="${GOFLAGS:-} -mod=mod" go install "github.com/temporalio/cli/cmd/temporal@$VERSION" >&2
echo "$BIN_DIR/temporal"
