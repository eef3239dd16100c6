#!/usr/bin/env bash
# The scheduler extender, on its own (make demo runs it; it also runs alone on an up cluster
# after `make build`): kube-scheduler keeps a pod off a draining Node even though the pod
# tolerates the draining taint and that Node has the most room, packs pods onto the fuller
# Node, and a pod no Node can take gets bamel's feasibility mark naming the powered-off
# machines that could host it. Everything it starts or creates goes when it ends.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
eval "$(hack/cluster.sh env)"
logs="${BAMEL_LOCAL:-$root/.local}/logs"
mkdir -p "$logs"
ns=bamel-demo-extender
bma=demo-extender
port="${BAMEL_EXTENDER_PORT:-20290}"
k() { kubectl "$@"; }
step() { printf '\n\033[1m== extender: %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
[[ -f dist/cmd/bamel.js ]] || { echo "dist/ is missing: run make build first" >&2; exit 1; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  k patch bma "$bma" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  k delete bma "$bma" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  k delete nodes -l bamel.io/demo=extender --ignore-not-found --wait=false >/dev/null 2>&1 || true
  k delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
for _ in $(seq 1 60); do k get namespace "$ns" >/dev/null 2>&1 || break; sleep 1; done

step "three powered-off machines (simulated BMCs) and an autoscaler that only looks (dryRun)"
k create namespace "$ns" >/dev/null
k -n "$ns" create secret generic bmc --from-literal=username=admin --from-literal=password=demo-extender >/dev/null
rf="$(free_port)"
cat > "$logs/demo-extender-inventory.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: machines, namespace: $ns, labels: {autoscaling.bamel.io/inventory: "true"}}
data:
  machines.yaml: |
    machines:
      - {name: demo-ext-m8, bmc: {address: "redfish+http://127.0.0.1:$rf/redfish/v1/Systems/demo-ext-m8", credentialsSecret: bmc, allowInsecureCredentials: true}, labels: {bamel.io/demo: extender}, capacity: {cpu: "8", memory: 32Gi}}
      - {name: demo-ext-m16, bmc: {address: "redfish+http://127.0.0.1:$rf/redfish/v1/Systems/demo-ext-m16", credentialsSecret: bmc, allowInsecureCredentials: true}, labels: {bamel.io/demo: extender}, capacity: {cpu: "16", memory: 64Gi}}
      - {name: demo-ext-gpu, bmc: {address: "redfish+http://127.0.0.1:$rf/redfish/v1/Systems/demo-ext-gpu", credentialsSecret: bmc, allowInsecureCredentials: true}, labels: {bamel.io/demo: extender}, taints: [{key: gpu, value: "true", effect: NoSchedule}], capacity: {cpu: "32", memory: 128Gi}}
YAML
k apply -f "$logs/demo-extender-inventory.yaml" >/dev/null
node dist/cmd/bamel.js sim --inventory "$logs/demo-extender-inventory.yaml" --namespace "$ns" > "$logs/demo-extender-sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q '"event":"ready"' "$logs/demo-extender-sim.log" 2>/dev/null && break; sleep 0.2; done
cat <<YAML | k apply -f - >/dev/null
apiVersion: autoscaling.bamel.io/v1alpha1
kind: BareMetalAutoscaler
metadata: {name: $bma, labels: {demo: extender}}
spec:
  inventory: {namespace: $ns, name: machines}
  machineSelector: {matchLabels: {bamel.io/demo: extender}}
  maxMachines: 3
  dryRun: true
  scaleDown: {enabled: false}
YAML

step "bamel manager serving the extender on 127.0.0.1:$port (where config/scheduler/ points kube-scheduler)"
node dist/cmd/bamel.js manager --namespace "$ns" --leader-elect --leader-election-id bamel-demo-extender \
  --autoscaler-selector demo=extender --extender-bind-address "127.0.0.1:$port" \
  --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 2> "$logs/demo-extender-manager.log" > /dev/null &
pids+=($!)
for _ in $(seq 1 150); do grep -q '"scheduler extender serving"' "$logs/demo-extender-manager.log" 2>/dev/null && break; sleep 0.2; done
grep '"scheduler extender serving"' "$logs/demo-extender-manager.log" | head -1 | cut -c1-200
k wait "bma/$bma" --for=jsonpath='{.status.offMachines}'=3 --timeout=60s >/dev/null
k get bma "$bma" -o jsonpath='{range .status.machines[*]}  {.name}{"\t"}{.phase}{"\n"}{end}'

step "two Nodes: demo-ext-big (32 cpu) is being drained (tainted $(printf 'autoscaling.bamel.io/draining')), demo-ext-small has 4 cpu"
cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Node
metadata:
  name: demo-ext-big
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: demo-ext-big, kubernetes.io/os: linux, type: kwok, bamel.io/demo: extender}
spec:
  taints: [{key: autoscaling.bamel.io/draining, value: "true", effect: NoSchedule}]
status: {capacity: {cpu: "32", memory: 128Gi, pods: "110"}, allocatable: {cpu: "32", memory: 128Gi, pods: "110"}}
---
apiVersion: v1
kind: Node
metadata:
  name: demo-ext-small
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: demo-ext-small, kubernetes.io/os: linux, type: kwok, bamel.io/demo: extender}
status: {capacity: {cpu: "4", memory: 16Gi, pods: "110"}, allocatable: {cpu: "4", memory: 16Gi, pods: "110"}}
YAML
k wait node/demo-ext-big node/demo-ext-small --for=condition=Ready --timeout=60s >/dev/null
k get nodes -l bamel.io/demo=extender -o custom-columns=NODE:.metadata.name,CPU:.status.allocatable.cpu,TAINTS:.spec.taints[*].key

