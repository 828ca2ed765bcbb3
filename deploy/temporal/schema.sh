#!/bin/sh
# One-shot (docker-compose.yml, service temporal-schema): creates Temporal's two databases on its
# PostgreSQL and brings their schemas to this server version. Safe to run again: that is how an
# upgrade of temporalio/server gets its schema changes (update-schema is idempotent).
set -eu
SQL_PASSWORD="$(cat /run/secrets/temporal_db_password)"
export SQL_PASSWORD
sql() { temporal-sql-tool --plugin postgres12 --ep "${POSTGRES_SEEDS:?}" -p "${DB_PORT:-5432}" -u "${POSTGRES_USER:?}" "$@"; }
for db in temporal temporal_visibility; do
  dir=temporal
  [ "$db" = temporal_visibility ] && dir=visibility
  sql --db "$db" create 2>/dev/null || true               # exists already
  sql --db "$db" setup-schema -v 0.0 2>/dev/null || true  # versioned already
  sql --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$dir/versioned"
done
echo 'temporal-schema: done'
