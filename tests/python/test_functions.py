"""litefs_is_primary(), litefs_primary(), litefs_config(), litefs_guard_stats():
values, argument errors, and DIRECTONLY."""

import json
import sqlite3
from pathlib import Path

import pytest

from conftest import VERSION, clean_env, run_json, run_python

CONFIG_KEYS = {
    "version", "mount_dir", "mount_source", "database", "guarded", "marker", "config_file", "config_error",
    "config_problems", "role",
    "is_primary", "may_write", "primary", "halt_lock", "reason", "last_refusal", "vfs", "immediate",
    "keep_wal", "require_fuse", "litefs", "forward", "halt_timeout_ms", "forwarding",
    "forwarded_txid",
}


def one(conn, sql):
    return conn.execute(sql).fetchone()[0]


def config(conn, *args):
    return json.loads(conn.execute(f"SELECT litefs_config({', '.join(args)})").fetchone()[0])


def test_values_on_primary(node):
    conn = node.connect()
    assert one(conn, "SELECT litefs_is_primary()") == 1
    assert one(conn, "SELECT litefs_primary()") is None
    cfg = config(conn)
    assert set(cfg) == CONFIG_KEYS
    assert cfg["role"] == "primary" and cfg["is_primary"] is True and cfg["may_write"] is True
    assert cfg["primary"] is None and cfg["reason"] is None and cfg["halt_lock"] is False
    assert cfg["mount_dir"] == str(node.mount) and cfg["database"] == str(node.db)
    assert cfg["guarded"] is True
    assert cfg["mount_source"] == "database directory" and cfg["marker"] == "replica"
    assert cfg["config_file"] is None and cfg["litefs"] is None and cfg["config_problems"] == []
    assert cfg["vfs"] is True and cfg["immediate"] is True and cfg["keep_wal"] is True
    assert cfg["require_fuse"] is False
    assert cfg["version"] == VERSION
    assert cfg["forward"] is False and cfg["halt_timeout_ms"] == 5000
    assert cfg["forwarding"] is False and cfg["forwarded_txid"] is None


def test_values_on_replica(node):
    node.replica("node-b.internal")
    conn = node.connect()
    assert one(conn, "SELECT litefs_is_primary()") == 0
    assert one(conn, "SELECT litefs_primary()") == "node-b.internal"
    cfg = config(conn)
    assert cfg["role"] == "replica" and cfg["is_primary"] is False and cfg["may_write"] is False
    assert cfg["primary"] == "node-b.internal"
    assert cfg["reason"] == "this node is a replica; the primary is node-b.internal"


def test_replica_without_known_primary(node):
    node.replica("")
    conn = node.connect()
    assert one(conn, "SELECT litefs_is_primary()") == 0
    assert one(conn, "SELECT litefs_primary()") is None
    cfg = config(conn)
    assert cfg["role"] == "replica" and "no primary is known" in cfg["reason"]


def test_values_follow_the_marker_without_reconnecting(node):
    conn = node.connect()
    assert one(conn, "SELECT litefs_is_primary()") == 1
    node.replica("n2")
    assert one(conn, "SELECT litefs_is_primary() || ',' || litefs_primary()") == "0,n2"
    node.primary()
    assert one(conn, "SELECT litefs_is_primary()") == 1


def test_loading_connection_is_guarded_too(tmp_path):
    """The connection that ran load_extension opened its file before the VFS
    existed: the guard adopts that file, so it has the functions, the
    authorizer and the file-layer gate (config says vfs true), like the next
    connection, which is opened through the VFS."""
    mount = tmp_path / "litefs"
    mount.mkdir()
    (mount / ".primary").write_text("node-b\n")
    out = run_json(
        f"""
        import json, sqlite3, litefs_guard
        first = sqlite3.connect({str(mount / 'app.db')!r})
        litefs_guard.load(first)
        second = sqlite3.connect({str(mount / 'app.db')!r})
        res = {{}}
        for name, c in (("first", first), ("second", second)):
            try:
                c.execute("CREATE TABLE t(x)")
                w = "written"
            except sqlite3.DatabaseError as e:
                w = e.sqlite_errorname
            res[name] = [json.loads(c.execute("SELECT litefs_config()").fetchone()[0])["vfs"],
                         c.execute("SELECT litefs_primary()").fetchone()[0], w]
        print(json.dumps(res))
        """,
        env=clean_env(HOME=tmp_path),
    )
    # CREATE TABLE is refused by the lock gate (SQLITE_READONLY).
    assert out == {"first": [True, "node-b", "SQLITE_READONLY"], "second": [True, "node-b", "SQLITE_READONLY"]}


