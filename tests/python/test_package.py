"""The litefs_guard Python package: loading, and turning refusals into
NotPrimaryError."""

import glob
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import litefs_guard
from conftest import VERSION, clean_env, require, run_json, run_python


def test_version_is_the_workspace_version():
    # The wheel's metadata carries Cargo's version; __version__ reads it back.
    assert litefs_guard.__version__ == VERSION


def test_loadable_path_is_the_packaged_extension():
    p = Path(litefs_guard.loadable_path())
    assert p.is_absolute() and p.name == "liblitefs_guard.so" and p.parent == Path(litefs_guard.__file__).parent
    assert p.read_bytes()[:4] == b"\x7fELF"
    assert b"sqlite3_litefsguard_init" in p.read_bytes()


def test_ensure_loaded_then_connect_guards_new_connections(tmp_path):
    (tmp_path / ".primary").write_text("node-z\n")
    (tmp_path / "app.db").touch()  # The database exists, as on a real replica (creating one there is a write the guard refuses).
    out = run_json(
        f"""
        import json, sqlite3, litefs_guard
        litefs_guard.ensure_loaded()
        litefs_guard.ensure_loaded()  # once per process
        c = litefs_guard.connect({str(tmp_path / 'app.db')!r}, isolation_level=None, timeout=1.5)
        try:
            c.execute("CREATE TABLE t(x)")
            res = "written"
        except sqlite3.DatabaseError as e:
            res = [e.sqlite_errorname, litefs_guard.translate(e, c).primary]
        cfg = litefs_guard.status(c)
        stats = json.loads(sqlite3.connect(":memory:").execute("SELECT litefs_guard_stats()").fetchone()[0])
        print(json.dumps({{"write": res, "vfs": cfg["vfs"], "type": type(c).__module__ + "." + type(c).__name__,
                           "plain": "primary_lookups" in stats}}))
        """,
        env=clean_env(HOME=tmp_path),
    )
    assert out == {"write": ["SQLITE_READONLY", "node-z"], "vfs": True, "type": "sqlite3.Connection", "plain": True}


class _NoExtensions(sqlite3.Connection):
    """A connection class like the one of a Python built without
    --enable-loadable-sqlite-extensions."""

    @property
    def enable_load_extension(self):
        raise AttributeError("enable_load_extension")


def test_load_without_enable_load_extension_is_clear():
    conn = sqlite3.connect(":memory:", factory=_NoExtensions)
    with pytest.raises(litefs_guard.LiteFSGuardError) as ei:
        litefs_guard.load(conn)
    msg = str(ei.value)
    assert "cannot load extensions" in msg and "enable_load_extension" in msg
    assert "/usr/bin/python3" in msg and "pysqlite3" in msg


