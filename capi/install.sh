#!/bin/sh
# Kept for old instructions: the whole installation (daemon, tools, libraries,
# headers, man pages, samples) is now `make install PREFIX=...`, i.e.
# packaging/install.sh.
exec "$(dirname "$0")/../packaging/install.sh" "$@"
