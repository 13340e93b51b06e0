#!/usr/bin/env bash
# Installs every Debian package mcphost needs to build, test and run. Idempotent: packages
# already present are skipped, so a second run costs one dpkg query.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git curl ca-certificates openssl python3
  clang clang-tidy clang-format libclang-rt-14-dev
  libpoco-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev catch2
  libboost-dev libboost-filesystem-dev libseccomp-dev libvalijson-dev libpcre3-dev
  libldap2-dev libsqlite3-dev slapd ldap-utils
  libre2-dev libpqxx-dev postgresql
  nodejs
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || echo "install-deps: apt-get update failed; trying with the cached package lists" >&2
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
