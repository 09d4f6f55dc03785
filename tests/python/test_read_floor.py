"""PRAGMA litefs_min_txid, litefs_wait_ms and litefs_max_lag_ms: a read floor
and bounded staleness, per connection, enforced by the VFS before each read
transaction takes its read lock. `NAME-pos` and `.lag` are hand-written here
as LiteFS writes them (see test_positions.py).

A refused read answers SQLITE_LOCKED ("database table is locked"), not
SQLITE_BUSY: SQLite retries a busy read lock (about ten seconds in WAL mode,
then "locking protocol"; and through the busy handler), which would stretch
the bound. The full message goes to SQLite's log (checked in
tests/rust/tests/read_floor.rs, which can set SQLITE_CONFIG_LOG) and to
litefs_config()'s `last_refusal`.
"""

import json
import sqlite3
import threading
import time

import pytest

from test_positions import one, write_pos

SQLITE_LOCKED = 6


def stats(conn):
    return json.loads(one(conn, "SELECT litefs_guard_stats()"))


def last_refusal(conn):
    return json.loads(one(conn, "SELECT litefs_config()"))["last_refusal"]


def refused(conn, sql="SELECT count(*) FROM t"):
    with pytest.raises(sqlite3.OperationalError) as ei:
        conn.execute(sql).fetchall()
    e = ei.value
    assert e.sqlite_errorcode == SQLITE_LOCKED, (e, e.sqlite_errorcode)
    assert str(e) == "database table is locked"
    return e


@pytest.fixture
def fnode(node):
    """A replica of node-b at TXID 5, `.lag` 0; aux.db at TXID 5 too."""
    node.replica("node-b")
    write_pos(node.mount / "app.db-pos", 5, 1)
    write_pos(node.mount / "aux.db-pos", 5, 1)
    (node.mount / ".lag").write_text("+000000000\n")
    return node


def test_each_pragma_reads_back_its_value(fnode):
    conn = fnode.connect()
    assert one(conn, "PRAGMA litefs_min_txid") == "0"
    assert one(conn, "PRAGMA litefs_wait_ms") == "5000"
    assert one(conn, "PRAGMA litefs_max_lag_ms") == "0"
    assert one(conn, "PRAGMA litefs_min_txid = 42") == "42"
    assert one(conn, "PRAGMA main.LITEFS_MIN_TXID") == "42"
    assert one(conn, "PRAGMA litefs_min_txid = '0000000000000027/83b05248774ce767'") == "39"
    assert one(conn, "PRAGMA litefs_wait_ms = 60000") == "60000"
    assert one(conn, "PRAGMA litefs_max_lag_ms = 2500") == "2500"
    assert one(conn, "PRAGMA litefs_wait_ms") == "60000"
    assert one(conn, "PRAGMA litefs_max_lag_ms") == "2500"
    # Per connection, and nothing inherited: a new connection has the defaults.
    other = fnode.connect()
    assert one(other, "PRAGMA litefs_min_txid") == "0"
    assert one(other, "PRAGMA litefs_wait_ms") == "5000"


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("PRAGMA litefs_min_txid = -1", 'PRAGMA litefs_min_txid = "-1" is not valid: pass a TXID'),
        ("PRAGMA litefs_min_txid = 'soon'", 'PRAGMA litefs_min_txid = "soon" is not valid: pass a TXID'),
        ("PRAGMA litefs_min_txid = '27/1'", 'PRAGMA litefs_min_txid = "27/1" is not valid'),
        ("PRAGMA litefs_wait_ms = 60001", 'PRAGMA litefs_wait_ms = "60001" is not valid: pass an integer from 0 to 60000'),
        ("PRAGMA litefs_wait_ms = 1.5", 'PRAGMA litefs_wait_ms = "1.5" is not valid'),
        ("PRAGMA litefs_max_lag_ms = 'x'", 'PRAGMA litefs_max_lag_ms = "x" is not valid: pass an integer from 0 (off)'),
    ],
)
def test_bad_values_are_clear_errors(fnode, sql, expected):
    conn = fnode.connect()
    with pytest.raises(sqlite3.OperationalError) as ei:
        conn.execute(sql)
    assert str(ei.value).startswith("litefs_guard: " + expected), str(ei.value)
    assert one(conn, "PRAGMA litefs_min_txid") == "0"


