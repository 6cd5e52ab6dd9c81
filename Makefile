# spread-rs: install and package targets (building and testing is cargo's job;
# see README.md).
#
#   make install PREFIX=$HOME/spread    # release build, then the layout below PREFIX
#   make deb                            # target/debian/spread-rs_<version>_<arch>.deb
#
# PREFIX defaults to /usr/local; DESTDIR stages into another root.

PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: install install-no-build deb

install:
	DESTDIR="$(DESTDIR)" packaging/install.sh "$(PREFIX)"

# The same, from the release build already in target/.
install-no-build:
	DESTDIR="$(DESTDIR)" packaging/install.sh --no-build "$(PREFIX)"

deb:
	packaging/deb.sh
