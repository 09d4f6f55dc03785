"""Role changes, the marker conventions, LiteFS not running, and the
settings that make loading fail."""

import json
import os
import sqlite3

import pytest

from conftest import REFUSED, SQLITE_AUTH, SQLITE_READONLY, assert_refused, clean_env, run_json, run_python


def test_flip_to_replica_takes_effect_on_next_statement(node):
    conn = node.connect()
    conn.execute("INSERT INTO log VALUES ('as primary')")
    node.replica("node-c")
    before = node.files()
    assert_refused(conn, "INSERT INTO log VALUES ('as replica')", codes=REFUSED)
    assert_refused(conn, "UPDATE t SET n = 99", codes=REFUSED)
    assert_refused(conn, "CREATE TABLE later(x)", codes=REFUSED)
    assert node.files() == before
    assert conn.execute("SELECT msg FROM log").fetchall() == [("as primary",)]
    node.primary()
    conn.execute("INSERT INTO log VALUES ('primary again')")
    assert conn.execute("SELECT count(*) FROM log").fetchone() == (2,)


def test_flip_seen_by_connection_opened_as_replica(node):
    node.replica()
    conn = node.connect()
    assert_refused(conn, "INSERT INTO log VALUES ('x')", codes=(SQLITE_AUTH,))
    node.primary()
    conn.execute("INSERT INTO log VALUES ('y')")
    node.replica()
    assert_refused(conn, "INSERT INTO log VALUES ('z')", codes=REFUSED)
    assert conn.execute("SELECT msg FROM log").fetchall() == [("y",)]


def test_cached_statement_refused_after_flip(node):
    """The same SQL text twice: Python's statement cache hands SQLite the
    statement prepared (and authorized) while primary; the execution-time
    gate refuses it."""
    conn = node.connect()
    sql = "INSERT INTO log VALUES (?)"
    conn.execute(sql, ("one",))
    node.replica()
    before_files, before_rows = node.files(), node.counts(conn)
    with pytest.raises(sqlite3.OperationalError) as ei:
        conn.execute(sql, ("two",))
    assert ei.value.sqlite_errorcode == SQLITE_READONLY
    assert str(ei.value) == "attempt to write a readonly database"
    assert node.counts(conn) == before_rows
    assert node.files() == before_files
    assert conn.execute("SELECT msg FROM log").fetchall() == [("one",)]


def test_flip_before_first_read_of_transaction(node):
    conn = node.connect()
    conn.execute("BEGIN")
    node.replica()
    assert_refused(conn, "DELETE FROM t", codes=REFUSED)
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)


@pytest.mark.parametrize("begin", ["BEGIN", "BEGIN IMMEDIATE"])
def test_flip_inside_write_transaction_is_refused_from_the_next_transaction(node, begin):
    """The documented residual window: a transaction that already holds the
    write lock when the node stops being primary is not looked at again (on
    LiteFS, the filesystem refuses its writes; litefs-sim's failover scenario
    shows those reach the client as SQLITE_READONLY). The next one is refused."""
    conn = node.connect()
    conn.execute(begin)
    conn.execute("SELECT count(*) FROM t").fetchall()
    conn.execute("DELETE FROM t WHERE rowid < 0")  # now in the statement cache
    node.replica()
    conn.execute("DELETE FROM t WHERE rowid < 0")  # cached: no prepare, lock already held
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    assert_refused(conn, "DELETE FROM t", codes=REFUSED)
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)


