# litefs.yml parser fuzzing (included from the Makefile).
#
# `make fuzz-config` runs the cargo-fuzz target `config_parse` for
# FUZZ_CONFIG_SECONDS (default 30), seeded with tests/configs/*.yml; new
# inputs go to litefs-config/fuzz/corpus/config_parse (not committed). It needs a nightly
# toolchain and installs cargo-fuzz from crates.io when missing. Where no
# nightly toolchain can be had, it runs `make fuzz-config-replay` instead: the
# same oracle over the corpus and the sample configs, under plain cargo test.

FUZZ_CONFIG_SECONDS ?= 30
# The cargo-fuzz project is litefs-config/fuzz; paths below are relative to
# litefs-config, where `cargo fuzz` runs.
FUZZ_CONFIG_CORPUS := fuzz/corpus/config_parse

.PHONY: fuzz-config fuzz-config-replay

fuzz-config:
	@if cargo +nightly --version >/dev/null 2>&1 || \
	    timeout 300 rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then \
	  cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked || exit 1; \
	  cd litefs-config && mkdir -p $(FUZZ_CONFIG_CORPUS) && \
	  cargo +nightly fuzz run config_parse $(FUZZ_CONFIG_CORPUS) ../tests/configs -- \
	    -max_total_time=$(FUZZ_CONFIG_SECONDS) -max_len=65536 -timeout=10 -rss_limit_mb=2048 && \
	  cd .. && $(MAKE) --no-print-directory fuzz-config-replay; \
	else \
	  echo "fuzz-config: no nightly toolchain here; replaying the corpus with cargo test instead"; \
	  $(MAKE) --no-print-directory fuzz-config-replay; \
	fi

fuzz-config-replay:
	$(CARGO) test -p litefs-config --lib fuzzing
