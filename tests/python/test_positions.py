"""litefs_txid(), litefs_position(), litefs_lag_ms(), litefs_wait_txid():
values read from `NAME-pos` and `.lag` (hand-written here, in LiteFS's
format: write the file, call the function), waits and their timing,
refusals, argument errors, DIRECTONLY.

A real LiteFS stand-in (litefs-sim) advancing positions with commits is
covered in tests/sim/tests/positions.rs; an interrupt that ends a wait, which
needs SQLite 3.41+ (Python's here may be older), in tests/rust/tests/positions.rs.
"""

import sqlite3
import threading
import time

import pytest

from conftest import clean_env, run_json

POS_27 = "0000000000000027/83b05248774ce767"


def pos(txid, checksum=0x83B05248774CE767):
    return f"{txid:016x}/{checksum:016x}"


def write_pos(path, txid, checksum=0x83B05248774CE767):
    # LiteFS writes the file whole; a rename keeps readers from seeing half.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(pos(txid, checksum) + "\n")
    tmp.replace(path)


def one(conn, sql, params=()):
    return conn.execute(sql, params).fetchone()[0]


def error_of(conn, sql, params=()):
    with pytest.raises(sqlite3.DatabaseError) as ei:
        conn.execute(sql, params).fetchall()
    return str(ei.value)


@pytest.fixture
def pnode(node):
    """The node with `app.db-pos` at TXID 0x27, `aux.db-pos` at 5, `.lag` 0."""
    (node.mount / "app.db-pos").write_text(POS_27 + "\n")
    write_pos(node.mount / "aux.db-pos", 5, 1)
    (node.mount / ".lag").write_text("+000000000\n")
    return node


def test_values_read_from_the_files(pnode):
    conn = pnode.connect()
    assert one(conn, "SELECT litefs_txid()") == 0x27
    assert one(conn, "SELECT litefs_txid('main')") == 0x27
    assert one(conn, "SELECT litefs_txid('MAIN')") == 0x27
    assert one(conn, "SELECT litefs_txid(NULL)") == 0x27
    assert one(conn, "SELECT litefs_position()") == POS_27
    assert one(conn, "SELECT typeof(litefs_txid()) || typeof(litefs_position())") == "integertext"
    conn.execute("ATTACH ? AS aux", (str(pnode.aux),))
    assert one(conn, "SELECT litefs_txid('aux')") == 5
    assert one(conn, "SELECT litefs_position('aux')") == pos(5, 1)
    assert one(conn, "SELECT litefs_lag_ms()") == 0


def test_positions_follow_commits_without_reconnecting(pnode):
    """Each commit makes LiteFS write a new position; the functions read it
    afresh on every call (here the test plays LiteFS's part)."""
    conn = pnode.connect()
    seen = []
    for i in range(1, 6):
        conn.execute("INSERT INTO log VALUES (?)", (f"commit {i}",))
        write_pos(pnode.mount / "app.db-pos", 0x27 + i, 0xABC + i)
        seen.append((one(conn, "SELECT litefs_txid()"), one(conn, "SELECT litefs_position()")))
    assert seen == [(0x27 + i, pos(0x27 + i, 0xABC + i)) for i in range(1, 6)]
    big = 2**63 - 1
    write_pos(pnode.mount / "app.db-pos", big, 0xFFFFFFFFFFFFFFFF)
    assert one(conn, "SELECT litefs_txid()") == big
    assert one(conn, "SELECT litefs_position()") == "7fffffffffffffff/ffffffffffffffff"
    write_pos(pnode.mount / "app.db-pos", big + 1)
    msg = error_of(conn, "SELECT litefs_txid()")
    assert "larger than an SQL INTEGER holds; use litefs_position()" in msg
    assert one(conn, "SELECT litefs_position()") == pos(big + 1)


def test_lag(pnode):
    conn = pnode.connect()
    for content, want in [
        ("+000000830\n", 830),
        ("+000000000\n", 0),
        ("+000012345\n", 12345),
        ("+2147483647\n", None),
        ("-000000003\n", -3),
    ]:
        (pnode.mount / ".lag").write_text(content)
        assert one(conn, "SELECT litefs_lag_ms()") == want, content


