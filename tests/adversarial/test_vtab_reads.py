"""Replicas stay readable: every read that stock SQLite completes with
PRAGMA query_only=1 completes on a guarded replica with the same rows —
virtual tables (FTS3/4/5, R*Tree, dbstat), table-valued functions
(json_each/json_tree, pragma_*), sqlite_schema, the CLI's .schema/.tables —
as the first statement of a connection and after other reads; idempotent
CREATE … IF NOT EXISTS succeeds, a creating one is refused (23/8); no byte
of the replica changes.

Oracle: the same commands, same runner, no guard, PRAGMA query_only=1, on a
copy of the same database."""

import subprocess

import pytest
from conftest import (
    SO,
    SQLITE3_CLI,
    assert_ok,
    assert_refused,
    assert_unchanged,
    clean_env,
    guarded,
    require,
    stock,
)

# (id, SQL, modules it needs)
READS = [
    ("table", "SELECT id, v, n FROM t ORDER BY id", ()),
    ("view", "SELECT * FROM tv ORDER BY id", ()),
    ("fts3_scan", "SELECT rowid, body FROM ft3 ORDER BY rowid", ("fts3",)),
    ("fts3_match", "SELECT rowid, body FROM ft3 WHERE ft3 MATCH 'alpha' ORDER BY rowid", ("fts3",)),
    ("fts3_snippet", "SELECT snippet(ft3) FROM ft3 WHERE ft3 MATCH 'golf'", ("fts3",)),
    ("fts4_scan", "SELECT rowid, body FROM ft4 ORDER BY rowid", ("fts4",)),
    ("fts4_match", "SELECT rowid FROM ft4 WHERE ft4 MATCH 'alpha OR india' ORDER BY rowid", ("fts4",)),
    ("fts4_matchinfo", "SELECT length(matchinfo(ft4)) FROM ft4 WHERE ft4 MATCH 'alpha' ORDER BY rowid", ("fts4",)),
    ("fts5_scan", "SELECT rowid, body FROM ft5 ORDER BY rowid", ("fts5",)),
    ("fts5_match", "SELECT rowid, body FROM ft5 WHERE ft5 MATCH 'alpha' ORDER BY rowid", ("fts5",)),
    ("fts5_rank", "SELECT rowid FROM ft5('alpha OR delta') ORDER BY rank, rowid", ("fts5",)),
    ("fts5_highlight", "SELECT highlight(ft5, 0, '[', ']') FROM ft5 WHERE ft5 MATCH 'echo'", ("fts5",)),
    ("rtree_range", "SELECT id FROM rt WHERE x0 >= 0 AND x1 <= 5 ORDER BY id", ("rtree",)),
    ("rtree_overlap", "SELECT id FROM rt WHERE x1 >= 2 AND x0 <= 8 AND y1 >= 2 ORDER BY id", ("rtree",)),
    ("rtree_scan", "SELECT * FROM rt ORDER BY id", ("rtree",)),
    ("json_each", "SELECT key, value, type FROM json_each('[1, \"two\", {\"a\": 3}]')", ("json",)),
    ("json_tree", "SELECT fullkey, type FROM json_tree('{\"a\": [1, {\"b\": 2}]}') ORDER BY id", ("json",)),
    ("json_each_table", "SELECT t.id, j.value FROM t, json_each('[1,2]') AS j WHERE t.id < 3 ORDER BY 1, 2", ("json",)),
    ("pragma_table_info", "SELECT cid, name, type, pk FROM pragma_table_info('t')", ()),
    ("pragma_table_xinfo", "SELECT name, hidden FROM pragma_table_xinfo('t')", ()),
    ("pragma_index_list", "SELECT name, \"unique\" FROM pragma_index_list('t') ORDER BY name", ()),
    ("pragma_index_info", "SELECT seqno, name FROM pragma_index_info('t_n')", ()),
    ("pragma_foreign_key_list", "SELECT count(*) FROM pragma_foreign_key_list('t')", ()),
    ("pragma_table_list", "SELECT schema, name, type FROM pragma_table_list ORDER BY schema, name", ()),
    ("pragma_database_list", "SELECT seq, name FROM pragma_database_list", ()),
    ("pragma_collation_list", "SELECT count(*) > 0 FROM pragma_collation_list", ()),
    ("pragma_user_version", "SELECT * FROM pragma_user_version", ()),
    ("pragma_integrity_check", "SELECT * FROM pragma_integrity_check", ()),
    ("pragma_quick_check", "PRAGMA quick_check", ()),
    ("pragma_stmt_user_version", "PRAGMA user_version", ()),
    ("dbstat", "SELECT name, pageno, pagetype, ncell FROM dbstat ORDER BY name, pageno", ("dbstat",)),
    ("dbstat_agg", "SELECT name, count(*) FROM dbstat GROUP BY name ORDER BY name", ("dbstat",)),
    ("sqlite_schema", "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name", ()),
    ("sqlite_master", "SELECT type, name, tbl_name, rootpage > 0, sql FROM sqlite_master ORDER BY name", ()),
    ("sqlite_temp_master", "SELECT count(*) FROM sqlite_temp_master", ()),
]

