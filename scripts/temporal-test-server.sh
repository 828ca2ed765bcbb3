#!/usr/bin/env bash
# Temporal's time-skipping test server (Java, io.temporal:temporal-test-server from Maven
# Central, resolved by `scripts/setup.sh testserver`). The test harness runs it as `<port>`
# (test/harness/servers/timeskipping.ts), as the TypeScript SDK runs an `existing-path` test
# server; the arguments pass through. Its output (SLF4J's notice, the JVM's) goes to
# .cache/test-logs/temporal-test-server.log, not into the test output.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CP_FILE="$ROOT/.cache/temporal-test-server.classpath"
if [[ ! -s "$CP_FILE" ]]; then
  echo "temporal-test-server: $CP_FILE is missing; run: bash scripts/setup.sh testserver" >&2
  exit 1
fi
LOG_DIR="$ROOT/.cache/test-logs"
mkdir -p "$LOG_DIR"
exec >>"$LOG_DIR/temporal-test-server.log" 2>&1
exec java ${AMENDCTL_TEST_SERVER_JAVA_OPTS:--Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1} -cp "$(cat "$CP_FILE")" io.temporal.testserver.TestServer "$@"
