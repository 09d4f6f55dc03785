"""Differential test harness: runners, fixtures, the two runs, shrinking, reproductions.

One *case* is (runner, seed, length). It builds a fixture with the stock runner
while the node is primary, writes `.primary`, copies the tree for the stock run,
then runs the same command sequence twice:

  guarded: `.load SO` on a :memory: connection, `.open <mount>/app.db`, the commands
  stock:   `.open <copy>/mount/app.db`, `PRAGMA query_only=1`, the commands

and hands both transcripts and both file-tree snapshots to the oracle
(diff_oracle.py). Paths inside commands are placeholders (@R@ = the run's root,
so @R@/mount is the mount and @R@/outside an unguarded directory), substituted
per run and substituted back in the output before comparing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import diff_gen as gen
import diff_oracle as oracle

REPO = Path(__file__).resolve().parents[2]
# The five SQLite builds the version matrix needs (tests/versions).
EXPECTED_RUNNERS = ("sqlrun-system", "sqlrun-3_31", "sqlrun-3_37", "sqlrun-3_45", "sqlrun-newest")
PROC_TIMEOUT = 60.0
PRIMARY_CONTENT = b"node-a\n"


# ---------------------------------------------------------------- runners


def runner_dir() -> Path:
    d = os.environ.get("DIFF_RUNNER_DIR")
    return Path(d).resolve() if d else REPO / "build" / "versions-target" / "release"


def discover_runners() -> list[Path]:
    """Every `sqlrun-*` executable in the runner directory (never the `.d` files)."""
    explicit = os.environ.get("DIFF_RUNNERS")
    if explicit:
        return [Path(p).resolve() for p in explicit.split(":") if p]
    found = []
    for p in sorted(runner_dir().glob("sqlrun-*")):
        if p.is_file() and "." not in p.name and os.access(p, os.X_OK):
            found.append(p)
    return found


def guard_so() -> Path:
    so = os.environ.get("LITEFS_GUARD_SO")
    return Path(so).resolve() if so else REPO / "target" / "release" / "liblitefs_guard.so"


def _clean_env(extra: dict[str, str] | None = None, home: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEFS_")}
    if home:
        env["HOME"] = home  # no $HOME/litefs.yml can leak into a run
    if extra:
        env.update(extra)
    return env


@dataclasses.dataclass
class Transcript:
    lines: list[bytes]  # one per argv item (missing ones when the process died)
    rc: int
    stderr: bytes
    timed_out: bool = False


def run_sqlrun(runner: Path, argv: list[bytes], cwd: Path, env: dict[str, str]) -> Transcript:
    try:
        p = subprocess.run(
            [bytes(runner)] + argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=PROC_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout or b""
        return Transcript(out.split(b"\n")[:-1], -9, e.stderr or b"", timed_out=True)
    lines = p.stdout.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return Transcript(lines, p.returncode, p.stderr)


_FEATURE_CACHE: dict[str, gen.Features] = {}

# Each probe: one SQL command on a fresh :memory: connection; ok means supported.
_PROBES = {
    "fts3": "CREATE VIRTUAL TABLE temp.p USING fts3(x)",
    "fts4": "CREATE VIRTUAL TABLE temp.p USING fts4(x)",
    "fts5": "CREATE VIRTUAL TABLE temp.p USING fts5(x)",
    "fts5vocab": "CREATE VIRTUAL TABLE temp.p USING fts5(x); CREATE VIRTUAL TABLE temp.q USING fts5vocab(temp, p, 'row')",
    "rtree": "CREATE VIRTUAL TABLE temp.p USING rtree(id, x0, x1)",
    "json": "SELECT * FROM json_each('[1]')",
    "dbstat": "SELECT count(*) FROM dbstat",
    "returning": "CREATE TEMP TABLE p(a); INSERT INTO p VALUES(1) RETURNING a",
    "window": "SELECT row_number() OVER ()",
    "drop_column": "CREATE TEMP TABLE p(a, b); ALTER TABLE p DROP COLUMN b",
    "sqlite_schema": "SELECT count(*) FROM sqlite_schema",
    "table_list": "SELECT count(*) FROM pragma_table_list",
    "strict": "CREATE TEMP TABLE p(a INT) STRICT",
    "arrow": "SELECT '{\"a\":1}' ->> 'a'",
}


def features(runner: Path) -> gen.Features:
    key = str(runner)
    if key in _FEATURE_CACHE:
        return _FEATURE_CACHE[key]
    with tempfile.TemporaryDirectory(prefix="diffprobe-") as d:
        names = list(_PROBES)
        # One process per probe: a failed CREATE must not poison the next one.
        have = {}
        env = _clean_env(home=d)
        for n in names:
            t = run_sqlrun(runner, [b".open :memory:", _PROBES[n].encode()], Path(d), env)
            have[n] = len(t.lines) == 2 and t.lines[1].startswith(b"ok")
        v = run_sqlrun(runner, [b".version"], Path(d), env)
        version = v.lines[0][3:].decode() if v.lines and v.lines[0].startswith(b"ok ") else "?"
    f = gen.Features(version=version, **have)
    _FEATURE_CACHE[key] = f
    return f


# ---------------------------------------------------------------- fixtures


def subst(cmd: bytes, root: Path) -> bytes:
    return cmd.replace(b"@R@", bytes(root))


def build_fixture(runner: Path, spec: gen.FixtureSpec, root: Path) -> None:
    """Builds mount/ and outside/ under root with the stock runner, as the primary."""
    (root / "mount").mkdir(parents=True)
    (root / "outside").mkdir()
    argv = [subst(c, root) for c in spec.build_cmds]
    t = run_sqlrun(runner, argv, root, _clean_env(home=str(root)))
    bad = [(c, l) for c, l in zip(spec.build_cmds, t.lines) if not l.startswith(b"ok")]
    if t.rc != 0 or len(t.lines) != len(argv) or bad:
        raise RuntimeError(f"fixture build failed on {runner.name}: rc={t.rc} {bad[:3]} {t.stderr[-500:]!r}")
    make_links(spec, root)
    (root / "mount" / ".primary").write_bytes(PRIMARY_CONTENT)


def make_links(spec: gen.FixtureSpec, root: Path) -> None:
    # A symlink and a hard link to a guarded file, from the unguarded directory.
    os.symlink("../mount/other.db", root / "outside" / "link.db")
    os.link(root / "mount" / "other.db", root / "outside" / "hard.db")


def copy_tree(src: Path, dst: Path, spec: gen.FixtureSpec) -> None:
    """Copies a fixture tree; the hard link is recreated, not copied as a file."""
    for sub in ("mount", "outside"):
        (dst / sub).mkdir(parents=True)
        for name in os.listdir(bytes(src / sub)):
            s, d = bytes(src / sub) + b"/" + name, bytes(dst / sub) + b"/" + name
            if name in (b"link.db", b"hard.db") and sub == "outside":
                continue
            if os.path.islink(s):
                os.symlink(os.readlink(s), d)
            elif os.path.isdir(s):
                shutil.copytree(s, d, symlinks=True)
            else:
                shutil.copy2(s, d)
    make_links(spec, dst)


@dataclasses.dataclass(frozen=True)
class Entry:
    kind: str  # "file", "dir", "link", "other"
    size: int
    digest: str


def snapshot(mount: Path) -> dict[bytes, Entry]:
    """Every entry directly in the mount (LiteFS mounts are flat), with content hashes."""
    snap = {}
    for name in os.listdir(bytes(mount)):
        p = bytes(mount) + b"/" + name
        if os.path.islink(p):
            snap[name] = Entry("link", 0, os.readlink(p).hex())
        elif os.path.isdir(p):
            snap[name] = Entry("dir", 0, "")
        elif os.path.isfile(p):
            data = Path(os.fsdecode(p)).read_bytes()
            snap[name] = Entry("file", len(data), hashlib.sha256(data).hexdigest())
        else:
            snap[name] = Entry("other", 0, "")
    return snap


def wal_mode_dbs(mount: Path) -> set[bytes]:
    """Database files in WAL mode (header bytes 18/19 == 2): their readers may create -shm/-wal."""
    out = set()
    for name in os.listdir(bytes(mount)):
        p = bytes(mount) + b"/" + name
        if not os.path.isfile(p) or name.endswith((b"-wal", b"-shm", b"-journal")):
            continue
        with open(p, "rb") as f:
            head = f.read(20)
        if head.startswith(b"SQLite format 3\x00") and head[18:20] == b"\x02\x02":
            out.add(name)
    return out


# ---------------------------------------------------------------- one case


@dataclasses.dataclass
class CaseRun:
    guarded: Transcript
    stock: Transcript
    g_line: list[int]  # command index -> its answer line in the guarded transcript
    s_line: list[int | None]  # ... in the stock transcript (None: not run on stock)
    modes: list[str]  # how stock ran each command (rw may have been demoted to qo)
    before: dict[bytes, Entry]
    after_guarded: dict[bytes, Entry]
    after_stock: dict[bytes, Entry]
    wal_dbs: set[bytes]
    g_root: Path
    s_root: Path


QO_OFF, QO_ON, AUTOCOMMIT = b"PRAGMA query_only=0", b"PRAGMA query_only=1", b".autocommit"


def guarded_argv(cmds: list[gen.Cmd], root: Path, load: bool = True) -> tuple[list[bytes], list[int]]:
    """`.load` on a :memory: connection, `.open` the replica's database, then each
    command followed by an `.autocommit` probe (transaction state is compared too).
    load=False leaves the guard out (the oracle's self-test: it must then see writes land)."""
    first = b".load " + bytes(guard_so()) if load else b".version"
    argv = [first, b".open " + bytes(root / "mount" / "app.db")]
    lines = []
    for c in cmds:
        lines.append(len(argv))
        argv += [subst(c.sql, root), AUTOCOMMIT]
    return argv, lines


def stock_argv(cmds: list[gen.Cmd], modes: list[str], root: Path) -> tuple[list[bytes], list[int | None]]:
    argv = [b".open " + bytes(root / "mount" / "app.db"), QO_ON]
    lines: list[int | None] = []
    for c, mode in zip(cmds, modes):
        if mode == gen.SKIP:
            if c.probe:
                lines.append(len(argv))
                argv += [b"EXPLAIN " + subst(c.sql, root), AUTOCOMMIT]
            else:
                lines.append(None)
            continue
        if mode == gen.RW:
            argv.append(QO_OFF)
        lines.append(len(argv))
        argv += [subst(c.sql, root), AUTOCOMMIT]
        if mode == gen.RW or c.attach:
            argv.append(QO_ON)  # query_only is per connection: re-asserted after each ATTACH too
    return argv, lines


class Case:
    """A runner + seed: the fixture is built once; sequences (or sub-sequences while
    shrinking) are run on fresh copies of it."""

    def __init__(self, runner: Path, seed: int, length: int, workdir: Path):
        self.runner = runner
        self.seed = seed
        self.length = length
        self.feat = features(runner)
        rng = random.Random(f"{seed}:fixture")
        self.spec = gen.make_fixture(rng, self.feat)
        self.cmds = gen.generate(random.Random(f"{seed}:commands"), self.spec, self.feat, length)
        self.workdir = workdir
        self.pristine = workdir / "pristine"
        build_fixture(runner, self.spec, self.pristine)
        self._n = itertools.count(1)

    def guard_env(self, root: Path) -> dict[str, str]:
        extra = {
            "LITEFS_GUARD_DIR": str(root / "mount"),
            "LITEFS_GUARD_REQUIRE_FUSE": "0",
        }
        if self.spec.journal == "rollback":
            extra["LITEFS_GUARD_WAL"] = "0"
        return _clean_env(extra, home=str(root))

    def run(self, cmds: list[gen.Cmd], load: bool = True) -> CaseRun:
        base = self.workdir / f"run{next(self._n)}"
        g_root = base / "g"
        copy_tree(self.pristine, g_root, self.spec)
        before = snapshot(g_root / "mount")
        wal_dbs = wal_mode_dbs(g_root / "mount")
        g_argv, g_line = guarded_argv(cmds, g_root, load)
        gt = run_sqlrun(self.runner, g_argv, g_root, self.guard_env(g_root))
        after_g = snapshot(g_root / "mount")
        # The stock run, on its own copy made from the same pristine fixture. A command
        # that writes only TEMP/unguarded state runs with query_only off; if the two runs
        # diverged before it (so it is not compared), it is demoted to query_only on and
        # stock runs again, so that stock can never write its copy of the mount.
        modes = [c.mode for c in cmds]
        for attempt in range(8):
            s_root = base / f"s{attempt}"
            copy_tree(self.pristine, s_root, self.spec)
            s_argv, s_line = stock_argv(cmds, modes, s_root)
            st = run_sqlrun(self.runner, s_argv, s_root, _clean_env(home=str(s_root)))
            after_s = snapshot(s_root / "mount")
            r = CaseRun(gt, st, g_line, s_line, list(modes), before, after_g, after_s, wal_dbs, g_root, s_root)
            stats: dict = {}
            oracle.judge(cmds, r, self.spec, stats)
            demote = [i for i in stats.get("skipped", ()) if modes[i] == gen.RW]
            if not demote:
                break
            for i in demote:
                modes[i] = gen.QO
        return r

    def check(self, cmds: list[gen.Cmd]) -> list[oracle.Finding]:
        r = self.run(cmds)
        findings = oracle.judge(cmds, r, self.spec)
        if not os.environ.get("DIFF_KEEP"):
            shutil.rmtree(r.g_root.parent, ignore_errors=True)
        return findings


# ---------------------------------------------------------------- shrinking


def shrink(case: Case, finding: oracle.Finding, deadline: float) -> tuple[list[gen.Cmd], bool]:
    """The smallest sub-sequence (commands in their original order) that still shows
    `finding`'s signature; True if shrinking finished before the deadline."""

    def shows(cmds: list[gen.Cmd]) -> bool:
        fs = case.check(cmds)
        if finding.index is None:  # a file or process finding: anywhere in the run
            return any(f.signature == finding.signature for f in fs)
        return any(f.signature == finding.signature and f.index == len(cmds) - 1 for f in fs)

    if finding.index is not None:
        seq = case.cmds[: finding.index + 1]
        head, last = seq[:-1], [seq[-1]]
    else:
        # Shortest failing prefix first (binary search; file changes persist).
        lo, hi = 0, len(case.cmds)
        while lo < hi and time.monotonic() < deadline:
            mid = (lo + hi) // 2
            if shows(case.cmds[:mid]):
                hi = mid
            else:
                lo = mid + 1
        head, last = case.cmds[:hi], []
    # Drop chunks, then single commands (ddmin-style), keeping the finding's command last.
    chunk = max(1, len(head) // 2)
    while chunk >= 1:
        i = 0
        while i < len(head):
            if time.monotonic() > deadline:
                return head + last, False
            trial = head[:i] + head[i + chunk :]
            if shows(trial + last):
                head = trial
            else:
                i += chunk
        if chunk == 1:
            break
        chunk //= 2
    return head + last, True


# ---------------------------------------------------------------- reproductions


def shell_quote(b: bytes) -> str:
    if b and all(32 <= c < 127 and c != 0x27 for c in b):
        return "'" + b.decode() + "'"
    out = []
    for c in b:
        ch = chr(c)
        if ch == "'" or ch == "\\":
            out.append("\\" + ch)
        elif 32 <= c < 127:
            out.append(ch)
        else:
            out.append(f"\\x{c:02x}")
    return "$'" + "".join(out) + "'"


REPRO_ROOT = Path("/tmp/litefs-diff-repro")


def repro_script(case: Case, cmds: list[gen.Cmd], modes: list[str]) -> str:
    """A self-contained shell script: fixture, `.primary`, the stock copy, both runs."""
    root = REPRO_ROOT
    r = shell_quote(bytes(case.runner))
    g_argv, _ = guarded_argv(cmds, root / "g")
    s_argv, _ = stock_argv(cmds, modes, root / "s")
    env = f"LITEFS_GUARD_DIR={root / 'g' / 'mount'} LITEFS_GUARD_REQUIRE_FUSE=0"
    if case.spec.journal == "rollback":
        env += " LITEFS_GUARD_WAL=0"
    lines = [
        "#!/bin/bash",
        f"# runner {case.runner.name} (SQLite {case.feat.version}), seed {case.seed}, fixture {case.spec.journal}",
        "# each command is followed by .autocommit (the transaction state is compared too)",
        f"rm -rf {root} && mkdir -p {root}/g/mount {root}/g/outside && cd {root}/g || exit 1",
        "# fixture, built while the node is primary (stock runner, no extension)",
        f"{r} " + " ".join(shell_quote(subst(c, root / "g")) for c in case.spec.build_cmds) + " >/dev/null",
        "ln -s ../mount/other.db outside/link.db && ln mount/other.db outside/hard.db",
        "printf 'node-a\\n' > mount/.primary",
        f"cp -a {root}/g {root}/s && rm {root}/s/outside/hard.db && ln {root}/s/mount/other.db {root}/s/outside/hard.db",
        "echo '--- guarded (replica)'",
        f"HOME={root}/g {env} {r} " + " ".join(shell_quote(a) for a in g_argv),
        f"echo '--- stock + query_only (on the copy)'; cd {root}/s",
        f"HOME={root}/s {r} " + " ".join(shell_quote(a) for a in s_argv),
        f"ls -la {root}/g/mount",
    ]
    return "\n".join(lines) + "\n"


def repro_dir() -> Path:
    d = os.environ.get("DIFF_REPRO_DIR")
    return Path(d) if d else REPO / "build" / "differential"


def describe(case: Case, finding: oracle.Finding, cmds: list[gen.Cmd], complete: bool) -> str:
    out = [
        f"FINDING {finding.signature}",
        f"  runner {case.runner.name} (SQLite {case.feat.version}), seed {case.seed}, "
        f"length {case.length}, fixture {case.spec.journal}",
        "  " + finding.detail,
        f"  minimal sequence: {len(cmds)} command(s)" + ("" if complete else " (shrinking stopped at the time budget)"),
    ]
    r = case.run(cmds)
    fs = oracle.judge(cmds, r, case.spec)
    roots = [bytes(r.g_root), bytes(r.s_root)]
    for i, c in enumerate(cmds):
        gi = r.g_line[i]
        g = oracle.parse(r.guarded.lines[gi], roots).show() if gi < len(r.guarded.lines) else "(no output)"
        si = r.s_line[i]
        s = (oracle.parse(r.stock.lines[si], roots).show() if si is not None and si < len(r.stock.lines)
             else "(not run on stock)")
        if c.mode == gen.SKIP and si is not None:
            s = "(prepared under EXPLAIN only) " + s
        out.append(f"    {i + 1}. [{c.kind}] {c.sql.decode('utf-8', 'backslashreplace')}")
        out.append(f"         stock+query_only: {s[:160]}")
        out.append(f"         guarded:          {g[:160]}")
    for f in fs:
        if f.index is None:
            out.append(f"    after the run: {f.detail}")
    shutil.rmtree(r.g_root.parent, ignore_errors=True)
    d = repro_dir()
    d.mkdir(parents=True, exist_ok=True)
    tag = "-".join(str(x) for x in finding.signature[:3]).replace("/", "_").replace(" ", "_")
    script = d / f"repro-{case.runner.name}-seed{case.seed}-{tag}.sh"
    script.write_text(repro_script(case, cmds, r.modes))
    script.chmod(0o755)
    out.append(f"  reproduce: bash {script}   (or: tests/differential/diff_fuzz.py run "
               f"--runner {case.runner.name} --seed {case.seed} --len {case.length})")
    return "\n".join(out)


# ---------------------------------------------------------------- a batch


@dataclasses.dataclass
class Report:
    runner: Path
    seeds: list[int]
    length: int
    findings: dict[tuple, tuple[Case, oracle.Finding]]  # first case per signature
    texts: list[str]
    seconds: float
    commands: int
    compared: int


def explore(runner: Path, seeds: list[int], length: int, top: Path, workers: int | None = None):
    """Runs every seed; returns the first (case, finding) per distinct finding signature,
    and counts. Work directories of cases with no new finding are removed."""
    from concurrent.futures import ThreadPoolExecutor

    workers = workers or max(1, os.cpu_count() or 1)
    first: dict[tuple, tuple[Case, oracle.Finding]] = {}
    stats = {"commands": 0, "compared": 0}

    def one(seed: int):
        case = Case(runner, seed, length, top / f"{runner.name}-seed{seed}")
        r = case.run(case.cmds)
        st: dict = {}
        fs = oracle.judge(case.cmds, r, case.spec, st)
        shutil.rmtree(r.g_root.parent, ignore_errors=True)
        return case, fs, st.get("compared", 0)

    with ThreadPoolExecutor(workers) as ex:
        for case, fs, ncmp in ex.map(one, seeds):
            stats["commands"] += len(case.cmds)
            stats["compared"] += ncmp
            new = False
            for f in fs:
                if f.signature not in first:
                    first[f.signature] = (case, f)
                    new = True
            if not new and not os.environ.get("DIFF_KEEP"):
                shutil.rmtree(case.workdir, ignore_errors=True)
    return first, stats


def shrink_and_describe(items: list[tuple[Case, oracle.Finding]], deadline: float, workers: int | None = None,
                        log=print) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor

    workers = workers or max(1, os.cpu_count() or 1)

    def one(item):
        case, f = item
        cmds, complete = shrink(case, f, deadline)
        return describe(case, f, cmds, complete)

    texts = []
    with ThreadPoolExecutor(workers) as ex:
        for text in ex.map(one, items):
            texts.append(text)
            log(text)
    return texts


def run_batch(runner: Path, seeds: list[int], length: int, shrink_budget: float, workers: int | None = None,
              log=print) -> Report:
    """Runs every seed, then shrinks one example of each distinct finding."""
    t0 = time.monotonic()
    top = Path(tempfile.mkdtemp(prefix=f"litefs-diff-{runner.name}-"))
    try:
        first, stats = explore(runner, seeds, length, top, workers)
        texts = shrink_and_describe(list(first.values()), time.monotonic() + shrink_budget, workers, log)
    finally:
        if not os.environ.get("DIFF_KEEP"):
            shutil.rmtree(top, ignore_errors=True)
    return Report(runner, seeds, length, first, texts, time.monotonic() - t0, stats["commands"], stats["compared"])
