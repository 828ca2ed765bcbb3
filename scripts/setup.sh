#!/usr/bin/env bash
# Obtains everything amendctl needs on a fresh machine, skipping what is already there.
#   scripts/setup.sh [node] [temporal] [postgres] [ldap] [python] [testserver] [chromium] | all
# Caches live under .cache/ (ignored), so a second run is fast.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="$ROOT/.cache"
mkdir -p "$CACHE"
say() { printf '  setup: %s\n' "$*" >&2; }

APT_UPDATED=0
apt_install() { # apt_install PACKAGE...  (only those not installed)
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  command -v apt-get >/dev/null || { echo "need ${missing[*]} and there is no apt-get: install them by hand" >&2; exit 1; }
  local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  if [[ $APT_UPDATED -eq 0 ]]; then say "apt-get update"; $sudo apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

node_deps() {
  if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    say "npm ci"; npm ci --no-audit --no-fund --loglevel=error >/dev/null
  fi
  if [[ ! -f lib/cli/main.js || ! -f lib/workflow-bundle.js ]] || [[ -n "$(find src package-lock.json -newer lib/workflow-bundle.js -print -quit 2>/dev/null)" ]]; then
    say "build (tsc, workflow bundle)"; npm run -s build >/dev/null
  fi
}

temporal_cli() { bash scripts/temporal-cli.sh >/dev/null; }

postgres() {
  if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then apt_install postgresql; fi
  id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
}

ldap() {
  if ! command -v slapd >/dev/null && [[ ! -x /usr/sbin/slapd ]]; then
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections 2>/dev/null || true
    apt_install slapd ldap-utils
  fi
}

python_tools() {
  local venv="$CACHE/venv"
  if [[ ! -x "$venv/bin/scim2-server" || ! -x "$venv/bin/moto_server" ]]; then
    say "python venv: scim2-server, moto[server]"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/requirements-test.txt
  fi
}

testserver() {
  local cp="$CACHE/temporal-test-server.classpath"
  if [[ ! -s "$cp" ]]; then
    command -v mvn >/dev/null || apt_install maven
    say "maven: io.temporal:temporal-test-server"
    mvn -q -B -f scripts/test-server/pom.xml dependency:build-classpath -Dmdep.outputFile="$cp" >/dev/null
  fi
}

chromium_browser() { command -v chromium >/dev/null || apt_install chromium; }

want=("$@"); [[ ${#want[@]} -eq 0 || "${want[0]}" == all ]] && want=(node temporal postgres ldap python testserver chromium)
for w in "${want[@]}"; do
  case "$w" in
    node) node_deps ;;
    temporal) temporal_cli ;;
    postgres) postgres ;;
    ldap) ldap ;;
    python) python_tools ;;
    testserver) testserver ;;
    chromium) chromium_browser ;;
    *) echo "setup: unknown component '$w'" >&2; exit 2 ;;
  esac
done
