# Clients of litefs_guard: the Python package (wheel), its Django backend,
# and the Node (better-sqlite3) tests. Included by the top-level Makefile,
# which builds $(SO) (cargo build --release).
#
#   make venv         build/venv from /usr/bin/python3 (sqlite3 with extension loading),
#                     with pytest, django>=5.2,<5.3 and a test wheel installed: the
#                     package around $(SO), built in build/python-wheel/dist (not the
#                     release wheel of `make wheel`, see mk/packaging.mk)
#   make test-python  core extension + package tests (tests/python)
#   make test-django  the Django backend (tests/django)
#                     Both also run tests on a real litefs-sim (tests/simnodes.py), so they
#                     build it first (sim-build, mk/sim.mk); those tests need root and
#                     /dev/fuse: skipped with the reason (-rs), failed under CI=true.
#   make test-node    better-sqlite3 (tests/node); needs node and npm (required under CI=true).
#                     Its README recipe tests run on litefs-sim (tests/node/simnodes.js), so it
#                     builds the sim too; without root and /dev/fuse they are skipped with the
#                     reason (TAP `# SKIP`), failed under CI=true.
#
# Every test target exits non-zero on failure; pytest's exit 5 ("no tests
# ran") is not masked, so it fails the target too.

SO ?= target/release/liblitefs_guard.so
# A Python whose sqlite3 can load extensions (pyenv builds usually cannot).
CLIENTS_PYTHON ?= /usr/bin/python3

VENV        := build/venv
VENV_PY     := $(VENV)/bin/python
WHEEL_BUILD := build/python-wheel
WHEEL_STAMP := $(WHEEL_BUILD)/.built
PY_SOURCES  := $(shell find python -type f \( -name '*.py' -o -name '*.toml' -o -name '*.md' -o -name 'py.typed' \) \
                 -not -path '*/__pycache__/*' -not -path '*/build/*' -not -path '*.egg-info/*' 2>/dev/null)
PYTEST      := $(VENV_PY) -m pytest -q -rs -p no:cacheprovider
NODE_DIR    := tests/node

.PHONY: venv test-python test-django test-node test-clients node-deps

# The tools, from /usr/bin/python3 (python3-venv).
$(VENV)/.base: mk/clients.mk
	rm -rf $(VENV)
	$(CLIENTS_PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q --disable-pip-version-check pytest "django>=5.2,<5.3" "setuptools>=77" wheel
	$(VENV_PY) -c 'import sqlite3; sqlite3.connect(":memory:").enable_load_extension' || \
	  { echo "$(CLIENTS_PYTHON)'s sqlite3 cannot load extensions: set CLIENTS_PYTHON" >&2; exit 1; }
	touch $@

# The test wheel: python/ staged with $(SO), $(GUARD_CLI) (scripts/build-wheel.sh) and
# VERSION (setup.py reads it): the version is written only in the workspace
# Cargo.toml. Tagged for this machine (linux_<arch>); `make wheel` builds the
# one to publish.
$(WHEEL_BUILD)/VERSION: Cargo.toml
	@mkdir -p $(@D)
	$(CARGO) metadata --no-deps --format-version 1 | $(CLIENTS_PYTHON) -c \
	  'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "litefs_guard"))' > $@

$(WHEEL_STAMP): $(VENV)/.base $(SO) $(GUARD_CLI) $(PY_SOURCES) $(WHEEL_BUILD)/VERSION LICENSE scripts/build-wheel.sh
	@test -f $(SO) || { echo "$(SO) is missing: run cargo build --release" >&2; exit 1; }
	@test -f $(GUARD_CLI) || { echo "$(GUARD_CLI) is missing: run cargo build --release" >&2; exit 1; }
	rm -rf $(WHEEL_BUILD)/dist
	bash scripts/build-wheel.sh $(VENV_PY) $(SO) $(GUARD_CLI) $(WHEEL_BUILD)/VERSION $(WHEEL_BUILD)/stage $(WHEEL_BUILD)/dist
	@ls $(WHEEL_BUILD)/dist/litefs_guard-*-py3-none-linux_*.whl
	touch $@

$(VENV)/.installed: $(WHEEL_STAMP)
	$(VENV_PY) -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
	  $(WHEEL_BUILD)/dist/litefs_guard-*.whl
	touch $@

venv: $(VENV)/.installed

test-python: venv sim-build
	$(PYTEST) tests/python

test-django: venv sim-build
	$(PYTEST) tests/django

# node and npm must exist: under CI=true a missing one fails, else the test
# says SKIPPED and passes. $(call need-node,TARGET) in a recipe.
need-node = if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  if [ "$$CI" = true ]; then echo "$(1): node and npm are required under CI=true" >&2; exit 1; fi; \
	  echo "$(1): SKIPPED (node/npm not installed)"; exit 0; \
	fi

# npm ci compiles better-sqlite3 from source (a couple of minutes); it runs
# only when node_modules is missing or older than package.json / the lockfile.
# test-npm (mk/packaging.mk) borrows the compiled better-sqlite3 from here.
NODE_DEPS := $(NODE_DIR)/node_modules/.package-lock.json
node-deps:
	@$(call need-node,node-deps); \
	if [ ! -f $(NODE_DEPS) ] || [ $(NODE_DIR)/package-lock.json -nt $(NODE_DEPS) ] || [ $(NODE_DIR)/package.json -nt $(NODE_DEPS) ]; then \
	  (cd $(NODE_DIR) && npm ci --no-audit --no-fund) && touch $(NODE_DEPS) || exit 1; \
	fi

test-node: sim-build
	@$(call need-node,test-node); \
	test -f $(SO) || { echo "$(SO) is missing: run cargo build --release" >&2; exit 1; }; \
	$(MAKE) --no-print-directory node-deps && \
	LITEFS_GUARD_SO=$(abspath $(SO)) LITEFS_SIM_BIN=$(abspath $(SIM_BIN)) node --test $(NODE_DIR)/

test-clients: test-python test-django test-node
