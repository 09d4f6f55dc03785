"""README's recipes, extracted and run as written (scripts/readme-snippet.sh):
"read your own writes" for the sqlite3 CLI and Python, and "write from a
replica" (which needs PRAGMA litefs_forward, the write-forwarding work).

Two stand-in nodes, plain directories (each database's directory is its
mount, default guard settings): a primary and a replica (`.primary`), both at
TXID 5 with table t(x). LiteFS's part is played by hand: the primary's
`app.db-pos` goes to 6 as the recipe writes (written just before: what
`litefs_position()` reads after COMMIT is all a recipe sees), and a
"replicator" copies t into the replica's database with stock SQLite (the
sqlite3 CLI without the guard) after a delay, then writes the replica's
`app.db-pos`.
"""

import os
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

import litefs_guard
from conftest import clean_env, require
from test_positions import pos
from test_positions import write_pos as _write_pos_file


def write_pos(db, txid):
    """`NAME-pos` of database `db` at `txid`."""
    _write_pos_file(Path(str(db) + "-pos"), txid)

ROOT = Path(__file__).resolve().parents[2]
SQLITE_LOCKED = 6


def recipe(name):
    r = subprocess.run(["bash", str(ROOT / "scripts" / "readme-snippet.sh"), name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


class Nodes:
    def __init__(self, root):
        self.primary = root / "a" / "litefs" / "app.db"
        self.replica = root / "b" / "litefs" / "app.db"
        for db in (self.primary, self.replica):
            db.parent.mkdir(parents=True)
            c = sqlite3.connect(db)
            c.execute("CREATE TABLE t(x)")
            c.close()
            write_pos(db, 5)
        (self.replica.parent / ".primary").write_text("node-a\n")
        self.threads = []

    def replicate(self, txid, delay):
        """In `delay` s: the replica gets the primary's rows of t, then TXID `txid`."""

        def run():
            time.sleep(delay)
            sql = f"ATTACH '{self.primary}' AS p; BEGIN; DELETE FROM main.t; INSERT INTO main.t SELECT * FROM p.t; COMMIT;"
            subprocess.run(["sqlite3", str(self.replica), sql], check=True, env=clean_env())
            write_pos(self.replica, txid)

        t = threading.Thread(target=run)
        t.start()
        self.threads.append(t)

    def join(self):
        for t in self.threads:
            t.join()


@pytest.fixture
def nodes(tmp_path):
    n = Nodes(tmp_path)
    yield n
    n.join()


def rows(db):
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT x FROM t").fetchall()
    finally:
        c.close()


# -- sqlite3 CLI -------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path):
    """Runs a shell script with `.load litefs_guard` finding this build's extension."""
    require(shutil.which("sqlite3"), "the sqlite3 CLI")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "litefs_guard.so").symlink_to(litefs_guard.loadable_path())

    def run(script, timeout=30):
        env = clean_env(LD_LIBRARY_PATH=lib)
        return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=timeout)

    return run


def cli_on_nodes(nodes):
    text = recipe("ryw-cli")
    # The first command runs on the primary, the second on the replica.
    assert text.count("/litefs/app.db") == 2, text
    first, second, rest = text.split("/litefs/app.db")
    return first + str(nodes.primary) + second + str(nodes.replica) + rest


def test_readme_recipe_ryw_cli_waits_for_the_write(nodes, cli):
    write_pos(nodes.primary, 6)  # as LiteFS will at the recipe's COMMIT
    nodes.replicate(6, delay=0.5)
    t0 = time.monotonic()
    r = cli(cli_on_nodes(nodes))
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert r.stdout == "6\nhello\n", r.stdout
    assert rows(nodes.primary) == [("hello",)]
    assert took >= 0.45, took


