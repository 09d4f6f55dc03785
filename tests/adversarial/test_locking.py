"""Writes under unusual locking are refused.

(a) `?nolock=1` (open and ATTACH): SQLite makes no lock call at all; every
    write stock completes that way (rollback mode; WAL where stock can) is
    refused with 23/8, nothing changes.
(b) `locking_mode=EXCLUSIVE` — set on a :memory: main before ATTACH
    (inherited), after ATTACH (unqualified), as `PRAGMA x.locking_mode`, on
    the database itself: a first write as primary is allowed; after the
    node becomes a replica (the runner is paused between commands) a
    statement prepared BEFORE the change ("cached") and new ones are
    refused and no byte changes — in WAL and rollback mode, after a
    committed and after a rolled-back primary transaction. Also with
    Python's statement cache (deterministic, SQLite 3.40)."""

import time

import pytest
from conftest import (
    SO,
    assert_all_refused,
    assert_ok,
    attack_vs_stock,
    guarded,
    need_python_sqlite,
    q,
)


def nolock_writes(p):
    schema = p[:-1] if p else "main"
    return [
        f"INSERT INTO {p}t(v, n) VALUES ('nolock', 1)",
        f"UPDATE {p}t SET n = n + 1",
        f"DELETE FROM {p}t WHERE id > 30",
        f"CREATE TABLE {p}newt(a)",
        f"PRAGMA {p}user_version = 99",
        f"VACUUM {schema}",
    ]


NOLOCK_ACCESS = {
    "open_uri": lambda db: ([f".open file:{db}?nolock=1"], ""),
    "open_uri_immutable_off": lambda db: ([f".open file:{db}?nolock=1&immutable=0"], ""),
    "attach_uri": lambda db: ([".open :memory:", f"ATTACH {q(f'file:{db}?nolock=1')} AS x"], "x."),
    "attach_uri_loading_conn": lambda db: ([f"ATTACH {q(f'file:{db}?nolock=1')} AS x"], "x."),
    "attach_unix_none_nolock": lambda db: (
        [".open :memory:", f"ATTACH {q(f'file:{db}?nolock=1&vfs=unix-none')} AS x"],
        "x.",
    ),
}


@pytest.mark.parametrize("mode", ["delete", "wal"])
@pytest.mark.parametrize("access", list(NOLOCK_ACCESS))
def test_nolock(runner, make_node, access, mode):
    attack_vs_stock(runner, make_node, mode, NOLOCK_ACCESS[access], nolock_writes, f"nolock {access} ({mode})")


# ---------------------------------------------------------------- EXCLUSIVE

HOW = ["memory_main_before_attach", "memory_main_after_attach", "schema_pragma", "main_db"]


def exclusive_setup(how, db, pb):
    """Commands leading to the guarded db in EXCLUSIVE locking mode, with
    gate pb attached (NORMAL mode, schema loaded). Returns (cmds, prefix)."""
    attach_pb = f"{pb.attach()}; SELECT count(*) FROM {pb.alias}.g"
    if how == "main_db":
        return [f".open {db}", "PRAGMA locking_mode=EXCLUSIVE", attach_pb], "main."
    cmds = [".open :memory:", attach_pb]
    if how == "memory_main_before_attach":
        cmds += ["PRAGMA locking_mode=EXCLUSIVE", f"ATTACH {q(db)} AS x"]
    elif how == "memory_main_after_attach":
        cmds += [f"ATTACH {q(db)} AS x", f"PRAGMA locking_mode=EXCLUSIVE; PRAGMA {pb.alias}.locking_mode=NORMAL"]
    elif how == "schema_pragma":
        cmds += [f"ATTACH {q(db)} AS x", "PRAGMA x.locking_mode=EXCLUSIVE"]
    return cmds, "x."


