# Randomized differential test (tests/differential/README.md): random statement
# sequences on a LiteFS replica under the guard against stock SQLite with
# PRAGMA query_only=1, on every sqlrun runner in build/versions-target/release.
#
#   make test-differential   the CI size: fixed seeds, about 10-15 s per runner
#   make fuzz-differential   seeds from the clock for DIFF_FUZZ_SECONDS (default 600),
#                            every batch's seeds printed; exits 1 on any finding
#
# Standalone: `make -f mk/differential.mk test-differential`; or include this file
# from the top-level Makefile. Longer fixed runs: DIFF_SEEDS=500 DIFF_LEN=400.
# Under CI=true a missing runner of the five SQLite versions fails the test.

CARGO             ?= cargo
SO                ?= target/release/liblitefs_guard.so
DIFF_PYTHON       ?= /usr/bin/python3
DIFF_VENV         := build/diffenv
DIFF_VENV_PY      := $(DIFF_VENV)/bin/python
DIFF_RUNNER_SYS   := build/versions-target/release/sqlrun-system
DIFF_FUZZ_SECONDS ?= 600

.PHONY: test-differential fuzz-differential diff-deps diff-so diff-runner

$(DIFF_VENV)/.ok: mk/differential.mk
	rm -rf $(DIFF_VENV)
	$(DIFF_PYTHON) -m venv $(DIFF_VENV)
	$(DIFF_VENV_PY) -m pip install -q --disable-pip-version-check pytest
	touch $@

# The extension under test (always rebuilt: cargo knows when nothing changed).
diff-so:
	$(CARGO) build --release

# The runner linked against the system SQLite; the other versions' runners come
# from tests/versions and are picked up when present.
diff-runner:
	cd tests/versions/system && CARGO_TARGET_DIR=$(CURDIR)/build/versions-target $(CARGO) build --release

diff-deps: $(DIFF_VENV)/.ok diff-so diff-runner

test-differential: diff-deps
	LITEFS_GUARD_SO=$(CURDIR)/$(SO) $(DIFF_VENV_PY) -m pytest -q -p no:cacheprovider tests/differential

fuzz-differential: diff-deps
	LITEFS_GUARD_SO=$(CURDIR)/$(SO) $(DIFF_VENV_PY) tests/differential/diff_fuzz.py fuzz \
	  --seconds $(DIFF_FUZZ_SECONDS) $(if $(DIFF_LEN),--len $(DIFF_LEN))