def test_no_floor_and_a_floor_reached_cost_no_lookups(fnode):
    conn = fnode.connect()
    one(conn, "SELECT count(*) FROM t")
    s0 = stats(conn)
    for _ in range(20):
        one(conn, "SELECT count(*) FROM t")
    s1 = stats(conn)
    assert (s1["position_reads"], s1["lag_reads"], s1["primary_lookups"]) == (
        s0["position_reads"],
        s0["lag_reads"],
        s0["primary_lookups"],
    )
    conn.execute("PRAGMA litefs_min_txid = 5")
    for _ in range(20):
        assert one(conn, "SELECT count(*) FROM t") == 2
    s2 = stats(conn)
    assert s2["position_reads"] - s1["position_reads"] == 1, "one read reaches it; then remembered"
    assert s2["primary_lookups"] == s1["primary_lookups"]
    assert s2["lag_reads"] == s1["lag_reads"]


def test_a_read_waits_until_the_position_reaches_the_floor(fnode):
    conn = fnode.connect()
    conn.execute("PRAGMA litefs_min_txid = 9")

    def advance():
        for txid in (6, 7, 8):
            time.sleep(0.05)
            write_pos(fnode.mount / "app.db-pos", txid)
        time.sleep(0.1)
        write_pos(fnode.mount / "app.db-pos", 9)

    t = threading.Thread(target=advance)
    t0 = time.monotonic()
    t.start()
    assert one(conn, "SELECT count(*) FROM t") == 2
    took = time.monotonic() - t0
    t.join()
    # Written at ~250 ms; seen within one polling pause (16 ms) and some slack.
    assert 0.24 <= took < 0.5, took
    assert last_refusal(conn) is None


@pytest.mark.parametrize("wait_ms", [0, 50, 200, 1000])
def test_a_floor_not_reached_refuses_the_read_within_50ms_of_the_wait(fnode, wait_ms):
    conn = fnode.connect(timeout=0)
    conn.execute(f"PRAGMA litefs_wait_ms = {wait_ms}")
    conn.execute("PRAGMA litefs_min_txid = 6")
    t0 = time.monotonic()
    refused(conn)
    took_ms = (time.monotonic() - t0) * 1000
    print(f"litefs_wait_ms {wait_ms}: refused after {took_ms:.1f} ms")
    assert abs(took_ms - wait_ms) <= 50, took_ms
    msg = last_refusal(conn)
    assert msg == (
        f"litefs_guard: read of {fnode.db} refused: this node is at "
        "0000000000000005/0000000000000001 (TXID 5), below the read floor TXID 6 "
        f"(PRAGMA litefs_min_txid), after waiting {msg.split('after waiting ')[1].split(' ms')[0]} ms "
        "(PRAGMA litefs_wait_ms); the primary is node-b"
    ), msg
    # The connection is fine: the floor reached, the next read goes through.
    write_pos(fnode.mount / "app.db-pos", 6)
    assert one(conn, "SELECT count(*) FROM t") == 2


def test_busy_timeout_does_not_stretch_the_wait(fnode):
    """Python's default timeout is 5 s (busy_timeout 5000): no retry of a refused read."""
    conn = fnode.connect(timeout=2.0)
    conn.execute("PRAGMA litefs_wait_ms = 200")
    conn.execute("PRAGMA litefs_min_txid = 6")
    t0 = time.monotonic()
    refused(conn)
    took_ms = (time.monotonic() - t0) * 1000
    print(f"busy_timeout 2000, litefs_wait_ms 200: refused after {took_ms:.1f} ms")
    assert abs(took_ms - 200) <= 50, took_ms


def test_a_read_already_open_is_not_stopped_and_the_next_one_is(fnode):
    conn = fnode.connect(timeout=0)
    conn.execute("BEGIN")
    assert one(conn, "SELECT count(*) FROM t") == 2
    conn.execute("PRAGMA litefs_wait_ms = 0")
    conn.execute("PRAGMA litefs_min_txid = 100")
    assert one(conn, "SELECT count(*) FROM t") == 2, "same read transaction"
    conn.execute("COMMIT")
    refused(conn)
    conn.execute("PRAGMA litefs_min_txid = 0")
    assert one(conn, "SELECT count(*) FROM t") == 2, "0 turns it off"


