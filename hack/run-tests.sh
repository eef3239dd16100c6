#!/usr/bin/env bash
# Runs the test suites and ends with one line: "N passed, N failed".
#   hack/run-tests.sh all           deps, build, lint, type-check, generated files, unit, integration
#   hack/run-tests.sh unit          unit tests (test/ without test/integration)
#   hack/run-tests.sh integration   integration tests on the local cluster (started if needed)
# Lint, type-check and the generated-files check count as one test each.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mode="${1:-all}"
results="$root/.local/test-results"
mkdir -p "$results"
passed=0 failed=0 skipped=0
# Child processes of integration tests (bamel sim, bamel manager) run from the build in dist/.
export BAMEL_TEST_USE_DIST=1

check() { # name command...
  local name="$1"; shift
  echo "== $name"
  if "$@" > "$results/$name.log" 2>&1; then
    passed=$((passed + 1)); echo "ok     $name"
  else
    failed=$((failed + 1)); echo "FAILED $name"; tail -n 60 "$results/$name.log"
  fi
}

# Unit tests: every test file outside test/integration (they need no cluster).
unit_files() { find test -name '*.test.ts' -not -path 'test/integration/*' | sort; }

# Integration tests in two lanes. The exclusive ones change what every test shares (the
# API server is stopped; a real node and the chart are installed cluster-wide; a webhook
# configuration for every autoscaler; the extender's fixed port; fleet-10k's 10,000 machines
# take both cores for a minute): one at a time, first.
# The others keep to their own namespace, simulator and lease, and run two at a time.
EXCLUSIVE='apiserver-outage|install|manifests|webhook|extender|crd|controlplane|fleet-10k'
exclusive_files() { find test/integration -name '*.test.ts' | sort | grep -E "/($EXCLUSIVE)\.test\.ts$"; }
shared_files() { find test/integration -name '*.test.ts' | sort | grep -vE "/($EXCLUSIVE)\.test\.ts$"; }
integration() {
  # shellcheck disable=SC2046
  suite integration-exclusive --jobs=1 $(exclusive_files)
  # shellcheck disable=SC2046
  suite integration --jobs=2 $(shared_files)
}

suite() { # name tap-args...
  local name="$1"; shift
  echo "== $name tests"
  npx tap --reporter=tap --no-color "$@" 2>&1 | node hack/tap-summary.mjs "$results/$name.tap" "$results/$name.counts"
  local p f s
  read -r p f s < "$results/$name.counts" || { p=0; f=1; s=0; }
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "   $name: $p passed, $f failed, $s skipped (TAP in $results/$name.tap)"
}

setup() {
  echo "== setup"
  make --no-print-directory deps build || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
}

case "$mode" in
  all)
    setup
    check lint npx eslint .
    check typecheck npx tsc -p tsconfig.json --noEmit
    check generated-files node dist/hack/generate.js --check
    # shellcheck disable=SC2046
    suite unit $(unit_files)
    if make --no-print-directory cluster-up > "$results/cluster-up.log" 2>&1; then
      integration
    else
      failed=$((failed + 1)); echo "FAILED cluster-up"; tail -n 60 "$results/cluster-up.log"
    fi
    ;;
  # shellcheck disable=SC2046
  unit) suite unit $(unit_files) ;;
  integration) integration ;;
  *) echo "usage: $0 all|unit|integration" >&2; exit 2 ;;
esac
if [[ $skipped -gt 0 ]]; then echo "$passed passed, $failed failed, $skipped skipped"
else echo "$passed passed, $failed failed"; fi
[[ $failed -eq 0 ]]
