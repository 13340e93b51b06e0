#!/usr/bin/env bash
# Builds mcphost and the benchmark tools, then measures, one server at a time on 127.0.0.1:
#   mcphost (session era and stateless era), the official TypeScript SDK (stateful and
#   stateless), and a bare Poco HTTP server (upper bound), plus mcphost's idle RSS, the RSS that
#   10,000 idle sessions add, and 10,000 idle connections; then the worker figures: mcphost
#   serving the echo connector (bench/echo_connector.cpp) in its sandboxed worker against the TS
#   SDK's echo tool, and bench-worker-hop (in-process vs worker latency, idle worker RSS,
#   worker start-up).
# Prints a table and the goal ratios; the raw JSON of every run is kept in $OUT.
#
#   bench/run.sh [--no-build]
#
# Environment: DURATION (10 s per run), WARMUP (3 s), CONNECTIONS (16), REPEAT (1: measured runs
#   per server, the median by req/s is reported), IDLE_SESSIONS (10000), IDLE_CONNECTIONS (10000),
#   SERVER_CPU (0) and CLIENT_CPU (1) for taskset pinning on machines with two or more cores
#   (PIN=0 turns pinning off), OUT (results directory), HOP_CALLS (20000 sequential calls per
#   side in bench-worker-hop), HOP_STARTS (20 timed worker start-ups).
set -euo pipefail

SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
ROOT=$(dirname "$(dirname "$SCRIPT")")
cd "$ROOT"

BUILD=1
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,19p' "$SCRIPT"; exit 0 ;;
    *) echo "run.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-16}
IDLE_SESSIONS=${IDLE_SESSIONS:-10000}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
REPEAT=${REPEAT:-1}
HOP_CALLS=${HOP_CALLS:-20000}
HOP_STARTS=${HOP_STARTS:-20}
OUT=${OUT:-$ROOT/build/release/bench-results/$(date +%Y%m%d-%H%M%S)}
BIN=$ROOT/build/release/bin
TS=$ROOT/bench/ts

command -v node >/dev/null || { echo "run.sh: node (>= 18) is needed for the TypeScript SDK servers" >&2; exit 2; }

# ------------------------------------------------------------------------------------ build
if [[ $BUILD == 1 ]]; then
  # The build lock is shared with everyone building on this machine.
  if [[ ! -f build/release/build.ninja ]]; then
    flock /tmp/mcphost-build.lock cmake --preset release
  fi
  flock /tmp/mcphost-build.lock cmake --build --preset release
fi
for tool in mcphost mcphost-worker mcp-loadgen bench-bare-poco bench-worker-hop; do
  [[ -x $BIN/$tool ]] || { echo "run.sh: $BIN/$tool is missing (build first)" >&2; exit 2; }
done
ECHO_CONNECTOR=$ROOT/build/release/bench/connectors/echo
[[ -f $ECHO_CONNECTOR/connector.json ]] || { echo "run.sh: $ECHO_CONNECTOR is missing (build first)" >&2; exit 2; }
if [[ ! -d $TS/node_modules/@modelcontextprotocol/sdk || $TS/package-lock.json -nt $TS/node_modules/.package-lock.json ]]; then
  (cd "$TS" && npm ci --ignore-scripts --no-audit --no-fund)
fi

mkdir -p "$OUT"

# ---------------------------------------------------------------------------------- helpers
SERVER_PIN=()
CLIENT_PIN=()
if [[ ${PIN:-1} == 1 ]] && (( $(nproc) >= 2 )) && command -v taskset >/dev/null; then
  SERVER_PIN=(taskset -c "${SERVER_CPU:-0}")
  CLIENT_PIN=(taskset -c "${CLIENT_CPU:-1}")
fi

