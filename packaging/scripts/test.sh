#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test: formatting, unit and
# integration tests (release and ASan/UBSan builds), the official MCP conformance suites, the
# TypeScript SDK interop test, and a time-boxed libFuzzer run of the message parsers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"
export CCACHE_DIR="${CCACHE_DIR:-$ROOT/build/.ccache}"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
step() { printf '\n==== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step "dependencies"
./packaging/scripts/install-deps.sh

step "format check (clang-format)"
mapfile -t sources < <(git ls-files 'host/*.cpp' 'host/*.hpp' 'tests/*.cpp' 'tests/*.hpp' 'tests/*.c' 'bench/*.cpp' \
  'sdk/*.h' 'sdk/*.hpp' 'sdk/*.c' 'sdk/*.cpp' 'plugins/*.cpp' 'plugins/*.hpp')
clang-format --dry-run -Werror "${sources[@]}"

step "release build"
cmake --preset release >/dev/null
cmake --build --preset release

step "static analysis (clang-tidy, warnings are errors)"
run-clang-tidy-14 -p build/release -j 2 -quiet 'host/.*\.cpp$' 'tests/(unit|integration|connectors)/.*\.cpp$' \
  'bench/.*\.cpp$' 'plugins/.*\.cpp$' \
  > build/release/clang-tidy.log 2>&1 || { grep -E 'error:|warning:' build/release/clang-tidy.log | sort -u; exit 1; }

step "release tests (unit, integration, conformance, interop)"
ctest --preset release

step "connector SDK: install it alone, build and test sdk/examples against the installed package only"
./packaging/scripts/sdk-example.sh

step "ASan/UBSan build and tests (unit, integration)"
cmake --preset dev >/dev/null
cmake --build --preset dev
ASAN_OPTIONS=detect_leaks=1 ctest --preset dev -E 'conformance|interop'

step "fuzz the JSON-RPC and HTTP parsers for ${FUZZ_SECONDS}s each (libFuzzer)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target fuzz_jsonrpc fuzz_http_head
for target in fuzz_jsonrpc fuzz_http_head; do
  mkdir -p "build/fuzz/corpus/$target"
  "build/fuzz/bin/$target" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -timeout=10 \
    "build/fuzz/corpus/$target" "tests/fuzz/seeds/$target" 2>&1 | tail -n 3
done

step "all tests passed"
