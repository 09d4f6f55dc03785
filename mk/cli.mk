# litefs-guard, the command line tool (cli/): status as a health check,
# litefs.yml check/render/init. Included by the top-level Makefile.
#
#   make test-guard-cli   its tests: the built binary run as a user would
#                         (cli/tests/cli.rs), and `status` on litefs-sim's
#                         FUSE mounts (cli/tests/sim.rs: needs root and
#                         /dev/fuse; says loudly it did not run without them,
#                         fails under CI=true)
#
# (`make test-cli` is the sqlite3 shell's golden tests, not this.)

.PHONY: test-guard-cli

test-guard-cli: build
	$(CARGO) build --release -p litefs-sim --bin litefs-sim
	LITEFS_SIM_BIN=$(CURDIR)/target/release/litefs-sim $(CARGO) test --release -p litefs-guard-cli