def test_config_format_argument(node):
    conn = node.connect()
    base = one(conn, "SELECT litefs_config()")
    assert one(conn, "SELECT litefs_config('json')") == base
    assert one(conn, "SELECT litefs_config('JSON')") == base
    assert one(conn, "SELECT litefs_config(NULL)") == base


@pytest.mark.parametrize("sql,message", [
    ("SELECT litefs_is_primary(1)", "litefs_is_primary() takes no arguments, got 1 argument(s)"),
    ("SELECT litefs_is_primary('a', 'b')", "litefs_is_primary() takes no arguments, got 2 argument(s)"),
    ("SELECT litefs_primary(NULL)", "litefs_primary() takes no arguments, got 1 argument(s)"),
    ("SELECT litefs_guard_stats(0)", "litefs_guard_stats() takes no arguments, got 1 argument(s)"),
    ("SELECT litefs_config('json', 'yaml')", "litefs_config() takes at most one argument, got 2 argument(s)"),
    ("SELECT litefs_config('xml')", "litefs_config(): unknown format \"xml\"; use 'json' (the default) or 'yaml'"),
    ("SELECT litefs_config(1)", "litefs_config(): the format must be text ('json' or 'yaml'), got an integer"),
    ("SELECT litefs_config(1.5)", "litefs_config(): the format must be text ('json' or 'yaml'), got a real"),
    ("SELECT litefs_config(x'00')", "litefs_config(): the format must be text ('json' or 'yaml'), got a blob"),
])
def test_argument_errors(node, sql, message):
    conn = node.connect()
    with pytest.raises(sqlite3.OperationalError) as ei:
        conn.execute(sql)
    assert str(ei.value) == message


def test_yaml_without_litefs_yml(node):
    conn = node.connect()
    with pytest.raises(sqlite3.OperationalError) as ei:
        conn.execute("SELECT litefs_config('yaml')")
    assert str(ei.value).startswith("litefs_config(): no litefs.yml was found")


def test_memory_connection_without_mount(node):
    mem = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as ei:
        mem.execute("SELECT litefs_is_primary()")
    assert str(ei.value).startswith("no LiteFS mount for this connection")
    cfg = config(mem)
    assert cfg["role"] is None and cfg["mount_dir"] is None and cfg["database"] is None


def test_stats_count_marker_lookups(node):
    conn = node.connect()
    first = json.loads(one(conn, "SELECT litefs_guard_stats()"))
    assert set(first) == {"primary_lookups", "position_reads", "lag_reads"}
    assert all(isinstance(v, int) for v in first.values())
    for _ in range(3):
        one(conn, "SELECT litefs_is_primary()")
    after = json.loads(one(conn, "SELECT litefs_guard_stats()"))["primary_lookups"]
    assert after >= first["primary_lookups"] + 3


