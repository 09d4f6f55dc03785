# litefs_guard. The two commands for a fresh machine:
#   make demo   build, then watch the guard refuse a write in the sqlite3 CLI
#   make test   install what the tests need, then run every test
# Everything else here is a building block of those two.

PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
# dlopen() only searches the loader's default directories for a bare name
# such as `.load litefs_guard`; `make install` links the library there too.
LOADER_DIR ?= $(firstword $(wildcard /usr/lib/$(shell uname -m)-linux-gnu) /usr/lib)
CARGO     ?= cargo
SO        := target/release/liblitefs_guard.so
BINDIR    ?= $(PREFIX)/bin
GUARD_CLI := target/release/litefs-guard
export CARGO_TERM_COLOR ?= never

.PHONY: all build install uninstall demo test deps lint test-unit test-rust test-cli \
        test-install valgrind clean

all: build

build:
	$(CARGO) build --release

install: build
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0755 $(SO) $(DESTDIR)$(LIBDIR)/litefs_guard.so
	@if [ -z "$(DESTDIR)" ] && [ -n "$(LOADER_DIR)" ] && [ "$(LIBDIR)" != "$(LOADER_DIR)" ]; then \
	  ln -sf $(LIBDIR)/litefs_guard.so $(LOADER_DIR)/litefs_guard.so && \
	  echo "linked $(LOADER_DIR)/litefs_guard.so -> $(LIBDIR)/litefs_guard.so"; fi
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(GUARD_CLI) $(DESTDIR)$(BINDIR)/litefs-guard

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/litefs_guard.so
	rm -f $(DESTDIR)$(BINDIR)/litefs-guard
	@if [ -z "$(DESTDIR)" ] && [ -L $(LOADER_DIR)/litefs_guard.so ]; then rm -f $(LOADER_DIR)/litefs_guard.so; fi

demo: build
	@bash scripts/demo.sh $(SO)

deps:
	@bash scripts/install-deps.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) fmt --check --manifest-path tests/rust/Cargo.toml
	$(CARGO) fmt --check --manifest-path tests/versions/system/Cargo.toml
	$(CARGO) clippy --release --all-targets -- -D warnings

test-unit:
	$(CARGO) test --release -p litefs_guard --lib

test-rust: build
	$(CARGO) test --release --manifest-path tests/rust/Cargo.toml

test-cli: build
	@bash tests/cli/run-golden.sh $(SO)

# `.load litefs_guard` from another directory, through the real install.
test-install: build
	@bash tests/cli/test-install.sh

# The VFS tests under valgrind: zero errors allowed.
valgrind: build
	@bash tests/cli/valgrind.sh

# Fragments: clients (Python, Django, Node), litefs.yml fuzzing, the FUSE
# stand-in and failover scenarios, benchmarks.
include mk/clients.mk mk/config.mk mk/sim.mk mk/bench.mk mk/versions.mk mk/adversarial.mk mk/differential.mk
include mk/cli.mk

test: deps build lint test-unit test-rust test-cli test-guard-cli test-install valgrind \
      test-python test-django test-node versions-build test-adversarial test-differential sim-lint sim-test
	@echo "make test: all suites passed"

clean:
	$(CARGO) clean
	rm -rf build
