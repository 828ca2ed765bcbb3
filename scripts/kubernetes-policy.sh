#!/usr/bin/env bash
# Writes deploy/kubernetes/policy.yaml, the ConfigMap of the workers' policy files, from
# examples/reference/{targets,rules}.yaml (test/deploy fails when the two differ). For your own
# policy: bash scripts/kubernetes-policy.sh DIR (a folder with targets.yaml and rules.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-examples/reference}"
out=deploy/kubernetes/policy.yaml
{
  echo "# The workers' policy files, mounted at /etc/amendctl/policy (AMENDCTL_TARGETS, AMENDCTL_RULES)."
  echo "# Written by scripts/kubernetes-policy.sh from $src: edit those files, then run it again."
  echo "apiVersion: v1"
  echo "kind: ConfigMap"
  echo "metadata:"
  echo "  name: amendctl-policy"
  echo "  namespace: amendctl"
  echo "  labels:"
  echo "    app.kubernetes.io/part-of: amendctl"
  echo "data:"
  for f in targets.yaml rules.yaml; do
    echo "  $f: |"
    sed 's/^\(.\)/    \1/' "$src/$f"
  done
} >"$out"
echo "wrote $out"
