# litefs-sim: LiteFS stand-in on real FUSE (see litefs-sim/README.md).
# Standalone crate with its own target dir; needs root and /dev/fuse.
# Every sim uses its own temp dir, so tests run in parallel; the FUSE tests
# fail (rather than skip) when CI=true and FUSE is unavailable.

SIM_CARGO ?= cargo
SIM_MANIFEST := litefs-sim/Cargo.toml

.PHONY: sim-build sim-test sim-lint

sim-build:
	$(SIM_CARGO) build --release --manifest-path $(SIM_MANIFEST)

sim-test:
	$(SIM_CARGO) test --release --manifest-path $(SIM_MANIFEST)

sim-lint:
	$(SIM_CARGO) fmt --manifest-path $(SIM_MANIFEST) -- --check
	$(SIM_CARGO) clippy --manifest-path $(SIM_MANIFEST) --all-targets -- -D warnings
