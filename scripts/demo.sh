#!/usr/bin/env bash
# The product on the embedded default, for a newcomer: obtains what it needs, starts a
# local PostgreSQL (the `warehouse` target) and scim2-server (the `idp` target), runs
# `amendctl dev` (Temporal dev server with SQLite + Web UI on 8233, and a worker), then
# submits the reference amendments in order, approving the ones that need it, and shows
# what each target now holds. It keeps running for you to explore; Ctrl-C stops everything.
#   bash scripts/demo.sh [--exit]     (--exit: stop after the walk-through)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EXIT_AFTER=0; [[ "${1:-}" == "--exit" ]] && EXIT_AFTER=1
DATA="$ROOT/.data/demo"
# scim2-server keeps its data in memory, so the walk-through starts afresh every time
# (its own Temporal database too; `amendctl dev` on its own keeps .data/temporal.sqlite).
rm -rf "$DATA"
mkdir -p "$DATA"
say() { printf '\033[1m%s\033[0m\n' "$*"; }

say "1/5 setting up (first run on a new machine: a few minutes) ..."
bash scripts/setup.sh node temporal postgres python
npm run -s build >/dev/null

PG_PORT="${AMENDCTL_DEMO_PG_PORT:-55432}"
SCIM_PORT="${AMENDCTL_DEMO_SCIM_PORT:-8280}"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo; say "stopping ..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bash scripts/local-postgres.sh stop "$DATA/postgres" || true
  say "stopped."
}
trap cleanup EXIT INT TERM

say "2/5 starting the targets: PostgreSQL on 127.0.0.1:$PG_PORT, scim2-server on 127.0.0.1:$SCIM_PORT"
bash scripts/local-postgres.sh start "$DATA/postgres" "$PG_PORT"
[[ -s "$DATA/scim.token" ]] || head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DATA/scim.token"
.cache/venv/bin/scim2-server --hostname 127.0.0.1 --port "$SCIM_PORT" --bearer-token="$(cat "$DATA/scim.token")" >"$DATA/scim.log" 2>&1 &
pids+=($!)

export AMENDCTL_IDP_URL="http://127.0.0.1:$SCIM_PORT/v2"
export AMENDCTL_IDP_TOKEN="$(cat "$DATA/scim.token")"
export AMENDCTL_WAREHOUSE_PORT="$PG_PORT"
export AMENDCTL_WAREHOUSE_PASSWORD="$(cat "$DATA/postgres/amendctl.password")"
for _ in $(seq 1 100); do curl -fs -o /dev/null -H "Authorization: Bearer $AMENDCTL_IDP_TOKEN" "$AMENDCTL_IDP_URL/ServiceProviderConfig" && break; sleep 0.2; done

say "3/5 starting amendctl dev (Temporal dev server + worker) ..."
node bin/amendctl dev --db "$DATA/temporal.sqlite" >"$DATA/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do grep -q 'Ctrl-C stops' "$DATA/dev.log" && break; sleep 0.2; done
grep -q 'Ctrl-C stops' "$DATA/dev.log" || { cat "$DATA/dev.log"; echo "amendctl dev did not start" >&2; exit 1; }
grep 'Ctrl-C stops' "$DATA/dev.log"

