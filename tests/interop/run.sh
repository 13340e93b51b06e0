#!/usr/bin/env bash
# Interop test: drives mcphost with the official MCP TypeScript SDK client over Streamable HTTP
# and stdio. See README.md.
#
# usage: tests/interop/run.sh BINARY CONFIG
#   e.g. tests/interop/run.sh build/release/bin/mcphost config/demo.yaml
#
# Installs the pinned node dependencies into tests/interop/node_modules (npm ci) when they are
# missing or package-lock.json changed, then runs interop.mjs. Safe to run from any directory and
# repeatedly. Environment: NODE / NPM override the node and npm executables; INTEROP_TIMEOUT_MS
# overrides the 60 s global timeout.
set -euo pipefail

die() {
  echo "interop: error: $*" >&2
  exit 2
}

[[ $# -eq 2 ]] || die "usage: $0 BINARY CONFIG"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Resolve the arguments against the caller's directory before anything changes directory.
abspath() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
  esac
}
binary="$(abspath "$1")"
config="$(abspath "$2")"
[[ -f "$binary" && -x "$binary" ]] || die "mcphost binary not found or not executable: $binary"
[[ -f "$config" ]] || die "config not found: $config"

node="${NODE:-node}"
npm="${NPM:-npm}"
command -v "$node" >/dev/null 2>&1 || die "node not found (need Node.js >= 18; set NODE=/path/to/node)"
command -v "$npm" >/dev/null 2>&1 || die "npm not found (set NPM=/path/to/npm)"
node_major="$("$node" -p 'process.versions.node.split(".")[0]')" || die "cannot run $node"
((node_major >= 18)) || die "Node.js >= 18 required, found $("$node" --version)"

# Install dependencies when node_modules is missing or was installed from another lock file.
lock="$here/package-lock.json"
stamp="$here/node_modules/.interop-lock.sha256"
want="$(cat "$here/package.json" "$lock" | sha256sum | cut -d' ' -f1)"
install_deps() {
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$here/node_modules/@modelcontextprotocol/sdk" ]]; then
    return 0
  fi
  echo "interop: installing node dependencies (npm ci) into $here/node_modules" >&2
  if ! (cd "$here" && "$npm" ci --no-audit --no-fund --prefer-offline --loglevel=error >&2); then
    die "npm ci failed in $here"
  fi
  printf '%s\n' "$want" >"$stamp"
}
if command -v flock >/dev/null 2>&1; then
  # Serialise concurrent runs so two npm ci never write the same node_modules.
  exec 9>"${TMPDIR:-/tmp}/mcphost-interop-npm.lock"
  flock 9
  install_deps
  flock -u 9
  exec 9>&-
else
  install_deps
fi

cd "$here"
status=0
"$node" interop.mjs "$binary" "$config" || status=$?
if ((status != 0)); then
  echo "interop: FAILED (exit $status); see the 'not ok' lines above" >&2
  exit "$status"
fi
