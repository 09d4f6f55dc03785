#!/usr/bin/env bash
# The release wheel (make wheel): its name and tag, its .so and its
# litefs-guard tool (both stripped, glibc <= 2.17, no libpython), then
# installed into a fresh venv of Debian's /usr/bin/python3: README's Python
# snippet run on a primary (the row is written) and on a replica
# (NotPrimaryError naming the primary, nothing written), and the
# `litefs-guard` console script's `status` on both (exit 0 and 1).
#   test-wheel.sh DIST/litefs_guard-<version>-py3-none-manylinux_2_17_x86_64.whl
set -euo pipefail
suite=test-wheel
. "$(dirname "$0")/lib.sh"
whl=${1:?usage: test-wheel.sh WHEEL}
python=${PACKAGING_PYTHON:-/usr/bin/python3}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
[ "$(basename "$whl")" = "litefs_guard-$version-py3-none-manylinux_2_17_x86_64.whl" ] || fail "wheel name $(basename "$whl")"
[ -x "$python" ] || fail "$python is missing (apt-get install python3-venv)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/litefs-guard-test-wheel.XXXXXX")
trap '[ -n "${KEEP_TMP:-}" ] && cp -R "$tmp" "$KEEP_TMP"; rm -rf "$tmp"' EXIT

# 1. What is in the wheel.
"$python" - "$whl" "$tmp/so" <<'PY' || fail "wheel contents"
import sys, zipfile
whl, out = sys.argv[1:]
z = zipfile.ZipFile(whl)
names = z.namelist()
so = [n for n in names if n.endswith(".so")]
assert so == ["litefs_guard/liblitefs_guard.so"], so
wheel = z.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
assert "Tag: py3-none-manylinux_2_17_x86_64" in wheel and "Root-Is-Purelib: false" in wheel, wheel
assert any(n.endswith("LICENSE") for n in names), names
meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
assert "Name: litefs-guard" in meta, meta
open(out, "wb").write(z.read(so[0]))
cli = "litefs_guard/bin/litefs-guard"
assert cli in names, names
assert (z.getinfo(cli).external_attr >> 16) & 0o777 == 0o755, oct(z.getinfo(cli).external_attr >> 16)
open(out + "-cli", "wb").write(z.read(cli))
ep = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
assert "[console_scripts]\nlitefs-guard = litefs_guard._cli:main" in ep, ep
PY
readelf -S "$tmp/so" | grep -q '\.symtab' && fail "the .so is not stripped"
max=$(objdump -T "$tmp/so" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
[ "$(printf '%s\n2.17\n' "$max" | sort -V | tail -1)" = 2.17 ] || fail "the .so needs glibc $max"
needed=$(readelf -d "$tmp/so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
[ "$needed" = "ld-linux-x86-64.so.2 libc.so.6 libdl.so.2 libpthread.so.0 " ] || fail "the .so links $needed"
ok
readelf -S "$tmp/so-cli" | grep -q '\.symtab' && fail "litefs-guard is not stripped"
max=$(objdump -T "$tmp/so-cli" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
[ "$(printf '%s\n2.17\n' "$max" | sort -V | tail -1)" = 2.17 ] || fail "litefs-guard needs glibc $max"
readelf -d "$tmp/so-cli" | grep -q 'libpython' && fail "litefs-guard links libpython"
ok

# 2. Installed into a fresh venv, offline.
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check --no-index --no-deps "$whl"
[ "$("$tmp/venv/bin/python" -c 'import litefs_guard; print(litefs_guard.__version__)')" = "$version" ] || fail "__version__"
ok

# 3. README's snippet on a primary and on a replica.
run() { # run DIR: the snippet against DIR's mount; stdout+stderr in DIR/out
  (cd "$1" && env LITEFS_GUARD_DIR="$1/litefs" LITEFS_GUARD_REQUIRE_FUSE=0 \
    "$tmp/venv/bin/python" -c "$(snippet python "$1/litefs/app.db")") >"$1/out" 2>&1
}
new_mount "$tmp/primary"
run "$tmp/primary" || fail "on the primary: $(cat "$tmp/primary/out")"
[ "$(rows "$tmp/primary/litefs/app.db")" = 1 ] || fail "on the primary the row was not written"
ok
new_mount "$tmp/replica"
echo node-b >"$tmp/replica/litefs/.primary"
if run "$tmp/replica"; then fail "on the replica the snippet succeeded: $(cat "$tmp/replica/out")"; fi
grep -q '^litefs_guard.NotPrimaryError: write refused: this node is a replica; the primary is node-b' "$tmp/replica/out" ||
  fail "on the replica: $(cat "$tmp/replica/out")"
[ "$(rows "$tmp/replica/litefs/app.db")" = 0 ] || fail "on the replica a row was written"
ok
# 4. The console script: `litefs-guard status` on a primary (0) and a replica (1).
status() { # status DIR: exit status of `litefs-guard status --json` on DIR's mount; JSON in DIR/status
  local rc=0
  (cd "$1" && env -u LITEFS_GUARD_CLI HOME="$1" LITEFS_GUARD_DIR="$1/litefs" LITEFS_GUARD_REQUIRE_FUSE=0 \
    "$tmp/venv/bin/litefs-guard" status --db "$1/litefs/app.db" --json) >"$1/status" 2>&1 || rc=$?
  echo "$rc"
}
[ -x "$tmp/venv/bin/litefs-guard" ] || fail "no litefs-guard console script in the venv"
[ "$("$tmp/venv/bin/litefs-guard" --version)" = "litefs-guard $version" ] ||
  fail "litefs-guard --version: $("$tmp/venv/bin/litefs-guard" --version 2>&1)"
rc=$(status "$tmp/primary")
[ "$rc" = 0 ] && grep -q '"role": *"primary"' "$tmp/primary/status" || fail "status on the primary: exit $rc: $(cat "$tmp/primary/status")"
ok
rc=$(status "$tmp/replica")
[ "$rc" = 1 ] && grep -q '"primary": *"node-b"' "$tmp/replica/status" || fail "status on the replica: exit $rc: $(cat "$tmp/replica/status")"
ok
echo "wheel: $passed passed, 0 failed"
