"""The position functions on every SQLite release: values from hand-written
`app.db-pos` / `.lag`, a wait's timeout, the read-lock refusal as
documented per version (3.34+ asks sqlite3_txn_state; 3.31–3.33 refuse any
open transaction), DIRECTONLY, and a position text used as a wait target."""

import time

from conftest import guarded

POS = "0000000000000027/83b05248774ce767"
REFUSED_READ = (
    "err 1 litefs_wait_txid(): called inside a transaction that holds a read lock on main; "
    "a read transaction held open stops replication on a replica"
)
REFUSED_OLD = (
    "err 1 litefs_wait_txid(): called inside a transaction that may hold a read lock on main "
    "(SQLite before 3.34 cannot tell, so every open transaction is refused)"
)


def test_position_functions_on_every_version(runner, node):
    (node.mount / "app.db-pos").write_text(POS + "\n")
    (node.mount / ".lag").write_text("+000000830\n")
    t0 = time.monotonic()
    out = guarded(
        runner,
        node,
        f".open {node.db}",
        "SELECT litefs_txid(), litefs_position(), litefs_lag_ms()",
        f"SELECT litefs_wait_txid('{POS}', 0), litefs_wait_txid(39, 0), litefs_wait_txid(40, 0)",
        "SELECT litefs_wait_txid(40, 300)",
    )
    took = time.monotonic() - t0
    assert list(out) == ["ok ", f"ok 39|{POS}|830", "ok 1|1|0", "ok 0"], out
    assert 0.3 <= took < 2.0, took
    (node.mount / ".lag").write_text("+2147483647\n")
    out = guarded(runner, node, f".open {node.db}", "SELECT litefs_lag_ms() IS NULL")
    assert out[1] == "ok 1", out


def test_wait_inside_a_transaction_per_version(runner, node):
    (node.mount / "app.db-pos").write_text(POS + "\n")
    out = guarded(
        runner,
        node,
        f".open {node.db}",
        "BEGIN",
        "SELECT litefs_wait_txid(1, 0)",
        "SELECT count(*) > 0 FROM t",
        "SELECT litefs_wait_txid(1, 0)",
        "COMMIT",
        "SELECT litefs_wait_txid(1, 0)",
    )
    assert out[1] == "ok " and out[3] == "ok 1" and out[5] == "ok " and out[6] == "ok 1", out
    if runner.version >= (3, 34, 0):
        # BEGIN alone holds no lock yet; after a read it does.
        assert out[2] == "ok 1", out
        assert out[4].startswith(REFUSED_READ), out
    else:
        assert out[2].startswith(REFUSED_OLD), out
        assert out[4].startswith(REFUSED_OLD), out


def test_views_cannot_call_them(runner, node):
    (node.mount / "app.db-pos").write_text(POS + "\n")
    out = guarded(
        runner,
        node,
        f".open {node.db}",
        "CREATE VIEW pv AS SELECT litefs_position() AS p",
        "SELECT p FROM pv",
        "CREATE VIEW pw AS SELECT litefs_wait_txid(1, 0) AS w",
        "SELECT w FROM pw",
    )
    assert out[1] == "ok " and out[3] == "ok ", out
    assert out[2] == "err 1 unsafe use of litefs_position()", out
    assert out[4] == "err 1 unsafe use of litefs_wait_txid()", out
