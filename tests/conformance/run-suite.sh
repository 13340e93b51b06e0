#!/usr/bin/env bash
# run-suite.sh MCPHOST SHARED_CONFORMANCE_DIR EXPECTED_PASSED [run.sh options...]
#
# Starts mcphost on a free loopback port with a temporary copy of the demo configuration, runs
# the official conformance runner (../shared/conformance/run.sh) against it and requires
# exactly "EXPECTED_PASSED passed, 0 failed". Stops the host afterwards.
set -uo pipefail
BIN="$1"; RUNNER_DIR="$2"; EXPECTED="$3"; shift 3
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
[ -x "$RUNNER_DIR/run.sh" ] || { echo "run-suite: conformance runner not found at $RUNNER_DIR/run.sh (set MCPHOST_SHARED_DIR)"; exit 2; }
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
sed -e 's/^  access_log: true/  access_log: false/' "$ROOT/config/demo.yaml" > "$WORK/conformance.yaml"
"$BIN" serve --config "$WORK/conformance.yaml" --listen "127.0.0.1:$PORT" 2>"$WORK/host.log" &
PID=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
OUT="$("$RUNNER_DIR/run.sh" "http://127.0.0.1:$PORT/mcp" -q "$@" 2>&1)"
RC=$?
echo "$OUT"
LAST="$(echo "$OUT" | tail -n 1)"
if [ "$RC" -ne 0 ] || [ "$LAST" != "$EXPECTED passed, 0 failed" ]; then
  echo "run-suite: expected '$EXPECTED passed, 0 failed', got '$LAST' (exit $RC); host log:"
  tail -n 40 "$WORK/host.log"
  exit 1
fi
kill -0 "$PID" 2>/dev/null || { echo "run-suite: mcphost died during the run"; tail -n 40 "$WORK/host.log"; exit 1; }
