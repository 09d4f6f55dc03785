#!/usr/bin/env bash
# `make cluster-demo-cli`: the guard in the sqlite3 CLI on a two-node LiteFS
# stand-in. litefs-sim serves two real FUSE mounts, n1 and n2, over one
# backing directory with one lease (see litefs-sim/README.md); each sqlite3
# run below is one "machine": LITEFS_GUARD_DIR is that node's mount and the
# FUSE check stays on. Needs root and /dev/fuse; exits 77 without them.
set -euo pipefail
so=$(realpath "${1:-target/release/liblitefs_guard.so}")
sim=$(realpath "${2:-target/release/litefs-sim}")
command -v sqlite3 >/dev/null || { echo "cluster-demo-cli: the sqlite3 CLI is missing (apt-get install sqlite3)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "cluster-demo-cli: python3 is missing (it talks to the control socket)" >&2; exit 1; }
[ -x "$sim" ] || { echo "cluster-demo-cli: $sim is missing (make sim-build)" >&2; exit 1; }
. "$(dirname "$0")/lib/litefs-sim.sh"
sim_need_fuse cluster-demo-cli

tmp=$(mktemp -d /tmp/litefs-cluster.XXXXXX)
teardown() {
  set +e
  trap '' INT TERM  # a second Ctrl-C must not cut the cleanup short
  sim_stop
  rm -rf "$tmp"
}
trap teardown EXIT
trap 'exit 130' INT TERM

ln -s "$so" "$tmp/litefs_guard.so"
sim_start "$tmp" "$sim" || { echo "cluster-demo-cli: litefs-sim did not start" >&2; exit 1; }

# node NAME: the sqlite3 CLI on that node's mount, SQL on stdin, the guard loaded.
# sqlite3 exits non-zero after the refused statements: that is the point.
node() {
  echo "-- sqlite3 on $1 (LITEFS_GUARD_DIR=$tmp/$1): .load ../litefs_guard, .open app.db"
  (cd "$tmp/$1" && LITEFS_GUARD_DIR="$tmp/$1" stdbuf -o0 -e0 sqlite3 2>&1 || true)
}
preamble='.load ../litefs_guard
.open app.db
.mode list
.echo on'
position() { grep -Eo '^[0-9a-f]{16}/[0-9a-f]{16}$' | tail -n 1; }

echo "== cluster: litefs-sim, nodes n1=$tmp/n1 n2=$tmp/n2 (real FUSE), one sqlite3 run per step"
"$tmp/ctl" status
echo
echo "== 1. n1 holds the lease (the primary): create, write, take the bookmark"
node n1 <<SQL
$preamble
SELECT litefs_is_primary() AS is_primary;
CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO notes(body) VALUES ('written on n1');
SELECT litefs_position() AS position;
SQL
echo
echo "== 2. n2 (a replica): the row is there; a plain write is refused, naming the primary"
node n2 <<SQL
$preamble
SELECT litefs_is_primary() AS is_primary, litefs_primary() AS primary_host;
SELECT body FROM notes;
INSERT INTO notes(body) VALUES ('written on n2?');
SELECT json_extract(litefs_config(), '\$.reason') AS why_refused;
SQL
echo
echo "== 3. n2 with PRAGMA litefs_forward = ON: the write goes through LiteFS's halt lock"
exec 3>&1
{
  printf '%s\n' "$preamble" "PRAGMA litefs_forward = ON;" "BEGIN;" "INSERT INTO notes(body) VALUES ('forwarded from n2');"
  # Mid-transaction: once the INSERT has run, n2 holds app.db's halt lock.
  for _ in $(seq 100); do
    halts=$("$tmp/ctl" halts)
    [[ $halts == *count=1* ]] && break
    sleep 0.05
  done
  echo "$halts" >&3
  printf '%s\n' "COMMIT;" "SELECT count(*) AS notes FROM notes;"
} | node n2
"$tmp/ctl" halts
echo "-- litefs-sim's log:"
grep -E 'node=n2 op=(halt|write file=app.db-wal result=accepted)' "$tmp/sim.log" | cut -d' ' -f2- | sed 's/^/   /'
node n1 <<SQL
$preamble
SELECT id, body FROM notes;
SQL
echo
echo "== 4. read your own writes: n1 writes and hands its position to n2, which waits for it"
out=$(node n1 <<SQL
$preamble
INSERT INTO notes(body) VALUES ('read it on n2');
SELECT litefs_position() AS position;
SQL
)
echo "$out"
pos=$(position <<<"$out")
node n2 <<SQL
$preamble
SELECT litefs_wait_txid('$pos', 2000) AS caught_up;
SELECT body FROM notes ORDER BY id DESC LIMIT 1;
SQL
echo "-- hold n2's replication back (litefs-sim freezes what n2 reports: app.db-pos, .lag)"
"$tmp/ctl" hold n2
out=$(node n1 <<SQL
$preamble
INSERT INTO notes(body) VALUES ('n2 is held');
SELECT litefs_position() AS position;
SQL
)
echo "$out"
pos=$(position <<<"$out")
node n2 <<SQL
$preamble
SELECT litefs_wait_txid('$pos', 300) AS caught_up;
PRAGMA litefs_wait_ms = 200;
PRAGMA litefs_min_txid = '$pos';
SELECT count(*) AS notes FROM notes;
SELECT json_extract(litefs_config(), '\$.last_refusal') AS last_refusal;
.shell ../ctl release n2
SELECT count(*) AS notes FROM notes;
SQL
echo
echo "== 5. failover: the lease moves to n2"
"$tmp/ctl" lease n2
node n2 <<SQL
$preamble
SELECT litefs_is_primary() AS is_primary;
INSERT INTO notes(body) VALUES ('written on n2, the new primary');
SELECT count(*) AS notes FROM notes;
SQL
node n1 <<SQL
$preamble
SELECT litefs_is_primary() AS is_primary, litefs_primary() AS primary_host;
INSERT INTO notes(body) VALUES ('written on n1?');
SELECT count(*) AS notes FROM notes;
SQL
echo
cat <<'TXT'
== Two nodes, one database: the replica read what the primary wrote and refused a plain write
   at prepare time (SQLITE_AUTH, "not authorized"), naming the primary; with PRAGMA
   litefs_forward = ON it wrote through LiteFS's halt lock instead. A position taken on the
   primary was waited for on the replica (litefs_wait_txid); while the replica was held back the
   wait gave up and a read under PRAGMA litefs_min_txid was refused (SQLITE_LOCKED) until it
   caught up. After the lease moved, the roles swapped. Everything is unmounted on exit.
TXT
