#!/usr/bin/env bash
# Runs every benchmark with --json and writes their figures to bench/results.json (one
# object per bench, keyed by its name), keeping each bench's full output in
# .local/logs/bench-<name>.log. Needs what the benches need: the local cluster (started
# here), root for the eBPF one (it says "skipped" otherwise), and `make build`.
# BAMEL_BENCHES="webhook scale-down" runs a subset.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
logs="${BAMEL_LOCAL:-$root/.local}/logs"
mkdir -p "$logs"
benches="${BAMEL_BENCHES:-scale-down status-size webhook decision extender traffic}"
out="$root/bench/results.json"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
printf '{"date":"%s","machine":{"cores":%s,"cpu":"%s"},"results":{' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" > "$tmp"

hack/cluster.sh up >/dev/null
first=1
failed=0
for name in $benches; do
  file="bench/$name.bench.ts"
  [ -f "$file" ] || { echo "bench: no $file" >&2; exit 2; }
  echo "== $name ($(date -u +%H:%M:%S))" >&2
  log="$logs/bench-$name.log"
  if BAMEL_TEST_USE_DIST=1 TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs "$file" --json > "$log" 2>&1; then
    line="$(grep '^{"bench"' "$log" | tail -1 || true)"
  else
    line=''
  fi
  if [ -z "$line" ]; then
    echo "bench $name: failed or printed no figures; see $log" >&2
    tail -5 "$log" >&2 || true
    line="{\"bench\":\"$name\",\"failed\":true}"
    failed=1
  fi
  grep -v '^{"bench"' "$log" | tail -40 >&2 || true
  [ $first -eq 1 ] || printf ',' >> "$tmp"
  first=0
  printf '"%s":%s' "$name" "$line" >> "$tmp"
done
printf '}}\n' >> "$tmp"
node -e 'const fs=require("fs");const o=JSON.parse(fs.readFileSync(process.argv[1],"utf8"));fs.writeFileSync(process.argv[2],JSON.stringify(o,null,2)+"\n")' "$tmp" "$out"
echo "bench: figures in $out" >&2
TS_NODE_TRANSPILE_ONLY=1 node --import ./node_modules/@tapjs/typescript/dist/esm/import.mjs bench/table.ts "$out" >&2 || true
exit $failed
