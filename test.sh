#!/usr/bin/env bash
# Runs the whole spread-rs test suite on a fresh machine: installs what it
# needs, builds, checks formatting and lints, runs the Rust tests (unit,
# golden captures, simulator, end-to-end against the real binary), the C
# compatibility tests and the Python binding tests.
#
#   ./test.sh --soak MINUTES   only the soak: a mixed workload on a 3-daemon
#                              ring with kills, freezes and impairments
#                              (the default suite runs it for 2 minutes)
set -euo pipefail
cd "$(dirname "$0")"

soak_minutes=""
if [ "${1:-}" = "--soak" ]; then
  soak_minutes="${2:?usage: ./test.sh --soak MINUTES}"
fi

step() { printf '\n==== %s ====\n' "$*"; }

step "toolchain and system packages"
need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
command -v ip >/dev/null || need_apt+=(iproute2)
# packaging test: pkg-config, dpkg-deb, groff, setpriv, readelf/objdump, venv
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v dpkg-deb >/dev/null || need_apt+=(dpkg)
command -v groff >/dev/null || need_apt+=(groff-base)
command -v setpriv >/dev/null || need_apt+=(util-linux)
command -v readelf >/dev/null || need_apt+=(binutils)
command -v make >/dev/null || need_apt+=(make)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v iptables >/dev/null || need_apt+=(iptables)   # impaired links in daemon/tests/faults.rs
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy || true

if [ -n "$soak_minutes" ]; then
  step "soak: $soak_minutes minutes"
  SPREAD_SOAK_MINUTES="$soak_minutes" cargo test -p spread-daemon --test faults -- --exact soak --nocapture
  exit 0
fi

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build"
cargo build --workspace --all-targets --quiet

step "Rust tests (unit, captures, simulator, end-to-end)"
cargo test --workspace --no-fail-fast 2>&1 | tee target/rust-tests.log
grep -q "test result: FAILED" target/rust-tests.log && exit 1

if [ -x bindings/python/run_tests.sh ]; then
  step "Python binding tests"
  cargo build --quiet -p spread-daemon --bin spread -p spread-capi
  SPREAD_LIBRARY="$PWD/target/debug/libspread.so" SPREAD_DAEMON="$PWD/target/debug/spread" \
    bindings/python/run_tests.sh
fi

step "packaging: make install, .deb, Python wheel (one release build)"
packaging/test.sh

step "all test suites passed"
