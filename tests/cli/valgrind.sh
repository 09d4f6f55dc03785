#!/usr/bin/env bash
# Runs the VFS and authorizer integration tests under valgrind (memcheck):
# any invalid access, use of uninitialised memory or definite leak fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)" >&2; exit 1; }
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite"
cd "$root/tests/rust"
# One test thread: valgrind serialises threads anyway, and output stays readable.
for t in vfs_gate authorizer functions halt_lock; do
  cargo test --release --test "$t" -- --test-threads=1
done
echo "valgrind: vfs_gate, authorizer, functions, halt_lock: 0 errors"
