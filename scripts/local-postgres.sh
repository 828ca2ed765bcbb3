#!/usr/bin/env bash
# A private PostgreSQL cluster for the demo and the tests, on loopback only.
#   scripts/local-postgres.sh start DIR PORT   # init (once) + start; prints nothing else on success
#   scripts/local-postgres.sh stop DIR [--remove]   # --remove: also delete the cluster (a test run's)
# The cluster has a database `warehouse`, the role-map roles app_admin, app_write, app_read
# (NOLOGIN), and a least-privilege login `amendctl` (CREATEROLE) whose password is in DIR/amendctl.password.
# The database `amendctl_audit` (owner amendctl) holds the durable audit log (src/audit/store.ts).
set -euo pipefail
cmd="${1:?start|stop}"; dir="${2:?DIR}"; port="${3:-5432}"
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
[[ -n "$bindir" ]] || bindir="$(dirname "$(command -v pg_ctl)")"
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# As root, the server runs as the postgres user, who may not be able to enter DIR (a checkout under a
# private 0700 folder, such as one from mktemp -d). The cluster then lives in a folder of its own under
# /var/tmp, named after DIR, and DIR/sock points at its socket folder; DIR/cluster names where it is.
cluster_of() {
  if [[ $(id -u) -ne 0 ]] || runuser -u postgres -- test -x "$1"; then echo "$1"; return; fi
  echo "/var/tmp/amendctl-postgres-$(printf '%s' "$1" | sha256sum | cut -c1-16)"
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    pgdir="$(cluster_of "$dir")"
    printf '%s\n' "$pgdir" >"$dir/cluster"
    # A cluster of its own left from an earlier DIR of this name (its password went with that DIR): made anew.
    [[ "$pgdir" != "$dir" && ! -f "$dir/amendctl.password" ]] && rm -rf "$pgdir"
    if [[ ! -f "$pgdir/data/PG_VERSION" ]]; then
      mkdir -p "$pgdir/data" "$pgdir/sock"
      [[ $(id -u) -eq 0 ]] && chown -R postgres:postgres "$pgdir"
      as_pg "$bindir/initdb" -D "$pgdir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1
      head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$dir/amendctl.password"
      chmod 600 "$dir/amendctl.password"
    fi
    [[ "$pgdir" != "$dir" ]] && ln -sfn "$pgdir/sock" "$dir/sock"
    as_pg "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" -w -t 60 \
      -o "-p $port -k $pgdir/sock -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start >/dev/null
    pw="$(cat "$dir/amendctl.password")"
    as_pg "$bindir/psql" -qX -h "$pgdir/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT 'CREATE DATABASE warehouse' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'warehouse')\gexec
DO \$\$BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'amendctl') THEN CREATE ROLE amendctl LOGIN CREATEROLE; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_admin') THEN CREATE ROLE app_admin NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_write') THEN CREATE ROLE app_write NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_read') THEN CREATE ROLE app_read NOLOGIN; END IF;
END\$\$;
ALTER ROLE amendctl PASSWORD '$pw';
GRANT CONNECT ON DATABASE warehouse TO amendctl;
SELECT 'CREATE DATABASE amendctl_audit OWNER amendctl' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'amendctl_audit')\gexec
SQL
    ;;
  stop)
    pgdir="$(cat "$dir/cluster" 2>/dev/null || echo "$dir")"
    [[ -f "$pgdir/data/postmaster.pid" ]] && as_pg "$bindir/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null || true
    [[ "${3:-}" == "--remove" && "$pgdir" != "$dir" ]] && rm -rf "$pgdir"
    true
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR [--remove]" >&2; exit 2 ;;
esac
