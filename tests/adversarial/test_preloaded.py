"""A connection that already had the database open when the guard was
loaded into it (`.open DB` then `.load SO`; `sqlite3 DB -cmd '.load SO'`;
Python's `connect(DB).load_extension(SO)`), and the :memory: connection
that loaded the guard (the README's recipe) ATTACHing the database: on a
replica every write is refused with 23/8 and no byte changes; with the
node primary at first, a write succeeds, then after the node becomes a
replica a statement prepared before (cached) and new ones are refused,
and `PRAGMA journal_mode=…` does not take the database out of its mode."""

import re
import shutil
import subprocess
import time

import pytest
from conftest import (
    PYTHON,
    SO,
    SQLITE3_CLI,
    assert_all_refused,
    assert_ok,
    guarded,
    need_python_sqlite,
    q,
    require,
    run,
)


def writes(p="", s="main", mode="wal"):
    switch = "DELETE" if mode == "wal" else "WAL"
    return [
        f"INSERT INTO {p}t(v, n) VALUES ('preloaded', 1)",
        f"UPDATE {p}t SET n = n + 1",
        f"DELETE FROM {p}t WHERE id > 30",
        f"CREATE TABLE {p}newt(a)",
        f"DROP TABLE {p}orders_data",
        f"PRAGMA {p}user_version = 99",
        f"PRAGMA {p}journal_mode = {switch}",
        f"VACUUM {s}",
    ]


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_open_then_load_replica(runner, make_node, mode):
    node = make_node(mode)
    ws = writes(mode=mode)
    node.make_replica()
    before = node.snapshot()
    out = run(runner, f".open {node.db}", f".load {SO}", "SELECT count(*) FROM t", *ws, "PRAGMA journal_mode", env=node.env())
    assert_ok(out[1], "loading into the open connection")
    assert out[2] == "ok 40", f"read: {out[2]}"
    assert out[-1] == f"ok {mode}", f"journal mode after the attempts: {out[-1]}"
    assert_all_refused(ws, out[3:-1], before, node.snapshot(), f"open-then-load ({mode})")


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_loading_connection_attach(runner, make_node, mode):
    """The :memory: connection that ran the load ATTACHes the replica's db."""
    node = make_node(mode)
    ws = writes("x.", "x", mode)
    node.make_replica()
    before = node.snapshot()
    out = guarded(runner, node, f"ATTACH {q(node.db)} AS x", "SELECT count(*) FROM x.t", *ws)
    assert out[1] == "ok 40", f"read: {out[1]}"
    assert_all_refused(ws, out[2:], before, node.snapshot(), f"loading connection ATTACH ({mode})")


CLI_WRITES = [
    "INSERT INTO t(v) VALUES ('cli')",
    "SELECT count(*) FROM t; INSERT INTO t(v) VALUES ('cli')",
    "VACUUM",
    "CREATE TABLE newt(a)",
    "PRAGMA journal_mode=DELETE",
    "PRAGMA user_version=5",
]


@pytest.mark.parametrize("sql", CLI_WRITES)
def test_cli_db_then_load(make_node_py, sql):
    """`sqlite3 DB -cmd '.load SO' SQL`: the CLI opens DB before loading."""
    require(shutil.which("sqlite3") is not None, "sqlite3 CLI (apt-get install sqlite3)")
    node = make_node_py("wal")
    node.make_replica()
    before = node.snapshot()
    res = subprocess.run([SQLITE3_CLI, str(node.db), "-cmd", f".load {SO}", sql], capture_output=True, text=True, env=node.env(), timeout=30)
    codes = [int(c) for c in re.findall(r"\((\d+)\)\s*$", res.stderr, re.M)]
    lines = [f"err {codes[-1]} {res.stderr.strip()}"] if res.returncode != 0 and codes else [f"ok {res.stdout.strip()} (rc {res.returncode}, {res.stderr.strip()})"]
    assert_all_refused([sql], lines, before, node.snapshot(), "sqlite3 DB -cmd .load")


