# Shared by bench/auth.sh and bench/audit.sh (sourced, not run): CPU pinning of server and
# load generator, and waiting for a host to answer /healthz.
# Environment: PIN (1; 0 turns pinning off), SERVER_CPU (0), CLIENT_CPU (1).
PIN=${PIN:-1}
server_pin=()
client_pin=()
if [[ $PIN == 1 && $(nproc) -ge 2 ]]; then
  server_pin=(taskset -c "${SERVER_CPU:-0}")
  client_pin=(taskset -c "${CLIENT_CPU:-1}")
fi

# wait_ready PORT: returns once mcphost on 127.0.0.1:PORT answers /healthz; exits after 10 s.
wait_ready() {
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$(basename "$0"): mcphost did not start on port $1" >&2
  exit 1
}
