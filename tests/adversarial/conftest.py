"""Shared machinery of the adversarial suite (see README.md beside this file).

A "node" is a temporary directory standing in for the LiteFS mount: primary
while it holds no `.primary`, replica once `.primary` holds the primary's
hostname. Fixture databases are built by a STOCK runner (no guard) while
the node is primary; the attack then runs in a separate process, the
`sqlrun-*` client of one SQLite release, with the guard loaded first.

Every case is parametrized over every runner found by globbing
`build/versions-target/release/sqlrun-*` (executables only; `SQLRUN_DIR`
overrides the directory) plus the expected set. A missing expected runner
fails the case under CI=true and skips it, with the reason, elsewhere.

Nothing here loads the guard into the pytest process itself.
"""

import hashlib
import os
import queue
import re
import resource
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER_DIR = Path(os.environ.get("SQLRUN_DIR") or ROOT / "build" / "versions-target" / "release")
EXPECTED_RUNNERS = ("system", "3_31", "3_37", "3_45", "newest")
SO = Path(os.environ.get("LITEFS_GUARD_SO") or ROOT / "target" / "release" / "liblitefs_guard.so").resolve()
SQLITE3_CLI = shutil.which("sqlite3") or "/usr/bin/sqlite3"
IN_CI = os.environ.get("CI") == "true"

SQLITE_AUTH = 23
SQLITE_READONLY = 8
REFUSED = (SQLITE_AUTH, SQLITE_READONLY)

# Virtual-table modules the fixture creates, and which runners must have
# them (every expected runner is built with FTS3/4/5, R*Tree, dbstat, JSON).
MODULES = ("fts3", "fts4", "fts5", "rtree", "dbstat", "json")
MODULES_REQUIRED = {name: set(MODULES) for name in EXPECTED_RUNNERS}

for _k in [k for k in os.environ if k.startswith("LITEFS_GUARD_")]:
    del os.environ[_k]


# --------------------------------------------------------------------------
# prerequisites


def require(condition, what):
    """Skip locally when a prerequisite is missing; under CI=true fail."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing under CI=true: {what}")
    pytest.skip(f"prerequisite missing: {what}")


def need_so():
    if not SO.is_file():
        pytest.fail(f"the extension {SO} is missing: run cargo build --release or set LITEFS_GUARD_SO")


# --------------------------------------------------------------------------
# runners


class Runner:
    """One sqlrun binary (`sqlrun-<name>`)."""

    def __init__(self, name, path):
        self.name = name
        self.path = path
        self._version = None

    def __repr__(self):
        return f"Runner({self.name})"

    @property
    def version(self):
        """(major, minor, patch) of the SQLite it runs."""
        if self._version is None:
            line = run(self, ".version")[0]
            self._version = tuple(int(x) for x in line.split()[1].split(".")[:3])
        return self._version


def discover_runners():
    found = {}
    if RUNNER_DIR.is_dir():
        for p in sorted(RUNNER_DIR.glob("sqlrun-*")):
            if p.is_file() and os.access(p, os.X_OK):
                found[p.name[len("sqlrun-"):]] = p
    return found


RUNNERS = discover_runners()
RUNNER_NAMES = list(EXPECTED_RUNNERS) + sorted(n for n in RUNNERS if n not in EXPECTED_RUNNERS)


def pytest_generate_tests(metafunc):
    if "runner" in metafunc.fixturenames:
        metafunc.parametrize("runner", RUNNER_NAMES, ids=RUNNER_NAMES, indirect=True, scope="function")


_runner_objs = {}


@pytest.fixture
def runner(request):
    name = request.param
    path = RUNNERS.get(name)
    require(
        path is not None,
        f"runner sqlrun-{name} not built in {RUNNER_DIR} (expected set: {', '.join(EXPECTED_RUNNERS)})",
    )
    need_so()
    if name not in _runner_objs:
        _runner_objs[name] = Runner(name, path)
    return _runner_objs[name]


# --------------------------------------------------------------------------
# running commands


def _b(x):
    if isinstance(x, bytes):
        return x
    return str(x).encode()


class Output(list):
    """The output lines of one runner invocation, one per command."""

    rc = 0
    stderr = ""
    maxrss_kb = 0
    cmds = ()

    def __str__(self):
        pairs = "\n".join(f"  {c!r:.160} -> {o}" for c, o in zip(self.cmds, self))
        return f"rc={self.rc}\n{pairs}\nstderr: {self.stderr[-2000:]}"


def _wait_with_rusage(proc, timeout):
    """Wait for proc like Popen.wait, also returning its rusage (maxrss)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return ru
        if time.monotonic() > deadline:
            return None
        time.sleep(0.003)


