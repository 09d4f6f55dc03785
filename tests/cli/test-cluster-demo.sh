#!/usr/bin/env bash
# `make test-cluster-demo`: runs scripts/cluster-demo.sh (the Django guestbook on litefs-sim's
# two nodes) and checks each step's answers: status codes, the primary named in fly-replay,
# the row on the replica, the halt lock in the sim's log, the cookie's floor (503 while n2 is
# held, the row once released), the swap after the lease moved. Then a second run interrupted
# with SIGINT, as by Ctrl-C, after its first step; and after both: no server still answering,
# no mount, no temp dir. And examples/fly/litefs.yml passes `litefs-guard config check`.
# Without root or /dev/fuse: a failure under CI=true, a loud SKIPPED otherwise. A Python without
# Django is always a failure (the demo exits 1).
set -uo pipefail
py=${1:-build/venv/bin/python}
sim=${2:-target/release/litefs-sim}
cli=${3:-target/release/litefs-guard}
root=$(cd "$(dirname "$0")/../.." && pwd)
demo=$root/scripts/cluster-demo.sh
started=$SECONDS
# No FUSE needed: examples/fly/litefs.yml, with what a Fly machine's environment has
# (FLY_CONSUL_URL: `fly consul attach`), as LiteFS would read it.
env HOSTNAME=148e21ea7c1d89 FLY_APP_NAME=guestbook-litefs FLY_REGION=ams PRIMARY_REGION=ams \
  FLY_CONSUL_URL=https://:token@consul-fra.fly-shared.net/guestbook-litefs-xyz/ \
  "$cli" config check "$root/examples/fly/litefs.yml"
fly_rc=$?
out=$(bash "$demo" "$py" "$sim" 2>&1)
rc=$?
echo "$out"
if [ "$rc" = 77 ]; then
  if [ "${CI:-}" = true ]; then echo "cluster-demo: FUSE UNAVAILABLE under CI=true: 0 passed, 1 failed"; exit 1; fi
  printf '\n!!! SKIPPED cluster-demo: FUSE unavailable (needs root and /dev/fuse). It did NOT run.\n\n'
  [ "$fly_rc" = 0 ] || echo "cluster-demo: FAILED: examples/fly/litefs.yml: litefs-guard config check"
  exit "$fly_rc"
fi
if [ "$rc" != 0 ] && ! grep -q '^== cluster: ' <<<"$out"; then
  echo "cluster-demo: FAILED: the demo did not start (exit $rc): 0 passed, 1 failed"
  exit 1
