#!/usr/bin/env bash
# `make demo`: the local datacenter and bamel on it. Each capability that lands adds its
# part here. Run through make (which builds, starts the cluster and installs the CRD).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
eval "$(hack/cluster.sh env)"
k() { kubectl "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "the local control plane"
hack/cluster.sh status
k version 2>/dev/null | sed 's/^/  /'

step "check the inventory before applying it: bamel inventory validate"
node dist/cmd/bamel.js inventory validate config/samples/inventory.yaml
printf 'and a broken one is refused with the machine and field named:\n'
node dist/cmd/bamel.js inventory validate test/fixtures/inventory/many-errors.yaml || echo "(exit $?)"

step "apply the inventory, its credential Secrets and two autoscalers"
k create namespace bamel-system --dry-run=client -o yaml | k apply -f - >/dev/null
k apply -f config/samples/bmc-credentials.yaml
k apply -f config/samples/inventory.yaml
k apply -f config/samples/autoscaling.bamel.io_v1alpha1_baremetalautoscaler.yaml
k apply -f config/samples/autoscaling.bamel.io_v1alpha1_baremetalautoscaler_full.yaml

step "kubectl get bma"
k get bma

step "the API server refuses a bad autoscaler (CEL: minMachines <= maxMachines)"
cat <<'YAML' | k apply -f - 2>&1 | sed 's/^/  /' || true
apiVersion: autoscaling.bamel.io/v1alpha1
kind: BareMetalAutoscaler
metadata: {name: broken}
spec:
  inventory: {namespace: bamel-system, name: machines}
  minMachines: 5
  maxMachines: 2
YAML

step "kubectl explain bma.spec.scaleDown"
k explain bma.spec.scaleDown | sed -n '1,30p'

printf '\nThe cluster stays up: export KUBECONFIG=%s; stop it with make cluster-down.\n' "$KUBECONFIG"
