#!/usr/bin/env bash
# A SQLite without a routine the guard calls: loading fails with a message
# naming it (not an empty "error during initialization").
set -euo pipefail
so=$(realpath "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -o "$work/missing" "$root/tests/cli/c/missing-routine.c" -lsqlite3 -ldl
out=$("$work/missing" "$so")
echo "$out"
case "$out" in
  "rc=1 err=litefs_guard: SQLite routine "*" is missing from this SQLite build") echo "missing-routine: 1 passed, 0 failed" ;;
  *) echo "missing-routine: 0 passed, 1 failed"; exit 1 ;;
esac
