"""Writes through other VFS names are refused: `vfs=` in a URI (ATTACH and
open), sqlite3_open_v2's zVfs, for unix, unix-none, unix-dotfile,
unix-excl, and the sqlite3 CLI's own apndvfs (registered before the guard
loads). Each write the stock runner completes through that name must be
refused with 23/8 under the guard; no write is acknowledged; reads through
the name still answer as on stock; no byte of the replica changes.

unix-none/unix-dotfile have no shared memory: stock SQLite cannot open a
WAL database through them (rollback-mode fixtures cover those names)."""

import re
import shutil
import subprocess

import pytest
from conftest import (
    SO,
    SQLITE3_CLI,
    assert_refused,
    assert_unchanged,
    changed_files,
    refusal_problems,
    guarded,
    q,
    require,
    stock,
)

VFSES = ["unix", "unix-none", "unix-dotfile", "unix-excl"]


def writes(s):
    """Write commands on schema prefix s ('' or 'x.')."""
    schema = s[:-1] if s else "main"
    return [
        f"INSERT INTO {s}t(v, n) VALUES ('via vfs', 1)",
        f"UPDATE {s}t SET n = n + 1",
        f"DELETE FROM {s}t WHERE id > 30",
        f"CREATE TABLE {s}newt(a)",
        f"DROP TABLE {s}orders_data",
        f"PRAGMA {s}user_version = 99",
        f"VACUUM {schema}",
    ]


def access_cmds(access, db, vfs):
    """(setup commands, schema prefix) for one way of reaching db through vfs."""
    if access == "attach_uri":
        # on a connection opened after loading (the loading connection itself
        # is the pre-opened case, see test_preloaded.py)
        return [".open :memory:", f"ATTACH {q(f'file:{db}?vfs={vfs}')} AS x"], "x."
    if access == "attach_uri_loading_conn":
        return [f"ATTACH {q(f'file:{db}?vfs={vfs}')} AS x"], "x."
    if access == "open_zvfs":
        return [f".open {db} {vfs}"], ""
    if access == "open_uri":
        return [f".open file:{db}?vfs={vfs}"], ""
    raise AssertionError(access)


@pytest.mark.parametrize("mode", ["wal", "delete"])
@pytest.mark.parametrize("access", ["attach_uri", "attach_uri_loading_conn", "open_zvfs", "open_uri"])
@pytest.mark.parametrize("vfs", VFSES)
def test_write_through_vfs_name(runner, make_node, vfs, access, mode):
    node = make_node(mode)
    setup, s = access_cmds(access, node.db, vfs)
    read = f"SELECT count(*) FROM {s}t"
    ws = writes(s)
    # What stock does through this name (on a primary copy).
    copy = make_node(mode, sub="oracle")
    setup_c, _ = access_cmds(access, copy.db, vfs)
    want = stock(runner, *setup_c, read, *ws)[len(setup_c) - 1 :]
    if access == "attach_uri_loading_conn":
        want.insert(0, "ok ")
    node.make_replica()
    before = node.snapshot()
    got = guarded(runner, node, *setup, read, *ws)
    got = got[len(setup) - 1 :] if access != "attach_uri_loading_conn" else ["ok ", *got]
    after = node.snapshot()
    # The writes' answers are the last len(ws) lines of each run.
    got_w, want_w = got[len(got) - len(ws) :], want[len(want) - len(ws) :]
    landed = [(sql, g) for sql, g, w in zip(ws, got_w, want_w) if w.startswith("ok")]
    acked = [f"{sql!r} acknowledged" for sql, g, w in zip(ws, got_w, want_w) if g.startswith("ok") and not w.startswith("ok")]
    problems = refusal_problems([s_ for s_, _ in landed], [g for _, g in landed]) + acked
    diff = changed_files(before, after)
    assert not problems and not diff, (
        f"{access} vfs={vfs} ({mode}): " + "; ".join(sorted(set(problems))) + (f" | files changed: {diff}" if diff else "")
    )
    if want[0].startswith("ok") and want[1].startswith("ok"):
        assert got[0].startswith("ok"), f"opening through vfs={vfs} failed under the guard: {got[0]} (stock: ok)"
        assert got[1] == want[1], f"read through vfs={vfs}: {got[1]} (stock: {want[1]})"
    if not landed:
        pytest.skip(f"no write lands through vfs={vfs} ({mode}) on stock sqlrun-{runner.name}: {want[0]} / {want[1]}")


