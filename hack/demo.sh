#!/usr/bin/env bash
# `make demo`: the local datacenter and bamel on it. Each capability that lands adds its
# part here. Run through make (which builds, starts the cluster and installs the CRD).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
eval "$(hack/cluster.sh env)"
logs="$root/.local/logs"
mkdir -p "$logs"
bamel() { node dist/cmd/bamel.js "$@"; }
k() { kubectl "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# The demo's own processes (the simulator, the manager): stopped when it ends, and any an
# interrupted earlier run left behind are stopped when it starts.
pidfile="$root/.local/demo.pids"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$pidfile"
}
trap cleanup EXIT
if [[ -f "$pidfile" ]]; then
  while read -r p; do
    if tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q 'dist/cmd/bamel.js'; then kill "$p" 2>/dev/null || true; fi
  done < "$pidfile"
  sleep 1
fi

step "the local control plane"
hack/cluster.sh status
k version 2>/dev/null | sed 's/^/  /'

step "a clean slate: earlier demo objects go"
for a in $(k get bma -o name 2>/dev/null); do
  k patch "$a" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  k delete "$a" --wait=false >/dev/null 2>&1 || true
done
# Pods of an earlier run may sit on Nodes that are gone (no kubelet finishes them): force
# them, and wait for the namespace to be gone before it is made again.
k delete pods -n bamel-demo --all --force --grace-period=0 >/dev/null 2>&1 || true
k delete namespace bamel-demo --ignore-not-found --wait=false >/dev/null
k wait --for=delete namespace/bamel-demo --timeout=90s >/dev/null 2>&1 || true
k delete nodes -l bamel.io/simulated=true --ignore-not-found >/dev/null

step "check the inventory before applying it: bamel inventory validate"
bamel inventory validate config/samples/inventory.yaml
printf 'and a broken one is refused with the machine and field named:\n'
bamel inventory validate test/fixtures/inventory/many-errors.yaml || echo "(exit $?)"
printf 'a fleet larger than one ConfigMap (1 MiB, about 2,000 machines) is split over several\n'
printf 'inventories (spec.inventories); checked together, a machine name must be unique across them:\n'
bamel inventory validate test/fixtures/inventory/valid.yaml test/fixtures/inventory/valid-rack-c.yaml
bamel inventory validate test/fixtures/inventory/valid.yaml config/samples/inventory.yaml || echo "(exit $?)"

step "apply the inventory and its credential Secrets"
k create namespace bamel-system --dry-run=client -o yaml | k apply -f - >/dev/null
k apply -f config/samples/bmc-credentials.yaml
k apply -f config/samples/inventory.yaml

step "the simulated machines: one BMC each (IPMI on ipmi_sim, Redfish on bamel's Redfish fake)"
node dist/cmd/bamel.js sim --inventory config/samples/inventory.yaml --boot-scale 0.2 > "$logs/demo-sim.log" 2> "$logs/demo-sim.err" &
pids+=($!)
echo $! >> "$pidfile"
for _ in $(seq 1 100); do grep -q '"event":"ready"' "$logs/demo-sim.log" 2>/dev/null && break; sleep 0.2; done
grep '"event":"ready"' "$logs/demo-sim.log" | head -1 | cut -c1-300
printf 'bamel bmc status --inventory config/samples/inventory.yaml --machine rack-a-01: '
bamel bmc status --inventory config/samples/inventory.yaml --machine rack-a-01

# The demo's own scenes (extender, fencing) run their own managers over the autoscalers
# labelled demo=...; this one takes every other autoscaler.
step "bamel manager: leader-elected controller (logs in .local/logs/demo-manager.log)"
node dist/cmd/bamel.js manager --namespace bamel-system --leader-elect --metrics-bind-address 127.0.0.1:18080 \
  --health-probe-bind-address 127.0.0.1:18081 --extender-bind-address 0 --autoscaler-selector '!demo' \
  --power-reading-interval 5 2> "$logs/demo-manager.log" > /dev/null &
pids+=($!)
echo $! >> "$pidfile"
for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:18081/readyz >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS http://127.0.0.1:18081/readyz; echo

step "two autoscalers: rack-a (no minimum) and rack-b-gpu (minMachines 1)"
k apply -f config/samples/autoscaling.bamel.io_v1alpha1_baremetalautoscaler.yaml
k apply -f config/samples/autoscaling.bamel.io_v1alpha1_baremetalautoscaler_full.yaml
printf 'rack-b-gpu powers on its cheapest machine to reach minMachines...\n'
k wait bma/rack-b-gpu --for=jsonpath='{.status.readyMachines}'=1 --timeout=120s >/dev/null
k get bma
k get nodes -L rack

step "a GPU workload arrives: its pods tolerate gpu=true:NoSchedule and need 8 CPUs each"
k create namespace bamel-demo --dry-run=client -o yaml | k apply -f - >/dev/null
cat <<'YAML' | k apply -f -
apiVersion: apps/v1
kind: Deployment
metadata: {name: trainer, namespace: bamel-demo}
spec:
  replicas: 1
  selector: {matchLabels: {app: trainer}}
  template:
    metadata: {labels: {app: trainer}}
    spec:
      nodeSelector: {node.bamel.io/class: gpu}
      tolerations: [{key: gpu, operator: Equal, value: "true", effect: NoSchedule}]
      terminationGracePeriodSeconds: 5
      containers:
        - name: trainer
          image: registry.example/trainer:1
          resources: {requests: {cpu: "8", memory: 16Gi, nvidia.com/gpu: "1"}, limits: {nvidia.com/gpu: "1"}}
