"""One error contract: every kind of write on a replica answers SQLITE_AUTH
(23) or SQLITE_READONLY (8) in the low byte — nothing else (3.40 answers
17 SQLITE_SCHEMA to a first-statement CREATE TABLE today) — as the first
statement of a fresh connection, after a read, and inside BEGIN; no byte
changes. A write kind is only tested where stock SQLite (same runner, no
guard, primary) completes it."""

import pytest
from conftest import assert_refused, assert_unchanged, guarded, stock

# (id, SQL, modules it needs)
WRITES = [
    ("create_table", "CREATE TABLE x(a)", ()),
    ("create_table_as", "CREATE TABLE x AS SELECT * FROM t", ()),
    ("create_index", "CREATE INDEX t_v ON t(v)", ()),
    ("create_unique_index", "CREATE UNIQUE INDEX t_id2 ON t(id, v)", ()),
    ("create_view", "CREATE VIEW v2 AS SELECT 1", ()),
    ("create_trigger", "CREATE TRIGGER tr2 AFTER DELETE ON t BEGIN SELECT 1; END", ()),
    ("create_virtual_fts5", "CREATE VIRTUAL TABLE nf USING fts5(a)", ("fts5",)),
    ("create_virtual_rtree", "CREATE VIRTUAL TABLE nr USING rtree(id, a, b)", ("rtree",)),
    ("insert", "INSERT INTO t(v, n) VALUES ('new', 1)", ()),
    ("insert_select", "INSERT INTO t(v, n) SELECT v, n FROM t", ()),
    ("insert_cte", "WITH c(x) AS (SELECT 'cte') INSERT INTO t(v) SELECT x FROM c", ()),
    ("insert_returning", "INSERT INTO t(v) VALUES ('r') RETURNING id", ()),
    ("upsert", "INSERT INTO t(id, v) VALUES (1, 'u') ON CONFLICT(id) DO UPDATE SET v = 'upserted'", ()),
    ("replace", "REPLACE INTO t(id, v) VALUES (1, 'replaced')", ()),
    ("update", "UPDATE t SET n = n + 1", ()),
    ("update_from", "UPDATE t SET n = s.n FROM (SELECT 100 AS n) AS s WHERE t.id = 1", ()),
    ("delete", "DELETE FROM t WHERE id > 10", ()),
    ("delete_all", "DELETE FROM t", ()),
    ("insert_trigger_target", "INSERT INTO log(msg) VALUES ('direct')", ()),
    ("drop_table", "DROP TABLE t", ()),
    ("drop_table_if_exists", "DROP TABLE IF EXISTS orders_data", ()),
    ("drop_index", "DROP INDEX t_n", ()),
    ("drop_view", "DROP VIEW tv", ()),
    ("drop_trigger", "DROP TRIGGER t_ins", ()),
    ("drop_virtual", "DROP TABLE ft5", ("fts5",)),
    ("alter_rename_table", "ALTER TABLE log RENAME TO log2", ()),
    ("alter_rename_column", "ALTER TABLE t RENAME COLUMN n TO n2", ()),
    ("alter_add_column", "ALTER TABLE t ADD COLUMN extra TEXT", ()),
    ("alter_drop_column", "ALTER TABLE log DROP COLUMN at", ()),
    ("vacuum", "VACUUM", ()),
    ("vacuum_main", "VACUUM main", ()),
    ("reindex", "REINDEX", ()),
    ("reindex_table", "REINDEX t", ()),
    ("analyze", "ANALYZE", ()),
    ("analyze_table", "ANALYZE t", ()),
    ("pragma_user_version", "PRAGMA user_version = 3", ()),
    ("pragma_application_id", "PRAGMA application_id = 42", ()),
    ("pragma_schema_version", "PRAGMA schema_version = 99", ()),
    ("pragma_journal_mode_delete", "PRAGMA journal_mode = delete", ()),
    ("pragma_journal_mode_truncate", "PRAGMA journal_mode = truncate", ()),
    ("pragma_wal_checkpoint_truncate", "PRAGMA wal_checkpoint(TRUNCATE)", ()),
    ("pragma_wal_checkpoint", "PRAGMA wal_checkpoint", ()),
    ("pragma_auto_vacuum_vacuum", "PRAGMA auto_vacuum = FULL; VACUUM", ()),
    ("pragma_page_size_vacuum", "PRAGMA page_size = 1024; VACUUM", ()),
    ("pragma_optimize", "PRAGMA optimize(0x02)", ()),
    ("pragma_writable_schema", "PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = sql || ' ' WHERE name = 't'", ()),
    ("fts5_insert", "INSERT INTO ft5(body) VALUES ('zulu')", ("fts5",)),
    ("fts5_optimize", "INSERT INTO ft5(ft5) VALUES ('optimize')", ("fts5",)),
    ("fts5_rebuild", "INSERT INTO ft5(ft5) VALUES ('rebuild')", ("fts5",)),
    ("fts4_rebuild", "INSERT INTO ft4(ft4) VALUES ('rebuild')", ("fts4",)),
    ("fts3_update", "UPDATE ft3 SET body = 'x' WHERE rowid = 1", ("fts3",)),
    ("rtree_insert", "INSERT INTO rt VALUES (9, 0, 1, 0, 1)", ("rtree",)),
    ("rtree_delete", "DELETE FROM rt WHERE id = 1", ("rtree",)),
    ("shadow_fts5_data", "DELETE FROM ft5_data", ("fts5",)),
    ("shadow_fts4_content", "UPDATE ft4_content SET c0body = 'x'", ("fts4",)),
    ("shadow_rtree_node", "DELETE FROM rt_node", ("rtree",)),
    ("shadow_rtree_rowid", "DELETE FROM rt_rowid", ("rtree",)),
    ("shadow_lookalike", "INSERT INTO orders_data VALUES (3)", ()),
    ("savepoint_insert", "SAVEPOINT s; INSERT INTO t(v) VALUES ('sp'); RELEASE s", ()),
]
IDS = [w[0] for w in WRITES]
POSITIONS = {
    "first": [],
    "after_read": ["SELECT count(*) FROM t"],
    "after_schema_read": ["SELECT count(*) FROM sqlite_master"],
    "in_begin": ["BEGIN"],
}