@pytest.mark.parametrize("first", ["commit", "rollback"])
@pytest.mark.parametrize("stmt", ["cached", "next"])
@pytest.mark.parametrize("mode", ["wal", "delete"])
@pytest.mark.parametrize("how", HOW)
def test_exclusive_after_failover(runner, make_node, live, gates, how, mode, stmt, first):
    node = make_node(mode)
    pa, pb = gates(2)  # pa pauses between commands; pb blocks inside the cached statement
    pa.hold()
    setup, p = exclusive_setup(how, node.db, pb)
    schema = p[:-1]
    primary_writes = [f"INSERT INTO {p}t(v) VALUES ('primary')"]
    if first == "rollback":
        primary_writes.append(f"BEGIN; INSERT INTO {p}t(v) VALUES ('rolled back'); ROLLBACK")
    # The cached statement reads pb (attached before x: its transaction opens
    # first) so it is prepared as primary and starts writing after the change.
    cached = f"INSERT INTO {p}t(v, n) SELECT 'cached', 1 FROM {pb.alias}.g"
    later = [
        f"INSERT INTO {p}t(v) VALUES ('after')",
        f"UPDATE {p}t SET n = n + 1",
        f"PRAGMA {p}user_version = 5",
        f"VACUUM {schema}",
    ]
    cmds = [f".load {SO}", *setup, "PRAGMA busy_timeout=60000", *primary_writes, pa.cmd(), cached, *later, f"SELECT count(*) FROM {p}t"]
    n_before_pause = 1 + len(setup) + 1 + len(primary_writes)
    lv = live(runner, cmds, node.env())
    head = lv.until(n_before_pause)
    # Refusing to enter EXCLUSIVE mode on a guarded file is one acceptable
    # answer (the setup lines may fail); writing as primary must work.
    assert_ok(head[0], "loading the guard")
    for c, line in zip(primary_writes, head[-len(primary_writes) :]):
        assert_ok(line, f"{c!r} as primary (setup: {head[1:-len(primary_writes)]})")
    if stmt == "cached" and how == "main_db" and head[2].startswith("err"):
        lv.kill()
        pytest.skip(
            "EXCLUSIVE refused on the database itself: in NORMAL mode a statement that took the write "
            "lock before the failover is the documented residual window (LiteFS refuses it)"
        )
    if stmt == "cached":
        pb.hold()
        pa.release()
        time.sleep(0.8)  # the runner prepares `cached` and waits on pb
        node.make_replica()
        before = node.snapshot()
        pb.release()
    else:
        node.make_replica()
        before = node.snapshot()
        pa.release()
    out = lv.finish()
    after = node.snapshot()
    res = out[n_before_pause + 1 :]
    assert_all_refused([cached, *later], res[:-1], before, after, f"EXCLUSIVE {how} ({mode}, {stmt}, {first})")
    assert res[-1] == "ok 41", f"read after the failover: {res[-1]}"


@pytest.mark.parametrize("mode", ["wal", "delete"])
@pytest.mark.parametrize("how", HOW)
def test_exclusive_replica_from_start(runner, make_node, gates, how, mode):
    """EXCLUSIVE mode reached on a replica: every write refused."""
    node = make_node(mode)
    (pb,) = gates(1)
    setup, p = exclusive_setup(how, node.db, pb)
    ws = nolock_writes(p)
    node.make_replica()
    before = node.snapshot()
    out = guarded(runner, node, *setup, f"SELECT count(*) FROM {p}t", *ws)
    k = len(setup)
    assert out[k] == "ok 40", f"a read in EXCLUSIVE mode ({how}, {mode}) on a replica: {out[k]} (setup: {out[:k]})"
    assert_all_refused(ws, out[k + 1 :], before, node.snapshot(), f"EXCLUSIVE {how} ({mode})")


PY_EXCLUSIVE = """
import pyclient as c
so, db, how, mode = {so!r}, {db!r}, {how!r}, {mode!r}
boot = c.connect(":memory:"); c.load(boot, so)
if how == "main_db":
    conn = c.connect(db); p = "main."
    c.op(conn, "PRAGMA locking_mode=EXCLUSIVE")
else:
    conn = c.connect(":memory:"); p = "x."
    if how == "memory_main_before_attach":
        c.op(conn, "PRAGMA locking_mode=EXCLUSIVE"); c.op(conn, "ATTACH ? AS x", (db,))
    elif how == "memory_main_after_attach":
        c.op(conn, "ATTACH ? AS x", (db,)); c.op(conn, "PRAGMA locking_mode=EXCLUSIVE")
    else:
        c.op(conn, "ATTACH ? AS x", (db,)); c.op(conn, "PRAGMA x.locking_mode=EXCLUSIVE")
ins = "INSERT INTO " + p + "t(v) VALUES (?)"
c.op(conn, ins, ("primary",))
c.pause()
c.op(conn, ins, ("cached",))
c.op(conn, "UPDATE " + p + "t SET n = n + 1")
c.op(conn, "SELECT count(*) FROM " + p + "t")
"""


@pytest.mark.parametrize("mode", ["wal", "delete"])
@pytest.mark.parametrize("how", HOW)
def test_exclusive_python_statement_cache(make_node_py, pylive, how, mode):
    """Python's sqlite3 reuses the INSERT prepared while primary."""
    need_python_sqlite()
    node = make_node_py(mode)
    pl = pylive(PY_EXCLUSIVE.format(so=str(SO), db=str(node.db), how=how, mode=mode), node.env())
    head = pl.until_pause()
    assert_ok(head[0], "loading the guard")
    assert_ok(head[-1], f"INSERT as primary (setup: {head[1:-1]})")
    node.make_replica()
    before = node.snapshot()
    pl.resume()
    rest = pl.finish()
    assert_all_refused(["cached INSERT", "UPDATE"], rest[:2], before, node.snapshot(), f"python EXCLUSIVE {how} ({mode})")
    assert rest[2] == "ok 41", f"read: {rest[2]}"