def test_with_litefs_yml(tmp_path):
    mount = tmp_path / "litefs"
    mount.mkdir()
    (mount / ".primary").write_text("node-a\n")
    (mount / "app.db").touch()  # The database exists, as on a real replica (creating one there is a write the guard refuses).
    cfg_file = tmp_path / "litefs.yml"
    cfg_file.write_text(
        f'fuse:\n  dir: "{mount}"\ndata:\n  dir: "{tmp_path / "data"}"\n'
        'lease:\n  type: "static"\n  candidate: false\n  advertise-url: "http://node-a:20202"\n'
    )
    out = run_json(
        f"""
        import json, litefs_guard
        c = litefs_guard.connect({str(mount / 'app.db')!r})
        print(json.dumps({{
            "config": json.loads(c.execute("SELECT litefs_config()").fetchone()[0]),
            "yaml": c.execute("SELECT litefs_config('yaml')").fetchone()[0],
            "primary": c.execute("SELECT litefs_primary()").fetchone()[0],
        }}))
        """,
        env=clean_env(LITEFS_GUARD_CONFIG=cfg_file, LITEFS_GUARD_REQUIRE_FUSE=0, HOME=tmp_path),
    )
    cfg = out["config"]
    assert cfg["mount_source"] == "litefs.yml" and cfg["mount_dir"] == str(mount)
    assert cfg["config_file"] == str(cfg_file)
    assert cfg["config_error"] is None and cfg["config_problems"] == []
    assert cfg["litefs"]["fuse"]["dir"] == str(mount)
    assert cfg["role"] == "replica" and out["primary"] == "node-a"
    assert f'dir: "{mount}"' in out["yaml"]


def test_require_fuse_default_with_litefs_yml(tmp_path):
    """A mount named by litefs.yml must be FUSE unless told otherwise: a
    plain directory means LiteFS is not running."""
    mount = tmp_path / "litefs"
    mount.mkdir()
    (mount / "app.db").touch()  # The database exists, as on a real replica (creating one there is a write the guard refuses).
    cfg_file = tmp_path / "litefs.yml"
    cfg_file.write_text(f'fuse:\n  dir: "{mount}"\ndata:\n  dir: "{tmp_path / "data"}"\n'
                        'lease:\n  type: "static"\n  candidate: true\n  advertise-url: "http://a:20202"\n')
    out = run_json(
        f"""
        import json, sqlite3, litefs_guard
        c = litefs_guard.connect({str(mount / 'app.db')!r}, isolation_level=None)
        try:
            c.execute("CREATE TABLE t(x)")
            w = "written"
        except sqlite3.DatabaseError as e:
            w = e.sqlite_errorname
        print(json.dumps({{"write": w, "config": json.loads(c.execute("SELECT litefs_config()").fetchone()[0])}}))
        """,
        env=clean_env(LITEFS_GUARD_CONFIG=cfg_file, HOME=tmp_path),
    )
    assert out["write"] == "SQLITE_READONLY"
    assert out["config"]["require_fuse"] is True and out["config"]["role"] == "not_running"
    assert "not a FUSE mount" in out["config"]["reason"]


CONFIGS = Path(__file__).parents[1] / "configs"
def test_guarded_says_whether_the_database_is_inside_the_mount(tmp_path):
    """Outside every mount the role is the mount's, and writes pass through
    unguarded: `guarded` is what tells (litefs_status exits 3 on it)."""
    mount = tmp_path / "litefs"
    mount.mkdir()
    for db in (mount / "app.db", tmp_path / "out.db"):
        c = sqlite3.connect(db)
        c.execute("CREATE TABLE t(x)")
        c.close()
    (mount / ".primary").write_text("node-b\n")
    out = run_json(
        f"""
        import json, litefs_guard
        res = {{}}
        for name, db in (("inside", {str(mount / 'app.db')!r}), ("outside", {str(tmp_path / 'out.db')!r}),
                         ("memory", ":memory:")):
            cfg = json.loads(litefs_guard.connect(db).execute("SELECT litefs_config()").fetchone()[0])
            res[name] = [cfg["guarded"], cfg["role"]]
        print(json.dumps(res))
        """,
        env=clean_env(HOME=tmp_path, LITEFS_GUARD_DIR=mount, LITEFS_GUARD_REQUIRE_FUSE=0),
    )
    assert out == {"inside": [True, "replica"], "outside": [False, "replica"], "memory": [None, "replica"]}