def test_marker_primary_convention(tmp_path):
    mount = tmp_path / "litefs"
    mount.mkdir()
    (mount / "app.db").touch()  # The database exists, as on a real replica (creating one there is a write the guard refuses).
    out = run_json(
        f"""
        import json, os, sqlite3, litefs_guard
        litefs_guard.ensure_loaded()
        db = {str(mount / 'app.db')!r}
        marker = {str(mount / '.primary')!r}
        res = {{}}
        c = sqlite3.connect(db, isolation_level=None)
        def attempt(tag):
            try:
                c.execute("CREATE TABLE IF NOT EXISTS t(x)")
                c.execute("INSERT INTO t VALUES (1)")
                res[tag] = "written"
            except sqlite3.DatabaseError as e:
                res[tag] = e.sqlite_errorname
            res[tag + "_is_primary"] = c.execute("SELECT litefs_is_primary()").fetchone()[0]
        attempt("no_marker")
        open(marker, "w").close()
        attempt("marker")
        os.remove(marker)
        attempt("removed")
        res["marker_setting"] = json.loads(c.execute("SELECT litefs_config()").fetchone()[0])["marker"]
        res["rows"] = c.execute("SELECT count(*) FROM t").fetchone()[0]
        print(json.dumps(res))
        """,
        env=clean_env(LITEFS_GUARD_MARKER="primary", HOME=tmp_path),
    )
    assert out == {
        "no_marker": "SQLITE_READONLY", "no_marker_is_primary": 0,
        "marker": "written", "marker_is_primary": 1,
        "removed": out["removed"], "removed_is_primary": 0,
        "marker_setting": "primary", "rows": 1,
    }
    assert out["removed"] in ("SQLITE_AUTH", "SQLITE_READONLY")


def test_litefs_not_running(node, tmp_path):
    """The mount directory disappears under an open connection: writes are
    refused, reads go on, the functions raise naming the mount."""
    conn = node.connect()
    conn.execute("SELECT count(*) FROM t").fetchall()
    gone = tmp_path / "unmounted"
    os.rename(node.mount, gone)
    try:
        with pytest.raises(sqlite3.DatabaseError) as ei:
            conn.execute("INSERT INTO log VALUES ('x')")
        assert ei.value.sqlite_errorcode in REFUSED
        assert conn.execute("SELECT v FROM t ORDER BY id").fetchall() == [("a",), ("b",)]
        for fn in ("litefs_is_primary()", "litefs_primary()"):
            with pytest.raises(sqlite3.OperationalError) as fe:
                conn.execute(f"SELECT {fn}")
            assert str(fe.value).startswith("LiteFS is not running: ")
            assert f" {node.mount} not found" in str(fe.value)
        cfg = json.loads(conn.execute("SELECT litefs_config()").fetchone()[0])
        assert cfg["role"] == "not_running"
        assert cfg["may_write"] is False and cfg["is_primary"] is None
        assert str(node.mount) in cfg["reason"] and cfg["reason"].startswith("LiteFS is not running")
        assert conn.execute("SELECT count(*) FROM log").fetchone() == (0,)
    finally:
        os.rename(gone, node.mount)
    conn.execute("INSERT INTO log VALUES ('back')")


def test_not_running_with_configured_mount(tmp_path):
    mount = tmp_path / "litefs"
    out = run_json(
        """
        import json, sqlite3, litefs_guard
        c = litefs_guard.connect(":memory:")
        res = {}
        for fn in ("litefs_is_primary()", "litefs_primary()"):
            try:
                res[fn] = c.execute("SELECT " + fn).fetchone()[0]
            except sqlite3.OperationalError as e:
                res[fn] = str(e)
        res["config"] = json.loads(c.execute("SELECT litefs_config()").fetchone()[0])
        print(json.dumps(res))
        """,
        env=clean_env(LITEFS_GUARD_DIR=mount, HOME=tmp_path),
    )
    for fn in ("litefs_is_primary()", "litefs_primary()"):
        assert out[fn].startswith("LiteFS is not running: "), out[fn]
        assert f" {mount} not found" in out[fn]
    assert out["config"]["role"] == "not_running"
    assert out["config"]["mount_dir"] == str(mount)
    assert out["config"]["mount_source"] == "LITEFS_GUARD_DIR"