@pytest.mark.parametrize("vfs", VFSES)
def test_attach_uri_vacuum_first(runner, make_node, vfs):
    """The issue's exact sequence: ATTACH '…?vfs=unix' AS x; VACUUM x —
    the VACUUM is the first thing done on x (rollback mode: every name opens it)."""
    node = make_node("delete")
    node.make_replica()
    before = node.snapshot()
    got = guarded(runner, node, ".open :memory:", f"ATTACH {q(f'file:{node.db}?vfs={vfs}')} AS x; VACUUM x")
    assert_refused(got[1], f"ATTACH …?vfs={vfs}; VACUUM x")
    assert_unchanged(before, node.snapshot())


# --- the sqlite3 CLI (3.40): VFSes it registers itself (apndvfs) and URIs


def cli(args, env):
    return subprocess.run([SQLITE3_CLI, *args], capture_output=True, text=True, env=env, timeout=30)


def cli_code(res):
    m = re.findall(r"\((\d+)\)\s*$", res.stderr, re.M)
    return int(m[-1]) if m else None


CLI_CASES = {
    "attach_apndvfs_insert": lambda db, ld: [":memory:", *ld, f"ATTACH 'file:{db}?vfs=apndvfs' AS x; INSERT INTO x.t(v) VALUES ('apnd')"],
    "attach_apndvfs_vacuum": lambda db, ld: [":memory:", *ld, f"ATTACH 'file:{db}?vfs=apndvfs' AS x; VACUUM x"],
    "open_append_insert": lambda db, ld: [":memory:", *ld, "-cmd", f".open --append {db}", "INSERT INTO t(v) VALUES ('apnd')"],
    "open_append_vacuum": lambda db, ld: [":memory:", *ld, "-cmd", f".open --append {db}", "VACUUM"],
    "attach_unix_vacuum": lambda db, ld: [":memory:", *ld, f"ATTACH 'file:{db}?vfs=unix' AS x; VACUUM x"],
    "attach_unix_none_vacuum": lambda db, ld: [":memory:", *ld, f"ATTACH 'file:{db}?vfs=unix-none' AS x; VACUUM x"],
}


@pytest.mark.parametrize("mode", ["wal", "delete"])
@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_vfs(tmp_path, case, mode):
    import sqlite3

    from conftest import Node

    require(shutil.which("sqlite3") is not None, "sqlite3 CLI (apt-get install sqlite3)")
    outcomes = {}
    for role in ("stock", "guarded"):
        n = Node(tmp_path / role, mode=mode)
        c = sqlite3.connect(str(n.db), isolation_level=None)
        c.execute(f"PRAGMA journal_mode={mode}")
        c.executescript("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a'), ('b');")
        c.close()
        args = CLI_CASES[case](n.db, [] if role == "stock" else ["-cmd", f".load {SO}"])
        if role == "stock":
            res = cli(args, n.env())
            outcomes[role] = res
            continue
        n.make_replica()
        before = n.snapshot()
        res = cli(args, n.env())
        assert_unchanged(before, n.snapshot(), case)
        outcomes[role] = res
    st, gd = outcomes["stock"], outcomes["guarded"]
    if st.returncode != 0:
        assert gd.returncode != 0, f"{case}: stock fails ({st.stderr.strip()}), the guard acknowledged it"
        pytest.skip(f"stock CLI cannot do it either: {st.stderr.strip()}")
    assert gd.returncode != 0, f"{case}: write acknowledged on a replica (stdout {gd.stdout!r})"
    code = cli_code(gd)
    assert code is not None and code & 0xFF in (8, 23), f"{case}: refused with {gd.stderr.strip()!r}, expected (23) or (8)"
