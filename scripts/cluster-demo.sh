#!/usr/bin/env bash
# `make cluster-demo`: the guestbook example (examples/django) served on both nodes of
# litefs-sim, the LiteFS stand-in on real FUSE (litefs-sim/README.md), and a scripted
# walk through it with curl, printed as a user would see it: a write on the primary and
# the row on the replica; a write on the replica answered with the primary's name
# (fly-replay), and accepted through LiteFS's halt lock by a server with forward_writes
# on; reading your own writes through the middleware's cookie; the lease moving and the
# roles swapping.
#
#   scripts/cluster-demo.sh PYTHON SIM_BIN
#
# PYTHON has Django and the litefs_guard package (make venv: build/venv/bin/python).
# Each web server is Django's runserver on 127.0.0.1 with LITEFS_GUARD_DIR set to its
# node's mount. Needs root and /dev/fuse: exits 77 without them. Everything (servers,
# mounts, the temp dir) is gone when it exits, Ctrl-C included.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
app=$root/examples/django
py=${1:-$root/build/venv/bin/python}
[[ $py == /* ]] || py=$PWD/$py  # absolute, but not resolved: a venv's python is a symlink
sim=$(realpath "${2:-$root/target/release/litefs-sim}")
say() { echo "cluster-demo: $*" >&2; }
command -v curl >/dev/null || { say "curl is missing (apt-get install curl)"; exit 1; }
[ -x "$sim" ] || { say "$sim is missing (make sim-build)"; exit 1; }
"$py" -c 'import django, litefs_guard' 2>/dev/null ||
  { say "$py cannot import django and litefs_guard (make venv builds build/venv)"; exit 1; }
. "$root/scripts/lib/litefs-sim.sh"
sim_need_fuse cluster-demo
# Only what this script sets below reaches the guard.
for var in $(compgen -e); do [[ $var == LITEFS_GUARD_* ]] && unset "$var"; done

tmp=$(mktemp -d /tmp/litefs-cluster-demo.XXXXXX)
pids=()
teardown() {
  local rc=$?
  set +e
  trap '' INT TERM  # a second Ctrl-C must not cut the cleanup short
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null && wait "${pids[@]}" 2>/dev/null
  if [ "$rc" != 0 ] && [ "$rc" != 130 ]; then
    for log in "$tmp"/*.log; do [ -f "$log" ] && { say "--- ${log##*/}:"; tail -n 30 "$log" >&2; }; done
  fi
  sim_stop
  rm -rf "$tmp"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

sim_start "$tmp" "$sim" || { say "litefs-sim did not start"; exit 1; }

# node_env NODE: the environment of a process on NODE's machine (the guard's mount, the app's
# database in it). manage NODE ARGS...: manage.py there.
node_env() {
  echo LITEFS_GUARD_DIR="$tmp/$1" GUESTBOOK_DB="$tmp/$1/guestbook.db" HOME="$tmp" PYTHONDONTWRITEBYTECODE=1
}
manage() {
  local node=$1; shift
  (cd "$app" && env $(node_env "$node") "$py" manage.py "$@")
}

# serve NAME NODE [VAR=VALUE ...]: the guestbook on NODE's mount, on a free local port,
# known afterwards as url[NAME]. The server gets SIGTERM if this script dies.
declare -A url
pdeath=()
setpriv --help 2>/dev/null | grep -q pdeathsig && pdeath=(setpriv --pdeathsig TERM --)
serve() {
  local name=$1 node=$2; shift 2
  local port
  port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  (cd "$app" && exec env $(node_env "$node") DJANGO_ALLOWED_HOSTS=127.0.0.1 GUESTBOOK_RYW_WAIT_MS=1000 "$@" \
    "${pdeath[@]}" "$py" manage.py runserver --noreload --skip-checks "127.0.0.1:$port" >"$tmp/$name.log" 2>&1) &
  pids+=($!)
  url[$name]=http://127.0.0.1:$port
}
wait_ready() { # wait_ready NAME...: until each server answers
  local name _
  for name in "$@"; do
    for _ in $(seq 200); do
      curl -s -o /dev/null "${url[$name]}/node/" && continue 2
      sleep 0.05
    done
    say "the $name server did not answer in 10 s"
    return 1
  done
}

# http NAME METHOD PATH [FIELD=VALUE ...]: one request from the user's browser, printed
# as the user sees it. One cookie jar for the whole walk: one user, whichever server
# answers (as behind a load balancer). Sets $replay (fly-replay's instance) and $body.
http() {
  local name=$1 method=$2 path=$3; shift 3
  local fields=() field
  for field in "$@"; do fields+=(--data-urlencode "$field"); done
  echo "[$name] $method $path${*:+  $(printf '%s, ' "$@" | sed 's/, $//')}"
  local meta
  meta=$(curl -sS -X "$method" "${fields[@]}" -b "$tmp/cookies" -c "$tmp/cookies" \
    -o "$tmp/body" -D "$tmp/headers" -w '%{http_code} %{time_total}' "${url[$name]}$path")
  local status=${meta%% *} ms reason shown
  ms=$(awk -v t="${meta#* }" 'BEGIN { printf "%d", t * 1000 }')
  reason=$(head -n 1 "$tmp/headers" | tr -d '\r' | cut -d' ' -f3-)
  shown=$(tr -d '\r' <"$tmp/headers" | { grep -iE '^(fly-replay|location|retry-after|set-cookie):' || true; } |
    sed -E 's/^([^:]+): */\1: /; s/;.*//' | paste -sd'|' | sed 's/|/  /g')
  echo "  <- $status $reason ($ms ms)${shown:+  $shown}"
  replay=$(tr -d '\r' <"$tmp/headers" | sed -n 's/^fly-replay: instance=//Ip')
  body=$(cat "$tmp/body")
  if [ -n "$body" ]; then sed 's/^/  <- /' <<<"$body"; else echo "  <- (empty body)"; fi
}
created_id() { sed -nE 's/^\{"id": ([0-9]+),.*/\1/p' <<<"$body"; }
halt_log() { # n2's halt lock events for the guestbook in litefs-sim's log, its writes counted
  grep -E 'node=n2 op=(halt|write file=guestbook\.db-wal result=accepted .*via=halt)' "$tmp/sim.log" |
    cut -d' ' -f2- | awk '
      function writes() { if (n) print "   node=n2 op=write file=guestbook.db-wal result=accepted via=halt: " n " writes"; n = 0 }
      /op=write/ { n++; next }
      { writes(); print "   " $0 }
      END { writes() }'
}

echo "== cluster: litefs-sim, nodes n1=$tmp/n1 n2=$tmp/n2 (real FUSE)"
"$tmp/ctl" status
echo "-- migrations, on the primary (LITEFS_GUARD_DIR=$tmp/n1): python manage.py migrate"
manage n1 migrate --no-input | sed 's/^/   /'
serve n1 n1
serve n2 n2
serve n2-fwd n2 GUESTBOOK_FORWARD_WRITES=1
wait_ready n1 n2 n2-fwd
echo "-- three web servers (examples/django, python manage.py runserver):"
echo "   n1      ${url[n1]}      on n1's mount"
echo "   n2      ${url[n2]}      on n2's mount"
echo "   n2-fwd  ${url[n2-fwd]}      on n2's mount, GUESTBOOK_FORWARD_WRITES=1 (forward_writes)"
http n1 GET /node/
http n2 GET /node/

echo
echo "== 1. a write on the primary (n1); the replica (n2) serves the row"
http n1 POST /entries/ name=ann "text=hello from n1"
id=$(created_id)
http n2 GET "/entries/$id/"

echo
echo "== 2. a write on the replica: refused, answered with the primary's name"
http n2 POST /entries/ name=bob "text=hello from n2"
echo "-- what Fly.io's proxy does with that answer: the same request, replayed on instance $replay"
http "$replay" POST /entries/ name=bob "text=hello from n2"

echo
echo "== 3. the same kind of write on n2 with forward_writes on: through LiteFS's halt lock"
http n2-fwd GET /node/
http n2-fwd POST /entries/ name=cy "text=forwarded from n2"
id=$(created_id)
echo "-- litefs-sim's log: n2 took the halt lock, wrote, let it go"
halt_log
http n1 GET "/entries/$id/"

echo
echo "== 4. read your own writes: the cookie (litefs_txid) carries the position of the last write"
http n1 POST /entries/ name=ann "text=read me on n2"
id=$(created_id)
http n2 GET "/entries/$id/"
echo "-- hold n2's replication back (litefs-sim freezes what n2 reports: guestbook.db-pos, .lag)"
"$tmp/ctl" hold n2
http n1 POST /entries/ name=ann "text=n2 is held"
id=$(created_id)
echo "-- n2 waits up to 1000 ms (GUESTBOOK_RYW_WAIT_MS) for the cookie's position, then says so:"
http n2 GET "/entries/$id/"
echo "-- again; n2 is released 0.3 s into the wait:"
(sleep 0.3; "$tmp/ctl" release n2 >"$tmp/release.out") &
releaser=$!
http n2 GET "/entries/$id/"
wait "$releaser"
cat "$tmp/release.out"

echo
echo "== 5. failover: the lease moves to n2, the roles swap"
"$tmp/ctl" lease n2
http n2 GET /node/
http n2 POST /entries/ name=dee "text=written on n2, the new primary"
http n1 GET /node/
http n1 POST /entries/ name=eve "text=written on n1, now a replica"
echo "-- replayed on instance $replay:"
http "$replay" POST /entries/ name=eve "text=written on n1, now a replica"
http n1 GET /entries/
echo
cat <<'TXT'
== The same Django app on both nodes: the replica served what the primary wrote; a write sent to
   the replica became a 409 naming the primary (fly-replay), which Fly.io's proxy replays there;
   with forward_writes on, the replica wrote through LiteFS's halt lock instead. The cookie set
   after each write made the next request wait for that write on whichever node served it (503
   while the node was held back, the row once it caught up). After the lease moved, n2 took the
   writes and n1 named n2. Servers stopped, mounts gone, temp dir removed on exit.
TXT