YAML
k wait -n bamel-demo pod -l app=trainer --for=condition=Ready --timeout=180s >/dev/null
printf '\nthe pod is Running on the GPU machine bamel powered on:\n'
k get pods -n bamel-demo -o wide
printf '\nwhat happened, from the events:\n'
k get events -n bamel-demo --field-selector reason=TriggeredPowerOn -o custom-columns=POD:.involvedObject.name,REASON:.reason,MESSAGE:.message
k get events -n default --field-selector involvedObject.kind=BareMetalAutoscaler,involvedObject.name=rack-b-gpu \
  -o custom-columns=AUTOSCALER:.involvedObject.name,REASON:.reason,MESSAGE:.message
printf '\nthe power requests the simulated BMCs received:\n'
grep '"event":"power"' "$logs/demo-sim.log" | cut -c1-200
printf '\n'
k get bma
k get bma rack-b-gpu -o jsonpath='{range .status.machines[*]}{.name}{"\t"}{.phase}{"\t"}{.reason}{"\n"}{end}'

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

step "the load goes away: the GPU machine is drained and powered off (scale-down)"
printf 'short windows for the demo: unneededSeconds 5, cooldownSeconds 0 (defaults: 600 each), and the pre-warming\n'
printf 'look-ahead 0 (it must stay below unneededSeconds; the API server refuses it otherwise)\n'
k patch bma rack-b-gpu --type merge -p '{"spec":{"scaleUp":{"predictive":{"lookaheadSeconds":0}},"scaleDown":{"unneededSeconds":5,"cooldownSeconds":0}}}' >/dev/null
k scale -n bamel-demo deployment/trainer --replicas=0 >/dev/null
k wait bma/rack-b-gpu --for=jsonpath='{.status.offMachines}'=1 --timeout=180s >/dev/null
k get bma rack-b-gpu -o jsonpath='{range .status.machines[*]}{.name}{"\t"}{.phase}{"\t"}{.reason}{"\t"}{.blockers}{"\n"}{end}'
printf '\nwhy each step, from the events:\n'
k get events -n default --field-selector involvedObject.kind=BareMetalAutoscaler,involvedObject.name=rack-b-gpu --sort-by=.lastTimestamp \
  -o custom-columns=REASON:.reason,MESSAGE:.message | grep -E 'REASON|Drain|PowerOff|PoweredOff|ScaleDownBlocked' | cut -c1-200
printf '\nthe powered-off machine has no Node any more (it registers again when it boots):\n'
k get nodes -L rack

step "energy: what the machines draw, and what powering them off saved"
printf 'bamel bmc power --inventory config/samples/inventory.yaml --machine rack-b-02: '
bamel bmc power --inventory config/samples/inventory.yaml --machine rack-b-02
printf 'rack-a-01 is on ipmi_sim, which has no DCMI:\n'
rc=0; out="$(bamel bmc power --inventory config/samples/inventory.yaml --machine rack-a-01 2>&1)" || rc=$?
printf '  %s\n  (exit %s)\n' "$(printf '%s' "$out" | cut -c1-200)" "$rc"
printf '\nstatus.machines[].power (a BMC reading, else the inventory figure for the phase):\n'
k get bma rack-a rack-b-gpu -o jsonpath='{range .items[*].status.machines[*]}{.name}{"\t"}{.phase}{"\t"}{.power.watts} W{"\t"}{.power.source}{"\n"}{end}'
printf '\nstatus.energy of rack-b-gpu: '
k get bma rack-b-gpu -o jsonpath='{.status.energy}'; echo
printf '\nlearned boot times and power cycles of the machines that booted (status.machines[].boot, .powerCycles):\n'
k get bma rack-a rack-b-gpu -o jsonpath='{range .items[*].status.machines[?(@.boot)]}{.name}{"\tboot last "}{.boot.lastSeconds}{"s p90 "}{.boot.p90Seconds}{"s ("}{.boot.samples}{" samples)\tpower-offs in 24h: "}{.powerCycles.last24h}{"\n"}{end}'
printf 'break-even holds (status.machines[].breakEven, kept while a hold lasts; none is usual here):\n'
k get bma rack-a rack-b-gpu -o jsonpath='{range .items[*].status.machines[?(@.breakEven)]}{.name}{"\tbreak-even "}{.breakEven.seconds}{"s, held "}{.breakEven.holdSeconds}{"s longer\n"}{end}'

hack/demo-extender.sh
hack/demo-webhook.sh

step "bamel simulate: four hours of a small workload on a virtual clock (the real controller, no cluster)"
bamel simulate --trace bench/traces/small.csv --inventory bench/traces/small-inventory.yaml --autoscaler bench/traces/small-autoscaler.yaml --out "$logs/demo-simulate"
printf 'timeline (one row a minute) and chart: %s/timeline.csv, timeline.png\n' "$logs/demo-simulate"

step "metrics"
curl -fsS http://127.0.0.1:18080/metrics > "$logs/demo-metrics.txt"
grep -E '^bamel_(controller_machines\{autoscaler="rack-b-gpu"|power_operations_total|controller_decisions_total|controller_drains_total|controller_evictions_total|machine_power_watts|energy_|machine_power_cycles_total)' "$logs/demo-metrics.txt" || true

hack/demo-traffic.sh   # traffic pressure through the eBPF agent (skips without root or BPF)
hack/demo-fencing.sh   # a frozen leader, thawed after the takeover, touches no BMC
hack/demo-install.sh   # the image, a real node and the Helm chart on it (skips without root)

printf '\nThe cluster stays up (export KUBECONFIG=%s; make cluster-down stops it); the simulator and the manager stop with the demo.\n' "$KUBECONFIG"