def run(runner, *cmds, env=None, cwd=None, timeout=30, check=True, mem_limit_mb=None):
    """Run `runner` with one argv item per command; return its output lines.

    `runner` is a Runner, or a path / list for another program. With
    check=True a crash, a non-zero exit or a missing output line fails the
    test; a run that outlives `timeout` seconds always fails it (killed).
    mem_limit_mb caps the address space (RLIMIT_AS) of the process.
    """
    argv = [str(runner.path)] if isinstance(runner, Runner) else [str(runner)]
    argv += [_b(c) for c in cmds]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env if env is not None else clean_env(),
        cwd=cwd,
        preexec_fn=rlimit_as(mem_limit_mb) if mem_limit_mb else None,
    )
    chunks = {"out": [], "err": []}

    def pump(stream, key):
        for block in iter(lambda: stream.read(65536), b""):
            chunks[key].append(block)

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, "out"), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, "err"), daemon=True),
    ]
    for t in threads:
        t.start()
    ru = _wait_with_rusage(proc, timeout)
    if ru is None:
        proc.kill()
        proc.wait()
        for t in threads:
            t.join(2)
        partial = b"".join(chunks["out"]).decode(errors="replace").splitlines()
        name = Path(argv[0]).name
        pytest.fail(f"{name} hung: still running after {timeout}s, killed; answered {len(partial)} of {len(cmds)} commands: {partial}")
    for t in threads:
        t.join(5)
    out = Output(b"".join(chunks["out"]).decode(errors="replace").splitlines())
    out.rc = proc.returncode
    out.stderr = b"".join(chunks["err"]).decode(errors="replace")
    out.maxrss_kb = ru.ru_maxrss
    out.cmds = cmds
    if check and isinstance(runner, Runner):
        assert out.rc == 0, f"runner {runner.name} exited with {out.rc} (negative: signal)\n{out}"
        assert len(out) == len(cmds), f"runner {runner.name}: {len(out)} output lines for {len(cmds)} commands\n{out}"
    return out


def guarded(runner, node, *cmds, env=None, **kw):
    """`.load SO` on a throwaway :memory: connection, then cmds; returns the
    output lines of cmds (the load's line is checked and dropped)."""
    out = run(runner, f".load {SO}", *cmds, env=env if env is not None else node.env(), **kw)
    assert out[0].startswith("ok"), f"loading the guard failed: {out[0]}\n{out}"
    rest = Output(out[1:])
    rest.rc, rest.stderr, rest.maxrss_kb, rest.cmds = out.rc, out.stderr, out.maxrss_kb, out.cmds[1:]
    return rest


def stock(runner, *cmds, **kw):
    """The same runner without the guard (no LITEFS_GUARD_* variables)."""
    return run(runner, *cmds, env=clean_env(), **kw)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEFS_GUARD_")}
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def code_of(line):
    """The result code of an `err CODE MSG` line, or None for `ok`."""
    m = re.match(r"err (-?\d+)", line)
    return int(m.group(1)) if m else None


def message_of(line):
    m = re.match(r"err -?\d+ ?(.*)$", line)
    return m.group(1) if m else None


