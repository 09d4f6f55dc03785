"""A hot rollback journal on a replica is left alone: a stock process dies
in the middle of a big UPDATE (rollback mode, tiny cache: pages spilled
into the database, -journal left behind). On a replica, a guarded read
fails with SQLITE_READONLY (low byte 8) — read-write, read-only and
ATTACHed opens, and a write as first statement is refused with 23/8 — and
neither the database nor the -journal changes. Control: on the primary the
same guarded read rolls the journal back and answers the pre-crash rows."""

import subprocess

import pytest
from conftest import PYTHON, assert_refused, assert_unchanged, code_of, guarded, q, stock

CRASH = """
import os, sqlite3, sys
db = sys.argv[1]
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA journal_mode=DELETE")
c.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)")
c.execute("BEGIN")
c.executemany("INSERT INTO big(v) VALUES (randomblob(400))", [()] * 3000)
c.execute("COMMIT")
c.close()
import shutil; shutil.copyfile(db, sys.argv[2])   # the committed state
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA cache_size=5")
c.execute("BEGIN")
c.execute("UPDATE big SET v = randomblob(400)")
os._exit(1)   # no COMMIT, no ROLLBACK, no close: the journal stays hot
"""

QUERY = "SELECT count(*), sum(length(v)), hex(substr(min(v), 1, 8)), hex(substr(max(v), 1, 8)) FROM big"


@pytest.fixture
def hot(make_node):
    node = make_node("delete")
    db = node.mount / "hot.db"
    pre = node.root / "committed.db"
    r = subprocess.run([PYTHON, "-c", CRASH, str(db), str(pre)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, f"crash helper: {r.returncode} {r.stderr}"
    journal = node.mount / "hot.db-journal"
    assert journal.exists() and journal.stat().st_size > 0, "no hot journal left behind"
    with open(db, "rb") as a, open(pre, "rb") as b:
        assert a.read() != b.read(), "no page spilled into the database before the crash"
    node.hot, node.pre = db, pre
    return node


def test_hot_journal_read_refused_on_replica(runner, hot):
    hot.make_replica()
    before = hot.snapshot()
    out = guarded(runner, hot, f".open {hot.hot}", QUERY, QUERY)
    after = hot.snapshot()
    assert_unchanged(before, after, "a read with a hot journal on a replica")
    for line in out[1:]:
        assert line.startswith("err") and code_of(line) & 0xFF == 8, f"read with a hot journal on a replica: {line!r} (want SQLITE_READONLY)"


def test_hot_journal_read_only_open(runner, hot):
    hot.make_replica()
    before = hot.snapshot()
    out = guarded(runner, hot, f".open-ro {hot.hot}", QUERY)
    assert_unchanged(before, hot.snapshot(), "read-only open")
    assert out[1].startswith("err") and code_of(out[1]) & 0xFF == 8, f"read-only open, hot journal: {out[1]!r}"


def test_hot_journal_attached(runner, hot):
    hot.make_replica()
    before = hot.snapshot()
    out = guarded(runner, hot, ".open :memory:", f"ATTACH {q(hot.hot)} AS h", QUERY.replace("FROM big", "FROM h.big"))
    assert_unchanged(before, hot.snapshot(), "ATTACHed")
    # ATTACH reads the schema, which finds the hot journal: either the ATTACH
    # or the read after it is refused with SQLITE_READONLY(_ROLLBACK).
    refused = [l for l in out[1:] if l.startswith("err")]
    assert refused and code_of(refused[0]) & 0xFF == 8, f"ATTACHed db with a hot journal: {out[1:]}"


def test_hot_journal_write_first(runner, hot):
    hot.make_replica()
    before = hot.snapshot()
    out = guarded(runner, hot, f".open {hot.hot}", "INSERT INTO big(v) VALUES (x'00')", "VACUUM")
    assert_refused(out[1], "INSERT with a hot journal")
    assert_refused(out[2], "VACUUM with a hot journal")
    assert_unchanged(before, hot.snapshot(), "writes with a hot journal")


def test_hot_journal_rolled_back_on_primary(runner, hot):
    """Control: on the primary a guarded read rolls back as stock does."""
    want = stock(runner, f".open-ro {hot.pre}", QUERY)[1]
    assert want.startswith("ok 3000|1200000|"), want
    out = guarded(runner, hot, f".open {hot.hot}", QUERY)
    assert out[1] == want, f"primary, after rollback: {out[1]!r} (committed state: {want!r})"
    j = hot.mount / "hot.db-journal"
    assert not j.exists() or j.stat().st_size == 0 or open(j, "rb").read(28) == bytes(28), "journal still hot after rollback"
