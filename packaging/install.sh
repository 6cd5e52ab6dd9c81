#!/bin/sh
# Install spread-rs under PREFIX from a release build, laid out like the
# original Spread 4.4 installation:
#
#   PREFIX/sbin/spread                      the daemon
#   PREFIX/bin/spmonitor spuser spflooder   the tools (those that are built)
#   PREFIX/lib/libspread.so.3 (+ libspread.so link), libspread-core.so.3,
#       libtspread-core.so.3 (+ links), libspread.a, pkgconfig/spread.pc
#   PREFIX/include/sp.h sp_func.h sp_events.h fl.h
#   PREFIX/share/man/man{1,3,5,8}/...
#   ETCDIR/spread.conf, ETCDIR/spread-rs.toml   samples, never overwritten
#
# usage: packaging/install.sh [--no-build] PREFIX
#   --no-build   use the release build already in the target directory
# Environment:
#   DESTDIR      staging root: files go to DESTDIR/PREFIX (packages); the
#                installed spread.pc still says PREFIX
#   ETCDIR       configuration directory (default PREFIX/etc)
#   MANDIR       man page root (default PREFIX/share/man)
#   CARGO, CC, STRIP, CARGO_TARGET_DIR
# No root needed for a PREFIX you can write to.
set -eu

build=1
if [ "${1:-}" = "--no-build" ]; then
    build=0
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--no-build] PREFIX" >&2
    exit 2
fi
case "$1" in
    /*) PREFIX=$1 ;;
    *) mkdir -p "$1" && PREFIX=$(cd "$1" && pwd) ;;
esac
PREFIX=${PREFIX%/}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
CARGO=${CARGO:-cargo}
CC=${CC:-cc}
STRIP=${STRIP:-strip}
DESTDIR=${DESTDIR:-}
ETCDIR=${ETCDIR:-$PREFIX/etc}
MANDIR=${MANDIR:-$PREFIX/share/man}
VERSION=4.4.0

cd "$ROOT"
if [ "$build" = 1 ]; then
    # Every library and binary of the workspace: the daemon, libspread and
    # whichever tools exist.
    "$CARGO" build --release --workspace --lib --bins
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
OUT=$TARGET_DIR/release
for f in spread libspread.so libspread.a; do
    if [ ! -f "$OUT/$f" ]; then
        echo "$0: $OUT/$f is missing: build first (cargo build --release --workspace) or drop --no-build" >&2
        exit 1
    fi
done

D=$DESTDIR
BIN=$D$PREFIX/bin
SBIN=$D$PREFIX/sbin
LIB=$D$PREFIX/lib
INC=$D$PREFIX/include
ETC=$D$ETCDIR
MAN=$D$MANDIR
mkdir -p "$BIN" "$SBIN" "$LIB/pkgconfig" "$INC" "$ETC" \
    "$MAN/man1" "$MAN/man3" "$MAN/man5" "$MAN/man8"

# Release builds keep debug info (workspace profile); installed copies drop it.
strip_debug() {
    if command -v "$STRIP" >/dev/null 2>&1; then
        "$STRIP" --strip-debug "$@"
    fi
}

# Daemon and tools.
install -m 0755 "$OUT/spread" "$SBIN/spread"
strip_debug "$SBIN/spread"
for tool in spmonitor spuser spflooder; do
    if [ -f "$OUT/$tool" ]; then
        install -m 0755 "$OUT/$tool" "$BIN/$tool"
        strip_debug "$BIN/$tool"
    else
        echo "note: $tool is not built in this workspace; skipped"
    fi
done

# libspread.so.3: the cdylib as cargo built it (soname set by capi/build.rs).
rm -f "$LIB/libspread.so.3" "$LIB/libspread.so"
install -m 0755 "$OUT/libspread.so" "$LIB/libspread.so.3"
ln -s libspread.so.3 "$LIB/libspread.so"
install -m 0644 "$OUT/libspread.a" "$LIB/libspread.a"

# The two "core" names of the original: the same code linked again from the
# static archive under their own sonames, exporting only SP_* and E_*.
EXPORTS=$(mktemp)
trap 'rm -f "$EXPORTS"' EXIT
printf '{\n  global: SP_*; E_*;\n  local: *;\n};\n' > "$EXPORTS"
for name in libspread-core libtspread-core; do
    rm -f "$LIB/$name.so.3" "$LIB/$name.so"
    "$CC" -shared -o "$LIB/$name.so.3" -Wl,-soname,"$name.so.3" \
        -Wl,--version-script,"$EXPORTS" -Wl,--gc-sections \
        -Wl,--whole-archive "$OUT/libspread.a" -Wl,--no-whole-archive \
        -lpthread -ldl -lm -lgcc_s
    ln -s "$name.so.3" "$LIB/$name.so"
done
strip_debug "$LIB/libspread.so.3" "$LIB/libspread-core.so.3" "$LIB/libtspread-core.so.3" "$LIB/libspread.a"

for h in sp.h sp_func.h sp_events.h fl.h; do
    install -m 0644 "$ROOT/include/$h" "$INC/$h"
done

cat > "$LIB/pkgconfig/spread.pc" <<PC
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: spread
Description: Spread group communication client library (spread-rs, Rust implementation)
Version: $VERSION
Libs: -L\${libdir} -lspread
Libs.private: -lpthread -ldl -lm
Cflags: -I\${includedir}
PC
chmod 0644 "$LIB/pkgconfig/spread.pc"

for page in "$HERE"/man/*.[1-8]; do
    section=${page##*.}
    install -m 0644 "$page" "$MAN/man$section/$(basename "$page")"
done

# Samples: a site's own configuration is never replaced.
for sample in spread.conf spread-rs.toml; do
    if [ -e "$ETC/$sample" ]; then
        echo "note: $ETC/$sample exists; kept (the sample is in $ROOT/$sample)"
    else
        install -m 0644 "$ROOT/$sample" "$ETC/$sample"
    fi
done

echo "installed spread-rs (libspread $VERSION) under $D$PREFIX"