def assert_refused(line, what=""):
    """A refused write: `err CODE …` whose low byte is 23 or 8, nothing else."""
    code = code_of(line)
    assert code is not None, f"{what}: write acknowledged ({line!r}), expected a refusal with 23/8"
    assert code & 0xFF in REFUSED, f"{what}: refused with code {code} ({line!r}), expected low byte 23 or 8"


def refusal_problems(sqls, lines):
    """For write commands and their output lines: the ones acknowledged or
    refused with a code other than 23/8 (empty list: all refused)."""
    bad = []
    for sql, line in zip(sqls, lines):
        code = code_of(line)
        if code is None:
            bad.append(f"{_text(sql)!r:.120} acknowledged ({line!r:.60})")
        elif code & 0xFF not in REFUSED:
            bad.append(f"{_text(sql)!r:.120} refused with {code} ({line!r:.80})")
    return bad


def _text(x):
    return x.decode(errors="backslashreplace") if isinstance(x, bytes) else x


def assert_all_refused(sqls, lines, before, after, what=""):
    """Every write refused with 23/8 and no byte changed; one message for all."""
    bad = refusal_problems(sqls, lines)
    diff = changed_files(before, after)
    msg = []
    if bad:
        msg.append(f"{len(bad)} of {len(sqls)} writes not refused with 23/8: " + "; ".join(bad))
    if diff:
        msg.append(f"files changed: {diff}")
    assert not msg, f"{what}: " + " | ".join(msg)


def assert_ok(line, what=""):
    assert line.startswith("ok"), f"{what}: expected success, got {line!r}"


