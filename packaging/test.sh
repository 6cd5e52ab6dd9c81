#!/usr/bin/env bash
# Packaging test: one release build, then
#   install     make install into a scratch prefix; the layout; sonames; a
#               program built with pkg-config (shared, static, core library)
#               talks to the installed daemon
#   deb         the .deb: contents, dpkg -x into a scratch root, its daemon
#               (as an unprivileged user) serves its installed tools and a
#               pkg-config client; systemd-analyze verify on its unit
#   python      a fresh venv, pip install ./bindings/python (the wheel builds
#               its own libspread.so.3), send/receive with no SPREAD_LIBRARY
# Every daemon listens on 127.0.0.1 only, on a free port. Prints the time of
# each step and a closing "N passed, N failed" line; exit status 1 on failure.
#
# usage: packaging/test.sh [--no-build]
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
export CARGO_TARGET_DIR=$TARGET_DIR
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/spread-pkg-test.XXXXXX")
# Daemons run as an unprivileged user must reach their configuration.
chmod 0755 "$SCRATCH"
DAEMON_PIDS=()
cleanup() {
    for pid in "${DAEMON_PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

passed=0
failed=0
failures=()
T0=$(date +%s)
now() { date +%s.%N; }
# run_step NAME FUNCTION: runs it, reports ok/FAILED with its time.
run_step() {
    local name=$1 start end
    start=$(now)
    echo "---- $name"
    if "$2" >"$SCRATCH/$name.log" 2>&1; then
        passed=$((passed + 1))
        end=$(now)
        printf 'test packaging::%s ... ok (%.1f s)\n' "$name" "$(awk "BEGIN {print $end - $start}")"
        # What the step found, in a word: its last line of output.
        tail -n 1 "$SCRATCH/$name.log" | sed 's/^/    /' 
    else
        failed=$((failed + 1))
        failures+=("$name")
        end=$(now)
        sed 's/^/    /' "$SCRATCH/$name.log"
        printf 'test packaging::%s ... FAILED (%.1f s)\n' "$name" "$(awk "BEGIN {print $end - $start}")"
    fi
}

fail() {
    echo "FAIL: $*"
    return 1
}

# A port whose TCP, UDP and UDP+1 ports are free on 127.0.0.1.
free_port() {
    python3 - <<'PY'
import os, random, socket
for _ in range(500):
    port = random.randrange(30000, 39998)
    if os.path.exists(f"/tmp/{port}"):
        continue
    socks = []
    try:
        for kind, p in ((socket.SOCK_STREAM, port), (socket.SOCK_DGRAM, port), (socket.SOCK_DGRAM, port + 1)):
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(port)
    break
PY
}

# start_daemon BINARY DIR [RUNNER...]: a daemon on a free loopback port with
# its configuration in DIR; sets PORT. Waits (bounded) until it accepts.
start_daemon() {
    local binary=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    PORT=$(free_port)
    [ -n "$PORT" ] || fail "no free port"
    printf 'Spread_Segment 127.0.0.255:%s {\n\tlocalhost 127.0.0.1 { D 127.0.0.1 C 127.0.0.1 }\n}\n' "$PORT" \
        >"$dir/spread.conf"
    chmod -R a+rX "$dir"
    "$@" "$binary" -n localhost -c "$dir/spread.conf" >"$dir/daemon.log" 2>&1 &
    DAEMON_PIDS+=($!)
    local i
    for i in $(seq 100); do
        if [ -S "/tmp/$PORT" ] && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    cat "$dir/daemon.log"
    fail "daemon $binary did not start on port $PORT"
}

stop_daemons() {
    local pid
    for pid in "${DAEMON_PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    DAEMON_PIDS=()
}

step_release_build() {
    nice cargo build --release --workspace --lib --bins
}

PREFIX=$SCRATCH/prefix
step_install_prefix() {
    make --no-print-directory install-no-build PREFIX="$PREFIX" || return 1
    local f
    for f in sbin/spread lib/libspread.so.3 lib/libspread-core.so.3 lib/libtspread-core.so.3 \
        lib/libspread.a include/sp.h include/sp_func.h include/sp_events.h include/fl.h \
        lib/pkgconfig/spread.pc share/man/man8/spread.8 share/man/man5/spread.conf.5 \
        share/man/man1/spmonitor.1 share/man/man1/spuser.1 share/man/man1/spflooder.1 \
        share/man/man3/libspread.3 etc/spread.conf etc/spread-rs.toml; do
        [ -f "$PREFIX/$f" ] || fail "missing $f" || return 1
    done
    [ "$(readlink "$PREFIX/lib/libspread.so")" = libspread.so.3 ] || fail "libspread.so link" || return 1
    # Every tool the workspace builds is installed.
    for f in spmonitor spuser spflooder; do
        if [ -f "$TARGET_DIR/release/$f" ]; then
            [ -x "$PREFIX/bin/$f" ] || fail "built $f was not installed" || return 1
            echo "installed bin/$f"
        fi
    done
    for f in libspread libspread-core libtspread-core; do
        grep -q "SONAME.*\[$f.so.3\]" <<<"$(readelf -d "$PREFIX/lib/$f.so.3")" || fail "$f soname" || return 1
    done
    # Stripped: no debug sections left in the archive (28 MB with them).
    local size
    size=$(stat -c %s "$PREFIX/lib/libspread.a")
    echo "libspread.a: $size bytes"
    # (whole outputs first: grep -q closing a pipe early fails it under pipefail)
    if grep -q '\.debug_info' <<<"$(readelf -S "$PREFIX/lib/libspread.a" 2>/dev/null)"; then
        fail "libspread.a still has debug info"
        return 1
    fi
    # The man pages render.
    for f in "$PREFIX"/share/man/man*/*; do
        groff -man -Tutf8 -wall "$f" >/dev/null 2>"$SCRATCH/groff.err" || fail "$f does not render" || return 1
        [ ! -s "$SCRATCH/groff.err" ] || { cat "$SCRATCH/groff.err"; fail "$f: groff warnings"; return 1; }
    done
    # A second install keeps the site's configuration.
    echo "# site" >>"$PREFIX/etc/spread.conf"
    make --no-print-directory install-no-build PREFIX="$PREFIX" >/dev/null || return 1
    tail -n 1 "$PREFIX/etc/spread.conf" | grep -q '^# site' || fail "install replaced etc/spread.conf"
}

# build_client PC_DIR SYSROOT OUT [static|core]: the pkg-config program.
build_client() {
    local pcdir=$1 sysroot=$2 out=$3 how=${4:-shared} flags libdir
    flags=$(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$sysroot pkg-config --cflags --libs spread) || return 1
    libdir=$sysroot$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir spread)
    echo "cc ... $flags ($how)"
    case $how in
        shared) cc -Wall -Werror -o "$out" "$HERE/tests/pkgconfig_client.c" $flags -Wl,-rpath,"$libdir" ;;
        static)
            flags=$(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$sysroot pkg-config --cflags --libs --static spread)
            cc -Wall -Werror -o "$out" "$HERE/tests/pkgconfig_client.c" \
                $(echo "$flags" | sed "s|-lspread|$libdir/libspread.a|") ;;
        core) cc -Wall -Werror -o "$out" "$HERE/tests/pkgconfig_client.c" \
            $(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$sysroot pkg-config --cflags spread) \
            -L"$libdir" -ltspread-core -Wl,-rpath,"$libdir" -Wl,--no-as-needed ;;
    esac
}

step_pkgconfig_client_against_prefix() {
    start_daemon "$PREFIX/sbin/spread" "$SCRATCH/prefix-daemon" || return 1
    local how
    for how in shared static core; do
        build_client "$PREFIX/lib/pkgconfig" "" "$SCRATCH/client-$how" "$how" || return 1
        if [ "$how" != static ]; then
            grep -q "$PREFIX/lib/lib" <<<"$(ldd "$SCRATCH/client-$how")" || fail "client-$how does not load the installed library" || return 1
        fi
        "$SCRATCH/client-$how" "$PORT@127.0.0.1" || fail "client-$how against the installed daemon" || return 1
    done
    stop_daemons
}

DEB=
DEBROOT=$SCRATCH/debroot
step_deb_build_and_extract() {
    DEB=$(packaging/deb.sh --no-build | tail -n 1) || return 1
    [ -f "$DEB" ] || fail "no package at '$DEB'" || return 1
    echo "$DEB: $(stat -c %s "$DEB") bytes"
    dpkg-deb --info "$DEB"
    dpkg-deb --contents "$DEB" | awk '{print $6}' | sort >"$SCRATCH/deb-contents"
    cat "$SCRATCH/deb-contents"
    local f
    for f in ./usr/sbin/spread ./usr/lib/libspread.so.3 ./usr/lib/libspread.so ./usr/lib/libspread-core.so.3 \
        ./usr/lib/libtspread-core.so.3 ./usr/lib/libspread.a ./usr/include/fl.h ./usr/include/sp.h \
        ./usr/lib/pkgconfig/spread.pc ./usr/share/man/man8/spread.8.gz ./usr/share/man/man5/spread.conf.5.gz \
        ./usr/share/man/man3/libspread.3.gz ./etc/spread/spread.conf ./etc/spread/spread-rs.toml \
        ./usr/lib/systemd/system/spread.service ./usr/lib/sysusers.d/spread.conf \
        ./usr/share/doc/spread-rs/copyright; do
        grep -qx "$f" "$SCRATCH/deb-contents" || fail "package lacks $f" || return 1
    done
    # (whole outputs first: grep -q closing a pipe early fails it under pipefail)
    local depends control
    depends=$(dpkg-deb --field "$DEB" Depends)
    grep -q 'libc6' <<<"$depends" || fail "no libc6 dependency" || return 1
    control=$(dpkg-deb --ctrl-tarfile "$DEB" | tar -t)
    grep -q conffiles <<<"$control" || fail "no conffiles" || return 1
    mkdir -p "$DEBROOT"
    dpkg -x "$DEB" "$DEBROOT"
    for f in spmonitor spuser spflooder; do
        if [ -f "$TARGET_DIR/release/$f" ]; then
            grep -qx "./usr/bin/$f" "$SCRATCH/deb-contents" || fail "package lacks usr/bin/$f" || return 1
        fi
    done
    grep -q '^prefix=/usr$' "$DEBROOT/usr/lib/pkgconfig/spread.pc" || fail "spread.pc prefix"
}

# The unit's own user does not exist here; run as nobody like User= would.
as_unprivileged() {
    if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
        echo setpriv --reuid=nobody --regid=nogroup --clear-groups
    fi
}

step_deb_daemon_serves_installed_clients() {
    local runner
    runner=$(as_unprivileged)
    [ -n "$runner" ] && echo "daemon runs as: $runner"
    # shellcheck disable=SC2086
    start_daemon "$DEBROOT/usr/sbin/spread" "$SCRATCH/deb-daemon" $runner || return 1
    local pid=${DAEMON_PIDS[-1]}
    ps -o user=,comm= -p "$pid"
    if [ -n "$runner" ]; then
        [ "$(ps -o user= -p "$pid" | tr -d ' ')" = nobody ] || fail "daemon is not unprivileged" || return 1
    fi
    build_client "$DEBROOT/usr/lib/pkgconfig" "$DEBROOT" "$SCRATCH/client-deb" shared || return 1
    # Started like the unit does (Type=notify): READY=1 arrives and then it serves.
    notify_ready "$DEBROOT/usr/sbin/spread" "$SCRATCH/deb-daemon" $runner || return 1
    "$SCRATCH/client-deb" "$PORT@127.0.0.1" || fail "pkg-config client against the packaged daemon" || return 1
    local tools=0
    if [ -x "$DEBROOT/usr/bin/spflooder" ]; then
        tools=$((tools + 1))
        timeout 60 "$DEBROOT/usr/bin/spflooder" -m 200 -b 100 -s "$PORT@127.0.0.1" </dev/null ||
            fail "installed spflooder against the packaged daemon" || return 1
    fi
    if [ -x "$DEBROOT/usr/bin/spuser" ]; then
        tools=$((tools + 1))
        printf 'j pkg\ns pkg\nhello from spuser\nq\n' |
            timeout 30 "$DEBROOT/usr/bin/spuser" -u pkgspuser -s "$PORT@127.0.0.1" >"$SCRATCH/spuser.out" 2>&1 ||
            { cat "$SCRATCH/spuser.out"; fail "installed spuser against the packaged daemon"; return 1; }
        cat "$SCRATCH/spuser.out"
    fi
    # systemctl reload = the unit's ExecReload: SIGHUP; the daemon re-reads
    # spread.conf and keeps serving.
    kill -HUP "$pid" || return 1
    sleep 1
    kill -0 "$pid" 2>/dev/null || { cat "$SCRATCH/deb-daemon/daemon.log"; fail "SIGHUP ended the daemon"; return 1; }
    "$SCRATCH/client-deb" "$PORT@127.0.0.1" || fail "pkg-config client after SIGHUP" || return 1
    stop_daemons
    echo "installed tools run against the packaged daemon: $tools; the pkg-config client too, also after SIGHUP"
}

# notify_ready BINARY DIR [RUNNER...]: a second daemon on DIR's configuration
# (another port) under a stand-in service manager; READY=1 must come, and a
# client must connect right after it.
notify_ready() {
    local binary=$1 dir=$2/notify
    shift 2
    mkdir -p "$dir"
    chmod 0777 "$dir"
    local port
    port=$(free_port)
    printf 'Spread_Segment 127.0.0.255:%s {\n\tlocalhost 127.0.0.1 { D 127.0.0.1 C 127.0.0.1 }\n}\n' "$port" >"$dir/spread.conf"
    chmod a+r "$dir/spread.conf"
    python3 - "$dir" "$port" "$binary" "$@" <<'PY'
import os, socket, subprocess, sys, time
d, port, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
path = os.path.join(d, "notify.sock")
manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
manager.bind(path)
os.chmod(path, 0o777)
manager.settimeout(10)
runner, binary = cmd[1:], cmd[0]
env = dict(os.environ, NOTIFY_SOCKET=path)
started = time.monotonic()
daemon = subprocess.Popen(runner + [binary, "-n", "localhost", "-c", os.path.join(d, "spread.conf")],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    message = manager.recv(512).decode()
    assert message.startswith("READY=1\n"), message
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    print(f"READY=1 after {time.monotonic() - started:.3f} s, then a client connected: {message!r}")
finally:
    daemon.terminate()
    daemon.wait(timeout=10)
PY
}

step_systemd_unit_verifies() {
    if ! command -v systemd-analyze >/dev/null 2>&1; then
        echo "skipped: systemd-analyze is not installed"
        return 0
    fi
    local unit=$DEBROOT/usr/lib/systemd/system/spread.service dir=$SCRATCH/unit
    grep -qx 'Type=notify' "$unit" || fail "unit is not Type=notify" || return 1
    grep -q '^ExecReload=.*-HUP' "$unit" || fail "unit has no SIGHUP reload" || return 1
    grep -qx 'User=spread' "$unit" || fail "unit does not set User=spread" || return 1
    # The unit's paths, pointed into the scratch root (verify checks they exist).
    mkdir -p "$dir"
    sed "s|/usr/sbin/spread|$DEBROOT/usr/sbin/spread|; s|/etc/spread/|$DEBROOT/etc/spread/|" "$unit" >"$dir/spread.service"
    systemd-analyze verify --man=no "$dir/spread.service" >"$dir/verify.log" 2>&1
    local rc=$?
    cat "$dir/verify.log"
    [ "$rc" = 0 ] || fail "systemd-analyze verify exit $rc" || return 1
    # It only warns about bad values: any output is a failure.
    [ ! -s "$dir/verify.log" ] || fail "systemd-analyze verify complained"
}

step_python_wheel_in_fresh_venv() {
    local venv=$SCRATCH/venv
    python3 -m venv "$venv" || return 1
    # The wheel builds libspread.so.3 from capi/ with this target directory.
    env -u SPREAD_LIBRARY "$venv/bin/pip" install --quiet --disable-pip-version-check "$ROOT/bindings/python" ||
        return 1
    start_daemon "$PREFIX/sbin/spread" "$SCRATCH/py-daemon" || return 1
    (cd "$SCRATCH" && env -u SPREAD_LIBRARY -u PYTHONPATH "$venv/bin/python" "$HERE/tests/python_roundtrip.py" \
        "$PORT@127.0.0.1") || fail "python send/receive" || return 1
    stop_daemons
}

no_build=0
[ "${1:-}" = "--no-build" ] && no_build=1
[ "$no_build" = 1 ] || run_step release_build step_release_build
run_step install_prefix step_install_prefix
run_step pkgconfig_client_against_prefix step_pkgconfig_client_against_prefix
run_step deb_build_and_extract step_deb_build_and_extract
run_step deb_daemon_serves_installed_clients step_deb_daemon_serves_installed_clients
run_step systemd_unit_verifies step_systemd_unit_verifies
run_step python_wheel_in_fresh_venv step_python_wheel_in_fresh_venv

echo "packaging tests took $(($(date +%s) - T0)) s"
[ "$failed" = 0 ] || echo "failed: ${failures[*]}"
echo "packaging: $passed passed, $failed failed"
[ "$failed" = 0 ]