SERVER_PID=""
cleanup() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_server NAME HEALTH_URL COMMAND...: starts one server (pinned), waits until it answers.
start_server() {
  local name=$1 health=$2
  shift 2
  "${SERVER_PIN[@]}" "$@" >"$OUT/$name.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if curl -sf -o /dev/null "$health"; then return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "run.sh: $name did not come up; its log:" >&2
  cat "$OUT/$name.log" >&2
  exit 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# worker_rss_kb PID: the summed VmRSS of PID's mcphost-worker children (0 when it has none).
worker_rss_kb() {
  local total=0 pid kb
  for pid in $(pgrep -P "$1" -x mcphost-worker || true); do
    kb=$(rss_kb "$pid" 2>/dev/null || true)  # it may have exited since pgrep saw it
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

# loadgen NAME ARGS...: one measured run, JSON saved as NAME.json (errors are reported, not fatal).
loadgen() {
  local name=$1
  shift
  echo "  $name ..." >&2
  "${CLIENT_PIN[@]}" "$BIN/mcp-loadgen" --json --server-pid "$SERVER_PID" "$@" >"$OUT/$name.json" || true
}

# run_load NAME URL MODE [extra args]: one measured run at the configured load.
run_load() {
  local name=$1 url=$2 mode=$3
  shift 3
  loadgen "$name" --url "$url" --mode "$mode" --connections "$CONNECTIONS" --duration "$DURATION" \
    --warmup "$WARMUP" "$@"
}

# median NAME: NAME.json becomes the run of NAME.1.json .. NAME.$REPEAT.json with the median req/s.
median() {
  node -e '
    const fs = require("fs");
    const [out, ...files] = process.argv.slice(1);
    const runs = files.map((f) => { try { return JSON.parse(fs.readFileSync(f, "utf8")); } catch { return null; } })
                      .filter(Boolean).sort((a, b) => a.rps - b.rps);
    if (runs.length) {
      const median = runs[Math.floor((runs.length - 1) / 2)];
      median.repeats = runs.map((r) => r.rps);
      fs.writeFileSync(out, JSON.stringify(median) + "\n");
    }' "$OUT/$1.json" $(for i in $(seq 1 "$REPEAT"); do echo "$OUT/$1.$i.json"; done)
}

# ---------------------------------------------------------------------------------- machine
{
  echo "{\"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\", \"cores\": $(nproc),"
  echo " \"cpu\": \"$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)\","
  echo " \"kernel\": \"$(uname -r)\", \"node\": \"$(node --version)\","
  echo " \"sdk\": \"$(node -p "require('$TS/node_modules/@modelcontextprotocol/sdk/package.json').version")\","
  echo " \"commit\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\","
  echo " \"loadavg_before\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo " \"pinning\": \"${SERVER_PIN[*]:-none} / ${CLIENT_PIN[*]:-none}\","
  echo " \"connections\": $CONNECTIONS, \"duration_s\": $DURATION, \"warmup_s\": $WARMUP, \"repeat\": $REPEAT}"
} >"$OUT/env.json"
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN {exit !(l > 0.5)}'; then
  echo "run.sh: warning: load average is $load1; other work on this machine will skew the figures" >&2
fi

echo "results: $OUT" >&2

MCPHOST=("$BIN/mcphost" serve --config "$ROOT/bench/bench.yaml")
# The echo connector, in its sandboxed worker (bench-worker.yaml finds it in the build tree).
MCPHOST_ECHO=("$BIN/mcphost" serve --config "$ROOT/bench/bench-worker.yaml")
# The same text both ways: the 43 bytes test_simple_text answers, so the answers are as long.
ECHO_ARGS=(--tool echo --args '{"text":"This is a simple text response for testing."}')

# measure NAME ROUND: start the server, one measured run (NAME.ROUND.json), stop it.
measure() {
  local name=$1 round=$2 port
  port=$(free_port)
  case $name in
    mcphost-stateful)
      start_server "$name" "http://127.0.0.1:$port/healthz" "${MCPHOST[@]}" --listen "127.0.0.1:$port"
      if [[ $round == 1 ]]; then
        sleep 1
        # The host alone (the goal's figure) and, beside it, its conformance worker.
        echo "{\"rss_kb\": $(rss_kb "$SERVER_PID"), \"worker_rss_kb\": $(worker_rss_kb "$SERVER_PID")}" \
          >"$OUT/mcphost-idle.json"
      fi
      run_load "$name.$round" "http://127.0.0.1:$port/mcp" stateful
      ;;
    mcphost-echo-stateful)
      start_server "$name" "http://127.0.0.1:$port/healthz" "${MCPHOST_ECHO[@]}" --listen "127.0.0.1:$port"
      if [[ $round == 1 ]]; then
        sleep 1
        echo "{\"rss_kb\": $(rss_kb "$SERVER_PID"), \"worker_rss_kb\": $(worker_rss_kb "$SERVER_PID")}" \
          >"$OUT/mcphost-echo-idle.json"
      fi
      run_load "$name.$round" "http://127.0.0.1:$port/mcp" stateful "${ECHO_ARGS[@]}"
      ;;
    mcphost-echo-stateless)
      start_server "$name" "http://127.0.0.1:$port/healthz" "${MCPHOST_ECHO[@]}" --listen "127.0.0.1:$port"
      run_load "$name.$round" "http://127.0.0.1:$port/mcp" stateless "${ECHO_ARGS[@]}"
      ;;
    mcphost-stateless)
      start_server "$name" "http://127.0.0.1:$port/healthz" "${MCPHOST[@]}" --listen "127.0.0.1:$port"
      run_load "$name.$round" "http://127.0.0.1:$port/mcp" stateless
      ;;
    ts-stateful)
      start_server "$name" "http://127.0.0.1:$port/healthz" node "$TS/ts-stateful.mjs" --port "$port"
      if [[ $round == 1 ]]; then
        sleep 1
        echo "{\"rss_kb\": $(rss_kb "$SERVER_PID")}" >"$OUT/ts-idle.json"
      fi
      run_load "$name.$round" "http://127.0.0.1:$port/mcp" stateful
      ;;
    ts-stateless)
      start_server "$name" "http://127.0.0.1:$port/healthz" node "$TS/ts-stateless.mjs" --port "$port"
      # SDK 1.x rejects MCP-Protocol-Version 2026-07-28: it gets a plain 2025-11-25 tools/call.
      run_load "$name.$round" "http://127.0.0.1:$port/mcp" stateless --protocol-version 2025-11-25
      ;;
    ts-echo-stateful)
      start_server "$name" "http://127.0.0.1:$port/healthz" node "$TS/ts-stateful.mjs" --port "$port"
      run_load "$name.$round" "http://127.0.0.1:$port/mcp" stateful "${ECHO_ARGS[@]}"
      ;;
    ts-echo-stateless)
      start_server "$name" "http://127.0.0.1:$port/healthz" node "$TS/ts-stateless.mjs" --port "$port"
      run_load "$name.$round" "http://127.0.0.1:$port/mcp" stateless --protocol-version 2025-11-25 "${ECHO_ARGS[@]}"
      ;;
    bare-poco)
      start_server "$name" "http://127.0.0.1:$port/" "$BIN/bench-bare-poco" --port "$port"
      # The same request bytes as mcphost-stateless, and the answer is checked the same way.
      run_load "$name.$round" "http://127.0.0.1:$port/mcp" stateless
      ;;
  esac
  stop_server
}

