#!/usr/bin/env bash
# `make install` into a temporary PREFIX, then `.load litefs_guard` by bare
# name from another directory, as a user would type it. The loader can only
# find a bare name in its default directories, so the install links it into
# LOADER_DIR; here LOADER_DIR is a temporary directory put on LD_LIBRARY_PATH
# so the test never touches the system.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/litefs-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/loader" "$tmp/elsewhere"
make -s -C "$root" install PREFIX="$tmp/prefix" LOADER_DIR="$tmp/loader" >/dev/null
test -x "$tmp/prefix/lib/litefs_guard.so"
test -L "$tmp/loader/litefs_guard.so"
out=$(cd "$tmp/elsewhere" && LD_LIBRARY_PATH="$tmp/loader" sqlite3 :memory: '.load litefs_guard' "SELECT json_extract(litefs_config(), '\$.version')")
want=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
[ "$out" = "$want" ] || { echo "test-install: .load litefs_guard printed '$out', expected '$want'" >&2; exit 1; }
make -s -C "$root" uninstall PREFIX="$tmp/prefix" LOADER_DIR="$tmp/loader" >/dev/null
test ! -e "$tmp/prefix/lib/litefs_guard.so" && test ! -e "$tmp/loader/litefs_guard.so"
echo "install: 1 passed, 0 failed"