READ_IDS = [r[0] for r in READS]
WARMUP = ["SELECT count(*) FROM t", "SELECT count(*) FROM sqlite_master", "SELECT max(n) FROM t"]


def _oracle(runner, make_node, cmds):
    """Stock + query_only on a fresh copy of the fixture."""
    copy = make_node(mode="wal", sub="oracle")
    out = stock(runner, f".open {copy.db}", "PRAGMA query_only=1", *cmds)
    assert out[1] == "ok ", f"query_only: {out[1]}"
    return out[2:]


def _same(lines):
    """Rows as compared: a refusal quoted inside a row (SQLite 3.45+'s
    integrity_check runs each FTS table's own `integrity-check` write) reads
    `not authorized` under the guard where query_only says `attempt to write
    a readonly database`; both are the refusal of a write, so they compare equal."""
    return [l.replace("not authorized", "attempt to write a readonly database") for l in lines]


def _check_read(runner, node, make_node, pre, sql):
    node.make_replica()
    before = node.snapshot()
    got = guarded(runner, node, f".open {node.db}", *pre, sql)
    after = node.snapshot()
    want = _oracle(runner, make_node, [*pre, sql])
    if not want[-1].startswith("ok"):
        pytest.skip(f"stock sqlrun-{runner.name} with query_only=1 fails too: {want[-1]}")
    assert _same(got[1:]) == _same(want), f"{sql!r}: guarded replica {got[-1]!r:.200} != stock+query_only {want[-1]!r:.200}"
    assert_unchanged(before, after, sql)


@pytest.mark.parametrize("rid", READ_IDS)
def test_read_first_statement(runner, node, make_node, rid):
    """The read is the first statement of a fresh connection."""
    _, sql, mods = READS[READ_IDS.index(rid)]
    node.need(*mods)
    _check_read(runner, node, make_node, [], sql)


@pytest.mark.parametrize("rid", READ_IDS)
def test_read_after_other_reads(runner, node, make_node, rid):
    """The read follows ordinary reads on the same connection."""
    _, sql, mods = READS[READ_IDS.index(rid)]
    node.need(*mods)
    _check_read(runner, node, make_node, WARMUP, sql)


def test_all_reads_one_connection(runner, node, make_node):
    """Every read the runner supports, in a row on one connection."""
    sqls = [sql for _, sql, mods in READS if all(m in node.modules for m in mods)]
    node.make_replica()
    before = node.snapshot()
    got = guarded(runner, node, f".open {node.db}", *sqls)
    after = node.snapshot()
    want = _oracle(runner, make_node, sqls)
    bad = [
        f"{sql!r}: guard {g!r} vs stock {w!r}" for sql, g, w in zip(sqls, got[1:], want) if w.startswith("ok") and _same([g]) != _same([w])
    ]
    assert not bad, "reads that differ from stock+query_only:\n" + "\n".join(bad)
    assert_unchanged(before, after)


def test_read_rollback_mode(runner, make_node):
    """Rollback-journal database (LITEFS_GUARD_WAL=0): the same vtab reads."""
    node = make_node("delete")
    sqls = [sql for _, sql, mods in READS if mods and all(m in node.modules for m in mods)]
    node.make_replica()
    before = node.snapshot()
    got = guarded(runner, node, f".open {node.db}", *sqls)
    after = node.snapshot()
    copy = make_node("delete", sub="oracle")
    want = stock(runner, f".open {copy.db}", "PRAGMA query_only=1", *sqls)[2:]
    bad = [
        f"{sql!r}: guard {g!r} vs stock {w!r}" for sql, g, w in zip(sqls, got[1:], want) if w.startswith("ok") and _same([g]) != _same([w])
    ]
    assert not bad, "reads that differ from stock+query_only:\n" + "\n".join(bad)
    assert_unchanged(before, after)


