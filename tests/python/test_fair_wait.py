"""The fair wait for the write lock (issue #14): waiters take the lock in
arrival order, as soon as it is free, across threads and processes; the
application's busy timeout holds in wall-clock time; a connection without
a busy handler still fails at once. Each scenario (fairwait_scenarios.py)
also runs with LITEFS_GUARD_FAIR_WAIT=0, SQLite's own wait, as the control
that shows the assertions can fail."""

import sys
from pathlib import Path

import pytest

from conftest import clean_env, run_json

HERE = Path(__file__).resolve().parent
SQLITE_BUSY = 5


def scenario(name, db, fair=True):
    env = clean_env() if fair else clean_env(LITEFS_GUARD_FAIR_WAIT=0)
    code = f"import sys; sys.argv = ['x', {name!r}, {str(db)!r}]; sys.path.insert(0, {str(HERE)!r}); " \
        "import runpy; runpy.run_path(sys.path[0] + '/fairwait_scenarios.py', run_name='__main__')"
    return run_json(code, env=env, python=sys.executable, timeout=60)


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_waiters_take_the_lock_in_arrival_order_as_soon_as_it_is_free(node, kind):
    r = scenario(kind, node.mount / "app.db")
    assert r["errors"] == [None] * 5, r
    assert r["order"] == [f"w{i}" for i in range(5)], r
    # The front was woken by the release, not by a timer.
    assert r["first_after_release_ms"] < 15, r
    assert r["line_while_waiting"], "the waiters stood in the node-wide line"
    assert not r["line_after"], "the last one out removed the line's file"


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_control_sqlites_own_wait_is_not_in_arrival_order(node, kind):
    r = scenario(kind, node.mount / "app.db", fair=False)
    assert r["errors"] == [None] * 5, r
    assert r["order"] != [f"w{i}" for i in range(5)], r
    assert not r["line_while_waiting"]


def test_the_busy_timeout_holds_in_wall_clock_time_even_behind_others(node):
    r = scenario("timeouts", node.mount / "app.db")
    for mode in ("BEGIN", "BEGIN IMMEDIATE", "autocommit"):
        for t in (200, 500):
            w = r[f"{mode}/{t / 1000}"]
            assert w["code"] == SQLITE_BUSY, (mode, t, w)
            # Never before the timeout, and only a few ms after it.
            assert t <= w["ms"] < t + 40, (mode, t, w)
    assert r["no-handler"]["code"] == SQLITE_BUSY
    assert r["no-handler"]["ms"] < 20, r["no-handler"]
    assert r["patient"]["code"] is None, "it waited its turn and wrote"


def test_no_writer_is_starved_under_sustained_load(node):
    r = scenario("sustained", node.mount / "app.db")
    for i, w in r.items():
        assert w["fails"] == 0, (i, w)
        assert w["n"] > 50, (i, w)
        # Six writers holding ~1 ms each: a waiter is never passed over for long.
        assert w["max_ms"] < 150, (i, w)
