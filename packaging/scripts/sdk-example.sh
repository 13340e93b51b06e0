#!/usr/bin/env bash
# CI step for the connector SDK, done the way a vendor does it: build and install sdk/ ALONE into
# a temporary prefix, then build the examples from a COPY of sdk/examples (so nothing can reach
# back into this checkout) with only that prefix on CMAKE_PREFIX_PATH, and run their tests. Then
# check what the host will check and what a vendor relies on:
#   - no example or SDK header includes anything from host/ (or climbs out with ../);
#   - the examples found the SDK in the temporary prefix, and no compile command names a path
#     in this checkout;
#   - every connector folder holds connector.json + the library it names, with the right sha256
#     (recomputed here with sha256sum, independently of the build's cmake file(SHA256));
#   - each library exports exactly one symbol, mcph_connector_entry_v1;
#   - the C example links no C++ runtime, and builds in a C-only project;
#   - the echo example builds standalone from its own folder;
#   - `cmake --install` places the folders under lib/mcphost/connectors/ byte for byte.
# Exits non-zero on the first failure. KEEP_TMP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"
JOBS="${JOBS:-2}"
step() { printf '\n==== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }
fail() {
  echo "sdk-example: FAILED: $*" >&2
  exit 1
}

tmp="$(mktemp -d "${TMPDIR:-/tmp}/mcphost-sdk.XXXXXX")"
if [[ "${KEEP_TMP:-0}" == 1 ]]; then
  echo "keeping $tmp"
else
  trap 'rm -rf "$tmp"' EXIT
fi

launcher=()
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_DIR="${CCACHE_DIR:-$ROOT/build/.ccache}"
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# Vendors compile our headers with their own warning flags: keep them clean under strict ones.
strict=(-DCMAKE_C_FLAGS="-Wall -Wextra -Wpedantic -Werror"
        -DCMAKE_CXX_FLAGS="-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Werror")

step "no includes from host/ in the SDK or its examples"
if grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](\.\./|host/|tests/|plugins/)' sdk/include sdk/examples; then
  fail "the lines above include something outside the SDK"
fi

step "SDK alone: configure, build (header self-check), install into $tmp/prefix"
cmake -S sdk -B "$tmp/sdk-build" -G Ninja -DCMAKE_INSTALL_PREFIX="$tmp/prefix" "${launcher[@]}" >/dev/null
cmake --build "$tmp/sdk-build" -j "$JOBS"
cmake --install "$tmp/sdk-build" >/dev/null
for f in include/mcphost/connector.h include/mcphost/connector.hpp include/mcphost/testing/fake_host.hpp \
  share/cmake/mcphost-sdk/mcphost-sdkConfig.cmake share/cmake/mcphost-sdk/mcphost-sdkConfigVersion.cmake \
  share/cmake/mcphost-sdk/mcphost-sdkTargets.cmake share/cmake/mcphost-sdk/McphostConnector.cmake; do
  [[ -f "$tmp/prefix/$f" ]] || fail "the SDK install lacks $f"
done

step "examples against the installed SDK only (from a copy of sdk/examples)"
cp -R sdk/examples "$tmp/examples-src"
cmake -S "$tmp/examples-src" -B "$tmp/examples-build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "${launcher[@]}" "${strict[@]}" >/dev/null
found="$(sed -n 's/^mcphost-sdk_DIR:PATH=//p' "$tmp/examples-build/CMakeCache.txt")"
[[ "$found" == "$tmp/prefix/share/cmake/mcphost-sdk" ]] || fail "examples found mcphost-sdk in '$found', not in $tmp/prefix"
ninja -C "$tmp/examples-build" -j "$JOBS"
if grep -F "$ROOT/" "$tmp/examples-build/compile_commands.json"; then
  fail "the compile commands above reach into the checkout ($ROOT)"
fi

step "example tests (FakeHost)"
(cd "$tmp/examples-build" && ctest --output-on-failure -j "$JOBS")

# Prints "<name> <library> <sha256>" of a connector.json, parsed as JSON by CMake.
cat >"$tmp/manifest.cmake" <<'EOF'
file(READ "${MANIFEST}" m)
string(JSON name GET "${m}" name)
string(JSON library GET "${m}" library)
string(JSON sha256 GET "${m}" sha256)
execute_process(COMMAND "${CMAKE_COMMAND}" -E echo "${name} ${library} ${sha256}")
EOF
check_folder() {  # <connector folder> <expected name>
  local dir="$1" expected="$2" name library sha actual exported
  [[ -f "$dir/connector.json" ]] || fail "$dir has no connector.json"
  read -r name library sha < <(cmake -DMANIFEST="$dir/connector.json" -P "$tmp/manifest.cmake")
  [[ "$name" == "$expected" ]] || fail "$dir/connector.json names '$name', expected '$expected'"
  [[ "$(basename "$dir")" == "$name" ]] || fail "$dir: the folder is not named after the connector ($name)"
  [[ -f "$dir/$library" ]] || fail "$dir: library '$library' from the manifest does not exist"
  actual="$(sha256sum "$dir/$library" | cut -d' ' -f1)"
  [[ "$actual" == "$sha" ]] || fail "$dir: manifest sha256 $sha, library has $actual"
  if command -v nm >/dev/null 2>&1; then
    exported="$(nm -D --defined-only "$dir/$library" | awk '{print $NF}' | sort | tr '\n' ' ')"
    [[ "$exported" == "mcph_connector_entry_v1 " ]] || fail "$dir/$library exports more than the entry point: $exported"
  fi
  echo "$dir: $name, $library, sha256 $sha, exports: mcph_connector_entry_v1"
}

step "connector folders: manifest, sha256, exported symbols"
connectors="$tmp/examples-build/lib/mcphost/connectors"
check_folder "$connectors/echo" echo
check_folder "$connectors/minimal" minimal
if command -v readelf >/dev/null 2>&1; then
  if readelf -d "$connectors/minimal/libc_minimal.so" | grep -E 'NEEDED.*lib(std)?c\+\+'; then
    fail "the C example links a C++ runtime"
  fi
fi

step "install: the folders land under lib/mcphost/connectors/, unchanged"
DESTDIR="$tmp/root" cmake --install "$tmp/examples-build" --prefix /usr >/dev/null
check_folder "$tmp/root/usr/lib/mcphost/connectors/echo" echo
check_folder "$tmp/root/usr/lib/mcphost/connectors/minimal" minimal

step "standalone: the echo folder on its own, and the C example as a C-only project"
cp -R sdk/examples/echo "$tmp/echo-src"
cmake -S "$tmp/echo-src" -B "$tmp/echo-build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" -DBUILD_TESTING=OFF \
  "${launcher[@]}" "${strict[@]}" >/dev/null
ninja -C "$tmp/echo-build" -j "$JOBS"
check_folder "$tmp/echo-build/lib/mcphost/connectors/echo" echo
cp -R sdk/examples/c_minimal "$tmp/c-src"
cmake -S "$tmp/c-src" -B "$tmp/c-build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" -DBUILD_TESTING=OFF \
  "${launcher[@]}" "${strict[@]}" >/dev/null
grep -q '^CMAKE_CXX_COMPILER:' "$tmp/c-build/CMakeCache.txt" && fail "the C-only project enabled C++"
ninja -C "$tmp/c-build" -j "$JOBS"
check_folder "$tmp/c-build/lib/mcphost/connectors/minimal" minimal

step "SDK example checks passed"
