#!/usr/bin/env bash
# The admission webhook in the demo (called by hack/demo.sh; runs on its own too, once the
# demo's inventory and autoscalers exist): a `bamel manager` serving the webhook, the
# configuration registered with a local CA, a bad autoscaler and a bad inventory refused
# with their messages, a risky autoscaler admitted with warnings; then everything removed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
eval "$(hack/cluster.sh env)"
state="${BAMEL_LOCAL:-$root/.local}"
logs="$state/logs"
mkdir -p "$logs"
export BAMEL_WEBHOOK_DIR="$state/webhook-demo"
export BAMEL_WEBHOOK_PORT="${BAMEL_WEBHOOK_PORT:-19443}"
export BAMEL_WEBHOOK_NAME=bamel-demo-webhook
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
indent() { sed 's/^/  /'; }

manager=""
cleanup() {
  # failurePolicy Fail: the configuration goes before the server that answers it.
  hack/webhook.sh unregister >/dev/null 2>&1 || true
  if [[ -n "$manager" ]]; then kill "$manager" 2>/dev/null || true; wait "$manager" 2>/dev/null || true; fi
}
trap cleanup EXIT

step "the admission webhook: bamel manager serves it (certificates from hack/webhook.sh certs)"
hack/webhook.sh certs >/dev/null 2>&1
# Its reconciler is given no autoscaler (the demo's manager reconciles them); it only answers admission.
node dist/cmd/bamel.js manager --namespace bamel-system --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 \
  --autoscaler-selector bamel.io/demo-webhook=none \
  --webhook-bind-address "127.0.0.1:$BAMEL_WEBHOOK_PORT" --webhook-cert-dir "$BAMEL_WEBHOOK_DIR" 2> "$logs/demo-webhook-manager.log" > /dev/null &
manager=$!
for _ in $(seq 1 100); do grep -q 'webhook server listening' "$logs/demo-webhook-manager.log" 2>/dev/null && break; sleep 0.2; done
grep -o '"msg":"webhook server listening"' "$logs/demo-webhook-manager.log" >/dev/null || { tail -5 "$logs/demo-webhook-manager.log"; exit 1; }
hack/webhook.sh register 2>&1 | indent

bad_autoscaler() {
  cat <<'YAML'
apiVersion: autoscaling.bamel.io/v1alpha1
kind: BareMetalAutoscaler
metadata: {name: rack-a-too}
spec:
  inventory: {namespace: bamel-system, name: machines}
  machineSelector: {matchLabels: {topology.kubernetes.io/zone: a}}
  minMachines: 3
YAML
}
# The API server picks a new configuration up within a moment.
for _ in $(seq 1 50); do bad_autoscaler | kubectl apply --dry-run=server -f - 2>&1 | grep -q 'denied the request' && break; sleep 0.2; done

step "a bad autoscaler: it overlaps rack-a and wants more machines than it selects"
bad_autoscaler | kubectl apply -f - 2>&1 | indent || true

step "a risky autoscaler is admitted, with warnings (dry run: nothing is created)"
cat <<'YAML' | kubectl apply --dry-run=server -f - 2>&1 | indent
apiVersion: autoscaling.bamel.io/v1alpha1
kind: BareMetalAutoscaler
metadata: {name: rack-c}
spec:
  inventory: {namespace: bamel-system, name: machines}
  machineSelector: {matchLabels: {rack: c}}
  scaleDown: {unneededSeconds: 20}
YAML

step "a bad inventory: the same checks as bamel inventory validate, at kubectl apply"
cat <<'YAML' | kubectl apply --dry-run=server -f - 2>&1 | indent || true
apiVersion: v1
kind: ConfigMap
metadata:
  name: machines-typo
  namespace: bamel-system
  labels: {autoscaling.bamel.io/inventory: "true"}
data:
  machines.yaml: |
    machines:
      - name: rack-c-01
        bmc: {address: "ipmii://10.0.0.31", credentialsSecret: bmc-rack-c}
        capacity: {cpu: "32", memroy: 128Gi}
YAML

step "unregistered (failurePolicy Fail: no configuration is left pointing at a stopped server)"