def changed_files(before, after):
    """Names of the files whose snapshot differs ('' when none)."""
    diff = {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
    return ", ".join(f"{k}: {_short(a)} -> {_short(b)}" for k, (a, b) in sorted(diff.items()))


def assert_unchanged(before, after, what=""):
    """Byte snapshots (see Node.snapshot) equal: same sha256, absent stays absent."""
    diff = changed_files(before, after)
    assert not diff, f"{what}: replica files changed: {diff}"


def _short(h):
    return "absent" if h is None else h[:12]


def sha(path):
    p = Path(path)
    if not p.exists():
        return None
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def q(path):
    """A path as an SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def qi(name):
    """An identifier (bytes or str) quoted for SQL, as bytes."""
    b = _b(name)
    return b'"' + b.replace(b'"', b'""') + b'"'


# --------------------------------------------------------------------------
# nodes and fixture databases

ROWS = [(i, f"row {i} alpha" if i % 3 == 0 else f"row {i} beta", i % 7) for i in range(1, 41)]
FT_DOCS = ["alpha bravo charlie", "delta echo foxtrot", "alpha golf hotel", "india juliet kilo"]
RT_ROWS = [(1, 0, 1, 0, 1), (2, 2, 3, 2, 3), (3, 4, 9, 4, 9), (4, -5, -1, -5, -1)]


def schema_commands(mode):
    """Commands building app.db (run with the db as current connection).
    Returns (list of (tag, command)); tags name the optional vtab parts."""
    rows = ",".join(f"({i},'{v}',{n})" for i, v, n in ROWS)
    # two INSERTs: two index segments (so 'optimize' has work to do)
    d1 = ",".join(f"('{d}')" for d in FT_DOCS[:2])
    d2 = ",".join(f"('{d}')" for d in FT_DOCS[2:])
    rts = ",".join(str(r) for r in RT_ROWS)
    return [
        ("mode", f"PRAGMA journal_mode={mode}"),
        (
            "base",
            "BEGIN;"
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER DEFAULT 0);"
            f"INSERT INTO t VALUES {rows};"
            "CREATE INDEX t_n ON t(n);"
            "CREATE VIEW tv AS SELECT id, v FROM t WHERE n > 2;"
            "CREATE TABLE log(msg TEXT, at INTEGER);"
            "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO log(msg) VALUES ('ins ' || new.id); END;"
            "CREATE TABLE orders_data(x);"
            "INSERT INTO orders_data VALUES (1), (2);"
            "PRAGMA user_version = 7;"
            "COMMIT",
        ),
        ("fts3", f"CREATE VIRTUAL TABLE ft3 USING fts3(body); INSERT INTO ft3(body) VALUES {d1}; INSERT INTO ft3(body) VALUES {d2}"),
        ("fts4", f"CREATE VIRTUAL TABLE ft4 USING fts4(body); INSERT INTO ft4(body) VALUES {d1}; INSERT INTO ft4(body) VALUES {d2}"),
        ("fts5", f"CREATE VIRTUAL TABLE ft5 USING fts5(body); INSERT INTO ft5(body) VALUES {d1}; INSERT INTO ft5(body) VALUES {d2}"),
        ("rtree", f"CREATE VIRTUAL TABLE rt USING rtree(id, x0, x1, y0, y1); INSERT INTO rt VALUES {rts}"),
        ("dbstat", "SELECT count(*) > 0 FROM dbstat"),
        ("json", "SELECT count(*) FROM json_each('[1,2]')"),
    ]


_templates = {}


def build_template(runner, mode, tmp_root):
    """Build app.db + aux.db with the stock runner; cached per runner/mode.
    Returns (dir, modules, missing-with-reasons)."""
    key = (runner.name, mode)
    if key in _templates:
        return _templates[key]
    d = Path(tmp_root) / f"template-{runner.name}-{mode}"
    d.mkdir(parents=True)
    parts = schema_commands(mode)
    out = stock(
        runner,
        f".open {d / 'app.db'}",
        *[c for _, c in parts],
        ".close",
        f".open {d / 'aux.db'}",
        f"PRAGMA journal_mode={mode}",
        "CREATE TABLE a(x); INSERT INTO a VALUES (1), (2)",
        ".close",
    )
    results = dict(zip([t for t, _ in parts], out[1 : 1 + len(parts)]))
    assert results["mode"] == f"ok {mode}", f"{runner.name}: journal mode: {results['mode']}"
    assert_ok(results["base"], f"{runner.name}: fixture schema")
    modules, missing = set(), {}
    for m in MODULES:
        if results[m].startswith("ok"):
            modules.add(m)
        else:
            missing[m] = results[m]
    for name in ("app.db", "aux.db"):
        for sfx in ("-wal", "-journal"):
            assert not (d / (name + sfx)).exists() or (d / (name + sfx)).stat().st_size == 0, f"{name}{sfx} left"
    _templates[key] = (d, modules, missing)
    return _templates[key]


class Node:
    """A fake LiteFS mount with app.db (t, index t_n, view tv, log + trigger
    t_ins, orders_data, ft3/ft4/ft5, rt) and aux.db (a)."""

    def __init__(self, root, runner=None, mode="wal", template=None):
        self.root = Path(root)
        self.mount = self.root / "litefs"
        self.mount.mkdir(parents=True)
        self.db = self.mount / "app.db"
        self.aux = self.mount / "aux.db"
        self.mode = mode
        self.runner = runner
        self.modules, self.missing = set(), {}
        self.extra_tracked = []
        if template is not None:
            d, self.modules, self.missing = template
            for name in ("app.db", "aux.db"):
                shutil.copyfile(d / name, self.mount / name)

    # role
    def make_primary(self):
        p = self.mount / ".primary"
        if p.is_dir() and not p.is_symlink():
            p.rmdir()
        elif p.exists() or p.is_symlink():
            p.unlink()

    def make_replica(self, host="node-a"):
        (self.mount / ".primary").write_text(host + "\n")

    # environment of a guarded process
    def env(self, **extra):
        base = {"LITEFS_GUARD_DIR": str(self.mount), "LITEFS_GUARD_REQUIRE_FUSE": "0"}
        if self.mode != "wal":
            base["LITEFS_GUARD_WAL"] = "0"
        base.update(extra)
        return clean_env(**base)

    # bytes
    def tracked(self):
        paths = set(self.extra_tracked)
        for p in self.mount.iterdir():
            if p.name.endswith(".db"):
                paths.add(p)
        for name in ("app.db", "aux.db"):
            paths.add(self.mount / name)
        out = set()
        for p in paths:
            out |= {Path(p), Path(str(p) + "-wal"), Path(str(p) + "-journal")}
        return sorted(out)

    def track(self, *paths):
        """Also track these files (and their -wal/-journal)."""
        self.extra_tracked += [Path(p) for p in paths]

    def snapshot(self):
        """sha256 of each tracked database, -wal and -journal (None: absent).
        An empty -wal counts as absent: a reader opening a WAL database
        creates one (and -shm, not tracked: readers write it)."""
        snap = {}
        for p in self.tracked():
            try:
                key = str(p.relative_to(self.root))
            except ValueError:
                key = str(p)
            if p.name.endswith("-wal") and p.exists() and p.stat().st_size == 0:
                snap[key] = None
            else:
                snap[key] = sha(p)
        return snap

    def need(self, *modules):
        """Skip (fail under CI when the runner should have it) a sub-case
        whose virtual-table module the runner's SQLite lacks."""
        for m in modules:
            if m in self.modules:
                continue
            reason = f"module {m} not available in sqlrun-{self.runner.name}: {self.missing.get(m)}"
            if IN_CI and m in MODULES_REQUIRED.get(self.runner.name, ()):
                pytest.fail(reason + " (required under CI=true)")
            pytest.skip(reason)


@pytest.fixture
def make_node(tmp_path, tmp_path_factory, runner):
    """make_node(mode='wal'|'delete', sub='n0') -> a primary Node built by
    the stock runner."""
    roots = tmp_path_factory.getbasetemp() / "templates"
    roots.mkdir(exist_ok=True)
    made = []

    def make(mode="wal", sub=None):
        tpl = build_template(runner, mode, roots)
        n = Node(tmp_path / f"{sub or 'n'}{len(made)}", runner=runner, mode=mode, template=tpl)
        made.append(n)
        return n

    return make


def build_with_python(node, mode):
    """Build the fixture with Python's sqlite3 (the system library, 3.40)."""
    c = sqlite3.connect(str(node.db), isolation_level=None)
    for tag, cmd in schema_commands(mode):
        try:
            if cmd.startswith("PRAGMA") or cmd.startswith("SELECT"):
                c.execute(cmd).fetchall()
            else:
                c.executescript(cmd)
            if tag in MODULES:
                node.modules.add(tag)
        except sqlite3.OperationalError as e:
            if tag not in MODULES:
                raise
            node.missing[tag] = str(e)
    c.close()
    c = sqlite3.connect(str(node.aux), isolation_level=None)
    c.execute(f"PRAGMA journal_mode={mode}")
    c.executescript("CREATE TABLE a(x); INSERT INTO a VALUES (1), (2);")
    c.close()


@pytest.fixture
def make_node_py(tmp_path):
    """make_node_py(mode) -> a primary Node built by Python's sqlite3, for
    clients that are not sqlrun (the sqlite3 CLI, Python)."""
    made = []

    def make(mode="wal"):
        n = Node(tmp_path / f"py{len(made)}", mode=mode)
        build_with_python(n, mode)
        made.append(n)
        return n

    return make


@pytest.fixture
def node(make_node):
    """A primary WAL-mode node (see Node)."""
    return make_node("wal")


@pytest.fixture
def mounts():
    """Bind mounts made by a test; unmounted afterwards."""
    made = []

    def bind(src, dst):
        subprocess.run(["mount", "--bind", str(src), str(dst)], check=True)
        made.append(Path(dst))

    yield bind
    for m in reversed(made):
        subprocess.run(["umount", "-l", str(m)], check=False)


# --------------------------------------------------------------------------
# pausing a runner between commands


class Gate:
    """A lock the test holds to pause a runner at a command.

    `gate.cmd()` is one SQL command that attaches a small database outside
    the mount and reads it with a long busy timeout; while the test holds an
    EXCLUSIVE lock on it (`hold`), the runner waits there; `release` lets it
    go on. The gate is not in the mount, so the guard does not look at it."""

    def __init__(self, path, alias="pause"):
        self.path = Path(path)
        self.alias = alias
        c = sqlite3.connect(str(self.path), isolation_level=None)
        c.execute("PRAGMA journal_mode=DELETE")
        c.execute("CREATE TABLE IF NOT EXISTS g(x)")
        c.execute("DELETE FROM g")
        c.execute("INSERT INTO g VALUES (1)")
        self.conn = c
        self.held = False

    def hold(self):
        self.conn.execute("BEGIN EXCLUSIVE")
        self.held = True
        return self

    def release(self):
        if self.held:
            self.conn.execute("COMMIT")
            self.held = False

    def attach(self):
        return f"ATTACH {q(self.path)} AS {self.alias}; PRAGMA {self.alias}.locking_mode=NORMAL"

    def cmd(self):
        a = self.alias
        return (
            f"PRAGMA busy_timeout=60000; ATTACH {q(self.path)} AS {a}; PRAGMA {a}.locking_mode=NORMAL;"
            f" SELECT count(*) FROM {a}.g; DETACH {a}"
        )

    def close(self):
        self.release()
        self.conn.close()


class Live:
    """A runner started in the background; its output read line by line."""

    def __init__(self, runner, cmds, env, cwd=None):
        self.cmds = cmds
        self.proc = subprocess.Popen(
            [str(runner.path)] + [_b(c) for c in cmds],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
        )
        self.lines = []
        self.q = queue.Queue()
        self.err = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=lambda: self.err.append(self.proc.stderr.read()), daemon=True).start()

    def _pump(self):
        for raw in self.proc.stdout:
            self.q.put(raw.decode(errors="replace").rstrip("\n"))
        self.q.put(None)

    def until(self, n, timeout=20):
        """Wait until the first n commands have answered; returns their lines."""
        deadline = time.monotonic() + timeout
        while len(self.lines) < n:
            try:
                line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                pytest.fail(f"runner did not reach command {n} within {timeout}s: {self.lines}")
            if line is None:
                self.proc.wait()
                pytest.fail(f"runner ended (rc {self.proc.returncode}) after {len(self.lines)} lines: {self.lines}")
            self.lines.append(line)
        return self.lines[:n]

    def finish(self, timeout=60):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"runner still running after {timeout}s: {self.lines}")
        while True:
            line = self.q.get(timeout=5)
            if line is None:
                break
            self.lines.append(line)
        out = Output(self.lines)
        out.rc = self.proc.returncode
        out.cmds = self.cmds
        out.stderr = b"".join(x or b"" for x in self.err).decode(errors="replace")
        assert out.rc == 0, f"runner exited with {out.rc}\n{out}"
        assert len(out) == len(self.cmds), f"{len(out)} lines for {len(self.cmds)} commands\n{out}"
        return out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def gates(tmp_path):
    """gates(n) -> n Gate objects (held), released and closed afterwards."""
    made = []
    d = tmp_path / "gates"
    d.mkdir(exist_ok=True)

    def make(n=1):
        out = []
        for _ in range(n):
            i = len(made)
            g = Gate(d / f"gate{i}.db", alias=f"pause{i}")
            made.append(g)
            out.append(g)
        return out

    yield make
    for g in made:
        g.close()


