#!/usr/bin/env bash
# Installs the sushy-tools Redfish emulator into its own Python venv, once: a warm run
# touches neither apt nor PyPI. Prints the path of sushy-emulator on stdout (progress goes
# to stderr), so callers can do: emulator="$(hack/install-sushy.sh)".
set -euo pipefail
SUSHY_TOOLS_VERSION=2.2.0
cache="${BAMEL_CACHE:-$HOME/.cache/bamel}"
venv="$cache/venv-sushy"
emulator="$venv/bin/sushy-emulator"

installed_version() {
  [[ -x "$venv/bin/python" ]] || return 1
  "$venv/bin/python" - <<'EOF' 2>/dev/null
from importlib.metadata import version
print(version("sushy-tools"))
EOF
}

# bcrypt hashes the htpasswd file test/helpers/sushy.ts writes; sushy-tools pulls it in
# for its auth file support, but check it so a partial install is repaired.
if [[ "$(installed_version || true)" == "$SUSHY_TOOLS_VERSION" && -x "$emulator" ]] \
  && "$venv/bin/python" -c 'import bcrypt' 2>/dev/null; then
  echo "$emulator"
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "installing python3-venv (Debian) for the sushy-tools venv" >&2
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

mkdir -p "$cache"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "creating $venv" >&2
  python3 -m venv "$venv"
fi
echo "installing sushy-tools==$SUSHY_TOOLS_VERSION into $venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "sushy-tools==$SUSHY_TOOLS_VERSION" bcrypt >&2
[[ -x "$emulator" ]] || { echo "sushy-emulator is missing from $venv after the install" >&2; exit 1; }
echo "$emulator"