# CREATE … IF NOT EXISTS: objects that exist (no-op, allowed) and new ones.
IDEMPOTENT = [
    ("table", "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER DEFAULT 0)", ()),
    ("table_other_cols", "CREATE TABLE IF NOT EXISTS t(x)", ()),
    ("index", "CREATE INDEX IF NOT EXISTS t_n ON t(n)", ()),
    ("view", "CREATE VIEW IF NOT EXISTS tv AS SELECT 1", ()),
    ("trigger", "CREATE TRIGGER IF NOT EXISTS t_ins AFTER INSERT ON t BEGIN SELECT 1; END", ()),
    ("virtual_fts5", "CREATE VIRTUAL TABLE IF NOT EXISTS ft5 USING fts5(body)", ("fts5",)),
    ("virtual_rtree", "CREATE VIRTUAL TABLE IF NOT EXISTS rt USING rtree(id, x0, x1, y0, y1)", ("rtree",)),
    (
        "startup_script",
        "CREATE TABLE IF NOT EXISTS t(x); CREATE INDEX IF NOT EXISTS t_n ON t(n);"
        " CREATE VIEW IF NOT EXISTS tv AS SELECT 1; CREATE TABLE IF NOT EXISTS log(msg TEXT)",
        (),
    ),
]
CREATING = [
    ("table", "CREATE TABLE IF NOT EXISTS newt(a)"),
    ("index", "CREATE INDEX IF NOT EXISTS t_v ON t(v)"),
    ("view", "CREATE VIEW IF NOT EXISTS newv AS SELECT 1"),
    ("trigger", "CREATE TRIGGER IF NOT EXISTS newtr AFTER DELETE ON t BEGIN SELECT 1; END"),
    ("virtual", "CREATE VIRTUAL TABLE IF NOT EXISTS newft USING fts5(body)"),
]


@pytest.mark.parametrize("position", ["first", "after_read"])
@pytest.mark.parametrize("cid", [c[0] for c in IDEMPOTENT])
def test_if_not_exists_existing_succeeds(runner, node, make_node, cid, position):
    _, sql, mods = next(c for c in IDEMPOTENT if c[0] == cid)
    node.need(*mods)
    pre = [] if position == "first" else WARMUP[:1]
    node.make_replica()
    before = node.snapshot()
    got = guarded(runner, node, f".open {node.db}", *pre, sql, "SELECT count(*) FROM t")
    after = node.snapshot()
    want = _oracle(runner, make_node, [*pre, sql])
    assert want[-1].startswith("ok"), f"stock+query_only refused {sql!r}: {want[-1]}"
    assert_ok(got[-2], f"{sql!r} on a replica (stock+query_only: {want[-1]})")
    assert_ok(got[-1], "a read after it")
    assert_unchanged(before, after, sql)


@pytest.mark.parametrize("position", ["first", "after_read"])
@pytest.mark.parametrize("cid", [c[0] for c in CREATING])
def test_if_not_exists_creating_refused(runner, node, cid, position):
    _, sql = next(c for c in CREATING if c[0] == cid)
    if cid == "virtual":
        node.need("fts5")
    pre = [] if position == "first" else WARMUP[:1]
    node.make_replica()
    before = node.snapshot()
    got = guarded(runner, node, f".open {node.db}", *pre, sql)
    assert_refused(got[-1], sql)
    assert_unchanged(before, node.snapshot(), sql)


# The sqlite3 CLI (system SQLite 3.40): .schema and .tables on a replica.
CLI_READS = [".schema", ".tables", ".indexes", ".schema t", ".fullschema", ".dbinfo"]


@pytest.fixture
def cli_node(make_node_py):
    require(__import__("shutil").which("sqlite3") is not None, "sqlite3 CLI (apt-get install sqlite3)")
    return make_node_py("wal")


def _cli(args, env, cwd=None):
    return subprocess.run([SQLITE3_CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=30)


@pytest.mark.parametrize("cmd", CLI_READS)
@pytest.mark.parametrize("how", ["load_then_open", "first_after_load"])
def test_cli_dot_commands(cli_node, cmd, how, tmp_path):
    """`sqlite3 -cmd '.load SO' -cmd '.open DB' :memory: CMD` equals stock +
    query_only (the load is done on :memory:, as the README says)."""
    n = cli_node
    import shutil

    copy = tmp_path / "copy"
    copy.mkdir()
    for f in ("app.db", "aux.db"):
        shutil.copyfile(n.mount / f, copy / f)
    want = _cli([str(copy / "app.db"), "-cmd", "PRAGMA query_only=1", cmd], clean_env())
    if want.returncode != 0:
        pytest.skip(f"stock CLI with query_only=1 fails too: {want.stderr.strip()}")
    n.make_replica()
    before = n.snapshot()
    pre = [] if how == "first_after_load" else ["-cmd", "SELECT count(*) FROM t"]
    got = _cli(["-cmd", f".load {SO}", "-cmd", f".open {n.db}", *pre, ":memory:", cmd], n.env())
    after = n.snapshot()
    assert got.returncode == 0 and not got.stderr.strip(), f"guarded CLI {cmd}: rc {got.returncode}: {got.stderr}"
    got_out = got.stdout
    if pre:
        got_out = got_out.split("\n", 1)[1] if "\n" in got_out else ""
    normal = lambda s: s.replace(str(copy), "<mount>").replace(str(n.mount), "<mount>")  # noqa: E731
    assert normal(got_out) == normal(want.stdout), f"{cmd}: guarded output differs from stock+query_only"
    assert_unchanged(before, after, cmd)
