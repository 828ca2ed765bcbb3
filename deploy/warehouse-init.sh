#!/bin/sh
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d): applies
# deploy/warehouse-init.sql with the amendctl login's password read from its Compose secret.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v amendctl_password="$(cat /run/secrets/warehouse_password)" \
  -f /etc/amendctl/warehouse-init.sql