say "4/5 submitting the reference amendments (examples/reference/amendments) ..."
for f in examples/reference/amendments/*.json; do
  id="$(node -e 'process.stdout.write(require(process.argv[1]).amendmentId)' "$ROOT/$f")"
  echo "- $f"
  node bin/amendctl submit "$f" >/dev/null 2>&1 || true
  for _ in $(seq 1 150); do
    status="$(node bin/amendctl status "$id" --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{process.stdout.write(JSON.parse(s).status)}catch{}})' || true)"
    case "$status" in
      pending_approval)
        echo "    pending approval; approving as demo-approver, signed with their key:  amendctl approve $id --key .data/demo-approver.key"
        node bin/amendctl approve "$id" --key .data/demo-approver.key --comment "approved in the demo" >/dev/null || true ;;
      completed|invalid|rejected|rolled_back|failed) break ;;
    esac
    sleep 0.2
  done
  { node bin/amendctl status "$id" 2>/dev/null || true; } | head -n 1 | sed 's/^/    /'
done

say "5/5 what the targets hold now"
echo "warehouse (PostgreSQL): login roles and their role-map roles"
PGPASSWORD="$AMENDCTL_WAREHOUSE_PASSWORD" psql -qAtX -h 127.0.0.1 -p "$PG_PORT" -U amendctl -d warehouse -F '  ' -c "
  SELECT u.rolname, CASE WHEN u.rolcanlogin THEN 'LOGIN' ELSE 'NOLOGIN' END,
         coalesce(string_agg(r.rolname, ',' ORDER BY r.rolname), '-')
    FROM pg_roles u LEFT JOIN pg_auth_members m ON m.member = u.oid LEFT JOIN pg_roles r ON r.oid = m.roleid
   WHERE u.rolname LIKE '%@%' GROUP BY u.rolname, u.rolcanlogin ORDER BY 1" | sed 's/^/    /'
echo "idp (SCIM): users"
curl -fs -H "Authorization: Bearer $AMENDCTL_IDP_TOKEN" "$AMENDCTL_IDP_URL/Users?count=200" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const u of JSON.parse(s).Resources??[])console.log(`    ${u.userName}  active=${u.active}  ${u.displayName??""}`)})'
echo "HTTP API (http://127.0.0.1:8080, key in .data/api-key): GET /v1/contracts/acme-msa"
KEY="$(cat .data/api-key)"
curl -fs -H "Authorization: Bearer $KEY" http://127.0.0.1:8080/v1/contracts/acme-msa |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const c=JSON.parse(s);console.log(`    applied sequence ${c.appliedSequence} (${c.applied?.amendmentId ?? "-"}), waiting ${c.waiting.length}, recent ${c.recent.length}`)})'
echo "a signed webhook (Standard Webhooks, source clm, secret in .data/webhook-secret): acme-msa-009, seats 12 (sequence 8)"
BODY='{"type":"contract.amended","data":{"id":"acme-msa-009","recordType":"amendment","links":{"parent":{"id":"acme-msa","type":"contract"}},"properties":{"amendmentNumber":{"type":"number","value":8},"licensedSeats":{"type":"number","value":12}}}}'
TS="$(date +%s)"
SIG="$(BODY="$BODY" TS="$TS" node -e 'const c=require("crypto");const k=Buffer.from(require("fs").readFileSync(".data/webhook-secret","utf8").trim().replace(/^whsec_/,""),"base64");process.stdout.write(c.createHmac("sha256",k).update(`evt-demo-9.${process.env.TS}.${process.env.BODY}`).digest("base64"))')"
curl -s -o /dev/null -w '    POST /v1/webhooks/clm: %{http_code}\n' http://127.0.0.1:8080/v1/webhooks/clm -H 'content-type: application/json' \
  -H 'webhook-id: evt-demo-9' -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" --data-binary "$BODY"
for _ in $(seq 1 50); do node bin/amendctl status acme-msa-009 2>/dev/null | head -n 1 | grep -qE 'completed|invalid|rejected|failed' && break; sleep 0.2; done
{ node bin/amendctl status acme-msa-009 2>/dev/null || true; } | head -n 1 | sed 's/^/    /'
echo
say "Web UI: http://localhost:8233/namespaces/default/workflows  (search: ContractId = \"acme-msa\")"
echo "Try: node bin/amendctl status acme-msa-003      node bin/amendctl plan examples/reference/amendments/02-add-dave-and-billing.json"
if [[ $EXIT_AFTER -eq 1 ]]; then exit 0; fi
say "Running. Ctrl-C stops the worker, the dev server and the targets."
wait "${pids[1]}"