@pytest.fixture
def live():
    """live(runner, cmds, env, cwd) -> Live; killed after the test if still running."""
    made = []

    def start(*a, **kw):
        lv = Live(*a, **kw)
        made.append(lv)
        return lv

    yield start
    for lv in made:
        lv.kill()


def rlimit_as(mb):
    def pre():
        resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))

    return pre


# --------------------------------------------------------------------------
# Python sqlite3 client scripts (see pyclient.py)

PYTHON = "/usr/bin/python3"


class PyLive:
    """A Python client script in a subprocess; `until_pause()` returns the
    lines printed before its next pause(), `resume()` lets it go on."""

    def __init__(self, script, env, cwd=None):
        self.proc = subprocess.Popen(
            [PYTHON, "-c", "import sys; sys.path.insert(0, %r)\n" % str(Path(__file__).parent) + script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            text=True,
        )
        self.q = queue.Queue()
        self.lines = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def until_pause(self, timeout=20):
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                pytest.fail(f"python client did not pause within {timeout}s: {got}")
            if line is None:
                self.proc.wait()
                pytest.fail(f"python client ended (rc {self.proc.returncode}): {got}\n{self.proc.stderr.read()}")
            if line == "PAUSE":
                self.lines += got
                return got
            got.append(line)

    def resume(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self, timeout=30):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("python client hung")
        rest = []
        while True:
            line = self.q.get(timeout=5)
            if line is None:
                break
            rest.append(line)
        err = self.proc.stderr.read()
        assert self.proc.returncode == 0, f"python client exited {self.proc.returncode}: {err}"
        self.lines += rest
        return rest

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def pylive():
    made = []

    def start(*a, **kw):
        p = PyLive(*a, **kw)
        made.append(p)
        return p

    yield start
    for p in made:
        p.kill()


def need_python_sqlite():
    ok = subprocess.run(
        [PYTHON, "-c", "import sqlite3; sqlite3.connect(':memory:').enable_load_extension(True)"],
        capture_output=True,
    )
    require(ok.returncode == 0, f"{PYTHON} with sqlite3 extension loading")


def attack_vs_stock(runner, make_node, mode, setup_for, writes_for, what, read_for=None):
    """Run setup + a read + writes on stock (primary copy) and guarded
    (replica). Every write stock completes must be refused 23/8 under the
    guard, none acknowledged, no byte changed; the read answers as on stock
    when stock could open. setup_for(db) -> (commands, schema prefix)."""
    node = make_node(mode)
    copy = make_node(mode, sub="oracle")
    setup_c, prefix = setup_for(copy.db)
    read = (read_for or (lambda p: f"SELECT count(*) FROM {p}t"))(prefix)
    ws = writes_for(prefix)
    want = stock(runner, *setup_c, read, *ws)[len(setup_c) :]
    setup, _ = setup_for(node.db)
    node.make_replica()
    before = node.snapshot()
    out = guarded(runner, node, *setup, read, *ws)
    setup_lines, got = out[: len(setup)], out[len(setup) :]
    after = node.snapshot()
    landed = [(w, g) for w, g, s in zip(ws, got[1:], want[1:]) if s.startswith("ok")]
    acked = [
        f"{_text(w)!r:.100} acknowledged (stock: error)"
        for w, g, s in zip(ws, got[1:], want[1:])
        if g.startswith("ok") and not s.startswith("ok")
    ]
    problems = refusal_problems([w for w, _ in landed], [g for _, g in landed]) + acked
    diff = changed_files(before, after)
    assert not problems and not diff, f"{what}: " + "; ".join(problems) + (f" | files changed: {diff}" if diff else "")
    if want[0].startswith("ok"):
        assert got[0] == want[0], f"{what}: read answered {got[0]!r} (stock: {want[0]!r}); setup: {setup_lines}"
    if not landed:
        pytest.skip(f"{what}: no write lands on stock sqlrun-{runner.name} ({want[0]!r:.80})")