def test_readme_recipe_ryw_cli_fails_when_the_replica_stays_behind(nodes, cli):
    write_pos(nodes.primary, 6)
    t0 = time.monotonic()
    r = cli(cli_on_nodes(nodes))
    took = time.monotonic() - t0
    assert r.returncode != 0
    assert r.stdout == "6\n", r.stdout
    assert "database table is locked (6)" in r.stderr, r.stderr
    assert 4.9 <= took < 10, took  # litefs_wait_ms's default, 5 s


def test_without_the_floor_the_replica_reads_stale(nodes, cli):
    """The control: the same read with no floor answers at once, without the row."""
    write_pos(nodes.primary, 6)
    text = cli_on_nodes(nodes).replace("PRAGMA litefs_min_txid = '$pos'", "PRAGMA litefs_min_txid = 0")
    r = cli(text)
    assert r.returncode == 0 and r.stdout == "0\n", (r.stdout, r.stderr)


# -- Python --------------------------------------------------------------------------


def python_recipe():
    ns = {}
    exec(recipe("ryw-python"), ns)
    return ns["write"], ns["read_after"]


def test_readme_recipe_ryw_python(nodes):
    write, read_after = python_recipe()
    primary = litefs_guard.connect(nodes.primary)
    replica = litefs_guard.connect(nodes.replica)
    try:
        write_pos(nodes.primary, 6)
        position = write(primary, "INSERT INTO t VALUES (?)", ("hello",))
        assert position == pos(6)
        assert replica.execute("SELECT x FROM t").fetchall() == [], "the replica is behind"
        nodes.replicate(6, delay=0.3)
        t0 = time.monotonic()
        assert read_after(replica, position, "SELECT x FROM t") == [("hello",)]
        assert time.monotonic() - t0 >= 0.25
    finally:
        primary.close()
        replica.close()


def test_readme_recipe_ryw_python_times_out_on_a_replica_behind(nodes):
    write, read_after = python_recipe()
    replica = litefs_guard.connect(nodes.replica)
    try:
        with pytest.raises(TimeoutError, match="this node has not reached 0000000000000006/"):
            read_after(replica, pos(6), "SELECT x FROM t", timeout_ms=100)
    finally:
        replica.close()


# -- write from a replica ----------------------------------------------------------------


def test_readme_recipe_forward_python(nodes):
    """Needs PRAGMA litefs_forward (the write-forwarding work). Without it the
    pragma is unknown, SQLite ignores it, and the INSERT is refused on the
    replica (SQLITE_AUTH, "not authorized").

    On this stand-in nothing ships the write to a primary: what is checked is
    that the replica's connection may write with forwarding on, and that the
    recipe runs as written."""
    (nodes.replica.parent / "app.db-lock").touch()  # LiteFS's lock file (opens by name there)
    text = recipe("forward-python")
    assert text.count("/litefs/app.db") == 1
    ns = {}
    try:
        exec(text.replace("/litefs/app.db", str(nodes.replica)), ns)
        assert ns["conn"].execute("PRAGMA litefs_forward").fetchone()[0] == "1"
        assert ns["position"] >= pos(5)
    finally:
        if "conn" in ns:
            ns["conn"].close()
    assert rows(nodes.replica) == [("written on a replica",)]


def test_readme_recipe_forward_cli(nodes, cli):
    """The CLI recipe on the replica stand-in: with forwarding the INSERT goes
    through under the halt lock; the same command without the pragma is refused."""
    (nodes.replica.parent / "app.db-lock").touch()  # LiteFS's lock file
    text = recipe("forward-cli")
    assert text.count("/litefs/app.db") == 1
    r = cli(text.replace("/litefs/app.db", str(nodes.replica)))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1\n", r.stdout
    assert rows(nodes.replica) == [("written on a replica",)]
    r = cli(text.replace("/litefs/app.db", str(nodes.replica)).replace('"PRAGMA litefs_forward = ON" ', ""))
    assert r.returncode != 0 and "not authorized (23)" in r.stderr, (r.stdout, r.stderr)
    assert rows(nodes.replica) == [("written on a replica",)]
