# litefs-sim: LiteFS stand-in on real FUSE (see litefs-sim/README.md).
# The crate is a workspace member (binary: target/release/litefs-sim); its
# own tests (fs, lifecycle, locking) need no SQLite. The tests that drive
# SQLite through it are in tests/sim, a standalone project with its own
# lock file (rusqlite's bundled SQLite stays out of the workspace).
# Both need root and /dev/fuse. Every sim uses its own temp dir, so tests
# run in parallel; the FUSE tests fail (rather than skip) when CI=true and
# FUSE is unavailable.

SIM_CARGO ?= cargo
SIM_TESTS_MANIFEST := tests/sim/Cargo.toml
SIM_BIN := target/release/litefs-sim
# The failover tests (tests/sim/tests/failover*.rs) load the real extension
# and must also catch a deliberately broken one: the execution-time gate
# disabled (`--features test-no-gate`), built into its own target dir so it
# never replaces the real .so.
SIM_NO_GATE_DIR := target/no-gate
SIM_NO_GATE_SO := $(SIM_NO_GATE_DIR)/release/liblitefs_guard.so

.PHONY: sim-build sim-test sim-lint sim-guard sim-broken-gate

sim-build:
	$(SIM_CARGO) build --release -p litefs-sim

# The extension under test: target/release/liblitefs_guard.so.
sim-guard:
	$(SIM_CARGO) build --release -p litefs_guard

sim-broken-gate:
	$(SIM_CARGO) build --release -p litefs_guard --features test-no-gate --target-dir $(SIM_NO_GATE_DIR)

sim-test: sim-build sim-guard sim-broken-gate
	$(SIM_CARGO) test --release -p litefs-sim
	LITEFS_GUARD_NO_GATE_SO=$(CURDIR)/$(SIM_NO_GATE_SO) LITEFS_SIM_BIN=$(CURDIR)/$(SIM_BIN) \
	  $(SIM_CARGO) test --release --manifest-path $(SIM_TESTS_MANIFEST)

sim-lint:
	$(SIM_CARGO) fmt -p litefs-sim -- --check
	$(SIM_CARGO) clippy --release -p litefs-sim --all-targets -- -D warnings
	$(SIM_CARGO) fmt --manifest-path $(SIM_TESTS_MANIFEST) -- --check
	$(SIM_CARGO) clippy --release --manifest-path $(SIM_TESTS_MANIFEST) --all-targets -- -D warnings
