#!/bin/sh
# Build libspread in release mode and install it under PREFIX, laid out like
# the original Spread 4.4 installation:
#   PREFIX/lib/libspread.so.3        (soname libspread.so.3) + the libspread.so link
#   PREFIX/lib/libspread-core.so.3   (soname libspread-core.so.3) + link
#   PREFIX/lib/libtspread-core.so.3  (soname libtspread-core.so.3) + link
#   PREFIX/lib/libspread.a
#   PREFIX/include/sp.h sp_func.h sp_events.h
#   PREFIX/lib/pkgconfig/spread.pc
# All three shared libraries are the same (thread-safe) implementation.
# Then `cc app.c -I PREFIX/include -L PREFIX/lib -lspread` (or pkg-config) works.
#
# usage: capi/install.sh PREFIX
# Environment: CARGO (default cargo), CC (default cc), CARGO_TARGET_DIR.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
mkdir -p "$1"
PREFIX=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
CARGO=${CARGO:-cargo}
CC=${CC:-cc}
VERSION=4.4.0

cd "$ROOT"
"$CARGO" build --release -p spread-capi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
OUT=$TARGET_DIR/release

LIB=$PREFIX/lib
mkdir -p "$LIB/pkgconfig" "$PREFIX/include"

# libspread.so.3: the cdylib as cargo built it (soname set by build.rs).
rm -f "$LIB/libspread.so.3" "$LIB/libspread.so"
install -m 0755 "$OUT/libspread.so" "$LIB/libspread.so.3"
ln -sf libspread.so.3 "$LIB/libspread.so"
install -m 0644 "$OUT/libspread.a" "$LIB/libspread.a"

# The two "core" names: the same code linked again from the static archive
# under their own sonames, exporting only the SP_* and E_* functions.
EXPORTS=$(mktemp)
trap 'rm -f "$EXPORTS"' EXIT
printf '{\n  global: SP_*; E_*;\n  local: *;\n};\n' > "$EXPORTS"
for name in libspread-core libtspread-core; do
    rm -f "$LIB/$name.so.3" "$LIB/$name.so"
    "$CC" -shared -o "$LIB/$name.so.3" -Wl,-soname,"$name.so.3" \
        -Wl,--version-script,"$EXPORTS" -Wl,--gc-sections \
        -Wl,--whole-archive "$OUT/libspread.a" -Wl,--no-whole-archive \
        -lpthread -ldl -lm -lgcc_s
    ln -sf "$name.so.3" "$LIB/$name.so"
done

# Release builds keep debug info (workspace profile); installed copies drop it.
if command -v strip >/dev/null 2>&1; then
    for f in libspread.so.3 libspread-core.so.3 libtspread-core.so.3; do strip --strip-debug "$LIB/$f"; done
fi

install -m 0644 "$ROOT/include/sp.h" "$ROOT/include/sp_func.h" "$ROOT/include/sp_events.h" "$PREFIX/include/"

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

echo "installed libspread $VERSION under $PREFIX"