def test_missing_and_bad_files_are_named(pnode):
    conn = pnode.connect()
    (pnode.mount / "app.db-pos").unlink()
    msg = error_of(conn, "SELECT litefs_txid()")
    assert msg == (
        f"litefs_txid(): cannot read {pnode.mount / 'app.db-pos'}: it does not exist; "
        "is LiteFS running and is the database one of its databases?"
    )
    (pnode.mount / "app.db-pos").write_text("27/83b0\n")
    msg = error_of(conn, "SELECT litefs_position()")
    assert msg.startswith("litefs_position(): cannot read ")
    assert '"27/83b0\\n", not a LiteFS position' in msg
    (pnode.mount / "app.db-pos").write_text("x" * 1000)
    assert "holds more than 64 bytes" in error_of(conn, "SELECT litefs_txid()")
    (pnode.mount / ".lag").write_text("830\n")
    msg = error_of(conn, "SELECT litefs_lag_ms()")
    assert msg.startswith(f"litefs_lag_ms(): cannot read {pnode.mount / '.lag'}: it holds \"830\\n\"")
    (pnode.mount / ".lag").unlink()
    assert "it does not exist" in error_of(conn, "SELECT litefs_lag_ms()")


def test_schema_must_be_a_guarded_database(pnode):
    conn = pnode.connect()
    assert error_of(conn, "SELECT litefs_txid('nope')") == (
        "litefs_txid(): no database named \"nope\" on this connection; "
        "pass 'main' or the name of an ATTACHed database"
    )
    long_name = "n" * 100
    msg = error_of(conn, "SELECT litefs_position(?)", (long_name,))
    assert '"' + "n" * 40 + '"… (100 bytes)' in msg and "n" * 41 not in msg
    conn.execute("ATTACH ':memory:' AS mem")
    assert error_of(conn, "SELECT litefs_txid('mem')") == (
        "litefs_txid(): database \"mem\" is in memory or temporary; "
        "only a database in a LiteFS mount has a replication position"
    )
    assert "database \"temp\" is in memory" in error_of(conn, "SELECT litefs_position('temp')")
    assert "no database named \"aux\"" in error_of(conn, "SELECT litefs_txid('aux')")
    mem = sqlite3.connect(":memory:")
    assert "database \"main\" is in memory" in error_of(mem, "SELECT litefs_txid()")
    assert "database \"main\" is in memory" in error_of(mem, "SELECT litefs_wait_txid(1, 0)")
    mem.close()


def test_a_database_outside_the_configured_mount(tmp_path):
    mount = tmp_path / "litefs"
    mount.mkdir()
    (mount / "app.db-pos").write_text(POS_27 + "\n")
    (mount / ".lag").write_text("+000000830\n")
    out = run_json(
        f"""
        import json, sqlite3, litefs_guard
        c = litefs_guard.connect({str(mount / 'app.db')!r}, isolation_level=None)
        c.execute("ATTACH ? AS other", ({str(tmp_path / 'other.db')!r},))
        res = {{"txid": c.execute("SELECT litefs_txid()").fetchone()[0],
               "lag": c.execute("SELECT litefs_lag_ms()").fetchone()[0]}}
        try:
            c.execute("SELECT litefs_txid('other')").fetchone()
        except sqlite3.DatabaseError as e:
            res["other"] = str(e)
        print(json.dumps(res))
        """,
        env=clean_env(LITEFS_GUARD_DIR=mount, LITEFS_GUARD_REQUIRE_FUSE=0, HOME=tmp_path),
    )
    assert out["txid"] == 0x27 and out["lag"] == 830
    assert out["other"] == (
        f"litefs_txid(): database \"other\" ({tmp_path / 'other.db'}) is outside every LiteFS "
        "mount; only a database in a LiteFS mount has a replication position"
    )


def test_wait_returns_1_at_once_when_reached(pnode):
    conn = pnode.connect()
    for want in (0, 0x26, 0x27):
        t0 = time.monotonic()
        assert one(conn, "SELECT litefs_wait_txid(?, 5000)", (want,)) == 1
        assert time.monotonic() - t0 < 0.05
    assert one(conn, "SELECT litefs_wait_txid(litefs_position(), 0)") == 1
    assert one(conn, "SELECT litefs_wait_txid(?, 0)", (pos(0x27, 0),)) == 1
    assert one(conn, "SELECT litefs_wait_txid(?, 0)", (pos(0x28, 0).upper(),)) == 0