_is_write = {}
# Checkpoints and optimize may change nothing on a fresh fixture, yet are writes.
CHECKPOINTS = ("pragma_wal_checkpoint", "pragma_wal_checkpoint_truncate", "pragma_optimize")
# Stock SQLite with query_only answers these with success and writes nothing
# (optimize skips the ANALYZE it cannot run); so may the guarded replica, as
# long as nothing is written.
NO_OP_ON_REPLICA = ("pragma_optimize",)


def _write_lands_on_stock(runner, make_node, wid, sql, pre=()):
    """Stock, primary: the statement completes and changes a file (the
    runner exits without closing: frames stay in the WAL)."""
    key = (runner.name, wid, tuple(pre))
    if key not in _is_write:
        n = make_node("wal", sub="oracle")
        before = n.snapshot()
        out = stock(runner, f".open {n.db}", *pre, sql, "COMMIT" if "BEGIN" in pre else "SELECT 1")
        _is_write[key] = (out[-2], n.snapshot() != before)
    return _is_write[key]


@pytest.mark.parametrize("position", list(POSITIONS))
@pytest.mark.parametrize("wid", IDS)
def test_write_refused_23_or_8(runner, node, make_node, wid, position):
    _, sql, mods = WRITES[IDS.index(wid)]
    node.need(*mods)
    pre = POSITIONS[position]
    line, changed = _write_lands_on_stock(runner, make_node, wid, sql, pre)
    if not line.startswith("ok"):
        pytest.skip(f"not supported by stock sqlrun-{runner.name} ({position}): {line}")
    if not changed and wid not in CHECKPOINTS:
        pytest.skip(f"writes nothing on stock sqlrun-{runner.name}")
    node.make_replica()
    before = node.snapshot()
    out = guarded(runner, node, f".open {node.db}", *pre, sql, "SELECT count(*) FROM t")
    if not (wid in NO_OP_ON_REPLICA and out[-2].startswith("ok")):
        assert_refused(out[-2], f"{sql!r} ({position})")
    assert out[-1] == "ok 40", f"a read after the refusal: {out[-1]}"
    assert_unchanged(before, node.snapshot(), sql)


@pytest.mark.parametrize("wid", ["create_table", "insert", "vacuum", "drop_table", "pragma_user_version"])
def test_write_refused_rollback_mode(runner, make_node, wid):
    """The same in a rollback-journal database (LITEFS_GUARD_WAL=0), first statement."""
    node = make_node("delete")
    _, sql, _ = WRITES[IDS.index(wid)]
    node.make_replica()
    before = node.snapshot()
    out = guarded(runner, node, f".open {node.db}", sql)
    assert_refused(out[-1], sql)
    assert_unchanged(before, node.snapshot(), sql)


def test_every_write_in_a_row(runner, node, make_node):
    """All write kinds (those stock completes) one after another on one
    connection: each refused with 23/8."""
    sqls = []
    for wid, sql, mods in WRITES:
        if not all(m in node.modules for m in mods):
            continue
        line, changed = _write_lands_on_stock(runner, make_node, wid, sql)
        if line.startswith("ok") and (changed or wid in CHECKPOINTS):
            sqls.append(sql)
    node.make_replica()
    before = node.snapshot()
    out = guarded(runner, node, f".open {node.db}", *sqls)
    no_op = {sql for wid, sql, _ in WRITES if wid in NO_OP_ON_REPLICA}
    bad = [
        f"{sql!r}: {line}"
        for sql, line in zip(sqls, out[1:])
        if not (line.startswith("err ") and int(line.split()[1]) & 0xFF in (8, 23))
        and not (sql in no_op and line.startswith("ok"))
    ]
    assert not bad, f"{len(bad)} of {len(sqls)} answered other than 23/8:\n" + "\n".join(bad)
    assert_unchanged(before, node.snapshot())