step "a Deployment whose pods tolerate the draining taint: only the extender keeps them off demo-ext-big"
cat <<YAML | k apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $ns}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {bamel.io/demo: extender}
      tolerations: [{key: autoscaling.bamel.io/draining, operator: Exists, effect: NoSchedule}]
      terminationGracePeriodSeconds: 0
      containers: [{name: web, image: registry.example/web:1, resources: {requests: {cpu: "1", memory: 1Gi}}}]
YAML
k -n "$ns" wait pod -l app=web --for=condition=Ready --timeout=60s >/dev/null
k -n "$ns" get pods -l app=web -o custom-columns=POD:.metadata.name,NODE:.spec.nodeName
printf 'one replica more than demo-ext-small holds waits; kube-scheduler says why demo-ext-big refused:\n'
k -n "$ns" scale deployment web --replicas 5 >/dev/null
for _ in $(seq 1 60); do
  msg="$(k -n "$ns" get pods -l app=web -o jsonpath='{range .items[*]}{.status.conditions[?(@.reason=="Unschedulable")].message}{end}')"
  [[ -n "$msg" ]] && break
  sleep 0.5
done
printf '  %s\n' "$msg"
k -n "$ns" scale deployment web --replicas 0 >/dev/null

step "a pod no Node can take: the leader marks it with the powered-off machines that could host it"
cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: $ns}
spec:
  nodeSelector: {bamel.io/demo: extender}
  terminationGracePeriodSeconds: 0
  containers: [{name: batch, image: registry.example/batch:1, resources: {requests: {cpu: "12", memory: 8Gi}}}]
YAML
mark=""
for _ in $(seq 1 60); do
  mark="$(k -n "$ns" get pod batch -o jsonpath='{.metadata.annotations.autoscaling\.bamel\.io/feasibility}')"
  [[ -n "$mark" ]] && break
  sleep 0.5
done
printf 'annotation autoscaling.bamel.io/feasibility:\n'
printf '%s' "$mark" | python3 -m json.tool | sed 's/^/  /'
printf 'and its event:\n'
for _ in $(seq 1 20); do
  ev="$(k -n "$ns" get events --field-selector involvedObject.name=batch,reason=MachineFeasibility -o jsonpath='{.items[0].message}')"
  [[ -n "$ev" ]] && break
  sleep 0.5
done
printf '  MachineFeasibility: %s\n' "$ev"

step "the extender's metrics"
addr="$(grep -o '"addresses":\["[^"]*"' "$logs/demo-extender-manager.log" | head -1 | sed 's/.*\["//; s/"$//')"
curl -fsS "http://$addr/metrics" | grep -E '^bamel_extender_(requests_total|refused_nodes_total)' | sed 's/^/  /' || true