@pytest.mark.parametrize("arg", ["txid", "position"])
def test_wait_returns_1_once_another_writer_reaches_it(pnode, arg):
    conn = pnode.connect()
    target = 0x30 if arg == "txid" else pos(0x30, 0x1234)

    def advance():
        for txid in (0x28, 0x29, 0x2F):
            time.sleep(0.05)
            write_pos(pnode.mount / "app.db-pos", txid)
        time.sleep(0.1)
        write_pos(pnode.mount / "app.db-pos", 0x30)

    t = threading.Thread(target=advance)
    t0 = time.monotonic()
    t.start()
    got = one(conn, "SELECT litefs_wait_txid(?, 5000)", (target,))
    took = time.monotonic() - t0
    t.join()
    assert got == 1
    # Written at ~250 ms; seen within one polling pause (16 ms) and some slack.
    assert 0.24 <= took < 0.5, took
    assert one(conn, "SELECT litefs_txid()") == 0x30


@pytest.mark.parametrize("bound_ms", [0, 1, 50, 200, 1000])
def test_wait_times_out_within_50ms_of_the_bound(pnode, bound_ms):
    conn = pnode.connect()
    t0 = time.monotonic()
    assert one(conn, "SELECT litefs_wait_txid(1000, ?)", (bound_ms,)) == 0
    took_ms = (time.monotonic() - t0) * 1000
    print(f"timeout {bound_ms} ms: returned after {took_ms:.1f} ms")
    assert abs(took_ms - bound_ms) <= 50, took_ms


def test_wait_does_not_busy_loop(pnode):
    """A 1 s wait costs little CPU: polling backs off to 16 ms."""
    conn = pnode.connect()
    cpu0 = time.process_time()
    assert one(conn, "SELECT litefs_wait_txid(1000, 1000)") == 0
    cpu = time.process_time() - cpu0
    assert cpu < 0.1, cpu


def test_wait_inside_a_read_transaction_fails_at_once(pnode):
    conn = pnode.connect()
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM t").fetchone()
    t0 = time.monotonic()
    msg = error_of(conn, "SELECT litefs_wait_txid(1000, 5000)")
    assert time.monotonic() - t0 < 0.05
    assert msg.startswith(
        "litefs_wait_txid(): called inside a transaction that holds a read lock on main; "
        "a read transaction held open stops replication on a replica"
    ), msg
    # Even when the position is reached already: the call itself is wrong.
    assert "read lock on main" in error_of(conn, "SELECT litefs_wait_txid(1, 0)")
    conn.execute("COMMIT")
    assert one(conn, "SELECT litefs_wait_txid(1, 0)") == 1
    # A statement that reads main holds the read lock while it runs.
    assert "read lock on main" in error_of(conn, "SELECT litefs_wait_txid(1, 0) FROM t")
    # A write transaction too.
    conn.execute("BEGIN IMMEDIATE")
    assert "read lock on main" in error_of(conn, "SELECT litefs_wait_txid(1, 0)")
    conn.execute("ROLLBACK")
    # BEGIN alone (DEFERRED) holds no lock yet, on SQLite 3.34+ (txn_state).
    conn.execute("BEGIN")
    assert one(conn, "SELECT litefs_wait_txid(1, 0)") == 1
    conn.execute("ROLLBACK")


def test_interrupt_on_this_sqlite(pnode):
    """sqlite3_is_interrupted arrived in SQLite 3.41: from there an interrupt
    ends a wait at once; before, the wait runs to its timeout (documented)."""
    conn = pnode.connect()
    threading.Timer(0.1, conn.interrupt).start()
    t0 = time.monotonic()
    try:
        got = one(conn, "SELECT litefs_wait_txid(1000, 600)")
    except sqlite3.OperationalError as e:
        got = str(e)
    took = time.monotonic() - t0
    if sqlite3.sqlite_version_info >= (3, 41, 0):
        assert got == "litefs_wait_txid(): interrupted" and 0.09 < took < 0.2, (got, took)
    else:
        # Not seen by the wait; SQLite may still report the interrupt once
        # the function returns.
        assert got in (0, "interrupted"), got
        assert abs(took - 0.6) <= 0.05, took


