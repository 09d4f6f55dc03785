"""Every kind of write is refused on a replica, leaving the database
unchanged, and succeeds on the primary."""

import sqlite3

import pytest

from conftest import SQLITE_AUTH, SQLITE_READONLY, assert_refused, sha

# (id, setup run first on the same connection (allowed on a replica), the write)
WRITES = [
    ("insert", [], "INSERT INTO t(v) VALUES ('c')"),
    ("insert_select", [], "INSERT INTO log SELECT v FROM t"),
    ("insert_default_values", [], "INSERT INTO log DEFAULT VALUES"),
    ("update", [], "UPDATE t SET n = n + 1"),
    ("update_from", [], "UPDATE t SET n = kw.update_count FROM kw"),
    ("delete", [], "DELETE FROM t WHERE id = 1"),
    ("delete_all", [], "DELETE FROM kw"),
    ("upsert", [], "INSERT INTO t(id, v) VALUES (3, 'a') ON CONFLICT(v) DO UPDATE SET n = n + 10"),
    ("upsert_nothing", [], "INSERT INTO t(v) VALUES ('new') ON CONFLICT DO NOTHING"),
    ("replace", [], "REPLACE INTO t(id, v) VALUES (1, 'z')"),
    ("insert_or_replace", [], "INSERT OR REPLACE INTO t(id, v) VALUES (2, 'y')"),
    ("insert_or_ignore", [], "INSERT OR IGNORE INTO t(v) VALUES ('q')"),
    ("insert_returning", [], "INSERT INTO t(v) VALUES ('r') RETURNING id"),
    ("update_returning", [], "UPDATE t SET n = 0 RETURNING id, n"),
    ("delete_returning", [], "DELETE FROM t RETURNING id"),
    ("cte_insert", [], "WITH x(v) AS (SELECT 'cte') INSERT INTO t(v) SELECT v FROM x"),
    ("cte_update", [], "WITH x AS (SELECT 1 AS id) UPDATE t SET n = 9 WHERE id IN (SELECT id FROM x)"),
    ("cte_delete", [], "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2) DELETE FROM t WHERE id IN c"),
    ("qualified_main", [], "INSERT INTO main.log VALUES ('m')"),
    (
        "temp_trigger_writes_main",
        [
            "CREATE TEMP TABLE tt(x)",
            "CREATE TEMP TRIGGER tt_ai AFTER INSERT ON tt BEGIN INSERT INTO log VALUES ('from temp'); END",
        ],
        "INSERT INTO tt VALUES (1)",
    ),
    ("attached_insert", ["ATTACH '{aux}' AS aux"], "INSERT INTO aux.a VALUES (2)"),
    ("attached_create", ["ATTACH '{aux}' AS aux"], "CREATE TABLE aux.b(x)"),
    ("attached_drop", ["ATTACH '{aux}' AS aux"], "DROP TABLE aux.a"),
    ("create_table", [], "CREATE TABLE t2(x)"),
    ("create_table_if_not_exists", [], "CREATE TABLE IF NOT EXISTS t3(x)"),
    ("create_table_as", [], "CREATE TABLE t4 AS SELECT * FROM t"),
    ("create_index", [], "CREATE INDEX t_v2 ON t(v, n)"),
    ("create_unique_index", [], "CREATE UNIQUE INDEX log_u ON log(msg)"),
    ("create_view", [], "CREATE VIEW v2 AS SELECT 1"),
    ("create_trigger", [], "CREATE TRIGGER tr2 AFTER INSERT ON log BEGIN SELECT 1; END"),
    ("drop_table", [], "DROP TABLE log"),
    ("drop_table_if_exists", [], "DROP TABLE IF EXISTS kw"),
    ("drop_index", [], "DROP INDEX t_n"),
    ("drop_view", [], "DROP VIEW tv"),
    ("drop_trigger", [], "DROP TRIGGER t_upd"),
    ("alter_rename_table", [], "ALTER TABLE log RENAME TO log2"),
    ("alter_add_column", [], "ALTER TABLE log ADD COLUMN extra INTEGER"),
    ("alter_rename_column", [], "ALTER TABLE log RENAME COLUMN msg TO message"),
    ("alter_drop_column", [], "ALTER TABLE kw DROP COLUMN deleted"),
    ("reindex", [], "REINDEX"),
    ("reindex_table", [], "REINDEX t"),
    ("analyze", [], "ANALYZE"),
    ("analyze_table", [], "ANALYZE t"),
    ("pragma_user_version", [], "PRAGMA user_version = 8"),
    ("pragma_main_user_version", [], "PRAGMA main.user_version = 8"),
    ("pragma_application_id", [], "PRAGMA application_id = 1234"),
    ("pragma_wal_checkpoint", [], "PRAGMA wal_checkpoint"),
    ("pragma_wal_checkpoint_truncate", [], "PRAGMA main.wal_checkpoint(TRUNCATE)"),
    ("pragma_incremental_vacuum", [], "PRAGMA incremental_vacuum"),
    ("vacuum", [], "VACUUM"),
]

