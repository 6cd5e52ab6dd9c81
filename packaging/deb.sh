#!/bin/sh
# Build the Debian package of spread-rs from a release build:
#   target/debian/spread-rs_<version>_<arch>.deb
# holding the layout of `make install` under /usr, the sample configuration
# in /etc/spread/, the systemd unit and the daemon's system user.
#
# dpkg-deb builds it from the staged tree, so the package holds exactly what
# packaging/install.sh installs (one list of files for both).
#
# usage: packaging/deb.sh [--no-build]
#   --no-build   use the release build already in the target directory
# Prints the path of the package on its last line.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
OUT_DIR=$TARGET_DIR/debian
STAGE=$OUT_DIR/stage

command -v dpkg-deb >/dev/null 2>&1 || { echo "$0: dpkg-deb is needed (apt-get install dpkg)" >&2; exit 1; }

VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml")
ARCH=$(dpkg --print-architecture)
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN"

DESTDIR=$STAGE ETCDIR=/etc/spread MANDIR=/usr/share/man "$HERE/install.sh" "$@" /usr

install -D -m 0644 "$HERE/spread.service" "$STAGE/usr/lib/systemd/system/spread.service"
install -D -m 0644 "$HERE/debian/spread.sysusers" "$STAGE/usr/lib/sysusers.d/spread.conf"
install -D -m 0644 "$HERE/debian/copyright" "$STAGE/usr/share/doc/spread-rs/copyright"
install -m 0644 "$ROOT/README.md" "$STAGE/usr/share/doc/spread-rs/README.md"
gzip -9n "$STAGE"/usr/share/man/man*/*
install -m 0755 "$HERE/debian/postinst" "$HERE/debian/postrm" "$STAGE/DEBIAN/"
printf '/etc/spread/spread.conf\n/etc/spread/spread-rs.toml\n' > "$STAGE/DEBIAN/conffiles"

# The newest glibc symbol version any binary needs.
GLIBC=$(find "$STAGE/usr" -type f \( -name '*.so.3' -o -perm -u+x \) -exec objdump -T {} + 2>/dev/null |
    sed -n 's/.*GLIBC_\([0-9.]*\).*/\1/p' | sort -uV | tail -n 1)
SIZE=$(du -sk "$STAGE/usr" "$STAGE/etc" | awk '{s += $1} END {print s}')
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: spread-rs
Version: $VERSION
Architecture: $ARCH
Maintainer: spread-rs developers <spread-rs@example.invalid>
Installed-Size: $SIZE
Depends: libc6 (>= ${GLIBC:-2.17}), libgcc-s1, passwd
Conflicts: spread, libspread1, libspread1-dev
Section: net
Priority: optional
Homepage: https://example.invalid/spread-rs
Description: Spread group communication daemon, tools and client library (Rust)
 spread-rs is a wire-compatible replacement for the Spread 4.4 toolkit: the
 spread daemon, its tools and libspread.so.3 with the sp.h C interface.
 Existing Spread clients run unchanged and rings may mix it with the
 original daemon, sharing one spread.conf.
CONTROL

DEB=$OUT_DIR/spread-rs_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zgzip --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
