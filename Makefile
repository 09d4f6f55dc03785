# litefs_guard. The two commands for a fresh machine:
#   make demo   build, then watch the guard refuse a write in the sqlite3 CLI
#               (on litefs-sim's two FUSE nodes, as root: make cluster-demo, a Django
#               app served on each; make cluster-demo-cli, the sqlite3 CLI on each)
#   make test   install what the tests need, then run every test
# Everything else here is a building block of those two.

PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
BINDIR    ?= $(PREFIX)/bin
# dlopen() only searches the loader's default directories for a bare name
# such as `.load litefs_guard`; `make install-system` links the library there.
LOADER_DIR ?= $(firstword $(wildcard /usr/lib/$(shell uname -m)-linux-gnu) /usr/lib)
CARGO     ?= cargo
SO        := target/release/liblitefs_guard.so
GUARD_CLI := target/release/litefs-guard
export CARGO_TERM_COLOR ?= never

.PHONY: all build install install-system uninstall demo cluster-demo test-cluster-demo cluster-demo-cli test-cluster-demo-cli test deps lint test-unit test-rust test-cli \
        test-install valgrind clean

all: build

build:
	$(CARGO) build --release

# What `make install` installs: one `INSTALL_FILES += MODE SOURCE DESTINATION`
# line per file (DESTINATION under $(DESTDIR); its directory is created). It
# writes nothing outside $(DESTDIR)$(PREFIX) (with LIBDIR/BINDIR left at their
# defaults) and records what it installed in $(INSTALL_MANIFEST), which
# `make uninstall` reads.
INSTALL_FILES  =
INSTALL_FILES += 0755 $(SO) $(LIBDIR)/litefs_guard.so
INSTALL_FILES += 0755 $(GUARD_CLI) $(BINDIR)/litefs-guard
INSTALL_MANIFEST = $(PREFIX)/share/litefs_guard/installed-files
INSTALL_ENV = DESTDIR="$(DESTDIR)" MANIFEST="$(INSTALL_MANIFEST)"

install: build
	@$(INSTALL_ENV) bash scripts/install.sh install $(INSTALL_FILES)

# `make install`, plus a link in the loader's directory so that a bare
# `.load litefs_guard` finds the library (writes to $(LOADER_DIR)).
install-system: install
	@$(INSTALL_ENV) bash scripts/install.sh link $(LIBDIR)/litefs_guard.so $(LOADER_DIR)/litefs_guard.so

# Removes exactly what the manifest lists (the link of install-system
# included), then the manifest.
uninstall:
	@$(INSTALL_ENV) bash scripts/install.sh uninstall

demo: build
	@bash scripts/demo.sh $(SO)

# The guard on two nodes of litefs-sim (real FUSE: root, /dev/fuse): replica
# refusal, forwarding, read-your-writes, failover. Each test-* target checks
# its demo's output (no FUSE: fails under CI=true, skips loudly otherwise).
# cluster-demo: the Django example (examples/django) served on each node by
# runserver (the venv of mk/clients.mk), walked through with curl.
cluster-demo: build venv sim-build
	@bash scripts/cluster-demo.sh $(VENV_PY) $(SIM_BIN)

# Also interrupts a second run (SIGINT) and checks examples/fly/litefs.yml.
test-cluster-demo: build venv sim-build
	@bash tests/cli/test-cluster-demo.sh $(VENV_PY) $(SIM_BIN) $(GUARD_CLI)

# cluster-demo-cli: the sqlite3 CLI on each node.
cluster-demo-cli: build sim-build
	@bash scripts/cluster-demo-cli.sh $(SO) $(SIM_BIN)

test-cluster-demo-cli: build sim-build
	@bash tests/cli/test-cluster-demo-cli.sh $(SO) $(SIM_BIN)

deps:
	@bash scripts/install-deps.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) fmt --check --manifest-path tests/rust/Cargo.toml
	$(CARGO) fmt --check --manifest-path tests/versions/system/Cargo.toml
	$(CARGO) clippy --release --all-targets -- -D warnings

test-unit:
	$(CARGO) test --release -p litefs_guard --lib
	$(CARGO) test --release -p litefs-config

test-rust: build
	$(CARGO) test --release --manifest-path tests/rust/Cargo.toml

test-cli: build
	@bash tests/cli/run-golden.sh $(SO)
	@bash tests/cli/test-missing-routine.sh $(SO)

# `.load litefs_guard` from another directory, through the real install.
test-install: build
	@bash tests/cli/test-install.sh

# The VFS tests under valgrind: zero errors allowed.
valgrind: build
	@bash tests/cli/valgrind.sh

# Fragments: clients (Python, Django, Node), release packages (wheel, npm), litefs.yml fuzzing, the FUSE
# stand-in and failover scenarios, benchmarks.
include mk/clients.mk mk/packaging.mk mk/config.mk mk/sim.mk mk/bench.mk mk/versions.mk mk/adversarial.mk mk/differential.mk
include mk/cli.mk

test: deps build lint test-unit test-rust test-cli test-guard-cli test-install valgrind \
      test-python test-django test-node test-wheel test-npm versions-build test-adversarial test-differential sim-lint sim-test test-cluster-demo-cli test-cluster-demo
	@echo "make test: all suites passed"

clean:
	$(CARGO) clean
	rm -rf build dist