# Writes SQLite decides at execution time (no authorizer action): refused by the VFS gate.
# Refused by the lock gate rather than at prepare: VACUUM, and CREATE
# TABLE/INDEX/VIEW/TRIGGER, REINDEX and ANALYZE (at prepare SQLite cannot yet tell an
# `IF NOT EXISTS` on an existing object, and SQLite shows a REINDEX within
# every CREATE INDEX).
EXECUTION_TIME = {
    name: SQLITE_READONLY
    for name in ("vacuum", "attached_create", "create_table", "create_table_if_not_exists", "create_table_as",
                 "create_index", "create_unique_index", "create_view", "create_trigger", "reindex", "reindex_table",
                 "analyze", "analyze_table")
}


def prepare(node, conn, setup):
    for s in setup:
        conn.execute(s.format(aux=node.aux))


@pytest.mark.parametrize("name,setup,sql", WRITES, ids=[w[0] for w in WRITES])
def test_refused_on_replica_and_nothing_changes(node, name, setup, sql):
    node.replica("node-b")
    conn = node.connect()
    prepare(node, conn, setup)
    before_rows, before_files = node.counts(conn), node.files()
    aux_before = conn.execute("SELECT count(*) FROM aux.a").fetchone()[0] if setup and "aux" in setup[0] else None

    err = assert_refused(conn, sql, codes=(EXECUTION_TIME.get(name, SQLITE_AUTH),))

    assert str(err) in ("not authorized", "attempt to write a readonly database")
    assert node.counts(conn) == before_rows
    if aux_before is not None:
        assert conn.execute("SELECT count(*) FROM aux.a").fetchone()[0] == aux_before
    assert not conn.in_transaction
    assert node.files() == before_files, "a refused write changed the files"
    conn.close()
    assert node.files() == before_files, "closing changed the files"


# Pragmas that change nothing on an existing WAL database with nothing to
# optimize: stock SQLite with `PRAGMA query_only=1` runs them, and so does a
# replica (the lock gate would refuse them if they did write).
NO_OPS = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA optimize",
    "PRAGMA auto_vacuum = 1",
    "PRAGMA page_size = 8192",
    "PRAGMA encoding = 'UTF-8'",
]


@pytest.mark.parametrize("sql", NO_OPS)
def test_no_op_pragmas_run_on_replica_and_change_nothing(node, sql):
    node.replica("node-b")
    conn = node.connect()
    before = node.files()
    conn.execute(sql).fetchall()
    assert node.files() == before
    # What they would take effect in is still refused.
    assert_refused(conn, "VACUUM", codes=(SQLITE_READONLY,))
    assert node.files() == before


@pytest.mark.parametrize("name,setup,sql", WRITES, ids=[w[0] for w in WRITES])
def test_same_write_succeeds_on_primary(node, name, setup, sql):
    conn = node.connect()
    prepare(node, conn, setup)
    before = node.files()
    conn.execute(sql).fetchall()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if name not in ("pragma_journal_mode_wal", "pragma_wal_checkpoint", "pragma_wal_checkpoint_truncate",
                    "pragma_incremental_vacuum", "pragma_optimize", "pragma_auto_vacuum", "pragma_page_size", "analyze_table",
                    "reindex", "reindex_table", "vacuum", "insert_or_ignore", "upsert_nothing",
                    "create_table_if_not_exists", "drop_table_if_exists"):
        assert node.files() != before, f"{sql!r} changed nothing on the primary"


def test_replica_refusal_is_per_statement_not_per_connection(node):
    """A refused write does not poison the connection: reads go on, and the
    same connection writes again once the node is the primary."""
    node.replica()
    conn = node.connect()
    assert_refused(conn, "INSERT INTO log VALUES ('x')")
    assert conn.execute("SELECT v FROM t ORDER BY id").fetchall() == [("a",), ("b",)]
    node.primary()
    conn.execute("INSERT INTO log VALUES ('y')")
    assert conn.execute("SELECT msg FROM log").fetchall() == [("y",)]


def test_refused_inside_explicit_transaction_keeps_transaction_readable(node):
    node.replica()
    conn = node.connect()
    conn.execute("BEGIN")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    assert_refused(conn, "UPDATE t SET n = 5")
    assert conn.execute("SELECT total(n) FROM t").fetchone() == (3.0,)
    conn.execute("COMMIT")


