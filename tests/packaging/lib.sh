# Shared by test-wheel.sh and test-npm.sh: a temporary LiteFS-like mount
# (a plain directory; LITEFS_GUARD_DIR names it, LITEFS_GUARD_REQUIRE_FUSE=0)
# holding app.db with table t, and a README snippet with the database path
# replaced by the mount's.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
passed=0
fail() { echo "$suite: FAILED: $*" >&2; exit 1; }
ok() { passed=$((passed + 1)); }

# new_mount DIR: DIR/litefs/app.db with `CREATE TABLE t(x)`, this node the primary.
new_mount() {
  mkdir -p "$1/litefs"
  sqlite3 "$1/litefs/app.db" 'CREATE TABLE t(x)'
}

# snippet NAME DB: README's snippet NAME, its one `/litefs/app.db` replaced by DB.
snippet() {
  local code n
  code=$(bash "$root/scripts/readme-snippet.sh" "$1")
  n=$(grep -o '/litefs/app.db' <<<"$code" | wc -l)
  [ "$n" = 1 ] || fail "README snippet '$1' names /litefs/app.db $n times, expected once"
  printf '%s\n' "${code//\/litefs\/app.db/"$2"}"
}

rows() { sqlite3 "$1" 'SELECT count(*) FROM t'; }
