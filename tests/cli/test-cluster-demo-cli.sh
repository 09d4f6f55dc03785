#!/usr/bin/env bash
# `make test-cluster-demo-cli`: runs scripts/cluster-demo-cli.sh and checks that each
# step printed what it should, and that nothing (mount, temp dir) is left.
# Without root or /dev/fuse: a failure under CI=true, a loud SKIPPED otherwise.
set -uo pipefail
so=${1:-target/release/liblitefs_guard.so}
sim=${2:-target/release/litefs-sim}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(bash "$root/scripts/cluster-demo-cli.sh" "$so" "$sim" 2>&1)
rc=$?
echo "$out"
if [ "$rc" = 77 ]; then
  if [ "${CI:-}" = true ]; then echo "cluster-demo-cli: FUSE UNAVAILABLE under CI=true: 0 passed, 1 failed"; exit 1; fi
  printf '\n!!! SKIPPED cluster-demo-cli: FUSE unavailable (needs root and /dev/fuse). It did NOT run.\n\n'
  exit 0
fi
pass=0 fail=0
check() { # check LABEL OK
  if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "cluster-demo-cli: FAILED: $1"; fi
}
has() { grep -Eq -- "$2" <<<"$out"; check "$1: no line matching /$2/" $?; }
after() { # the line after the first one containing $2 is exactly $3
  [ "$(grep -F -A1 -m1 -- "$2" <<<"$out" | sed -n 2p)" = "$3" ]
  check "$1: the line after '$2' is not '$3'" $?
}
check "cluster-demo-cli.sh exited $rc" "$rc"
has "1. bookmark on n1" '^[0-9a-f]{16}/[0-9a-f]{16}$'
has "2. n2 reads n1's row" '^written on n1$'
has "2. n2 names n1" '^0\|n1$'
has "2. n2 refuses a plain write" '^Parse error near line [0-9]+: not authorized \(23\)$'
has "2. the reason" '^this node is a replica; the primary is n1$'
has "3. halt lock held mid-transaction" '^\[control\] halts: ok count=1 app\.db:n2$'
has "3. sim log: acquired" 'node=n2 op=halt file=app\.db-lock result=acquired'
has "3. sim log: write via halt" 'node=n2 op=write file=app\.db-wal result=accepted .* via=halt'
has "3. forwarded row on n1" '^2\|forwarded from n2$'
after "4. wait 2000 ms" ", 2000) AS caught_up;" 1
has "4. the row read on n2" '^read it on n2$'
has "4. hold" '^\[control\] hold n2: ok held=n2$'
after "4. wait 300 ms while held" ", 300) AS caught_up;" 0
has "4. read floor refusal" '^Parse error near line [0-9]+: database table is locked \(6\)$'
has "4. refusal message" 'below the read floor TXID [0-9]+ \(PRAGMA litefs_min_txid\)'
has "4. release" '^\[control\] release n2: ok released=n2$'
has "5. lease moved" '^\[control\] lease n2: ok lease=n2$'
has "5. n1 names n2" '^0\|n2$'
[ "$(grep -Ec '^Parse error near line [0-9]+: not authorized \(23\)$' <<<"$out")" = 2 ]
check "5. n1 refuses a plain write (2 refusals in all)" $?
tmp=$(sed -n 's/^== cluster: .* n1=\(.*\)\/n1 .*/\1/p' <<<"$out" | head -n 1)
[ -n "$tmp" ] && [ ! -e "$tmp" ]; check "temp dir ${tmp:-?} removed" $?
! grep -qF " ${tmp:-/nonexistent}/" /proc/self/mountinfo; check "no mount left under ${tmp:-?}" $?
echo "cluster-demo-cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