def test_executemany_and_executescript_refused(node):
    node.replica()
    conn = node.connect()
    before = node.counts(conn)
    with pytest.raises(sqlite3.DatabaseError) as ei:
        conn.executemany("INSERT INTO log VALUES (?)", [("a",), ("b",)])
    assert ei.value.sqlite_errorcode == SQLITE_AUTH
    with pytest.raises(sqlite3.DatabaseError) as ei:
        conn.executescript("SELECT 1; DELETE FROM t; SELECT 2;")
    assert ei.value.sqlite_errorcode == SQLITE_AUTH
    assert node.counts(conn) == before


def test_journal_mode_delete_refused_even_on_primary(node):
    conn = node.connect()
    with pytest.raises(sqlite3.OperationalError) as ei:
        conn.execute("PRAGMA journal_mode = DELETE")
    assert "journal_mode=DELETE refused" in str(ei.value)
    assert ei.value.sqlite_errorcode == 1
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_new_database_put_in_wal_on_primary(node):
    conn = node.connect(node.mount / "fresh.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_last_close_on_replica_does_not_checkpoint(node):
    """Checkpoints write the database file: the guard refuses the checkpoint
    lock on a node that may not write, so closing on a replica leaves it alone."""
    writer = node.connect()
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO log VALUES ('in the wal')")
    node.replica()
    reader = node.connect()
    assert reader.execute("SELECT count(*) FROM log").fetchone() == (1,)
    writer.close()
    before = sha(node.db)
    reader.close()
    assert sha(node.db) == before, "closing on a replica rewrote app.db"


def test_forward_pragma_reads_and_switches(node):
    conn = node.connect()
    assert conn.execute("PRAGMA litefs_forward").fetchone()[0] == "0"
    assert conn.execute("PRAGMA litefs_forward = ON").fetchone()[0] == "1"
    assert conn.execute("PRAGMA litefs_forward").fetchone()[0] == "1"
    with pytest.raises(sqlite3.OperationalError, match="use ON or OFF"):
        conn.execute("PRAGMA litefs_forward = sometimes").fetchall()
    assert conn.execute("PRAGMA litefs_forward = off").fetchone()[0] == "0"
    # On the primary forwarding changes nothing.
    conn.execute("PRAGMA litefs_forward = 1")
    conn.execute("INSERT INTO log VALUES ('primary, forwarding on')")


def test_forwarding_without_a_halt_lock_to_take_is_refused_and_nothing_changes(node):
    """A replica whose mount has no NAME-lock (not LiteFS): the halt lock
    cannot be taken, so the write is refused at the lock, as without forwarding."""
    node.replica("node-b")
    conn = node.connect()
    conn.execute("PRAGMA litefs_forward = ON")
    before_rows, before_files = node.counts(conn), node.files()
    assert_refused(conn, "INSERT INTO log VALUES ('x')", codes=(SQLITE_READONLY,))
    conn.execute("BEGIN")
    assert_refused(conn, "INSERT INTO log VALUES ('y')", codes=(SQLITE_READONLY,))
    conn.execute("ROLLBACK")
    assert node.counts(conn) == before_rows and node.files() == before_files
    # Off again: refused at prepare, as before.
    conn.execute("PRAGMA litefs_forward = OFF")
    assert_refused(conn, "INSERT INTO log VALUES ('z')", codes=(SQLITE_AUTH,))


def test_forwarding_can_be_kept_out_of_sqls_reach(tmp_path):
    """LITEFS_GUARD_FORWARD_PRAGMA=0: SQL cannot switch forwarding on, so a
    replica's connection can only write where the operator's
    LITEFS_GUARD_FORWARD says so."""
    from conftest import clean_env, run_json

    mount = tmp_path / "litefs"
    mount.mkdir()
    (mount / ".primary").write_text("node-b\n")
    (mount / "app.db-lock").touch()
    (mount / "app.db").touch()  # a replica creates no database
    code = f"""
        import json, sqlite3, litefs_guard
        c = litefs_guard.connect({str(mount / 'app.db')!r}, isolation_level=None)
        res = {{"read": c.execute("PRAGMA litefs_forward").fetchone()[0]}}
        try:
            c.execute("PRAGMA litefs_forward = ON").fetchall()
            res["switch"] = "switched"
        except sqlite3.OperationalError as e:
            res["switch"] = str(e)
        print(json.dumps(res))
        """
    env = dict(LITEFS_GUARD_DIR=mount, LITEFS_GUARD_REQUIRE_FUSE=0)
    out = run_json(code, env=clean_env(LITEFS_GUARD_FORWARD_PRAGMA=0, **env))
    assert out["read"] == "0"
    assert "LITEFS_GUARD_FORWARD_PRAGMA=0" in out["switch"], out
    # The default: SQL may switch it.
    out = run_json(code, env=clean_env(**env))
    assert out["switch"] == "switched", out