def _python_without_extensions():
    """A python3 whose sqlite3 lacks enable_load_extension (pyenv builds)."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    candidates = [shutil.which("python3", path=path)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/python3")))
    probe = "import sqlite3, sys; sys.exit(3 if not hasattr(sqlite3.Connection, 'enable_load_extension') else 0)"
    for c in filter(None, candidates):
        try:
            if subprocess.run([c, "-c", probe], capture_output=True, timeout=30).returncode == 3:
                return c
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


def test_load_on_real_python_without_extension_support():
    python = _python_without_extensions()
    require(python is not None, "a python3 whose sqlite3 lacks enable_load_extension (pyenv's)")
    pkg_parent = str(Path(litefs_guard.__file__).parent.parent)
    env = clean_env(PYTHONPATH=pkg_parent)
    r = run_python(
        """
        import litefs_guard
        try:
            litefs_guard.connect(":memory:")
        except litefs_guard.LiteFSGuardError as e:
            print("ERROR:", e)
        """,
        env=env,
        python=python,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ERROR: this Python's sqlite3 module cannot load extensions"), r.stdout
    assert "/usr/bin/python3" in r.stdout and "pysqlite3" in r.stdout


def test_load_failure_is_guard_error(monkeypatch, tmp_path):
    bogus = tmp_path / "liblitefs_guard.so"
    bogus.write_bytes(b"not an ELF file")
    monkeypatch.setattr(litefs_guard, "loadable_path", lambda: str(bogus))
    with pytest.raises(litefs_guard.LiteFSGuardError) as ei:
        litefs_guard.load(sqlite3.connect(":memory:"))
    assert str(ei.value).startswith(f"loading {bogus} failed: ")
    assert isinstance(ei.value.__cause__, sqlite3.OperationalError)


def test_load_leaves_extension_loading_disabled():
    conn = sqlite3.connect(":memory:")
    litefs_guard.load(conn)
    with pytest.raises(sqlite3.OperationalError, match="not authorized"):
        conn.load_extension(litefs_guard.loadable_path())


def test_raise_if_not_primary_names_the_primary(node):
    node.replica("node-b")
    conn = node.connect()
    for sql in ("INSERT INTO log VALUES ('x')", "DROP TABLE t"):
        with pytest.raises(litefs_guard.NotPrimaryError) as ei:
            try:
                conn.execute(sql)
            except sqlite3.Error as exc:
                litefs_guard.raise_if_not_primary(exc, conn)
                raise
        e = ei.value
        assert str(e) == "write refused: this node is a replica; the primary is node-b (SQLITE_AUTH: not authorized)"
        assert e.primary == "node-b" and e.role == "replica" and e.sqlite_errorcode == 23
        assert isinstance(e, litefs_guard.LiteFSGuardError)
        assert isinstance(e.__cause__, sqlite3.DatabaseError)


def test_translate_execution_time_refusal(node):
    conn = node.connect()
    conn.execute("INSERT INTO log VALUES (?)", ("a",))
    node.replica("node-c")
    with pytest.raises(litefs_guard.NotPrimaryError) as ei:
        with litefs_guard.translate_errors(conn):
            conn.execute("INSERT INTO log VALUES (?)", ("b",))
    assert ei.value.sqlite_errorname == "SQLITE_READONLY" and ei.value.primary == "node-c"
    assert "the primary is node-c" in str(ei.value)


def test_translate_errors_passes_other_errors(node):
    conn = node.connect()
    with pytest.raises(sqlite3.IntegrityError):
        with litefs_guard.translate_errors(conn):
            conn.execute("INSERT INTO t(id, v) VALUES (1, 'dup')")
    with pytest.raises(ZeroDivisionError):
        with litefs_guard.translate_errors(conn):
            1 / 0


def test_read_only_open_is_not_a_replica_refusal(node):
    """SQLITE_READONLY from a mode=ro connection on the primary is the
    application's own doing, not the guard's."""
    ro = sqlite3.connect(f"file:{node.db}?mode=ro", uri=True, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as ei:
        ro.execute("INSERT INTO log VALUES ('x')")
    assert ei.value.sqlite_errorcode & 0xFF == 8
    assert litefs_guard.translate(ei.value, ro) is None
    assert litefs_guard.is_refusal(ei.value)


def test_translate_not_running(node, tmp_path):
    conn = node.connect()
    conn.execute("SELECT 1 FROM t").fetchall()
    gone = tmp_path / "gone"
    os.rename(node.mount, gone)
    try:
        with pytest.raises(sqlite3.DatabaseError) as ei:
            conn.execute("DELETE FROM t")
        err = litefs_guard.translate(ei.value, conn)
        assert err is not None and err.role == "not_running" and err.primary is None
        assert str(err).startswith("write refused: LiteFS is not running: ") and str(node.mount) in str(err)
    finally:
        os.rename(gone, node.mount)


def test_is_refusal_by_code_and_by_message():
    class Old(sqlite3.DatabaseError):
        pass  # no sqlite_errorcode, as before Python 3.11
    assert litefs_guard.is_refusal(Old("not authorized"))
    assert litefs_guard.is_refusal(Old("attempt to write a readonly database"))
    assert not litefs_guard.is_refusal(Old("database is locked"))
    e = sqlite3.OperationalError("x")
    e.sqlite_errorcode = 1544  # SQLITE_READONLY_DIRECTORY
    assert litefs_guard.is_refusal(e)
    e.sqlite_errorcode = 5
    assert not litefs_guard.is_refusal(e)
    err = litefs_guard.translate(Old("not authorized"))
    assert str(err) == "write refused: this node is not the LiteFS primary (SQLITE_AUTH: not authorized)"


def test_console_script_execs_the_packaged_tool(tmp_path):
    """`litefs-guard` (the wheel's console script) is the tool shipped in the
    package, litefs_guard/bin/litefs-guard: same output, same exit status."""
    from litefs_guard import _cli

    assert _cli.bundled() == str(Path(litefs_guard.__file__).parent / "bin" / "litefs-guard")
    script = Path(sys.executable).parent / "litefs-guard"
    r = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout.strip()) == (0, f"litefs-guard {VERSION}"), r.stderr
    r = subprocess.run([str(script), "status", "--bogus"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 64 and "Usage: litefs-guard status" in r.stderr, r.stderr


def test_console_script_without_the_tool(monkeypatch, tmp_path, capsys):
    from litefs_guard import _cli

    monkeypatch.setattr(_cli, "bundled_path", lambda: str(tmp_path / "bin" / "litefs-guard"))
    assert _cli.main(["status"]) == 69
    assert "the command line tool is not in this installation" in capsys.readouterr().err