# Rounds interleave the servers, so that background noise spreads over all of them.
LOADS=(mcphost-stateful mcphost-stateless ts-stateful ts-stateless bare-poco
       mcphost-echo-stateful mcphost-echo-stateless ts-echo-stateful ts-echo-stateless)
for round in $(seq 1 "$REPEAT"); do
  for name in "${LOADS[@]}"; do measure "$name" "$round"; done
done
for name in "${LOADS[@]}"; do median "$name"; done

# Capacity probes, each on a fresh mcphost.
port=$(free_port)
start_server mcphost-idle-sessions "http://127.0.0.1:$port/healthz" "${MCPHOST[@]}" --listen "127.0.0.1:$port"
sleep 1
loadgen mcphost-idle-sessions --url "http://127.0.0.1:$port/mcp" --mode stateful --idle-sessions "$IDLE_SESSIONS"
stop_server

port=$(free_port)
start_server mcphost-idle-connections "http://127.0.0.1:$port/healthz" "${MCPHOST[@]}" --listen "127.0.0.1:$port"
sleep 1
loadgen mcphost-idle-connections --url "http://127.0.0.1:$port/mcp" --mode stateful --idle-connections "$IDLE_CONNECTIONS"
stop_server

# The worker hop, idle worker RSS and start-up, pinned like the servers (the worker inherits
# the pinning, as mcphost's workers do): one process, in-process and worker calls alternating.
echo "  worker-hop ..." >&2
"${SERVER_PIN[@]}" "$BIN/bench-worker-hop" --connector "$ECHO_CONNECTOR" --calls "$HOP_CALLS" \
  --starts "$HOP_STARTS" --threads "$CONNECTIONS" >"$OUT/worker-hop.json" 2>"$OUT/worker-hop.log" || true
grep -v '^{' "$OUT/worker-hop.log" >&2 || true

node "$ROOT/bench/report.mjs" "$OUT" | tee "$OUT/summary.txt"
