#!/usr/bin/env bash
# Authenticated vs unauthenticated tools/call throughput (goal: >= 90%). Both runs serve the
# conformance connector in its worker; the authenticated one validates an RS256 bearer JWT on
# every request (JWKS cached after the first) and evaluates the policy for every call.
#
#   bench/auth.sh [--no-build]
#
# Environment: DURATION (10 s), WARMUP (3 s), CONNECTIONS (16), REPEAT (3, median reported),
#   MODE (stateless: one tools/call per request; stateful: a session per connection),
#   SERVER_CPU (0) / CLIENT_CPU (1) pinning (PIN=0 turns it off).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-16}
REPEAT=${REPEAT:-3}
MODE=${MODE:-stateless}
BIN=$ROOT/build/release/bin
if [[ "${1:-}" != "--no-build" ]]; then
  flock /tmp/mcphost-build.lock cmake --build --preset release --target mcphost mcp-loadgen bench-idp
fi
# shellcheck source=bench/ab_common.sh
source "$ROOT/bench/ab_common.sh"
WORK=$(mktemp -d /tmp/mcphost-bench-auth.XXXXXX)
cleanup() {
  [[ -n "${HOST_PID:-}" ]] && kill "$HOST_PID" 2>/dev/null || true
  [[ -n "${IDP_PID:-}" ]] && kill "$IDP_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# One measured run; prints its req/s (ERR when any request failed).
measure_once() {
  local port=$1; shift
  "${client_pin[@]}" "$BIN/mcp-loadgen" --url "http://127.0.0.1:$port/mcp" --mode "$MODE" \
    --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" --json "$@" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["rps"] if d.get("errors",0)==0 else "ERR")'
}
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }

# Both hosts run side by side (the idle one costs nothing) and the runs alternate, so a slow
# minute on a shared machine hits both series alike.
"${server_pin[@]}" "$BIN/mcphost" serve --config bench/bench.yaml >"$WORK/plain.log" 2>&1 &
HOST_PID=$!
wait_ready 8765
coproc IDP { "$BIN/bench-idp" "http://127.0.0.1:8766/mcp"; }
IDP_PID=$IDP_PID
read -r ISSUER <&"${IDP[0]}"
read -r TOKEN <&"${IDP[0]}"
sed -e "s|ISSUER|$ISSUER|" -e "s|POLICY|$ROOT/bench/bench-policy.yaml|" bench/bench-auth.yaml >"$WORK/auth.yaml"
"${server_pin[@]}" "$BIN/mcphost" serve --config "$WORK/auth.yaml" >"$WORK/auth.log" 2>&1 &
AUTH_PID=$!
wait_ready 8766
plain_runs=()
authed_runs=()
for _ in $(seq 1 "$REPEAT"); do
  plain_runs+=("$(measure_once 8765)")
  authed_runs+=("$(measure_once 8766 --header "Authorization: Bearer $TOKEN")")
done
kill "$AUTH_PID" 2>/dev/null || true
PLAIN=$(median "${plain_runs[@]}")
AUTHED=$(median "${authed_runs[@]}")
echo "runs (req/s): unauthenticated ${plain_runs[*]}; authenticated ${authed_runs[*]}"

python3 - "$PLAIN" "$AUTHED" "${plain_runs[*]}" "${authed_runs[*]}" <<'PY'
import statistics, sys
plain, authed = sys.argv[1], sys.argv[2]
if "ERR" in sys.argv[3] + sys.argv[4]:
    print(f"unauthenticated {sys.argv[3]} req/s, authenticated {sys.argv[4]} req/s: a run had errors"); sys.exit(1)
# The median of the back-to-back pairs' ratios: robust against a slow minute on a shared machine.
pairs = [float(a) / float(p) for p, a in zip(sys.argv[3].split(), sys.argv[4].split())]
ratio = statistics.median(pairs)
print(f"tools/call unauthenticated: {float(plain):,.0f} req/s")
print(f"tools/call with bearer JWT + policy: {float(authed):,.0f} req/s")
print(f"ratio (median of {len(pairs)} back-to-back pairs) {ratio:.1%}  GOAL >= 90%: {'MET' if ratio >= 0.9 else 'MISSED'}")
PY
