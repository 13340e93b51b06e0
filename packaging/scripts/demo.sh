#!/usr/bin/env bash
# Installs what is missing, builds mcphost and starts it on the embedded demo configuration
# (loopback only). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
./packaging/scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target mcphost
exec ./build/release/bin/mcphost serve --config config/demo.yaml "$@"
