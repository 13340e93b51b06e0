#!/usr/bin/env bash
# What the audit log costs a tools/call (goal: <= 10% on p50 with fsync batching). Both hosts
# serve the conformance connector in its worker; the audited one writes a hash-chained,
# HMAC-keyed record for every request before its response leaves.
#
#   bench/audit.sh [--no-build]
#
# Environment: DURATION (10 s), WARMUP (3 s), CONNECTIONS (1: latency at light load; 16 for
#   throughput), REPEAT (5, median of back-to-back pairs), MODE (stateless), FSYNC (interval;
#   every_batch syncs before each response), PIN=0 turns off CPU pinning.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-1}
REPEAT=${REPEAT:-5}
MODE=${MODE:-stateless}
FSYNC=${FSYNC:-interval}
BIN=$ROOT/build/release/bin
if [[ "${1:-}" != "--no-build" ]]; then
  flock /tmp/mcphost-build.lock cmake --build --preset release --target mcphost mcp-loadgen
fi
# shellcheck source=bench/ab_common.sh
source "$ROOT/bench/ab_common.sh"
WORK=$(mktemp -d /tmp/mcphost-bench-audit.XXXXXX)
cleanup() {
  [[ -n "${HOST_PID:-}" ]] && kill "$HOST_PID" 2>/dev/null || true
  [[ -n "${AUDIT_PID:-}" ]] && kill "$AUDIT_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# One measured run; prints "p50_us rps" (ERR when any request failed).
measure_once() {
  "${client_pin[@]}" "$BIN/mcp-loadgen" --url "http://127.0.0.1:$1/mcp" --mode "$MODE" \
    --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(str(d["latency_us"]["p50"]) + " " + str(d["rps"]) if d.get("errors",0)==0 else "ERR")'
}

"${server_pin[@]}" "$BIN/mcphost" serve --config bench/bench.yaml >"$WORK/plain.log" 2>&1 &
HOST_PID=$!
wait_ready 8765
sed -e "s|AUDIT_DIR|$WORK/audit|" -e "s|STATE_DIR|$WORK/state|" -e "s|FSYNC|$FSYNC|" bench/bench-audit.yaml \
  >"$WORK/audit.yaml"
"${server_pin[@]}" "$BIN/mcphost" serve --config "$WORK/audit.yaml" >"$WORK/audit.log" 2>&1 &
AUDIT_PID=$!
wait_ready 8767
plain_runs=()
audited_runs=()
for _ in $(seq 1 "$REPEAT"); do
  plain_runs+=("$(measure_once 8765)")
  audited_runs+=("$(measure_once 8767)")
done
kill "$AUDIT_PID" 2>/dev/null || true
wait "$AUDIT_PID" 2>/dev/null || true
AUDIT_PID=
"$BIN/mcphost" audit verify "$WORK/audit" --key-file "$WORK/state/audit.key" | tail -n 1
du -sh "$WORK/audit" | awk '{print "audit log size: " $1}'

python3 - "$CONNECTIONS" "$FSYNC" "${plain_runs[@]}" -- "${audited_runs[@]}" <<'PY'
import statistics, sys
connections, fsync = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]
split = rest.index("--")
plain, audited = rest[:split], rest[split + 1:]
if "ERR" in plain + audited:
    print("a run had errors"); sys.exit(1)
p = [tuple(map(float, r.split())) for r in plain]
a = [tuple(map(float, r.split())) for r in audited]
print("runs p50 us / req/s: plain " + ", ".join(f"{x:.0f}/{y:.0f}" for x, y in p) +
      "; audited " + ", ".join(f"{x:.0f}/{y:.0f}" for x, y in a))
added = statistics.median([ap / pp - 1 for (pp, _), (ap, _) in zip(p, a)])
rps = statistics.median([ar / pr for (_, pr), (_, ar) in zip(p, a)])
print(f"tools/call p50 without audit {statistics.median(x for x, _ in p):.0f} us, "
      f"with audit (fsync {fsync}) {statistics.median(x for x, _ in a):.0f} us, {connections} connection(s)")
print(f"p50 added by audit (median of {len(p)} back-to-back pairs) {added:+.1%}  GOAL <= +10%: "
      f"{'MET' if added <= 0.10 else 'MISSED'}; throughput ratio {rps:.1%}")
PY
