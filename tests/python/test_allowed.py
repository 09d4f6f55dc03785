"""What a replica may still do: read, use TEMP objects, write databases
outside the mount, run transactions and connection pragmas, and run SQL that
merely looks like a write."""

import sqlite3

import pytest

from conftest import assert_refused, clean_env, run_json

NEVER_DENIED = [
    ("select_keyword_string", "SELECT 'INSERT', 'DELETE FROM t', 'DROP TABLE t'"),
    ("select_aliases", "SELECT 1 AS update_count, 2 AS deleted, 3 AS \"insert\""),
    ("columns_named_like_writes", "SELECT update_count, deleted, \"insert\" FROM kw"),
    ("cte_named_like_keyword", "WITH \"insert\"(x) AS (SELECT 1), \"delete\" AS (SELECT 2) SELECT * FROM \"insert\", \"delete\""),
    ("cte_named_update", "WITH update_rows AS (SELECT id FROM t) SELECT count(*) FROM update_rows"),
    ("recursive_cte", "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5) SELECT sum(i) FROM c"),
    ("join_view", "SELECT t.v, tv.v FROM t JOIN tv USING (id)"),
    ("pragma_user_version_read", "PRAGMA user_version"),
    ("pragma_journal_mode_read", "PRAGMA journal_mode"),
    ("pragma_table_info", "PRAGMA table_info(t)"),
    ("pragma_integrity_check", "PRAGMA integrity_check"),
    ("pragma_busy_timeout", "PRAGMA busy_timeout = 2000"),
    ("pragma_foreign_keys", "PRAGMA foreign_keys = ON"),
    ("pragma_cache_size", "PRAGMA cache_size = -4000"),
    ("pragma_synchronous", "PRAGMA synchronous = NORMAL"),
    ("pragma_temp_store", "PRAGMA temp_store = MEMORY"),
    ("pragma_query_only", "PRAGMA query_only = 0"),
    ("pragma_temp_user_version", "PRAGMA temp.user_version = 3"),
    ("attach_detach", "ATTACH ':memory:' AS scratch"),
]


@pytest.mark.parametrize("name,sql", NEVER_DENIED, ids=[c[0] for c in NEVER_DENIED])
def test_never_denied_on_replica(node, name, sql):
    node.replica()
    conn = node.connect()
    before = node.files()
    conn.execute(sql).fetchall()
    assert node.files() == before


def test_transaction_statements_on_replica(node):
    node.replica()
    conn = node.connect()
    for sql in ["BEGIN", "SAVEPOINT s1", "SELECT count(*) FROM t", "RELEASE s1", "SAVEPOINT s2",
                "ROLLBACK TO s2", "RELEASE s2", "COMMIT", "BEGIN DEFERRED", "ROLLBACK",
                "SAVEPOINT outer_sp", "ROLLBACK TO outer_sp", "RELEASE outer_sp"]:
        conn.execute(sql)
    assert not conn.in_transaction
    # Python's implicit transactions (isolation_level="") too.
    c2 = node.connect(isolation_level="")
    assert c2.execute("SELECT v FROM t WHERE id = 2").fetchone() == ("b",)
    c2.commit()
    c2.rollback()


def test_begin_immediate_and_exclusive_refused_on_replica(node):
    """BEGIN IMMEDIATE/EXCLUSIVE take the write lock: the VFS gate says no,
    and a plain BEGIN still works afterwards."""
    node.replica()
    conn = node.connect()
    for sql in ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"):
        with pytest.raises(sqlite3.OperationalError) as ei:
            conn.execute(sql)
        assert ei.value.sqlite_errorcode & 0xFF == 8, ei.value
        assert not conn.in_transaction
    conn.execute("BEGIN")
    conn.execute("SELECT * FROM t").fetchall()
    conn.execute("COMMIT")


def test_reads_on_replica(node):
    node.replica()
    conn = node.connect()
    assert conn.execute("SELECT id, v, n FROM t ORDER BY id").fetchall() == [(1, "a", 1), (2, "b", 2)]
    assert conn.execute("SELECT v FROM tv WHERE id = 1").fetchone() == ("a",)
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 7
    assert conn.execute("PRAGMA user_version").fetchone() == (7,)
    conn.execute("ATTACH ? AS aux", (str(node.aux),))
    assert conn.execute("SELECT x FROM aux.a").fetchall() == [(1,)]


def test_reads_see_primary_commits_after_flip(node):
    """A replica's readers keep seeing new data (LiteFS replicates into the
    WAL): here a write made while primary is visible after the flip."""
    conn = node.connect()
    reader = node.connect()
    assert reader.execute("SELECT count(*) FROM log").fetchone() == (0,)
    conn.execute("INSERT INTO log VALUES ('before flip')")
    node.replica()
    assert reader.execute("SELECT msg FROM log").fetchall() == [("before flip",)]