def test_litefs_guard_dir_requires_fuse_by_default(tmp_path):
    """LiteFS is always FUSE: a plain directory at LITEFS_GUARD_DIR means
    LiteFS is down. Writes are refused and the helpers say why."""
    mount = tmp_path / "litefs"
    mount.mkdir()
    (mount / "app.db").touch()  # The database exists, as on a real replica (creating one there is a write the guard refuses).
    out = run_json(
        f"""
        import json, sqlite3, litefs_guard
        c = litefs_guard.connect({str(mount / 'app.db')!r}, isolation_level=None)
        res = {{}}
        try:
            try:
                c.execute("CREATE TABLE t(x)")
            except sqlite3.Error as e:
                litefs_guard.raise_if_not_primary(e, c)
                raise
            res["write"] = "written"
        except litefs_guard.NotPrimaryError as e:
            res["write"] = str(e)
            res["code"] = e.sqlite_errorcode
        res["config"] = json.loads(c.execute("SELECT litefs_config()").fetchone()[0])
        print(json.dumps(res))
        """,
        env=clean_env(LITEFS_GUARD_DIR=mount, HOME=tmp_path),
    )
    assert out["code"] == SQLITE_READONLY  # CREATE TABLE: refused at the lock
    assert out["write"].startswith(f"write refused: LiteFS is not running: {mount} is not a FUSE mount"), out
    assert out["config"]["require_fuse"] is True and out["config"]["role"] == "not_running"
    assert not (mount / "app.db").exists() or (mount / "app.db").stat().st_size == 0


def test_broken_litefs_yml_in_cwd_does_not_stop_loading_with_litefs_guard_dir(tmp_path):
    """LITEFS_GUARD_DIR names the mount: a broken ./litefs.yml found by the
    search is not needed and does not stop loading."""
    mount = tmp_path / "litefs"
    mount.mkdir()
    cwd = tmp_path / "wd"
    cwd.mkdir()
    (cwd / "litefs.yml").write_text("fuse:\n  dir: [not, a, path\n")
    code = f"""
        import json, litefs_guard
        c = litefs_guard.connect({str(mount / 'app.db')!r}, isolation_level=None)
        c.execute("CREATE TABLE t(x)")
        print(json.dumps(json.loads(c.execute("SELECT litefs_config()").fetchone()[0])))
        """
    r = run_python(code, env=clean_env(HOME=tmp_path), cwd=cwd)
    assert r.returncode != 0 and "litefs.yml" in r.stderr, r.stderr
    cfg = run_json(code, env=clean_env(LITEFS_GUARD_DIR=mount, LITEFS_GUARD_REQUIRE_FUSE=0, HOME=tmp_path), cwd=cwd)
    assert cfg["mount_source"] == "LITEFS_GUARD_DIR" and cfg["config_file"] is None
    assert cfg["role"] == "primary"


