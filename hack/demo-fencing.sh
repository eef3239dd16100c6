#!/usr/bin/env bash
# Fencing, on its own (make demo runs it; it also runs alone on an up cluster after
# `make build`): two manager replicas; the leader is frozen (SIGSTOP) with a power-on on its
# way to a slow BMC, the other replica takes over, and the frozen one, thawed, makes no BMC
# call and steps down. One machine is powered on for the one pod, once. Everything it
# starts or creates goes when it ends.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
eval "$(hack/cluster.sh env)"
logs="${BAMEL_LOCAL:-$root/.local}/logs"
mkdir -p "$logs"
ns=bamel-demo-fencing
bma=demo-fencing
k() { kubectl "$@"; }
step() { printf '\n\033[1m== fencing: %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
[[ -f dist/cmd/bamel.js ]] || { echo "dist/ is missing: run make build first" >&2; exit 1; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  k patch bma "$bma" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  k delete bma "$bma" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  k delete nodes -l bamel.io/demo=fencing --ignore-not-found --wait=false >/dev/null 2>&1 || true
  k delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
for _ in $(seq 1 60); do k get namespace "$ns" >/dev/null 2>&1 || break; sleep 1; done

step "two powered-off machines whose BMC answers each request 1 s late"
k create namespace "$ns" >/dev/null
k -n "$ns" create secret generic bmc --from-literal=username=admin --from-literal=password=demo-fencing >/dev/null
rf="$(free_port)"
cat > "$logs/demo-fencing-inventory.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: machines, namespace: $ns, labels: {autoscaling.bamel.io/inventory: "true"}}
data:
  machines.yaml: |
    machines:
      - {name: demo-fence-a, bmc: {address: "redfish+http://127.0.0.1:$rf/redfish/v1/Systems/demo-fence-a", credentialsSecret: bmc, allowInsecureCredentials: true}, labels: {bamel.io/demo: fencing}, capacity: {cpu: "8", memory: 32Gi}, power: {maxWatts: 300}, bootSeconds: 2}
      - {name: demo-fence-b, bmc: {address: "redfish+http://127.0.0.1:$rf/redfish/v1/Systems/demo-fence-b", credentialsSecret: bmc, allowInsecureCredentials: true}, labels: {bamel.io/demo: fencing}, capacity: {cpu: "8", memory: 32Gi}, power: {maxWatts: 400}, bootSeconds: 2}
YAML
k apply -f "$logs/demo-fencing-inventory.yaml" >/dev/null
node dist/cmd/bamel.js sim --inventory "$logs/demo-fencing-inventory.yaml" --kubeconfig "$KUBECONFIG" > "$logs/demo-fencing-sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q '"event":"ready"' "$logs/demo-fencing-sim.log" 2>/dev/null && break; sleep 0.2; done
control="$(grep '"event":"ready"' "$logs/demo-fencing-sim.log" | head -1 | sed -E 's/.*"control":"([^"]+)".*/\1/')"
for m in demo-fence-a demo-fence-b; do curl -fsS -X PUT -H 'content-type: application/json' -d '{"slowMs":1000}' "$control/machines/$m/faults" >/dev/null; done
cat <<YAML | k apply -f - >/dev/null
apiVersion: autoscaling.bamel.io/v1alpha1
kind: BareMetalAutoscaler
metadata: {name: $bma, labels: {demo: fencing}}
spec:
  inventory: {namespace: $ns, name: machines}
  machineSelector: {matchLabels: {bamel.io/demo: fencing}}
  maxMachines: 2
  scaleUp: {cooldownSeconds: 0}
  scaleDown: {enabled: false}
YAML

step "two replicas of bamel manager (a 2 s lease for the demo; 15 s by default)"
start_replica() { # identity
  node dist/cmd/bamel.js manager --namespace "$ns" --leader-elect --leader-election-id bamel-demo-fencing --identity "$1" \
    --lease-duration 2 --renew-deadline 1.5 --retry-period 0.25 --bmc-operation-timeout 6 --settle-grace 1 \
    --autoscaler-selector demo=fencing --metrics-bind-address 0 --health-probe-bind-address 127.0.0.1:0 \
    --extender-bind-address 0 2> "$logs/demo-fencing-$1.log" > /dev/null &
  pids+=($!)
  echo $! > "$logs/demo-fencing-$1.pid"
}
start_replica replica-1
start_replica replica-2
holder() { k -n "$ns" get lease bamel-demo-fencing -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true; }
for _ in $(seq 1 100); do [[ -n "$(holder)" ]] && break; sleep 0.2; done
leader="$(holder)"
echo "leader: $leader"
k wait "bma/$bma" --for=jsonpath='{.status.offMachines}'=2 --timeout=90s >/dev/null

step "a pod arrives; the leader writes its intent, sends the power-on, and is frozen (SIGSTOP)"
cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: work, namespace: $ns}
spec:
  nodeSelector: {bamel.io/demo: fencing}
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: registry.example/app:1, resources: {requests: {cpu: "6", memory: 1Gi}}}]
YAML
for _ in $(seq 1 200); do grep -q 'power operation sent to the BMC' "$logs/demo-fencing-$leader.log" 2>/dev/null && break; sleep 0.05; done
frozen="$(cat "$logs/demo-fencing-$leader.pid")"
kill -STOP "$frozen"
k get bma "$bma" -o jsonpath='{range .status.machines[*]}  {.name}{"\t"}{.phase}{"\t"}{.operation.holder}{"\n"}{end}'
for _ in $(seq 1 100); do h="$(holder)"; [[ -n "$h" && "$h" != "$leader" ]] && break; sleep 0.2; done
echo "the lease now: $(holder) (took over from the frozen $leader)"

step "$leader thawed (SIGCONT): its lease is gone, so it calls no BMC and steps down"
thawed_at="$(date +%s%3N)"
kill -CONT "$frozen"
for _ in $(seq 1 50); do kill -0 "$frozen" 2>/dev/null || break; sleep 0.2; done
node -e '
  const [file, since] = process.argv.slice(1);
  const lines = require("fs").readFileSync(file, "utf8").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((l) => l.time >= Number(since));
  const calls = lines.filter((l) => ["power operation sent to the BMC", "power operation done"].includes(l.msg));
  for (const l of lines.filter((l) => /stopped leading|leadership lost|BMC call refused|shutting down/.test(l.msg))) console.log(`  ${l.msg}${l.reason ? ` (${l.reason})` : ""}`);
  console.log(`  BMC calls after the thaw: ${calls.length}`);
' "$logs/demo-fencing-$leader.log" "$thawed_at"
kill -0 "$frozen" 2>/dev/null && echo "  (still running)" || echo "  it exited; a Deployment would start it anew"

step "the new leader counts the intent as in flight, sees the machine on, and the pod runs"
k -n "$ns" wait pod/work --for=condition=Ready --timeout=120s >/dev/null
k -n "$ns" get pod work -o wide | sed 's/^/  /'
printf 'power requests the simulated BMCs carried out:\n'
grep '"event":"power"' "$logs/demo-fencing-sim.log" | grep -v '"result":"refused"' | cut -c1-160 | sed 's/^/  /'
