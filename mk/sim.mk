# litefs-sim: LiteFS stand-in on real FUSE (see litefs-sim/README.md).
# Standalone crate with its own target dir; needs root and /dev/fuse.
# Every sim uses its own temp dir, so tests run in parallel; the FUSE tests
# fail (rather than skip) when CI=true and FUSE is unavailable.

SIM_CARGO ?= cargo
SIM_MANIFEST := litefs-sim/Cargo.toml
# The failover tests (litefs-sim/tests/failover*.rs) load the real extension
# and must also catch a deliberately broken one: the execution-time gate
# disabled (`--features test-no-gate`), built into its own target dir so it
# never replaces the real .so.
SIM_NO_GATE_DIR := target/no-gate
SIM_NO_GATE_SO := $(SIM_NO_GATE_DIR)/release/liblitefs_guard.so

.PHONY: sim-build sim-test sim-lint sim-guard sim-broken-gate

sim-build:
	$(SIM_CARGO) build --release --manifest-path $(SIM_MANIFEST)

# The extension under test: target/release/liblitefs_guard.so.
sim-guard:
	$(SIM_CARGO) build --release

sim-broken-gate:
	$(SIM_CARGO) build --release --features test-no-gate --target-dir $(SIM_NO_GATE_DIR)

sim-test: sim-guard sim-broken-gate
	LITEFS_GUARD_NO_GATE_SO=$(CURDIR)/$(SIM_NO_GATE_SO) \
	  $(SIM_CARGO) test --release --manifest-path $(SIM_MANIFEST)

sim-lint:
	$(SIM_CARGO) fmt --manifest-path $(SIM_MANIFEST) -- --check
	$(SIM_CARGO) clippy --manifest-path $(SIM_MANIFEST) --all-targets -- -D warnings