def test_mount_path_not_utf8(tmp_path):
    """LITEFS_GUARD_DIR and database paths are taken byte for byte."""
    mount = os.path.join(os.fsencode(tmp_path), b"lite\xfffs")
    os.mkdir(mount)
    open(os.path.join(mount, b"app.db"), "wb").close()  # The database exists, as on a real replica (creating one there is a write the guard refuses).
    with open(os.path.join(mount, b".primary"), "w") as f:
        f.write("node-b\n")
    env = {os.fsencode(k): os.fsencode(v) for k, v in clean_env(HOME=tmp_path, LITEFS_GUARD_REQUIRE_FUSE=0).items()}
    env[b"LITEFS_GUARD_DIR"] = mount
    env[b"MOUNT"] = mount
    r = run_python(
        """
        import json, os, sqlite3, litefs_guard
        mount = os.environb[b"MOUNT"]
        litefs_guard.ensure_loaded()
        c = sqlite3.connect(os.path.join(mount, b"app.db"), isolation_level=None)
        res = {}
        try:
            c.execute("CREATE TABLE t(x)")
            res["write"] = "written"
        except sqlite3.DatabaseError as e:
            res["write"] = e.sqlite_errorname
        res["primary"] = c.execute("SELECT litefs_primary()").fetchone()[0]
        os.remove(os.path.join(mount, b".primary"))
        c.execute("CREATE TABLE t(x)")
        res["is_primary"] = c.execute("SELECT litefs_is_primary()").fetchone()[0]
        print(json.dumps(res))
        """,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["write"] == "SQLITE_READONLY" and out["primary"] == "node-b" and out["is_primary"] == 1


BAD_SETTINGS = [
    ("LITEFS_GUARD_MARKER", "x", 'use "replica"'),
    ("LITEFS_GUARD_MARKER", "Primary", 'use "replica"'),
    ("LITEFS_GUARD_DIR", "litefs", "must be absolute"),
    ("LITEFS_GUARD_DIR", "/litefs/../etc", '".."'),
    ("LITEFS_GUARD_IMMEDIATE", "maybe", "use 1 or 0"),
    ("LITEFS_GUARD_WAL", "2", "use 1 or 0"),
    ("LITEFS_GUARD_REQUIRE_FUSE", "yes please", "use 1 or 0"),
]


@pytest.fixture(scope="module")
def bad_settings_results(tmp_path_factory):
    """One interpreter tries each bad setting in turn (a failed load stores
    nothing, so the next try reads the environment again), then loads with
    the environment fixed."""
    home = tmp_path_factory.mktemp("home")
    cases = [[var, value] for var, value, _ in BAD_SETTINGS]
    return run_json(
        f"""
        import json, os, sqlite3
        import litefs_guard
        res = []
        for var, value in {cases!r}:
            os.environ[var] = value
            c = sqlite3.connect(":memory:")
            c.enable_load_extension(True)
            try:
                c.load_extension(litefs_guard.loadable_path())
                res.append("loaded")
            except sqlite3.OperationalError as e:
                res.append(str(e))
            del os.environ[var]
        try:
            os.environ["LITEFS_GUARD_MARKER"] = "bogus"
            litefs_guard.load(sqlite3.connect(":memory:"))
            res.append("loaded")
        except litefs_guard.LiteFSGuardError as e:
            res.append(str(e))
        del os.environ["LITEFS_GUARD_MARKER"]
        c = litefs_guard.connect(":memory:")
        res.append(json.loads(c.execute("SELECT litefs_config()").fetchone()[0])["marker"])
        print(json.dumps(res))
        """,
        env=clean_env(HOME=home),
    )


@pytest.mark.parametrize("i,var,value,hint", [(i, *c) for i, c in enumerate(BAD_SETTINGS)],
                         ids=[f"{v}={x}" for v, x, _ in BAD_SETTINGS])
def test_bad_setting_fails_load(bad_settings_results, i, var, value, hint):
    msg = bad_settings_results[i]
    assert f'litefs_guard: {var}="{value}" is not valid: ' in msg, msg
    assert hint in msg


def test_bad_setting_through_load_then_fixed(bad_settings_results):
    n = len(BAD_SETTINGS)
    assert bad_settings_results[n].startswith("loading ")
    assert 'litefs_guard: LITEFS_GUARD_MARKER="bogus" is not valid' in bad_settings_results[n]
    assert bad_settings_results[n + 1] == "replica"


def test_bad_config_file_fails_load(tmp_path):
    r = run_python(
        """
        import litefs_guard
        litefs_guard.ensure_loaded()
        """,
        env=clean_env(LITEFS_GUARD_CONFIG=tmp_path / "missing.yml", HOME=tmp_path),
    )
    assert r.returncode != 0
    assert "LiteFSGuardError" in r.stderr and str(tmp_path / "missing.yml") in r.stderr


def test_settings_read_once_per_process(node, monkeypatch):
    """Changing the environment after loading changes nothing."""
    conn = node.connect()
    monkeypatch.setenv("LITEFS_GUARD_MARKER", "primary")
    monkeypatch.setenv("LITEFS_GUARD_DIR", "/nonexistent")
    c2 = node.connect()
    cfg = json.loads(c2.execute("SELECT litefs_config()").fetchone()[0])
    assert cfg["marker"] == "replica" and cfg["mount_source"] == "database directory"
    c2.execute("INSERT INTO log VALUES ('still primary')")
    conn.execute("SELECT 1")