fi
echo "-- cluster-demo ran in $((SECONDS - started)) s"
pass=0 fail=0
check() { # check LABEL STATUS
  if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "cluster-demo: FAILED: $1"; fi
}
# answer REQUEST [N]: the response lines (without "  <- ") after the Nth line equal to REQUEST.
answer() {
  awk -v req="$1" -v n="${2:-1}" '
    $0 == req && ++seen == n { on = 1; next }
    on && /^  <- / { print substr($0, 6); next }
    on { exit }' <<<"$out"
}
# expect LABEL REQUEST N REGEX...: the Nth answer to REQUEST has one line per REGEX, each matching.
expect() {
  local label=$1 req=$2 n=$3; shift 3
  local got i=0 ok=0 line
  got=$(answer "$req" "$n")
  [ "$(grep -c '' <<<"$got")" = $# ] || ok=1
  while IFS= read -r line && [ $i -lt $# ]; do
    i=$((i + 1))
    grep -Eq -- "${!i}" <<<"$line" || ok=1
  done <<<"$got"
  check "$label: the answer to '$req' (#$n) is not /$*/: $(head -c 600 <<<"$got")" $ok
}
has() { grep -Eq -- "$2" <<<"$out"; check "$1: no line matching /$2/" $?; }
count() { [ "$(grep -Eo -- "$2" <<<"$out" | grep -c '')" = "$3" ]; check "$1: /$2/ is not seen $3 times" $?; }
json() { printf '^\\{"id": %s, "name": "%s", "text": "%s"\\}$' "$1" "$2" "$3"; }
cookie='  Set-Cookie: litefs_txid="default:[0-9a-f]{16}/[0-9a-f]{16}"$'

check "cluster-demo.sh exited $rc" "$rc"
has "0. migrations on n1" '^     Applying guestbook\.0001_initial\.\.\. OK$'
expect "0. n1 is the primary" "[n1] GET /node/" 1 '^200 OK' '^\{"role": "primary", "primary": null, "forwarding": false\}$'
expect "0. n2 is a replica of n1" "[n2] GET /node/" 1 '^200 OK' '^\{"role": "replica", "primary": "n1", "forwarding": false\}$'

expect "1. n1 takes the write" "[n1] POST /entries/  name=ann, text=hello from n1" 1 \
  "^201 Created \([0-9]+ ms\)$cookie" "$(json 1 ann 'hello from n1')"
expect "1. n2 serves the row" "[n2] GET /entries/1/" 1 '^200 OK \([0-9]+ ms\)$' "$(json 1 ann 'hello from n1')"

expect "2. n2 refuses, naming n1" "[n2] POST /entries/  name=bob, text=hello from n2" 1 \
  '^409 Conflict \([0-9]+ ms\)  fly-replay: instance=n1$' '^\(empty body\)$'
expect "2. replayed on n1" "[n1] POST /entries/  name=bob, text=hello from n2" 1 \
  "^201 Created \([0-9]+ ms\)$cookie" "$(json 2 bob 'hello from n2')"

expect "3. n2-fwd forwards" "[n2-fwd] GET /node/" 1 '^200 OK' '^\{"role": "replica", "primary": "n1", "forwarding": true\}$'
expect "3. n2-fwd takes the write" "[n2-fwd] POST /entries/  name=cy, text=forwarded from n2" 1 \
  "^201 Created \([0-9]+ ms\)$cookie" "$(json 3 cy 'forwarded from n2')"
has "3. sim log: halt lock acquired" '^   node=n2 op=halt file=guestbook\.db-lock result=acquired$'
has "3. sim log: writes via the halt lock" '^   node=n2 op=write file=guestbook\.db-wal result=accepted via=halt: [1-9][0-9]* writes$'
has "3. sim log: halt lock released" '^   node=n2 op=halt file=guestbook\.db-lock result=released '
count "3. one halt lock in all" 'op=halt file=guestbook\.db-lock result=acquired' 1
expect "3. the forwarded row on n1" "[n1] GET /entries/3/" 1 '^200 OK' "$(json 3 cy 'forwarded from n2')"

expect "4. n1 takes the write" "[n1] POST /entries/  name=ann, text=read me on n2" 1 \
  "^201 Created \([0-9]+ ms\)$cookie" "$(json 4 ann 'read me on n2')"
expect "4. n2 serves it with the cookie" "[n2] GET /entries/4/" 1 '^200 OK' "$(json 4 ann 'read me on n2')"
has "4. hold" '^\[control\] hold n2: ok held=n2$'
expect "4. n1 takes a write while n2 is held" "[n1] POST /entries/  name=ann, text=n2 is held" 1 \
  "^201 Created \([0-9]+ ms\)$cookie" "$(json 5 ann 'n2 is held')"
expect "4. n2, held, answers 503 after the wait" "[n2] GET /entries/5/" 1 \
  '^503 Service Unavailable \((9[0-9]{2}|[1-9][0-9]{3}) ms\)  Retry-After: 1$' \
  '^503 Service Unavailable: this node has not yet caught up with your last write; try again\.$' \
  '^litefs_guard: read of .*/n2/guestbook\.db refused: this node is at [0-9a-f]{16}/[0-9a-f]{16} \(TXID [0-9]+\), below the read floor TXID [0-9]+ \(PRAGMA litefs_min_txid\), after waiting 1[0-9]{3} ms \(PRAGMA litefs_wait_ms\); the primary is n1$'
# The floor is the cookie's position: the TXID the write while held reached.
set_txid=$(answer "[n1] POST /entries/  name=ann, text=n2 is held" | sed -nE 's/.*litefs_txid="default:([0-9a-f]{16})\/.*/\1/p')
floor=$(answer "[n2] GET /entries/5/" | sed -nE 's/.*below the read floor TXID ([0-9]+) .*/\1/p')
[ -n "$set_txid" ] && [ -n "$floor" ] && [ "$((16#$set_txid))" = "$floor" ]
check "4. the floor ($floor) is the cookie's TXID (${set_txid:-?})" $?
expect "4. released during the wait: the row" "[n2] GET /entries/5/" 2 '^200 OK' "$(json 5 ann 'n2 is held')"
has "4. release" '^\[control\] release n2: ok released=n2$'

has "5. lease moved" '^\[control\] lease n2: ok lease=n2$'
expect "5. n2 is the primary" "[n2] GET /node/" 2 '^200 OK' '^\{"role": "primary", "primary": null, "forwarding": false\}$'
expect "5. n2 takes the write" "[n2] POST /entries/  name=dee, text=written on n2, the new primary" 1 \
  "^201 Created \([0-9]+ ms\)$cookie" "$(json 6 dee 'written on n2, the new primary')"
expect "5. n1 is a replica of n2" "[n1] GET /node/" 2 '^200 OK' '^\{"role": "replica", "primary": "n2", "forwarding": false\}$'
expect "5. n1 refuses, naming n2" "[n1] POST /entries/  name=eve, text=written on n1, now a replica" 1 \
  '^409 Conflict \([0-9]+ ms\)  fly-replay: instance=n2$' '^\(empty body\)$'
expect "5. replayed on n2" "[n2] POST /entries/  name=eve, text=written on n1, now a replica" 1 \
  "^201 Created \([0-9]+ ms\)$cookie" "$(json 7 eve 'written on n1, now a replica')"
list=$(answer "[n1] GET /entries/" | tail -n 1)
[ "$(grep -o '"id": ' <<<"$list" | grep -c '')" = 7 ]; check "5. seven entries on n1: $list" $?
[ "$(grep -o '"text": "hello from n2"' <<<"$list" | grep -c '')" = 1 ]
check "5. the write n2 refused is there once (replayed), not twice" $?
count "no error answers but the two 409s and the held 503" '^  <- [45][0-9]{2} [^(]*\([0-9]+ ms\)' 3

gone() { # gone LABEL OUTPUT: its temp dir removed, no mount under it, its servers not answering
  local t p
  t=$(sed -n 's/^== cluster: .* n1=\(.*\)\/n1 .*/\1/p' <<<"$2" | head -n 1)
  [ -n "$t" ] && [ ! -e "$t" ]; check "$1: temp dir ${t:-?} removed" $?
  ! grep -qF " ${t:-/nonexistent}/" /proc/self/mountinfo; check "$1: no mount left under ${t:-?}" $?
  p=$(grep -Eo '^   n[12][-a-z]* +http://127\.0\.0\.1:[0-9]+' <<<"$2" | grep -Eo '[0-9]+$')
  [ "$(grep -c '' <<<"$p")" = 3 ]; check "$1: three server ports printed" $?
  for port in $p; do
    ! curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/node/"; check "$1: nothing answers on port $port" $?
  done
}
gone "finished run" "$out"

# Ctrl-C: SIGINT to the demo's process group (set -m gives the background job its own),
# once step 2 has begun; the script must exit 130 and take everything down.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set -m
bash "$demo" "$py" "$sim" >"$log" 2>&1 &
pid=$!
set +m
for _ in $(seq 300); do grep -q '^== 2\.' "$log" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
grep -q '^== 2\.' "$log"; check "Ctrl-C run: reached step 2" $?
kill -INT -- "-$pid" 2>/dev/null
wait "$pid"
irc=$?
[ "$irc" = 130 ]; check "Ctrl-C run: exit status $irc, not 130" $?
gone "Ctrl-C run" "$(cat "$log")"

check "examples/fly/litefs.yml: litefs-guard config check" "$fly_rc"

echo "cluster-demo: $pass passed, $fail failed ($((SECONDS - started)) s)"
[ "$fail" = 0 ]
