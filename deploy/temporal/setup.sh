#!/bin/sh
# One-shot (docker-compose.yml, service temporal-setup): the namespace amendctl runs in and the
# search attributes its workflows write (src/workflows/definitions.ts SEARCH_ATTRIBUTES). Safe to
# run again. On Temporal Cloud or another cluster, run the search-attribute lines once yourself.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
tries=0
until temporal operator cluster health >/dev/null 2>&1; do
  tries=$((tries + 1)); [ "$tries" -lt 60 ] || { echo 'temporal-setup: the server never became healthy' >&2; exit 1; }
  sleep 2
done
temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1 \
  || temporal operator namespace create --namespace "$ns" --retention 720h
for a in ContractId CustomerId AmendmentId AmendmentStatus; do
  tries=0
  # A new namespace takes a few seconds to reach every frontend: retry, then check it is there.
  until temporal operator search-attribute list --namespace "$ns" 2>/dev/null | grep -qw "$a"; do
    tries=$((tries + 1)); [ "$tries" -lt 30 ] || { echo "temporal-setup: cannot create search attribute $a" >&2; exit 1; }
    temporal operator search-attribute create --namespace "$ns" --name "$a" --type Keyword >/dev/null 2>&1 || sleep 2
  done
done
# Drift (src/workflows/reconcile-definitions.ts DRIFT_SEARCH_ATTRIBUTES): NAME:TYPE.
for at in DriftStatus:Keyword DriftCount:Int; do
  a="${at%%:*}"; t="${at#*:}"; tries=0
  until temporal operator search-attribute list --namespace "$ns" 2>/dev/null | grep -qw "$a"; do
    tries=$((tries + 1)); [ "$tries" -lt 30 ] || { echo "temporal-setup: cannot create search attribute $a" >&2; exit 1; }
    temporal operator search-attribute create --namespace "$ns" --name "$a" --type "$t" >/dev/null 2>&1 || sleep 2
  done
done
echo "temporal-setup: namespace $ns with search attributes ContractId, CustomerId, AmendmentId, AmendmentStatus, DriftStatus, DriftCount"
