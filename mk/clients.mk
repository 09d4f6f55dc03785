# Clients of litefs_guard: the Python package (wheel), its Django backend,
# and the Node (better-sqlite3) tests. Included by the top-level Makefile,
# which builds $(SO) (cargo build --release).
#
#   make wheel        build/python-wheel/dist/litefs_guard-*-py3-none-<platform>.whl (carries the .so)
#   make venv         build/venv from /usr/bin/python3 (sqlite3 with extension loading),
#                     with pytest, django>=5.2,<5.3 and the wheel installed
#   make test-python  core extension + package tests (tests/python)
#   make test-django  the Django backend (tests/django)
#   make test-node    better-sqlite3 (tests/node); needs node and npm (required under CI=true)
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
PYTEST      := $(VENV_PY) -m pytest -q -p no:cacheprovider
NODE_DIR    := tests/node

.PHONY: venv wheel test-python test-django test-node test-clients

# The tools, from /usr/bin/python3 (python3-venv).
$(VENV)/.base: mk/clients.mk
	rm -rf $(VENV)
	$(CLIENTS_PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q --disable-pip-version-check pytest "django>=5.2,<5.3" "setuptools>=61" wheel
	$(VENV_PY) -c 'import sqlite3; sqlite3.connect(":memory:").enable_load_extension' || \
	  { echo "$(CLIENTS_PYTHON)'s sqlite3 cannot load extensions: set CLIENTS_PYTHON" >&2; exit 1; }
	touch $@

# The wheel is built from a staged copy of python/ plus the compiled .so, so
# the source tree never holds a binary. The copy also gets VERSION (setup.py
# reads it): the version is written only in the workspace Cargo.toml.
$(WHEEL_STAMP): $(VENV)/.base $(SO) $(PY_SOURCES) Cargo.toml
	@test -f $(SO) || { echo "$(SO) is missing: run cargo build --release" >&2; exit 1; }
	rm -rf $(WHEEL_BUILD)
	mkdir -p $(WHEEL_BUILD)/src $(WHEEL_BUILD)/dist
	cp -R python/. $(WHEEL_BUILD)/src/
	rm -rf $(WHEEL_BUILD)/src/build $(WHEEL_BUILD)/src/dist $(WHEEL_BUILD)/src/*.egg-info
	find $(WHEEL_BUILD)/src \( -name __pycache__ -o -name '*.so' \) -prune -exec rm -rf {} +
	cp $(SO) $(WHEEL_BUILD)/src/litefs_guard/liblitefs_guard.so
	$(CARGO) metadata --no-deps --format-version 1 | $(CLIENTS_PYTHON) -c \
	  'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "litefs_guard"))' \
	  > $(WHEEL_BUILD)/src/VERSION
	cd $(WHEEL_BUILD)/src && $(abspath $(VENV_PY)) -m pip wheel -q --disable-pip-version-check \
	  --no-deps --no-build-isolation -w ../dist .
	@ls $(WHEEL_BUILD)/dist/litefs_guard-*-py3-none-linux_*.whl
	touch $@

wheel: $(WHEEL_STAMP)

$(VENV)/.installed: $(WHEEL_STAMP)
	$(VENV_PY) -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
	  $(WHEEL_BUILD)/dist/litefs_guard-*.whl
	touch $@

venv: $(VENV)/.installed

test-python: venv
	$(PYTEST) tests/python

test-django: venv
	$(PYTEST) tests/django

# npm ci compiles better-sqlite3 from source (a couple of minutes); it runs
# only when node_modules is missing or older than package.json / the lockfile.
test-node:
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  if [ "$$CI" = true ]; then echo "test-node: node and npm are required under CI=true" >&2; exit 1; fi; \
	  echo "test-node: SKIPPED (node/npm not installed)"; exit 0; \
	fi; \
	test -f $(SO) || { echo "$(SO) is missing: run cargo build --release" >&2; exit 1; }; \
	stamp=$(NODE_DIR)/node_modules/.package-lock.json; \
	if [ ! -f $$stamp ] || [ $(NODE_DIR)/package-lock.json -nt $$stamp ] || [ $(NODE_DIR)/package.json -nt $$stamp ]; then \
	  (cd $(NODE_DIR) && npm ci --no-audit --no-fund) && touch $$stamp || exit 1; \
	fi; \
	LITEFS_GUARD_SO=$(abspath $(SO)) node --test $(NODE_DIR)/

test-clients: test-python test-django test-node
