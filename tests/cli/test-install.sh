#!/usr/bin/env bash
# `make install` into a temporary PREFIX writes only under PREFIX; then
# `make install-system` links the library into LOADER_DIR and `.load
# litefs_guard` by bare name works from another directory, as a user would
# type it; `make uninstall` removes exactly what was installed. LOADER_DIR is
# a temporary directory put on LD_LIBRARY_PATH, so the test never touches the
# system's loader directory (and checks that it did not).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/litefs-guard-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/loader" "$tmp/elsewhere" "$tmp/prefix"
fail() { echo "test-install: $*" >&2; exit 1; }
passed=0
ok() { passed=$((passed + 1)); }

# The real loader directory must not change. Listed before and after.
sys_loader=$(make -s -C "$root" --no-print-directory -f - print-loader <<'EOF'
include Makefile
print-loader: ; @echo $(LOADER_DIR)
EOF
)
sys_before=$(ls -la "$sys_loader"/litefs_guard* 2>/dev/null || true)
# A file already in PREFIX that is not ours: uninstall must leave it.
mkdir -p "$tmp/prefix/lib" && echo keep >"$tmp/prefix/lib/other.so"

# 1. make install: only under PREFIX.
make -s -C "$root" install PREFIX="$tmp/prefix" LOADER_DIR="$tmp/loader" >/dev/null
test -x "$tmp/prefix/lib/litefs_guard.so" || fail "no $tmp/prefix/lib/litefs_guard.so"
[ -z "$(ls -A "$tmp/loader")" ] || fail "make install wrote into LOADER_DIR: $(ls -A "$tmp/loader")"
manifest="$tmp/prefix/share/litefs_guard/installed-files"
grep -qxF "file $tmp/prefix/lib/litefs_guard.so" "$manifest" || fail "manifest lacks the library: $(cat "$manifest")"
ok

# 2. make install-system: the link, and `.load litefs_guard` from elsewhere.
make -s -C "$root" install-system PREFIX="$tmp/prefix" LOADER_DIR="$tmp/loader" >/dev/null
[ "$(readlink "$tmp/loader/litefs_guard.so")" = "$tmp/prefix/lib/litefs_guard.so" ] || fail "no link in LOADER_DIR"
out=$(cd "$tmp/elsewhere" && LD_LIBRARY_PATH="$tmp/loader" sqlite3 :memory: '.load litefs_guard' "SELECT json_extract(litefs_config(), '\$.version')")
want=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
[ "$out" = "$want" ] || fail ".load litefs_guard printed '$out', expected '$want'"
ok

# 3. make uninstall: what was installed goes, nothing else.
make -s -C "$root" uninstall PREFIX="$tmp/prefix" LOADER_DIR="$tmp/loader" >/dev/null
test ! -e "$tmp/prefix/lib/litefs_guard.so" && test ! -L "$tmp/loader/litefs_guard.so" || fail "uninstall left files"
test ! -e "$manifest" || fail "uninstall left the manifest"
[ "$(cat "$tmp/prefix/lib/other.so")" = keep ] || fail "uninstall removed a file it did not install"
left=$(find "$tmp/prefix" "$tmp/loader" \( -type f -o -type l \) ! -path "$tmp/prefix/lib/other.so")
[ -z "$left" ] || fail "uninstall left: $left"
# A second uninstall has nothing to do and says so.
make -s -C "$root" uninstall PREFIX="$tmp/prefix" LOADER_DIR="$tmp/loader" | grep -q "no manifest" || fail "second uninstall"
ok

sys_after=$(ls -la "$sys_loader"/litefs_guard* 2>/dev/null || true)
[ "$sys_before" = "$sys_after" ] || fail "$sys_loader changed: before '$sys_before', after '$sys_after'"
ok
echo "install: $passed passed, 0 failed"
