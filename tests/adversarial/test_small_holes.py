"""Smaller holes. `SELECT load_extension(SO)` while the guard is resident
(after `.load`, twice, and on a connection that loaded it through the
API) is harmless: it succeeds and the guard keeps refusing replica writes.
`CREATE TEMP TRIGGER` on a main table (and a TEMP table with a trigger
writing main) is allowed on a replica, while the writes that would fire or
perform them are refused with 23/8. Error messages that echo an argument
are short (< 500 bytes)."""

import pytest
from conftest import SO, assert_all_refused, assert_ok, changed_files, guarded, message_of, q, refusal_problems, run


def test_load_extension_sql_twice_after_load(runner, node):
    node.make_replica()
    before = node.snapshot()
    out = guarded(
        runner,
        node,
        f"SELECT load_extension({q(SO)})",
        f"SELECT load_extension({q(SO)})",
        f".load {SO}",
        f".open {node.db}",
        "INSERT INTO t(v) VALUES ('after reload')",
        "SELECT count(*) FROM t",
    )
    for i, what in enumerate(["first SELECT load_extension", "second SELECT load_extension", "a second .load"]):
        assert_ok(out[i], f"{what} while resident")
    assert out[-1] == "ok 40", f"read: {out[-1]}"
    assert_all_refused(["INSERT"], [out[-2]], before, node.snapshot(), "after loading again")


def test_load_extension_on_db_connection(runner, node):
    """A connection opened after the load loads it again (API and SQL)."""
    node.make_replica()
    before = node.snapshot()
    out = guarded(
        runner, node, f".open {node.db}", f".load {SO}", f"SELECT load_extension({q(SO)})",
        "INSERT INTO t(v) VALUES ('x')", "SELECT litefs_is_primary()",
    )
    assert_ok(out[1], ".load on the opened connection")
    assert_ok(out[2], "SELECT load_extension on it")
    assert out[-1] == "ok 0", f"litefs_is_primary(): {out[-1]}"
    assert_all_refused(["INSERT"], [out[-2]], before, node.snapshot(), "reloaded on the db connection")


def test_load_extension_in_new_process_twice(runner, node):
    """Two loads on the same fresh connection before anything else."""
    out = run(runner, f".load {SO}", f"SELECT load_extension({q(SO)})", "SELECT litefs_is_primary()", env=node.env())
    assert_ok(out[0], ".load")
    assert_ok(out[1], "SELECT load_extension right after .load")


TEMP_OK = [
    "CREATE TEMP TRIGGER tt_ins AFTER INSERT ON main.t BEGIN SELECT 1; END",
    "CREATE TEMP TRIGGER tt_upd BEFORE UPDATE ON main.t BEGIN SELECT RAISE(IGNORE) WHERE 0; END",
    "CREATE TEMP TABLE tq(x)",
    "CREATE TEMP TRIGGER tq_ins AFTER INSERT ON tq BEGIN INSERT INTO log(msg) VALUES ('via temp trigger'); END",
    "CREATE TEMP TABLE tlog(x)",
    "CREATE TEMP TRIGGER tt_del AFTER DELETE ON main.t BEGIN INSERT INTO tlog VALUES (old.id); END",
    "CREATE TEMP VIEW tv2 AS SELECT * FROM main.t",
    "INSERT INTO temp.tlog VALUES (0)",
]
TEMP_REFUSED = [
    "INSERT INTO t(v) VALUES ('fires tt_ins')",
    "UPDATE t SET n = n + 1",
    "INSERT INTO tq VALUES (1)",
    "DELETE FROM t WHERE id = 1",
]


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_temp_triggers_on_replica(runner, make_node, mode):
    node = make_node(mode)
    node.make_replica()
    before = node.snapshot()
    out = guarded(runner, node, f".open {node.db}", "SELECT count(*) FROM t", *TEMP_OK, *TEMP_REFUSED, "SELECT count(*) FROM temp.tlog")
    oks = out[2 : 2 + len(TEMP_OK)]
    bad = [f"{sql!r}: {line}" for sql, line in zip(TEMP_OK, oks) if not line.startswith("ok")]
    refused = out[2 + len(TEMP_OK) : -1]
    checked = [(w, r) for w, r in zip(TEMP_REFUSED, refused) if not (w.startswith("INSERT INTO tq") and any("tq_ins" in b for b in bad))]
    after = node.snapshot()
    problems = refusal_problems([w for w, _ in checked], [r for _, r in checked])
    diff = changed_files(before, after)
    assert not (bad or problems or diff), (
        ("TEMP objects refused on a replica: " + "; ".join(bad) + " | " if bad else "")
        + ("writes through temp triggers: " + "; ".join(problems) if problems else "")
        + (f" | files changed: {diff}" if diff else "")
    )
    assert out[-1] == "ok 1", f"temp table rows: {out[-1]}"


def test_temp_trigger_first_statement(runner, node):
    node.make_replica()
    out = guarded(runner, node, f".open {node.db}", TEMP_OK[0])
    assert_ok(out[1], "CREATE TEMP TRIGGER on main.t as the first statement")


LONG = "x" * 10000
ECHO = [
    ("litefs_config_long", f"SELECT litefs_config('{LONG}')"),
    ("litefs_config_blob", "SELECT litefs_config(randomblob(10000))"),
    ("litefs_config_nonutf8", "SELECT litefs_config(CAST(x'" + "ff" * 5000 + "' AS TEXT))"),
    ("litefs_is_primary_arg", f"SELECT litefs_is_primary('{LONG}')"),
    ("litefs_primary_args", f"SELECT litefs_primary('{LONG}', '{LONG}')"),
    ("litefs_guard_stats_arg", f"SELECT litefs_guard_stats('{LONG}')"),
]


@pytest.mark.parametrize("eid", [e[0] for e in ECHO])
def test_error_messages_capped(runner, node, eid):
    sql = dict(ECHO)[eid]
    out = guarded(runner, node, f".open {node.db}", sql)
    line = out[1]
    assert line.startswith("err"), f"{eid}: expected an error, got {line[:200]!r}"
    msg = message_of(line)
    assert len(msg.encode()) < 500, f"{eid}: error message is {len(msg.encode())} bytes: {msg[:120]!r}…"
