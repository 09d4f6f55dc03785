#!/usr/bin/env bash
# Runs every sql/*.sql through the sqlite3 CLI in a fresh temporary "mount"
# (the extension linked in as ./litefs_guard.so) and compares stdout+stderr
# with sql/NAME.expected. UPDATE_GOLDEN=1 rewrites the expected files.
set -euo pipefail
so=$(realpath "${1:?usage: run-golden.sh SO}")
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v sqlite3 >/dev/null || { echo "run-golden: sqlite3 CLI missing" >&2; exit 1; }
pass=0; fail=0
for sql in "$root"/sql/*.sql; do
  name=$(basename "$sql" .sql)
  dir=$(mktemp -d /tmp/litefs-golden.XXXXXX)
  ln -s "$so" "$dir/litefs_guard.so"
  out=$(cd "$dir" && env -u LITEFS_GUARD_DIR -u LITEFS_GUARD_CONFIG stdbuf -o0 -e0 sqlite3 < "$sql" 2>&1 || true)
  rm -rf "$dir"
  expected="$root/sql/$name.expected"
  if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
    printf '%s\n' "$out" > "$expected"
  fi
  if diff -u "$expected" <(printf '%s\n' "$out") > /tmp/golden-$name.diff; then
    echo "ok   sql/$name.sql"; pass=$((pass + 1))
  else
    echo "FAIL sql/$name.sql"; cat /tmp/golden-$name.diff; fail=$((fail + 1))
  fi
done
echo "golden: $pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
