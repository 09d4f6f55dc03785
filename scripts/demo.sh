#!/usr/bin/env bash
# `make demo`: the guard in the sqlite3 CLI on a temporary "mount".
# A plain directory stands in for LiteFS's FUSE mount: LiteFS writes
# `.primary` there on replicas, and that is what the guard reads.
set -euo pipefail
so=$(realpath "${1:-target/release/liblitefs_guard.so}")
command -v sqlite3 >/dev/null || { echo "demo: the sqlite3 CLI is missing (apt-get install sqlite3)" >&2; exit 1; }
mnt=$(mktemp -d /tmp/litefs-demo.XXXXXX)
trap 'rm -rf "$mnt"' EXIT
ln -s "$so" "$mnt/litefs_guard.so"
cd "$mnt"
echo "== mount: $mnt (no .primary file: this node is the primary)"
echo
# sqlite3 exits non-zero after the refused statements: that is the point.
stdbuf -o0 -e0 sqlite3 <<'SQL' 2>&1 || true
.echo on
.load ./litefs_guard
.open app.db
.mode list
SELECT litefs_is_primary() AS is_primary, litefs_primary() AS primary_host;
CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO notes(body) VALUES ('written on the primary');
SELECT count(*) AS notes FROM notes;
PRAGMA journal_mode;
PRAGMA journal_mode = DELETE;
.shell echo node-b.internal > .primary
SELECT litefs_is_primary() AS is_primary, litefs_primary() AS primary_host;
INSERT INTO notes(body) VALUES ('written on a replica?');
INSERT INTO notes(body) VALUES ('written on a replica?');
SELECT json_extract(litefs_config(), '$.reason') AS why_refused;
SELECT count(*) AS notes FROM notes;
.shell rm .primary
INSERT INTO notes(body) VALUES ('written after failing back');
SELECT count(*) AS notes FROM notes;
SQL
echo
cat <<'TXT'
== On the replica the write was refused twice: first by the execution-time gate
   (SQLITE_READONLY: the node had been verified as primary moments before, so the
   statement got as far as taking the write lock), then at prepare time by the
   authorizer (SQLITE_AUTH, "not authorized"). Nothing was written; reads kept
   working; leaving WAL was refused on the primary; after failing back, writes work again.
TXT
