"""The guard on a real two-node litefs-sim (FUSE): n2 refuses a write with
NotPrimaryError naming n1, writes after the lease moved to n2, and with no
primary at all refuses naming nobody."""

import sqlite3

import pytest

import litefs_guard


def connect(path):
    return litefs_guard.connect(str(path), isolation_level=None)


def insert(conn, value):
    try:
        conn.execute("INSERT INTO t VALUES (?)", (value,))
    except sqlite3.Error as exc:
        litefs_guard.raise_if_not_primary(exc, conn)
        raise


def test_replica_refuses_until_it_holds_the_lease(sim):
    c1 = connect(sim.mount("n1") / "app.db")
    c2 = None
    try:
        c1.execute("CREATE TABLE t(x)")
        insert(c1, "from n1")
        assert litefs_guard.status(c1)["role"] == "primary"

        c2 = connect(sim.mount("n2") / "app.db")
        assert c2.execute("SELECT x FROM t").fetchall() == [("from n1",)]
        with pytest.raises(litefs_guard.NotPrimaryError) as ei:
            insert(c2, "from n2, refused")
        assert ei.value.primary == "n1" and ei.value.role == "replica"
        assert "the primary is n1" in str(ei.value)

        sim.lease("n2")
        insert(c2, "from n2")
        assert sorted(c1.execute("SELECT x FROM t").fetchall()) == [("from n1",), ("from n2",)]
        with pytest.raises(litefs_guard.NotPrimaryError, match="the primary is n2"):
            insert(c1, "from n1, refused")

        sim.lease(None)
        with pytest.raises(litefs_guard.NotPrimaryError) as ei:
            insert(c2, "nobody")
        assert ei.value.primary is None and ei.value.role == "replica"
        assert c2.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    finally:
        c1.close()
        if c2 is not None:
            c2.close()


def test_hold_and_release(sim):
    c1 = connect(sim.mount("n1") / "app.db")
    try:
        c1.execute("CREATE TABLE t(x)")
        assert sim.hold("n2") == "held=n2"
        assert "held=n2" in sim.command("status")
        insert(c1, 1)
        assert sim.command("pos app.db n2") != sim.command("pos app.db")
        assert sim.release("n2") == "released=n2"
        assert sim.command("pos app.db n2") == sim.command("pos app.db")
    finally:
        c1.close()
