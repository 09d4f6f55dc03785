"""PRAGMA litefs_min_txid / litefs_wait_ms / litefs_max_lag_ms on every SQLite
release, in WAL and rollback-journal mode: the pragmas reach the VFS
(SQLITE_FCNTL_PRAGMA) and read back, a floor reached lets reads through, a
floor not reached refuses the read with SQLITE_LOCKED after the wait (not
stretched by busy_timeout, not turned into SQLITE_PROTOCOL by WAL retries),
the staleness limit refuses at once, and the connection recovers."""

import time

import pytest
from conftest import guarded

LOCKED = "err 6 database table is locked"


def pos(txid):
    return f"{txid:016x}/{1:016x}\n"


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_read_floor_on_every_version(runner, make_node, mode):
    node = make_node(mode)
    node.make_replica("node-a")
    (node.mount / "app.db-pos").write_text(pos(5))
    (node.mount / ".lag").write_text("+000000000\n")
    t0 = time.monotonic()
    out = guarded(
        runner,
        node,
        f".open {node.db}",
        ".busy 3000",
        "PRAGMA litefs_min_txid",
        "PRAGMA litefs_wait_ms",
        "PRAGMA litefs_min_txid = 5",
        "SELECT count(*) > 0 FROM t",
        "PRAGMA litefs_wait_ms = 150",
        "PRAGMA main.litefs_min_txid = 6",
        "SELECT count(*) > 0 FROM t",
        "SELECT count(*) > 0 FROM t",
        "PRAGMA litefs_min_txid = 0",
        "SELECT count(*) > 0 FROM t",
        "PRAGMA litefs_wait_ms = 'soon'",
    )
    took = time.monotonic() - t0
    assert list(out[:8]) == ["ok ", "ok 0", "ok 0", "ok 5000", "ok 5", "ok 1", "ok 150", "ok 6"], out
    assert out[8] == LOCKED and out[9] == LOCKED, out
    assert out[10] == "ok 0" and out[11] == "ok 1", out
    assert out[12].startswith('err 1 litefs_guard: PRAGMA litefs_wait_ms = "soon" is not valid'), out
    # Two waits of 150 ms; a busy_timeout of 3 s or WAL's retries would show.
    assert 0.3 <= took < 1.5, took

    (node.mount / ".lag").write_text("+000000500\n")
    out = guarded(
        runner,
        node,
        f".open {node.db}",
        ".busy 3000",
        "PRAGMA litefs_max_lag_ms = 100",
        "SELECT count(*) > 0 FROM t",
        "PRAGMA litefs_max_lag_ms = 1000",
        "SELECT count(*) > 0 FROM t",
    )
    assert list(out) == ["ok ", "ok 0", "ok 100", LOCKED, "ok 1000", "ok 1"], out
