"""The backstop's evidence (a passed lock gate) belongs to one connection's
database file and one write transaction: another connection on the same
thread, the same connection on another thread, or a transaction whose lock
request failed never lets a later write through after a failover. Python's
sqlite3 (3.40) in a subprocess; the node turns replica at the pause."""

import pytest

from conftest import SO, assert_refused, assert_unchanged, need_python_sqlite

# A: a write transaction in progress as primary; then B, another connection
# on the same thread, writes through nolock=1 (no lock calls, no gate).
SAME_THREAD = """
from pyclient import *
a = connect({db!r}); load(a, {so!r})
op(a, "BEGIN IMMEDIATE"); op(a, "INSERT INTO t(v) VALUES ('a')")
pause()
b = sqlite3.connect("file:{db}?nolock=1", uri=True, isolation_level=None)
op(b, "CREATE TABLE evil(x)")
op(b, "INSERT INTO t(v) VALUES ('b')")
op(a, "ROLLBACK")
"""

# The same connection, its transaction begun on one thread and committed on
# another: the first thread then writes through a nolock connection.
CROSS_THREAD = """
from pyclient import *
import threading
a = sqlite3.connect({db!r}, isolation_level=None, check_same_thread=False); load(a, {so!r})
op(a, "BEGIN IMMEDIATE")
t = threading.Thread(target=lambda: (op(a, "INSERT INTO t(v) VALUES ('a')"), op(a, "COMMIT")))
t.start(); t.join()
pause()
b = sqlite3.connect("file:{db}?nolock=1", uri=True, isolation_level=None)
op(b, "CREATE TABLE evil(x)")
"""

# A write whose lock request was answered busy (another process holds the
# lock) passed the gate but never held the lock.
BUSY_FIRST = """
from pyclient import *
holder = sqlite3.connect({db!r}, isolation_level=None)
a = connect({db!r}); load(a, {so!r})
holder.execute("BEGIN IMMEDIATE")
a.execute("PRAGMA busy_timeout=0")
op(a, "INSERT INTO t(v) VALUES ('busy')")
holder.execute("ROLLBACK")
pause()
b = sqlite3.connect("file:{db}?nolock=1", uri=True, isolation_level=None)
op(b, "CREATE TABLE evil(x)")
"""


@pytest.mark.parametrize("script", ["same_thread", "cross_thread", "busy_first"])
@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_no_write_rides_on_another_transactions_evidence(make_node_py, pylive, script, mode):
    need_python_sqlite()
    if mode == "wal" and script != "cross_thread":
        # nolock=1 cannot open a WAL database (no shm): nothing to ride on.
        pytest.skip("nolock=1 needs a rollback-journal database")
    node = make_node_py(mode)
    src = {"same_thread": SAME_THREAD, "cross_thread": CROSS_THREAD, "busy_first": BUSY_FIRST}[script]
    if mode == "wal":
        src = src.replace("file:{db}?nolock=1", "file:{db}?cache=private")
    pl = pylive(src.format(so=str(SO), db=str(node.db)), node.env())
    head = pl.until_pause()
    assert head[0].startswith("ok"), f"loading the guard: {head}"
    node.make_replica()
    before = node.snapshot()
    pl.resume()
    rest = pl.finish()
    assert_refused(rest[0], f"{script} ({mode}): CREATE TABLE after the failover")
    if script == "same_thread":
        assert_refused(rest[1], f"{script} ({mode}): INSERT after the failover")
    after = node.snapshot()
    # Connection A's own rollback may remove A's journal: compare the database.
    assert after[next(k for k in after if k.endswith("app.db"))] == before[next(k for k in before if k.endswith("app.db"))]
    if script != "same_thread":
        assert_unchanged(before, after, f"{script} ({mode})")
