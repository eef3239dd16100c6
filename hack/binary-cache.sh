# Sourced by hack/build-binaries.sh and hack/build-peers.sh: the pinned versions, the binary
# cache (default ~/.cache/bamel, override with BAMEL_CACHE) and its version stamps.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${BAMEL_CACHE:-$HOME/.cache/bamel}"
bin="$cache/bin"
work="$cache/build"
mkdir -p "$bin" "$work"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

# The binary is in the cache, built at this version.
stamp_ok() { # name version
  [[ -x "$bin/$1" && -f "$bin/.$1.version" && "$(cat "$bin/.$1.version")" == "$2" ]]
}
stamp() { echo "$2" > "$bin/.$1.version"; }