SHOW_CONFIG = """
    import json, sqlite3, litefs_guard
    c = litefs_guard.connect(":memory:")
    try:
        y = c.execute("SELECT litefs_config('yaml')").fetchone()[0]
    except sqlite3.OperationalError as e:
        y = "error: " + str(e)
    print(json.dumps({"config": json.loads(c.execute("SELECT litefs_config()").fetchone()[0]), "yaml": y}))
    """


@pytest.mark.parametrize("name, key, rendered", [
    ("bad-lease-type.yml", "lease.type", False),
    ("bad-duration.yml", "lease.consul.ttl", False),
    ("bad-url.yml", "lease.advertise-url", True),
])
def test_problems_only_litefs_cares_about_do_not_stop_loading(tmp_path, name, key, rendered):
    """A named litefs.yml with a usable fuse.dir loads; what LiteFS would
    refuse is listed in config_problems, FILE:LINE:COL first where known. The
    model is shown when every value fits it (a bad URL), else null (a
    lease type or duration the model cannot hold)."""
    cfg_file = CONFIGS / name
    out = run_json(SHOW_CONFIG, env=clean_env(LITEFS_GUARD_CONFIG=cfg_file, HOME=tmp_path))
    cfg = out["config"]
    assert cfg["mount_source"] == "litefs.yml" and cfg["config_file"] == str(cfg_file)
    assert cfg["config_error"] is None
    [problem] = cfg["config_problems"]
    assert problem.startswith(str(cfg_file)) and key in problem, problem
    if rendered:
        assert cfg["litefs"]["fuse"]["dir"] == "/litefs"
        assert out["yaml"].startswith("fuse:")
    else:
        assert cfg["litefs"] is None
        assert out["yaml"].startswith(f"error: litefs_config(): {cfg_file} cannot be shown as YAML: {problem}"), out["yaml"]


@pytest.mark.parametrize("name", [
    "bad-syntax.yml", "bad-not-utf8.yml", "bad-alias-bomb.yml", "bad-empty.yml", "bad-relative-dir.yml",
])
def test_a_named_litefs_yml_the_guard_cannot_use_stops_loading(tmp_path, name):
    """Not YAML, or no usable fuse.dir while the mount comes from the file."""
    cfg_file = CONFIGS / name
    r = run_python("import litefs_guard; litefs_guard.ensure_loaded()",
                   env=clean_env(LITEFS_GUARD_CONFIG=cfg_file, HOME=tmp_path))
    assert r.returncode != 0 and str(cfg_file) in r.stderr, r.stderr


@pytest.mark.parametrize("fn", ["litefs_is_primary()", "litefs_primary()", "litefs_config()", "litefs_guard_stats()"])
def test_directonly_in_view_and_trigger(node, fn):
    conn = node.connect()
    conn.execute(f"CREATE VIEW fv AS SELECT {fn} AS x")
    conn.execute(f"CREATE TRIGGER ft AFTER INSERT ON log BEGIN INSERT INTO kw(\"insert\") VALUES ({fn}); END")
    name = fn[:-2]
    with pytest.raises(sqlite3.OperationalError) as ei:
        conn.execute("SELECT x FROM fv")
    assert str(ei.value) == f"unsafe use of {name}()"
    with pytest.raises(sqlite3.OperationalError) as ei:
        conn.execute("INSERT INTO log VALUES ('fires trigger')")
    assert str(ei.value) == f"unsafe use of {name}()"
    assert conn.execute("SELECT count(*) FROM log").fetchone() == (0,)


def test_directonly_in_column_default(node):
    node.connect().execute("CREATE TABLE d(x DEFAULT (litefs_primary()), y)")
    conn = node.connect()  # reads the schema from the file
    with pytest.raises(sqlite3.OperationalError, match=r"unsafe use of litefs_primary\(\)"):
        conn.execute("INSERT INTO d(y) VALUES (1)")
    conn.execute("INSERT INTO d(x, y) VALUES (1, 1)")
    assert conn.execute("SELECT x, y FROM d").fetchall() == [(1, 1)]
