# The adversarial suite (tests/adversarial, one file per attack class): the
# built .so attacked through the sqlrun clients of every SQLite release found
# in build/versions-target/release (sqlrun-*), the sqlite3 CLI and Python's
# sqlite3. Include from the top-level Makefile.
#
#   make test-adversarial   build the system runner, then run the suite
#
# Under CI=true a missing expected runner (system, 3_31, 3_37, 3_45,
# newest) or a missing prerequisite fails the cases that need it.
# pytest's exit status is passed through (5, "no tests ran", fails too).

SO ?= target/release/liblitefs_guard.so
CARGO ?= cargo
ADV_PYTHON  ?= /usr/bin/python3
ADV_VENV    := build/advenv
ADV_VENV_PY := $(ADV_VENV)/bin/python
ADV_TARGET  := $(abspath build/versions-target)
ADV_ARGS    ?=

.PHONY: test-adversarial adversarial-runner

$(ADV_VENV)/.base: mk/adversarial.mk
	rm -rf $(ADV_VENV)
	$(ADV_PYTHON) -m venv $(ADV_VENV)
	$(ADV_VENV_PY) -m pip install -q --disable-pip-version-check pytest
	touch $@

adversarial-runner:
	cd tests/versions/system && CARGO_TARGET_DIR=$(ADV_TARGET) $(CARGO) build --release

test-adversarial: adversarial-runner $(ADV_VENV)/.base
	@test -f $(SO) || { echo "$(SO) is missing: run cargo build --release" >&2; exit 1; }
	LITEFS_GUARD_SO=$(abspath $(SO)) $(ADV_VENV_PY) -m pytest -q -p no:cacheprovider -rfE tests/adversarial $(ADV_ARGS)
