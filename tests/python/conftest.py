"""Shared helpers for the litefs_guard tests run through Python's sqlite3.

The guard is loaded once into this process with default settings (no
LITEFS_GUARD_* variables: each database's own directory is its LiteFS
mount). Anything that needs other settings runs in a subprocess.
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

for _k in [k for k in os.environ if k.startswith("LITEFS_GUARD_")]:
    del os.environ[_k]

import litefs_guard  # noqa: E402  (after the environment is clean)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from simnodes import sim  # noqa: E402,F401  (the fixture: a real two-node litefs-sim)

litefs_guard.ensure_loaded()

SQLITE_AUTH = 23
SQLITE_READONLY = 8
REFUSED = (SQLITE_AUTH, SQLITE_READONLY)
IN_CI = os.environ.get("CI") == "true"
#: The version, from the one place it is written: the workspace Cargo.toml.
_CARGO_TOML = Path(__file__).resolve().parents[2] / "Cargo.toml"
VERSION = tomllib.loads(_CARGO_TOML.read_text())["workspace"]["package"]["version"]


def require(condition, what):
    """Skip locally when a prerequisite is missing; under CI=true fail."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing under CI=true: {what}")
    pytest.skip(f"prerequisite missing: {what}")


def sha(path):
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None


class Node:
    """A fake LiteFS mount: a directory, its `.primary` marker and databases."""

    SCHEMA = """
        CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE, n INTEGER DEFAULT 0);
        CREATE TABLE log(msg TEXT);
        CREATE TABLE kw(update_count INTEGER, deleted INTEGER, "insert" TEXT);
        CREATE INDEX t_n ON t(n);
        CREATE VIEW tv AS SELECT id, v FROM t;
        CREATE TRIGGER t_upd AFTER UPDATE ON t BEGIN INSERT INTO log VALUES ('updated'); END;
        INSERT INTO t(id, v, n) VALUES (1, 'a', 1), (2, 'b', 2);
        INSERT INTO kw VALUES (3, 0, 'x');
        PRAGMA user_version = 7;
    """

    def __init__(self, root, template=None):
        self.mount = Path(root) / "litefs"
        self.mount.mkdir()
        self.db = self.mount / "app.db"
        self.aux = self.mount / "aux.db"
        self.conns = []
        if template is not None:
            for name in ("app.db", "aux.db"):
                shutil.copyfile(template / name, self.mount / name)
            return
        c = self.connect()
        c.executescript("BEGIN;" + self.SCHEMA + "COMMIT;")
        c.execute("ATTACH ? AS aux", (str(self.aux),))
        c.execute("CREATE TABLE aux.a(x)")
        c.execute("INSERT INTO aux.a VALUES (1)")
        c.execute("DETACH aux")
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        c.close()
        self.conns.remove(c)
        assert not Path(str(self.db) + "-wal").exists()

    def connect(self, path=None, **kw):
        kw.setdefault("isolation_level", None)
        c = sqlite3.connect(str(path or self.db), **kw)
        self.conns.append(c)
        return c

    def replica(self, primary="node-b"):
        (self.mount / ".primary").write_text(primary + "\n")

    def primary(self):
        (self.mount / ".primary").unlink(missing_ok=True)

    def files(self):
        """sha256 of every database, WAL and journal file in the mount. Not
        -shm, which readers write too; an empty WAL counts as no WAL (SQLite
        creates it at a reader's first read and removes it at the last close)."""
        return {
            p.name: sha(p)
            for p in sorted(self.mount.iterdir())
            if p.name.endswith((".db", ".db-wal", ".db-journal"))
            and not (p.name.endswith("-wal") and p.stat().st_size == 0)
        }

    def counts(self, conn):
        tables = ["t", "log", "kw"]
        out = {t: conn.execute(f"SELECT count(*) FROM main.{t}").fetchone()[0] for t in tables}
        out["schema"] = conn.execute("SELECT count(*) FROM main.sqlite_master").fetchone()[0]
        out["user_version"] = conn.execute("PRAGMA main.user_version").fetchone()[0]
        out["sum_n"] = conn.execute("SELECT total(n) FROM main.t").fetchone()[0]
        return out

    def close(self):
        for c in self.conns:
            try:
                c.close()
            except Exception:
                pass


@pytest.fixture(scope="session")
def node_template(tmp_path_factory):
    return Node(tmp_path_factory.mktemp("template")).mount


@pytest.fixture
def node(tmp_path, node_template):
    """A fresh mount holding app.db (tables t, log, kw; index, view, trigger;
    user_version 7) and aux.db (table a), both WAL; this node is the primary."""
    n = Node(tmp_path, node_template)
    yield n
    n.close()


def code_of(exc):
    return exc.sqlite_errorcode & 0xFF


def assert_refused(conn, sql, params=(), codes=REFUSED):
    with pytest.raises(sqlite3.DatabaseError) as ei:
        conn.execute(sql, params).fetchall()
    assert code_of(ei.value) in codes, f"{sql!r}: {ei.value} ({ei.value.sqlite_errorname})"
    return ei.value


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEFS_GUARD_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_python(code, env=None, python=None, cwd=None, timeout=60):
    """Runs `code` in a fresh interpreter (settings are read once per process)."""
    return subprocess.run(
        [python or sys.executable, "-c", textwrap.dedent(code)],
        env=env if env is not None else clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_json(code, env=None, **kw):
    r = run_python(code, env=env, **kw)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return json.loads(r.stdout.strip().splitlines()[-1])
