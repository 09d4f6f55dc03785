"""Odd schema names: the replica's database ATTACHed as a non-UTF-8 name
(raw bytes in the identifier, or CAST(x'ff' AS TEXT)), names that look
like `main`/`temp`, very long names, quotes, spaces, unicode. Every
write on that schema (qualified, and unqualified where the table only
exists there) is refused with 23/8; nothing changes. Each name/write is
only tested where the stock runner (primary) attaches it and the write
lands."""

import pytest
from conftest import assert_all_refused, changed_files, guarded, q, qi, refusal_problems, stock

NAMES = {
    "ff_raw": b"\xff",
    "ff_prefix": b"\xffmain",
    "bad_continuation": b"a\xc3\x28b",
    "surrogate": b"\xed\xa0\x80",
    "overlong_slash": b"\xc0\xaf",
    "lone_continuation": b"\x80\x80",
    "main_trailing_space": b"MAIN ",
    "main_leading_space": b" main",
    "temp_tab": b"temp\t",
    "temp_nbsp": "temp\u00a0".encode(),
    "main_zero_width": "ma\u200bin".encode(),
    "main_fullwidth": "\uff4d\uff41\uff49\uff4e".encode(),
    "long_1000": b"s" * 1000,
    "long_20000": b"L" * 20000,
    "double_quote": b'a"b',
    "single_quote": b"a'b",
    "bracket": b"a]b",
    "backtick": b"a`b",
    "space": b"my db",
    "dot": b"x.y",
    "unicode": "\u00e9t\u00e9_\u6570\u636e_\U0001f642".encode(),
    "rtl": "\u202emain".encode(),
    "empty": b"",
}


def write_cmds(sch):
    """Writes on schema identifier (quoted bytes)."""
    return [
        b"INSERT INTO " + sch + b".t(v, n) VALUES ('schema', 1)",
        b"UPDATE " + sch + b".t SET n = n + 1",
        b"DELETE FROM " + sch + b".t WHERE id > 30",
        b"DROP TABLE " + sch + b".orders_data",
        b"CREATE TABLE " + sch + b".newt(a)",
        b"CREATE INDEX " + sch + b".t_v ON t(v)",
        b"ALTER TABLE " + sch + b".log ADD COLUMN extra",
        b"PRAGMA " + sch + b".user_version = 99",
        b"VACUUM " + sch,
        # unqualified: t exists only in the attached database (main is :memory:)
        b"INSERT INTO t(v) VALUES ('unqualified')",
        b"UPDATE t SET v = 'unqualified'",
        b"DELETE FROM log",
    ]


def attach_cmd(path, name, how):
    if how == "identifier":
        return f"ATTACH {q(path)} AS ".encode() + qi(name)
    # an expression: the schema name never appears as an identifier
    return f"ATTACH {q(path)} AS CAST(x'{name.hex()}' AS TEXT)".encode()


def _run_case(runner, make_node, name, how, mode="wal", conn="fresh"):
    node = make_node(mode)
    ws = write_cmds(qi(name))
    copy = make_node(mode, sub="oracle")
    want = stock(runner, attach_cmd(copy.db, name, how), b"SELECT count(*) FROM " + qi(name) + b".t", *ws)
    if not (want[0].startswith("ok") and want[1] == "ok 40"):
        pytest.skip(f"stock sqlrun-{runner.name} cannot attach as {name[:40]!r}: {want[0]} / {want[1]}")
    node.make_replica()
    before = node.snapshot()
    # ATTACH on a connection opened after loading ("fresh"), or on the
    # :memory: connection that loaded the guard ("loading": opened before
    # the guard existed, as in the README's recipe)
    pre = [".open :memory:"] if conn == "fresh" else []
    got = guarded(runner, node, *pre, attach_cmd(node.db, name, how), b"SELECT count(*) FROM " + qi(name) + b".t", *ws)
    got = got[len(pre) :]
    after = node.snapshot()
    landed = [(w, g) for w, g, s in zip(ws, got[2:], want[2:]) if s.startswith("ok")]
    acked = [f"{w!r:.80} acknowledged (stock: err)" for w, g, s in zip(ws, got[2:], want[2:]) if g.startswith("ok") and not s.startswith("ok")]
    problems = refusal_problems([w for w, _ in landed], [g for _, g in landed]) + acked
    diff = changed_files(before, after)
    assert not problems and not diff, (
        f"schema {name[:40]!r}: " + "; ".join(problems) + (f" | files changed: {diff}" if diff else "")
    )
    assert got[0].startswith("ok"), f"ATTACH as {name[:40]!r} failed under the guard: {got[0]}"
    assert got[1] == "ok 40", f"read through {name[:40]!r}: {got[1]}"
    assert landed, f"no write lands on stock for {name[:40]!r}"


@pytest.mark.parametrize("conn", ["fresh", "loading"])
@pytest.mark.parametrize("how", ["identifier", "cast_expr"])
@pytest.mark.parametrize("nid", list(NAMES))
def test_attach_as_odd_name(runner, make_node, nid, how, conn):
    _run_case(runner, make_node, NAMES[nid], how, conn=conn)


@pytest.mark.parametrize("conn", ["fresh", "loading"])
@pytest.mark.parametrize("nid", ["ff_raw", "main_trailing_space", "long_1000", "unicode"])
def test_attach_as_odd_name_rollback(runner, make_node, nid, conn):
    _run_case(runner, make_node, NAMES[nid], "cast_expr", mode="delete", conn=conn)


def test_same_db_twice_under_two_names(runner, node):
    """The replica's file attached twice (a valid and a non-UTF-8 name), a
    write through each."""
    node.make_replica()
    before = node.snapshot()
    ws = [
        b"INSERT INTO " + qi(b"\xff") + b".t(v) VALUES ('a')",
        b"INSERT INTO " + qi(b"ok") + b".t(v) VALUES ('b')",
        b"VACUUM " + qi(b"\xff"),
    ]
    got = guarded(runner, node, ".open :memory:", attach_cmd(node.db, b"ok", "identifier"), attach_cmd(node.db, b"\xff", "cast_expr"), *ws)
    assert_all_refused(ws, got[3:], before, node.snapshot(), "two names")
