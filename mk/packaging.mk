# Release packages of litefs_guard, both carrying the extension built for
# glibc $(PKG_GLIBC) with cargo-zigbuild and stripped ($(PKG_SO)); the wheel
# also carries the litefs-guard tool, built and stripped the same way
# ($(PKG_CLI)), behind its `litefs-guard` console script. Included by
# the top-level Makefile; the test suites keep loading $(SO).
#
#   make wheel      dist/litefs_guard-<version>-py3-none-manylinux_2_17_x86_64.whl
#                   (checked with auditwheel show), with the litefs-guard tool
#   make npm        dist/litefs-guard-<version>.tgz (npm pack of bindings/node)
#   make test-wheel the wheel installed into a fresh venv of /usr/bin/python3,
#                   README's Python quick start run on a primary and a replica
#   make test-npm   the tarball installed into an empty directory (better-sqlite3
#                   borrowed from tests/node), README's Node quick start run on a
#                   primary and a replica
#
# The build tools (ziglang, cargo-zigbuild, auditwheel, setuptools, wheel)
# live in the venv $(PKG_TOOLS), from PyPI; nothing is installed system-wide.
# One version everywhere: the workspace Cargo.toml's, via $(PKG_VERSION_FILE).

PKG_TOOLS        := build/tools
PKG_TOOLS_PY     := $(PKG_TOOLS)/bin/python
PKG_GLIBC        := 2.17
PKG_TRIPLE       := x86_64-unknown-linux-gnu
PKG_PLAT         := manylinux_$(subst .,_,$(PKG_GLIBC))_x86_64
PKG_DIR          := build/pkg
PKG_SO           := $(PKG_DIR)/liblitefs_guard.so
PKG_CLI          := $(PKG_DIR)/litefs-guard
PKG_VERSION_FILE := $(PKG_DIR)/VERSION
DIST             := dist
PKG_TOOL_REQS    := ziglang==0.17.1 cargo-zigbuild==0.24.1 auditwheel==6.8.2 "setuptools>=77,<90" wheel

.PHONY: wheel npm test-wheel test-npm test-packages pkg-so pkg-cli

$(PKG_TOOLS)/.base: mk/packaging.mk
	rm -rf $(PKG_TOOLS)
	$(CLIENTS_PYTHON) -m venv $(PKG_TOOLS)
	$(PKG_TOOLS_PY) -m pip install -q --disable-pip-version-check $(PKG_TOOL_REQS)
	touch $@

$(PKG_VERSION_FILE): Cargo.toml
	@mkdir -p $(@D)
	$(CARGO) metadata --no-deps --format-version 1 | $(CLIENTS_PYTHON) -c \
	  'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "litefs_guard"))' > $@

# Cargo decides whether anything changed; zig links against glibc $(PKG_GLIBC)'s
# symbol versions. The copy is stripped, and refused if it needs a newer glibc.
pkg-so: $(PKG_TOOLS)/.base
	PATH="$(abspath $(PKG_TOOLS)/bin):$$PATH" $(CARGO) zigbuild --release -p litefs_guard \
	  --target $(PKG_TRIPLE).$(PKG_GLIBC)
	@mkdir -p $(PKG_DIR)
	strip --strip-unneeded -o $(PKG_SO).tmp target/$(PKG_TRIPLE)/release/liblitefs_guard.so
	@max=$$(objdump -T $(PKG_SO).tmp | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1); \
	if [ "$$(printf '%s\n%s\n' "$$max" $(PKG_GLIBC) | sort -V | tail -1)" != $(PKG_GLIBC) ]; then \
	  echo "pkg-so: the extension needs glibc $$max, more than $(PKG_GLIBC)" >&2; rm -f $(PKG_SO).tmp; exit 1; fi
	mv $(PKG_SO).tmp $(PKG_SO)

