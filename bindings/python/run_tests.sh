#!/usr/bin/env bash
# Runs the Python package's test suite against a Spread daemon and client library.
#
#   bindings/python/run_tests.sh [pytest arguments...]
#
# SPREAD_DAEMON   daemon binary   (default: <target>/debug/spread)
# SPREAD_LIBRARY  client library  (default: <target>/debug/libspread.so.3 or libspread.so)
# PYTHON          interpreter     (default: python3)
# <target> is $CARGO_TARGET_DIR, else the repository's target/.
# pytest is installed with pip when missing. The package is pip-installed into a
# temporary directory (the system's site-packages are left alone). Exit status is
# pytest's: non-zero when anything failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
py=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore
target=${CARGO_TARGET_DIR:-$repo/target}

if [ -z "${SPREAD_DAEMON:-}" ]; then
    SPREAD_DAEMON=$target/debug/spread
fi
if [ -z "${SPREAD_LIBRARY:-}" ]; then
    for name in libspread.so.3 libspread.so; do
        if [ -f "$target/debug/$name" ]; then
            SPREAD_LIBRARY=$target/debug/$name
            break
        fi
    done
fi
export SPREAD_DAEMON
if [ -n "${SPREAD_LIBRARY:-}" ]; then
    export SPREAD_LIBRARY
fi
echo "python tests: daemon=$SPREAD_DAEMON library=${SPREAD_LIBRARY:-<package search>}"

if ! "$py" -c 'import pytest' >/dev/null 2>&1; then
    echo "python tests: installing pytest"
    "$py" -m pip install --quiet --disable-pip-version-check pytest
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/spread-py.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Install from a copy so that no build/ or *.egg-info appears in the source tree.
mkdir "$work/src"
cp -r "$here/pyproject.toml" "$here/setup.py" "$here/README.md" "$here/src" "$work/src/"
# These tests use the library named by SPREAD_LIBRARY (a debug build); the
# wheel with its own libspread.so.3 is tested by packaging/test.sh.
export SPREAD_PYTHON_NO_LIBRARY=1
pip_install() {
    "$py" -m pip install --quiet --disable-pip-version-check --no-deps --target "$work/site" "$@" "$work/src"
}
if ! pip_install --no-build-isolation >"$work/pip.log" 2>&1; then
    # without a local setuptools/wheel: let pip fetch the build backend
    pip_install || { cat "$work/pip.log" >&2; exit 1; }
fi
export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"

cd "$here"
status=0
"$py" -m pytest -p no:cacheprovider --rootdir "$here" -c "$here/pyproject.toml" "$here/tests" "$@" || status=$?
exit "$status"
