"""File controls on a replica change nothing: SQLITE_FCNTL_SIZE_HINT (on
main, on an ATTACHed schema, on the loading connection's ATTACH),
CHUNK_SIZE followed by refused writes, PERSIST_WAL then close, OVERWRITE,
POWERSAFE_OVERWRITE, SYNC, COMMIT_PHASETWO: the database, -wal and
-journal keep their bytes (and sizes), and writes after them are still
refused with 23/8."""

import os

import pytest
from conftest import assert_all_refused, assert_unchanged, guarded, q

WRITES = ["INSERT INTO {p}t(v) VALUES ('fcntl')", "VACUUM {s}"]


def target(where, db):
    """(setup commands, schema name for .fcntl, table prefix)."""
    if where == "main":
        return [f".open {db}", "SELECT count(*) FROM t"], "main", ""
    if where == "attached":
        return [".open :memory:", f"ATTACH {q(db)} AS x", "SELECT count(*) FROM x.t"], "x", "x."
    if where == "attached_loading_conn":
        return [f"ATTACH {q(db)} AS x", "SELECT count(*) FROM x.t"], "x", "x."
    raise AssertionError(where)


WHERE = ["main", "attached", "attached_loading_conn"]


def sizes(node):
    return {p.name: p.stat().st_size for p in node.mount.iterdir() if p.name.startswith("app.db") and not p.name.endswith("-shm")}


@pytest.mark.parametrize("mode", ["wal", "delete"])
@pytest.mark.parametrize("where", WHERE)
def test_size_hint(runner, make_node, where, mode):
    node = make_node(mode)
    setup, schema, _ = target(where, node.db)
    node.make_replica()
    before, size0 = node.snapshot(), os.path.getsize(node.db)
    out = guarded(runner, node, *setup, f".fcntl {schema} SIZE_HINT 20000000")
    assert os.path.getsize(node.db) == size0, f"SIZE_HINT grew the replica's file: {size0} -> {os.path.getsize(node.db)} ({out[-1]})"
    assert_unchanged(before, node.snapshot(), f"SIZE_HINT on {where}")


@pytest.mark.parametrize("mode", ["wal", "delete"])
@pytest.mark.parametrize("where", WHERE)
def test_chunk_size_then_writes(runner, make_node, where, mode):
    node = make_node(mode)
    setup, schema, p = target(where, node.db)
    ws = [w.format(p=p, s=schema) for w in WRITES]
    node.make_replica()
    before, size0 = node.snapshot(), sizes(node)
    out = guarded(
        runner, node, *setup, f".fcntl {schema} CHUNK_SIZE 8388608", *ws, f".fcntl {schema} SIZE_HINT 1000000", ".close"
    )
    k = len(setup) + 1
    grown = {n: (size0.get(n, 0), sz) for n, sz in sizes(node).items() if sz > size0.get(n, 0)}
    assert not grown, f"files grew after CHUNK_SIZE ({where}): {grown}; writes: {out[k : k + len(ws)]}"
    assert_all_refused(ws, out[k : k + len(ws)], before, node.snapshot(), f"CHUNK_SIZE on {where}")


@pytest.mark.parametrize("op", ["PERSIST_WAL 1", "PERSIST_WAL 0", "OVERWRITE 0", "POWERSAFE_OVERWRITE 0", "SYNC 0", "COMMIT_PHASETWO 0"])
@pytest.mark.parametrize("mode", ["wal", "delete"])
@pytest.mark.parametrize("where", WHERE)
def test_other_controls(runner, make_node, where, mode, op):
    """The control, then a refused write and a close: no byte changes."""
    node = make_node(mode)
    setup, schema, p = target(where, node.db)
    ws = [w.format(p=p, s=schema) for w in WRITES]
    node.make_replica()
    before = node.snapshot()
    out = guarded(runner, node, *setup, f".fcntl {schema} {op}", *ws, f"SELECT count(*) FROM {p}t", ".close")
    k = len(setup) + 1
    assert out[k + len(ws)] == "ok 40", f"read after {op}: {out[k + len(ws)]}"
    assert_all_refused(ws, out[k : k + len(ws)], before, node.snapshot(), f"{op} on {where}")
