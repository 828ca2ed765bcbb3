#!/usr/bin/env bash
# Temporal's time-skipping test server (Java, io.temporal:temporal-test-server from Maven
# Central, resolved by `scripts/setup.sh testserver`). The TypeScript SDK runs it as an
# `existing-path` executable with `<port> --enable-time-skipping`; the arguments pass through.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CP_FILE="$ROOT/.cache/temporal-test-server.classpath"
if [[ ! -s "$CP_FILE" ]]; then
  echo "temporal-test-server: $CP_FILE is missing; run: bash scripts/setup.sh testserver" >&2
  exit 1
fi
exec java ${AMENDCTL_TEST_SERVER_JAVA_OPTS:--Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1} -cp "$(cat "$CP_FILE")" io.temporal.testserver.TestServer "$@"
