#!/usr/bin/env bash
# Runs every tests/cli/golden/*.sql through the sqlite3 CLI in a fresh
# temporary "mount" (the extension linked in as ./litefs_guard.so) and
# compares stdout+stderr with golden/NAME.expected. UPDATE_GOLDEN=1 rewrites
# the expected files.
set -euo pipefail
so=$(realpath "${1:?usage: run-golden.sh SO}")
golden=$(cd "$(dirname "$0")/golden" && pwd)
command -v sqlite3 >/dev/null || { echo "run-golden: sqlite3 CLI missing" >&2; exit 1; }
pass=0; fail=0
for sql in "$golden"/*.sql; do
  name=$(basename "$sql" .sql)
  dir=$(mktemp -d /tmp/litefs-golden.XXXXXX)
  ln -s "$so" "$dir/litefs_guard.so"
  out=$(cd "$dir" && env -u LITEFS_GUARD_DIR -u LITEFS_GUARD_CONFIG stdbuf -o0 -e0 sqlite3 < "$sql" 2>&1 || true)
  expected="$golden/$name.expected"
  if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
    printf '%s\n' "$out" > "$expected"
  fi
  # The diff goes in the temp dir, removed with it: nothing left in /tmp.
  if diff -u "$expected" <(printf '%s\n' "$out") > "$dir/diff"; then
    echo "ok   golden/$name.sql"; pass=$((pass + 1))
  else
    echo "FAIL golden/$name.sql"; cat "$dir/diff"; fail=$((fail + 1))
  fi
  rm -rf "$dir"
done
echo "golden: $pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
