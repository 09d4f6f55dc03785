"""README's recipes, extracted and run as written (scripts/readme-snippet.sh)
on a real two-node litefs-sim (tests/simnodes.py: the `sim` fixture; FUSE,
root): "read your own writes" for the sqlite3 CLI and Python, and "write
from a replica" for Python and the sqlite3 CLI. (Django's recipe is run in
tests/django/test_read_your_writes.py, Node's in tests/node/recipes.test.js.)

n1 holds the lease (the primary), n2 is its replica; `/litefs/app.db` in a
recipe becomes that node's `app.db`. Positions are the sim's: every commit
advances `app.db-pos`, and `sim.hold("n2")` freezes what n2 reports until
`sim.release("n2")`.

What the sim cannot show: a held node still reads the newest bytes (one
shared backing store, litefs-sim/README.md), so a replica that ignored the
floor would not read a stale row here; it would answer at once. So each
read-your-writes test asserts that the read is still waiting while n2 is
held and answers after the release, and a control shows that the same read
without the floor (or the wait) answers at once on the held node.
"""

import re
import shlex
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillRunning
from contextlib import closing
from pathlib import Path

import pytest

import litefs_guard
from conftest import clean_env, require

ROOT = Path(__file__).resolve().parents[2]
#: How long a read must still be waiting on the held replica to count as blocked.
BLOCKED_FOR = 0.5