class LockHolder:
    """Another process holding SQLite's write lock on the database (WAL:
    the WAL write lock, byte 120 of -shm; rollback: RESERVED, byte
    0x40000001 of the database) until released. It writes nothing."""

    def __init__(self, path, offset):
        code = (
            "import fcntl, os, sys\n"
            f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
            f"fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, {offset}, 0)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
        )
        self.p = subprocess.Popen([PYTHON, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().strip()
        assert line == "locked", f"could not take the write lock on {path}"

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write("\n")
            self.p.stdin.flush()
            self.p.wait(10)


@pytest.mark.parametrize("stmt", ["cached", "next"])
@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_open_then_load_failover(runner, make_node, live, gates, mode, stmt):
    node = make_node(mode)
    (pa,) = gates(1)
    pa.hold()
    ws = writes(mode=mode)
    cached = "INSERT INTO t(v) VALUES ('cached')"
    cmds = [f".open {node.db}", f".load {SO}", "PRAGMA busy_timeout=60000", "INSERT INTO t(v) VALUES ('primary')", pa.cmd(), cached, *ws, "PRAGMA journal_mode", "SELECT count(*) FROM t"]
    lv = live(runner, cmds, node.env())
    head = lv.until(4)
    assert_ok(head[1], "loading into the open connection")
    assert_ok(head[3], "INSERT as primary")
    before = node.snapshot()  # the runner waits at the pause: nothing moves
    holder = None
    if stmt == "cached":
        lockfile, off = (f"{node.db}-shm", 120) if mode == "wal" else (node.db, 0x40000001)
        holder = LockHolder(lockfile, off)
        pa.release()
        time.sleep(0.8)  # the runner prepares `cached` (as primary) and waits for the write lock
        node.make_replica()
        holder.release()
    else:
        node.make_replica()
        pa.release()
    out = lv.finish()
    res = out[5:]
    assert_all_refused([cached, *ws], res[:-2], before, node.snapshot(), f"open-then-load failover ({mode}, {stmt})")
    assert res[-2] == f"ok {mode}", f"journal mode after the failover: {res[-2]}"
    assert res[-1] == "ok 41", f"read after the failover: {res[-1]}"


PY_PRELOADED = """
import pyclient as c
conn = c.connect({db!r})
c.load(conn, {so!r})
ins = "INSERT INTO t(v) VALUES (?)"
c.op(conn, ins, ("primary",))
c.pause()
c.op(conn, ins, ("cached",))
c.op(conn, "UPDATE t SET n = n + 1")
c.op(conn, "PRAGMA journal_mode={switch}")
c.op(conn, "VACUUM")
c.op(conn, "PRAGMA journal_mode")
c.op(conn, "SELECT count(*) FROM t")
"""


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_python_connect_then_load_failover(make_node_py, pylive, mode):
    """Python: connect(DB), load_extension(SO) on it, INSERT as primary,
    failover, the same INSERT again (the statement cache reuses it)."""
    need_python_sqlite()
    node = make_node_py(mode)
    switch = "DELETE" if mode == "wal" else "WAL"
    pl = pylive(PY_PRELOADED.format(db=str(node.db), so=str(SO), switch=switch), node.env())
    head = pl.until_pause()
    assert_ok(head[0], "load_extension on the open connection")
    assert_ok(head[1], "INSERT as primary")
    node.make_replica()
    before = node.snapshot()
    pl.resume()
    rest = pl.finish()
    assert_all_refused(
        ["cached INSERT", "UPDATE", f"PRAGMA journal_mode={switch}", "VACUUM"], rest[:4], before, node.snapshot(), f"python connect-then-load ({mode})"
    )
    assert rest[-2] == f"ok {mode}", f"journal mode after the failover: {rest[-2]}"
    assert rest[-1] == "ok 41", f"read: {rest[-1]}"
