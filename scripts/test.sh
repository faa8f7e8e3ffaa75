#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine or a developer's: installs the
# external programs the tests drive (real servers and clients, never mocks), then
# checks formatting and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need: the package that provides each program. `make`
# builds jemalloc, the tidewatch binary's allocator (its C parts need a C compiler,
# which linking Rust needs anyway).
packages=(make mosquitto mosquitto-clients mbpoll influxdb victoria-metrics openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Build output outside the clone, so repeated runs (and CI on the same machine) are incremental.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tidewatch/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

cargo fmt --all --check
cargo test --workspace --locked --no-fail-fast