BAD = [
    ("litefs_txid(1)", "litefs_txid(): the schema must be text ('main' or an ATTACH name), got the integer 1"),
    ("litefs_txid(x'00')", "litefs_txid(): the schema must be text ('main' or an ATTACH name), got a blob"),
    ("litefs_txid('main', 'aux')", "litefs_txid() takes at most one argument (a schema name), got 2 argument(s)"),
    ("litefs_position(2.5)", "litefs_position(): the schema must be text ('main' or an ATTACH name), got the real 2.5"),
    ("litefs_lag_ms('main')", "litefs_lag_ms() takes no arguments, got 1 argument(s)"),
    ("litefs_wait_txid(1)", "litefs_wait_txid() takes two arguments (a TXID or a position from litefs_position(), and a timeout in ms), got 1 argument(s)"),
    ("litefs_wait_txid(1, 0, 'main')", "litefs_wait_txid() takes two arguments (a TXID or a position from litefs_position(), and a timeout in ms), got 3 argument(s)"),
    ("litefs_wait_txid(-1, 0)", "litefs_wait_txid(): the TXID must be an INTEGER from 0 up or a position from litefs_position(), got the integer -1"),
    ("litefs_wait_txid(NULL, 0)", "litefs_wait_txid(): the TXID must be an INTEGER from 0 up or a position from litefs_position(), got NULL"),
    ("litefs_wait_txid(99999999999999999999, 0)", "litefs_wait_txid(): the TXID must be an INTEGER from 0 up or a position from litefs_position(), got the real 1e20"),
    ("litefs_wait_txid(1.5, 0)", "litefs_wait_txid(): the TXID must be an INTEGER from 0 up or a position from litefs_position(), got the real 1.5"),
    ("litefs_wait_txid(x'01', 0)", "litefs_wait_txid(): the TXID must be an INTEGER from 0 up or a position from litefs_position(), got a blob"),
    ("litefs_wait_txid('39', 0)", "litefs_wait_txid(): \"39\" is not a position; pass TXID/CHECKSUM as litefs_position() returns it (16 hex digits each) or an INTEGER TXID"),
    ("litefs_wait_txid('0000000000000027/83b05248774ce767\n', 0)", "litefs_wait_txid(): \"0000000000000027/83b05248774ce767\\n\" is not a position"),
    ("litefs_wait_txid(1, -1)", "litefs_wait_txid(): the timeout must be an INTEGER from 0 to 60000 (ms), got the integer -1"),
    ("litefs_wait_txid(1, 60001)", "litefs_wait_txid(): the timeout must be an INTEGER from 0 to 60000 (ms), got the integer 60001"),
    ("litefs_wait_txid(1, NULL)", "litefs_wait_txid(): the timeout must be an INTEGER from 0 to 60000 (ms), got NULL"),
    ("litefs_wait_txid(1, 10.0)", "litefs_wait_txid(): the timeout must be an INTEGER from 0 to 60000 (ms), got the real 10.0"),
    ("litefs_wait_txid(1, '10')", "litefs_wait_txid(): the timeout must be an INTEGER from 0 to 60000 (ms), got the text \"10\""),
]


@pytest.mark.parametrize("call,expected", BAD, ids=[c for c, _ in BAD])
def test_bad_arguments_are_clear_errors(pnode, call, expected):
    conn = pnode.connect()
    msg = error_of(conn, f"SELECT {call}")
    assert msg.startswith(expected), msg


def test_echoed_text_is_cut(pnode):
    conn = pnode.connect()
    msg = error_of(conn, "SELECT litefs_wait_txid(?, 0)", ("p" * 5000,))
    assert msg == (
        'litefs_wait_txid(): "' + "p" * 40 + '"… (5000 bytes) is not a position; pass TXID/CHECKSUM '
        "as litefs_position() returns it (16 hex digits each) or an INTEGER TXID"
    )


@pytest.mark.parametrize(
    "call", ["litefs_txid()", "litefs_position()", "litefs_lag_ms()", "litefs_wait_txid(1, 0)"]
)
def test_views_and_triggers_cannot_call_them(pnode, call):
    """DIRECTONLY. TEMP views and triggers are exempt (SQLite's rule), so the
    view and trigger live in main."""
    conn = pnode.connect()
    conn.execute(f"CREATE VIEW pv AS SELECT {call} AS v")
    msg = error_of(conn, "SELECT v FROM pv")
    assert "unsafe use of" in msg and call.split("(")[0] in msg, msg
    conn.execute(
        f"CREATE TRIGGER pt AFTER INSERT ON log BEGIN INSERT INTO log SELECT {call}; END"
    )
    msg = error_of(conn, "INSERT INTO log VALUES ('x')")
    assert "unsafe use of" in msg, msg
