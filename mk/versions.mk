# The SQLite version matrix (tests/versions/README.md). Included by the
# top-level Makefile.
#
#   make versions-build  build every sqlrun runner: the system libsqlite3 one
#                        and one per bundled SQLite release (3.31.1, 3.37.0,
#                        3.45.0, newest), all into build/versions-target/release/
#   make versions-list   print the runner paths, one a line, oldest SQLite first
#                        (the system one, 3.40.1 on Debian 12, in its place)
#
# The projects share one CARGO_TARGET_DIR: each pins its own libsqlite3-sys, so
# their build outputs never collide, and the sqlrun-* binaries have distinct
# names. From clean the four amalgamations take about a minute on 2 cores.
#
# No LIBSQLITE3_FLAGS are needed: every bundled libsqlite3-sys used here
# already enables extension loading, URI filenames, FTS3/4, FTS5, R*Tree,
# JSON1 and DBSTAT_VTAB. The variable is removed from the environment so an
# outside value cannot change what a runner is built with (and a manual
# `cargo build` without it reuses the same build).

CARGO             ?= cargo
VERSIONS_DIR      := tests/versions
VERSIONS_TARGET   := build/versions-target
VERSIONS_BIN      := $(VERSIONS_TARGET)/release
# Project directories under tests/versions, oldest SQLite first; the runner of
# project P is sqlrun-P without a leading `v` (v3_31 -> sqlrun-3_31).
VERSIONS_PROJECTS := v3_31 v3_37 system v3_45 newest
VERSIONS_RUNNERS  := $(foreach p,$(VERSIONS_PROJECTS),$(VERSIONS_BIN)/sqlrun-$(patsubst v%,%,$(p)))

.PHONY: versions-build versions-list

versions-build:
	@set -e; for p in $(VERSIONS_PROJECTS); do \
	  echo "versions-build: $(VERSIONS_DIR)/$$p"; \
	  env -u LIBSQLITE3_FLAGS CARGO_TARGET_DIR=$(abspath $(VERSIONS_TARGET)) \
	    $(CARGO) build --release --locked --manifest-path $(VERSIONS_DIR)/$$p/Cargo.toml; \
	done
	@for r in $(VERSIONS_RUNNERS); do test -x $$r || { echo "versions-build: $$r is missing" >&2; exit 1; }; done

versions-list:
	@printf '%s\n' $(VERSIONS_RUNNERS)