def test_temp_objects_writable_on_replica(node):
    node.replica()
    conn = node.connect()
    before = node.files()
    conn.execute("CREATE TEMP TABLE scratch(id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE INDEX temp.scratch_v ON scratch(v)")
    conn.execute("INSERT INTO scratch(v) SELECT v FROM t")
    conn.execute("INSERT INTO temp.scratch(v) VALUES ('x') ON CONFLICT DO NOTHING")
    conn.execute("UPDATE scratch SET v = upper(v)")
    conn.execute("DELETE FROM scratch WHERE v = 'X'")
    conn.execute("CREATE TEMP VIEW sv AS SELECT v FROM scratch")
    conn.execute("CREATE TEMP TRIGGER st AFTER INSERT ON scratch BEGIN DELETE FROM scratch WHERE v = 'gone'; END")
    conn.execute("INSERT INTO scratch(v) VALUES ('gone')")
    assert conn.execute("SELECT v FROM sv ORDER BY v").fetchall() == [("A",), ("B",)]
    conn.execute("ALTER TABLE temp.scratch ADD COLUMN w")
    conn.execute("DROP TRIGGER st")
    conn.execute("DROP VIEW sv")
    conn.execute("DROP TABLE scratch")
    conn.execute("CREATE TEMP TABLE copy AS SELECT * FROM t")
    assert conn.execute("SELECT count(*) FROM temp.copy").fetchone() == (2,)
    mem = sqlite3.connect(":memory:")
    mem.execute("CREATE TABLE m(x)")
    mem.execute("INSERT INTO m VALUES (1)")
    assert node.files() == before


def test_outside_mount_writable_on_replica(tmp_path):
    """LITEFS_GUARD_DIR names the mount: a database elsewhere is not guarded."""
    mount = tmp_path / "litefs"
    outside = tmp_path / "local"
    mount.mkdir()
    outside.mkdir()
    (mount / ".primary").write_text("node-b\n")
    (mount / "app.db").touch()  # The database exists, as on a real replica (creating one there is a write the guard refuses).
    out = run_json(
        f"""
        import json, sqlite3, litefs_guard
        litefs_guard.ensure_loaded()
        res = {{}}
        local = sqlite3.connect({str(outside / 'local.db')!r}, isolation_level=None)
        local.execute("CREATE TABLE t(x)")
        local.execute("INSERT INTO t VALUES (1)")
        local.execute("PRAGMA user_version = 3")
        local.execute("PRAGMA journal_mode = DELETE")
        res["local"] = local.execute("SELECT count(*) FROM t").fetchone()[0]
        res["local_journal"] = local.execute("PRAGMA journal_mode").fetchone()[0]
        res["local_vfs"] = local.execute("SELECT json_extract(litefs_config(), '$.vfs')").fetchone()[0]
        guarded = sqlite3.connect({str(mount / 'app.db')!r}, isolation_level=None)
        try:
            guarded.execute("CREATE TABLE g(x)")
            res["guarded"] = "written"
        except sqlite3.DatabaseError as e:
            res["guarded"] = e.sqlite_errorname
        guarded.execute("ATTACH ? AS loc", ({str(outside / 'local.db')!r},))
        guarded.execute("INSERT INTO loc.t VALUES (2)")
        res["attached_local"] = guarded.execute("SELECT count(*) FROM loc.t").fetchone()[0]
        res["role"] = guarded.execute("SELECT json_extract(litefs_config(), '$.role')").fetchone()[0]
        print(json.dumps(res))
        """,
        # A plain directory stands in for the mount: opt out of the FUSE check.
        env=clean_env(LITEFS_GUARD_DIR=mount, LITEFS_GUARD_REQUIRE_FUSE=0, HOME=tmp_path),
    )
    assert out == {"local": 1, "local_journal": "delete", "local_vfs": 0, "guarded": "SQLITE_READONLY",
                   "attached_local": 2, "role": "replica"}
    assert not (mount / "app.db").exists() or (mount / "app.db").stat().st_size == 0


def test_functions_usable_in_temp_view(node):
    """DIRECTONLY allows the application's own TEMP views/triggers."""
    node.replica()
    conn = node.connect()
    conn.execute("CREATE TEMP VIEW role AS SELECT litefs_is_primary() AS p, litefs_primary() AS h")
    assert conn.execute("SELECT p, h FROM role").fetchone() == (0, "node-b")


def test_authorizer_replaced_by_application_still_gated(node):
    """An application that installs its own authorizer removes the guard's;
    the VFS gate still refuses the write when the lock is taken."""
    node.replica()
    conn = node.connect()
    conn.set_authorizer(lambda *a: sqlite3.SQLITE_OK)
    before = node.files()
    assert_refused(conn, "INSERT INTO log VALUES ('x')", codes=(8,))
    assert node.files() == before