def test_a_missing_position_file_refuses_with_its_reason(fnode):
    conn = fnode.connect(timeout=0)
    (fnode.mount / "app.db-pos").unlink()
    conn.execute("PRAGMA litefs_wait_ms = 0")
    conn.execute("PRAGMA litefs_min_txid = 1")
    refused(conn)
    assert f"at an unknown position (cannot read {fnode.mount / 'app.db-pos'}: it does not exist)" in last_refusal(conn)


def test_max_lag_refuses_at_once_and_recovers(fnode):
    conn = fnode.connect(timeout=2.0)
    s0 = stats(conn)
    conn.execute("PRAGMA litefs_max_lag_ms = 1000")
    (fnode.mount / ".lag").write_text("+000001500\n")
    t0 = time.monotonic()
    refused(conn)
    assert time.monotonic() - t0 < 0.05, "at once, busy_timeout or not"
    assert last_refusal(conn) == (
        f"litefs_guard: read of {fnode.db} refused: replica is 1500 ms behind primary node-b; "
        "limit 1000 ms (PRAGMA litefs_max_lag_ms)"
    )
    (fnode.mount / ".lag").write_text("+2147483647\n")
    refused(conn)
    assert "replica has not caught up with primary node-b since it started" in last_refusal(conn)
    (fnode.mount / ".lag").write_text("+000000900\n")
    assert one(conn, "SELECT count(*) FROM t") == 2
    # Steady state: one .lag read per read transaction.
    s1 = stats(conn)
    for _ in range(10):
        assert one(conn, "SELECT count(*) FROM t") == 2
    s2 = stats(conn)
    assert s2["lag_reads"] - s1["lag_reads"] == 10
    assert s2["position_reads"] == s0["position_reads"]
    # The two refusals' messages, and the two litefs_config() calls.
    assert s2["primary_lookups"] - s0["primary_lookups"] == 4
    conn.execute("PRAGMA litefs_max_lag_ms = 0")
    (fnode.mount / ".lag").write_text("+000009999\n")
    assert one(conn, "SELECT count(*) FROM t") == 2
    assert stats(conn)["lag_reads"] == s2["lag_reads"], "off: no .lag read"


def test_max_lag_on_the_primary_passes(node):
    (node.mount / ".lag").write_text("+000000000\n")
    conn = node.connect()
    conn.execute("PRAGMA litefs_max_lag_ms = 1")
    assert one(conn, "SELECT count(*) FROM t") == 2
    conn.execute("INSERT INTO t(v) VALUES ('c')")


def test_an_attached_database_has_its_own_floor(fnode):
    conn = fnode.connect(timeout=0)
    conn.execute("ATTACH ? AS aux", (str(fnode.aux),))
    assert one(conn, "PRAGMA aux.litefs_min_txid = 6") == "6"
    assert one(conn, "PRAGMA aux.litefs_wait_ms = 100") == "100"
    assert one(conn, "PRAGMA aux.litefs_min_txid") == "6"
    assert one(conn, "PRAGMA litefs_min_txid") == "0", "main's is its own"
    assert one(conn, "SELECT count(*) FROM main.t") == 2
    t0 = time.monotonic()
    refused(conn, "SELECT count(*) FROM aux.a")
    assert 0.08 <= time.monotonic() - t0 < 0.2
    write_pos(fnode.mount / "aux.db-pos", 6)
    assert one(conn, "SELECT count(*) FROM aux.a") == 1


def test_shared_cache_refuses_the_pragmas(fnode):
    uri = f"file:{fnode.db}?cache=shared"
    a = fnode.connect(uri, uri=True)
    b = fnode.connect(uri, uri=True)
    assert one(a, "SELECT count(*) FROM t") == 2 and one(b, "SELECT count(*) FROM t") == 2
    for conn in (a, b):
        with pytest.raises(sqlite3.OperationalError) as ei:
            conn.execute("PRAGMA litefs_min_txid = 1")
        assert str(ei.value).startswith(
            "litefs_guard: PRAGMA litefs_min_txid is not available on a shared-cache database"
        ), str(ei.value)
