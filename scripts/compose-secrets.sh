#!/usr/bin/env bash
# The secrets docker-compose.yml mounts, made once into deploy/secrets/ (git-ignored): random
# passwords and tokens, a payload encryption key, and an API key for the API (printed once, kept in
# deploy/secrets/api-key; the API's keys file holds only its SHA-256). A file that exists is never
# rewritten: a new codec key would leave every encrypted history unreadable.
#   bash scripts/compose-secrets.sh [DIR]      (default deploy/secrets)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-deploy/secrets}"
mkdir -p "$dir"
chmod 700 "$dir"

random() { head -c "$1" /dev/urandom | base64 | tr -d '\n'; }
token() { random 24 | tr '+/' '-_' | tr -d '='; }
sha256() { if command -v sha256sum >/dev/null; then sha256sum | cut -d' ' -f1; else shasum -a 256 | cut -d' ' -f1; fi; }
# The containers run as other users than you (postgres, temporal, amendctl): the files are readable
# (0644) inside a directory only you can enter (0700).
put() {
  local file="$dir/$1"; shift
  if [[ -e "$file" ]]; then echo "kept    $file"; return; fi
  (umask 022; "$@" >"$file")
  echo "created $file"
}
codec_keys() {
  local id="compose-$(date -u +%Y%m%d)"
  printf '{ "current": "%s", "keys": { "%s": "%s" } }\n' "$id" "$id" "$(random 32)"
}

put temporal-db-password token
put warehouse-admin-password token
put warehouse-password token
put idp-token token
put codec-keys.json codec_keys
# The API's approval signing key (Ed25519, PKCS#8) and the trust file the workers read (its public half).
if [[ ! -e "$dir/approval-signing.key" ]]; then
  pem="$(openssl genpkey -algorithm ed25519)"
  signing_key() { printf 'id: compose-api\nprivateKey: |\n%s\n' "$(printf '%s\n' "$pem" | sed 's/^/  /')"; }
  trust() { printf 'keys:\n  - { id: compose-api, publicKey: %s, approvers: ["*"] }\n' "$(printf '%s\n' "$pem" | openssl pkey -pubout -outform DER | base64 | tr -d '\n')"; }
  put approval-signing.key signing_key
  put approval-keys.yaml trust
else
  echo "kept    $dir/approval-signing.key"
fi
if [[ ! -e "$dir/api-keys.json" ]]; then
  key="amk_$(token)"
  (umask 077; printf '%s\n' "$key" >"$dir/api-key")
  api_keys() { printf '{ "keys": [{ "id": "compose-admin", "name": "docker compose", "scopes": ["submit", "read", "cancel", "approve"], "sha256": "%s" }] }\n' "$(printf '%s' "$key" | sha256)"; }
  put api-keys.json api_keys
  echo "API key (also in $dir/api-key): $key"
else
  echo "kept    $dir/api-keys.json"
fi