# The command line tool, for the wheel: the same glibc, stripped, checked.
pkg-cli: $(PKG_TOOLS)/.base
	PATH="$(abspath $(PKG_TOOLS)/bin):$$PATH" $(CARGO) zigbuild --release -p litefs-guard-cli \
	  --target $(PKG_TRIPLE).$(PKG_GLIBC)
	@mkdir -p $(PKG_DIR)
	strip --strip-unneeded -o $(PKG_CLI).tmp target/$(PKG_TRIPLE)/release/litefs-guard
	@max=$$(objdump -T $(PKG_CLI).tmp | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1); \
	if [ "$$(printf '%s\n%s\n' "$$max" $(PKG_GLIBC) | sort -V | tail -1)" != $(PKG_GLIBC) ]; then \
	  echo "pkg-cli: litefs-guard needs glibc $$max, more than $(PKG_GLIBC)" >&2; rm -f $(PKG_CLI).tmp; exit 1; fi
	mv $(PKG_CLI).tmp $(PKG_CLI)

wheel: pkg-so pkg-cli $(PKG_VERSION_FILE) LICENSE
	rm -f $(DIST)/litefs_guard-*.whl
	bash scripts/build-wheel.sh $(PKG_TOOLS_PY) $(PKG_SO) $(PKG_CLI) $(PKG_VERSION_FILE) build/wheel-release $(DIST) $(PKG_PLAT)
	@whl=$(DIST)/litefs_guard-$$(cat $(PKG_VERSION_FILE))-py3-none-$(PKG_PLAT).whl; \
	test -f $$whl || { echo "wheel: $$whl was not built: $$(ls $(DIST))" >&2; exit 1; }; \
	$(PKG_TOOLS)/bin/auditwheel show $$whl > $(PKG_DIR)/auditwheel.txt 2>&1 || { cat $(PKG_DIR)/auditwheel.txt >&2; exit 1; }; \
	tr '\n' ' ' < $(PKG_DIR)/auditwheel.txt | grep -q 'consistent with the following platform tag: "$(PKG_PLAT)"' || \
	  { echo "wheel: auditwheel does not find $$whl consistent with $(PKG_PLAT):" >&2; cat $(PKG_DIR)/auditwheel.txt >&2; exit 1; }; \
	echo "wheel: $$whl (auditwheel: $(PKG_PLAT))"

# The package directory is staged under build/ with the .so, LICENSE and the
# workspace version written into package.json, then packed into dist/.
NPM_STAGE := build/npm/litefs-guard
npm: pkg-so $(PKG_VERSION_FILE) LICENSE
	@command -v npm >/dev/null 2>&1 || { echo "npm: needs npm (apt-get install npm)" >&2; exit 1; }
	rm -rf $(NPM_STAGE) $(DIST)/litefs-guard-*.tgz
	mkdir -p $(NPM_STAGE)/lib/linux-x64 $(DIST)
	cp bindings/node/package.json bindings/node/index.js bindings/node/index.d.ts bindings/node/README.md LICENSE $(NPM_STAGE)/
	cp $(PKG_SO) $(NPM_STAGE)/lib/linux-x64/liblitefs_guard.so
	cd $(NPM_STAGE) && npm pkg set version="$$(cat $(abspath $(PKG_VERSION_FILE)))"
	cd $(NPM_STAGE) && npm pack --silent --pack-destination $(abspath $(DIST)) >/dev/null
	@tgz=$(DIST)/litefs-guard-$$(cat $(PKG_VERSION_FILE)).tgz; test -f $$tgz || { echo "npm: $$tgz was not built" >&2; exit 1; }; \
	echo "npm: $$tgz"

test-wheel: wheel
	@bash tests/packaging/test-wheel.sh $(DIST)/litefs_guard-$$(cat $(PKG_VERSION_FILE))-py3-none-$(PKG_PLAT).whl

test-npm:
	@$(call need-node,test-npm); \
	$(MAKE) --no-print-directory npm node-deps && \
	bash tests/packaging/test-npm.sh $(DIST)/litefs-guard-$$(cat $(PKG_VERSION_FILE)).tgz $(NODE_DIR)/node_modules

test-packages: test-wheel test-npm
