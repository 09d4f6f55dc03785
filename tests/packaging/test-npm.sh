#!/usr/bin/env bash
# The npm tarball (make npm): its contents, then `npm install` of it into an
# empty directory, better-sqlite3 copied in from tests/node (compiled there
# once, from the npm registry), and README's Node snippet run on a primary
# (the row is written) and on a replica (an error naming the primary, nothing
# written). node:sqlite too where this Node has DatabaseSync with allowExtension.
#   test-npm.sh DIST/litefs-guard-<version>.tgz tests/node/node_modules
set -euo pipefail
suite=test-npm
. "$(dirname "$0")/lib.sh"
tgz=$(cd "$(dirname "${1:?usage: test-npm.sh TGZ NODE_MODULES}")" && pwd)/$(basename "$1")
deps=$(cd "${2:?usage: test-npm.sh TGZ NODE_MODULES}" && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
[ "$(basename "$tgz")" = "litefs-guard-$version.tgz" ] || fail "tarball name $(basename "$tgz")"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/litefs-guard-test-npm.XXXXXX")
trap '[ -n "${KEEP_TMP:-}" ] && cp -R "$tmp" "$KEEP_TMP"; rm -rf "$tmp"' EXIT

# 1. What is in the tarball.
files=$(tar -tzf "$tgz" | sort | tr '\n' ' ')
[ "$files" = "package/LICENSE package/README.md package/index.d.ts package/index.js package/lib/linux-x64/liblitefs_guard.so package/package.json " ] ||
  fail "tarball holds $files"
tar -xzf "$tgz" -C "$tmp" package/package.json package/lib/linux-x64/liblitefs_guard.so
[ "$(node -p "require('$tmp/package/package.json').version")" = "$version" ] || fail "package.json version"
readelf -S "$tmp/package/lib/linux-x64/liblitefs_guard.so" | grep -q '\.symtab' && fail "the .so is not stripped"
ok

# 2. Installed into an empty project (no registry access needed: no dependencies).
mkdir "$tmp/app"
(cd "$tmp/app" && npm install --no-audit --no-fund --silent "$tgz") || fail "npm install $tgz"
for d in better-sqlite3 bindings file-uri-to-path; do cp -R "$deps/$d" "$tmp/app/node_modules/"; done
p=$(cd "$tmp/app" && node -p "require('litefs-guard').getLoadablePath()")
[ "$p" = "$tmp/app/node_modules/litefs-guard/lib/linux-x64/liblitefs_guard.so" ] || fail "getLoadablePath() = $p"
ok

# 3. README's snippet on a primary and on a replica.
run() { # run DIR: the snippet against DIR's mount; stdout+stderr in DIR/out
  snippet node "$1/litefs/app.db" >"$tmp/app/snippet-$(basename "$1").js"
  (cd "$tmp/app" && env LITEFS_GUARD_DIR="$1/litefs" LITEFS_GUARD_REQUIRE_FUSE=0 \
    node "snippet-$(basename "$1").js") >"$1/out" 2>&1
}
new_mount "$tmp/primary"
run "$tmp/primary" || fail "on the primary: $(cat "$tmp/primary/out")"
[ "$(rows "$tmp/primary/litefs/app.db")" = 1 ] || fail "on the primary the row was not written"
ok
new_mount "$tmp/replica"
echo node-b >"$tmp/replica/litefs/.primary"
if run "$tmp/replica"; then fail "on the replica the snippet succeeded: $(cat "$tmp/replica/out")"; fi
grep -q 'Error: not the primary: send the write to node-b' "$tmp/replica/out" || fail "on the replica: $(cat "$tmp/replica/out")"
[ "$(rows "$tmp/replica/litefs/app.db")" = 0 ] || fail "on the replica a row was written"
ok

# 4. node:sqlite, where this Node has it (22.13+/23.5+): load() through DatabaseSync.
# NODE_SQLITE names another node binary for this part (better-sqlite3 above is
# compiled for the node on PATH).
nsq=${NODE_SQLITE:-node}
has_sqlite=$("$nsq" -e "try { const { DatabaseSync } = require('node:sqlite'); new DatabaseSync(':memory:', { allowExtension: true }).loadExtension; console.log(1) } catch { console.log(0) }" 2>/dev/null)
if [ "$has_sqlite" = 1 ]; then
  new_mount "$tmp/nodesqlite"
  echo node-c >"$tmp/nodesqlite/litefs/.primary"
  out=$(cd "$tmp/app" && LITEFS_GUARD_DIR="$tmp/nodesqlite/litefs" LITEFS_GUARD_REQUIRE_FUSE=0 "$nsq" -e "
    const { DatabaseSync } = require('node:sqlite');
    const { load } = require('litefs-guard');
    try { load(new DatabaseSync(':memory:')); console.log('loaded without allowExtension'); } catch (e) { if (!/allowExtension/.test(e.message)) throw e; }
    const boot = new DatabaseSync(':memory:', { allowExtension: true });
    load(boot);
    boot.close();
    const db = new DatabaseSync('$tmp/nodesqlite/litefs/app.db');
    try { db.prepare('INSERT INTO t VALUES (1)').run(); console.log('written'); }
    catch (e) { console.log(e.errcode & 0xff, db.prepare('SELECT litefs_primary() AS p').get().p); }
  " 2>"$tmp/node-sqlite.err") || fail "node:sqlite: $out $(cat "$tmp/node-sqlite.err")"
  [ "$out" = "23 node-c" ] || fail "node:sqlite: $out $(cat "$tmp/node-sqlite.err")"
  ok
else
  echo "test-npm: node:sqlite part not run: node $("$nsq" -v) has no DatabaseSync with allowExtension (22.13+/23.5+)"
fi
echo "npm: $passed passed, 0 failed"