def recipe(name):
    r = subprocess.run(["bash", str(ROOT / "scripts" / "readme-snippet.sh"), name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def db(sim, node):
    return sim.mount(node) / "app.db"


def connect(sim, node):
    return litefs_guard.connect(str(db(sim, node)), isolation_level=None)


def position(sim, node=None):
    """What `node`'s `app.db-pos` shows (default: the cluster's, the primary's)."""
    return sim.command("pos app.db" + (f" {node}" if node else ""))


def txid(pos):
    return int(pos.split("/")[0], 16)


def table_on_primary(sim):
    """t(x) in n1's app.db; returns the cluster's position after it."""
    with closing(connect(sim, "n1")) as c:
        c.execute("CREATE TABLE t(x)")
    return position(sim)


def rows_on_primary(sim):
    with closing(connect(sim, "n1")) as c:
        return c.execute("SELECT x FROM t").fetchall()


def caught_up_at_once(sim, node, pos):
    """litefs_wait_txid(pos, 0) on `node`: 1 if it reports `pos` already."""
    with closing(connect(sim, node)) as c:
        return c.execute("SELECT litefs_wait_txid(?, 0)", (pos,)).fetchone()[0]


def background(fn):
    ex = ThreadPoolExecutor(1)
    try:
        return ex.submit(fn)
    finally:
        ex.shutdown(wait=False)


def assert_forwarded_by_n2(sim):
    """The sim saw n2 take app.db's halt lock, write through it and let it go."""
    log = [line.split(" ", 1)[1] for line in sim.log().splitlines() if " node=n2 " in f" {line}"]
    assert any(e.startswith("node=n2 op=halt file=app.db-lock result=acquired") for e in log), log
    assert any(e.startswith("node=n2 op=write file=app.db-wal result=accepted") and "via=halt" in e for e in log), log
    assert any(e.startswith("node=n2 op=halt file=app.db-lock result=released") for e in log), log
    assert sim.command("halts") == "count=0"


def n2_writes_seen(sim):
    stats = dict(kv.split("=") for kv in sim.command("stats").split())
    return stats["n2.accepted"], stats["n2.refused"]


# -- sqlite3 CLI -------------------------------------------------------------------


class Cli:
    """Shell scripts with `.load litefs_guard` finding this build's extension."""

    def __init__(self, lib):
        self.env = clean_env(LD_LIBRARY_PATH=lib)

    def run(self, script, timeout=30):
        return subprocess.run(["bash", "-c", script], env=self.env, capture_output=True, text=True, timeout=timeout)

    def start(self, script):
        return subprocess.Popen(["bash", "-c", script], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


@pytest.fixture
def cli(tmp_path):
    require(shutil.which("sqlite3"), "the sqlite3 CLI")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "litefs_guard.so").symlink_to(litefs_guard.loadable_path())
    return Cli(lib)


def ryw_cli_on_sim(sim):
    text = recipe("ryw-cli")
    # The first command runs on the primary (n1), the second on the replica (n2).
    assert text.count("/litefs/app.db") == 2, text
    first, second, rest = text.split("/litefs/app.db")
    return first + str(db(sim, "n1")) + second + str(db(sim, "n2")) + rest


def test_readme_recipe_ryw_cli_waits_for_a_held_replica(sim, cli):
    before = table_on_primary(sim)
    sim.hold("n2")
    proc = cli.start(ryw_cli_on_sim(sim))
    try:
        deadline = time.monotonic() + 10
        while position(sim) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert txid(position(sim)) == txid(before) + 1, "the recipe's INSERT did not commit on n1"
        time.sleep(BLOCKED_FOR)
        assert proc.poll() is None, f"the read on the held n2 did not wait: {proc.communicate()}"
        assert position(sim, "n2") == before
        sim.release("n2")
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == f"{txid(position(sim))}\nhello\n", out
    assert rows_on_primary(sim) == [("hello",)]


def test_readme_recipe_ryw_cli_fails_while_the_replica_stays_held(sim, cli):
    table_on_primary(sim)
    sim.hold("n2")
    t0 = time.monotonic()
    r = cli.run(ryw_cli_on_sim(sim))
    took = time.monotonic() - t0
    assert r.returncode != 0
    assert r.stdout == f"{txid(position(sim))}\n", r.stdout
    assert "database table is locked (6)" in r.stderr, r.stderr
    assert 4.9 <= took < 10, took  # litefs_wait_ms's default, 5 s


def test_ryw_cli_without_the_floor_answers_at_once_on_the_held_replica(sim, cli):
    """The control: the recipe's read with the floor at 0 does not wait for n2."""
    table_on_primary(sim)
    sim.hold("n2")
    text = ryw_cli_on_sim(sim).replace("PRAGMA litefs_min_txid = '$pos'", "PRAGMA litefs_min_txid = 0")
    assert "'$pos'" not in text
    t0 = time.monotonic()
    r = cli.run(text)
    took = time.monotonic() - t0
    # (litefs-sim's held node reads the newest bytes: the row is there.)
    assert r.returncode == 0 and r.stdout == "0\nhello\n", (r.stdout, r.stderr)
    assert took < 2, took
    assert position(sim, "n2") != position(sim), "n2 was behind all along"


# -- Python --------------------------------------------------------------------------


def python_recipe():
    ns = {}
    exec(recipe("ryw-python"), ns)
    return ns["write"], ns["read_after"]


def test_readme_recipe_ryw_python_waits_for_a_held_replica(sim):
    write, read_after = python_recipe()
    before = table_on_primary(sim)
    sim.hold("n2")
    with closing(connect(sim, "n1")) as primary:
        pos = write(primary, "INSERT INTO t VALUES (?)", ("hello",))
    assert pos == position(sim) and txid(pos) == txid(before) + 1
    # The control: n2 reports that it has not got `pos` (without the wait, the read answers at once).
    assert position(sim, "n2") == before
    assert caught_up_at_once(sim, "n2", pos) == 0

    def read_on_n2():
        with closing(connect(sim, "n2")) as replica:
            return read_after(replica, pos, "SELECT x FROM t"), time.monotonic()

    pending = background(read_on_n2)
    with pytest.raises(StillRunning):
        pending.result(timeout=BLOCKED_FOR)  # still waiting: n2 is held
    released = time.monotonic()
    sim.release("n2")
    rows, done = pending.result(timeout=10)
    assert rows == [("hello",)]
    assert done >= released


def test_readme_recipe_ryw_python_times_out_while_the_replica_stays_held(sim):
    write, read_after = python_recipe()
    table_on_primary(sim)
    sim.hold("n2")
    with closing(connect(sim, "n1")) as primary:
        pos = write(primary, "INSERT INTO t VALUES (?)", ("hello",))
    with closing(connect(sim, "n2")) as replica:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match=f"^this node has not reached {re.escape(pos)}: retry"):
            read_after(replica, pos, "SELECT x FROM t", timeout_ms=300)
        assert 0.25 <= time.monotonic() - t0 < 3
        sim.release("n2")
        assert read_after(replica, pos, "SELECT x FROM t", timeout_ms=300) == [("hello",)]


# -- write from a replica ----------------------------------------------------------------


def test_readme_recipe_forward_python(sim):
    """On n2, the recipe's write goes to the primary through the halt lock:
    n1 reads the row and reports the position the recipe took on n2. The
    same recipe without the pragma is refused by the guard (LiteFS sees no
    write), naming n1."""
    before = table_on_primary(sim)
    text = recipe("forward-python")
    assert text.count("/litefs/app.db") == 1 and text.count("PRAGMA litefs_forward = ON") == 1
    text = text.replace("/litefs/app.db", str(db(sim, "n2")))

    seen = n2_writes_seen(sim)
    refused = "\n".join(line for line in text.splitlines() if "PRAGMA litefs_forward" not in line)
    ns = {}
    try:
        with pytest.raises(litefs_guard.NotPrimaryError) as ei:
            try:
                exec(refused, ns)
            except Exception as exc:
                litefs_guard.raise_if_not_primary(exc, ns["conn"])
                raise
    finally:
        ns["conn"].close()
    assert ei.value.primary == "n1" and "the primary is n1" in str(ei.value)
    assert n2_writes_seen(sim) == seen, "refused by the guard before LiteFS saw a write"
    assert rows_on_primary(sim) == []

    ns = {}
    try:
        exec(text, ns)
        assert ns["conn"].execute("PRAGMA litefs_forward").fetchone()[0] == "1"
    finally:
        if "conn" in ns:
            ns["conn"].close()
    assert rows_on_primary(sim) == [("written on a replica",)]
    assert ns["position"] == position(sim) == position(sim, "n2")
    assert txid(ns["position"]) == txid(before) + 1
    assert_forwarded_by_n2(sim)


def test_readme_recipe_forward_cli(sim, cli):
    """The CLI recipe on n2: with the pragma the INSERT reaches n1 through the
    halt lock; the same command without it is refused (nothing reaches
    LiteFS), and n2 names n1 as the primary."""
    before = table_on_primary(sim)
    text = recipe("forward-cli")
    assert text.count("/litefs/app.db") == 1 and text.count('"PRAGMA litefs_forward = ON" ') == 1
    text = text.replace("/litefs/app.db", str(db(sim, "n2")))

    seen = n2_writes_seen(sim)
    r = cli.run(text.replace('"PRAGMA litefs_forward = ON" ', ""))
    assert r.returncode != 0 and "Error: in prepare, not authorized (23)" in r.stderr, (r.stdout, r.stderr)
    assert n2_writes_seen(sim) == seen
    n2 = shlex.quote(str(db(sim, "n2")))
    r = cli.run(f"sqlite3 -cmd '.load litefs_guard' -cmd '.open {n2}' :memory: 'SELECT litefs_primary()'")
    assert (r.returncode, r.stdout) == (0, "n1\n"), r.stderr
    assert rows_on_primary(sim) == []

    r = cli.run(text)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1\n", r.stdout
    assert rows_on_primary(sim) == [("written on a replica",)]
    assert txid(position(sim)) == txid(before) + 1 and position(sim, "n2") == position(sim)
    assert_forwarded_by_n2(sim)
