"""Randomized differential test: the guard on a LiteFS replica against stock SQLite
with PRAGMA query_only=1 (see README.md in this directory).

Environment:
  DIFF_SEEDS            "N" (seeds 1..N), "A-B", or "A,B,C"     (default: the fixed CI seeds)
  DIFF_LEN              commands per sequence                   (default 200)
  DIFF_SHRINK_SECONDS   time for shrinking findings, per runner (default 10)
  DIFF_RUNNER_DIR / DIFF_RUNNERS, LITEFS_GUARD_SO               where the runners and the .so are
  CI=true               a missing runner of the five SQLite versions is a failure, not a skip
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import diff_gen as gen
import diff_harness as H
import diff_oracle as oracle

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RUNNERS = H.discover_runners()

# The fixed CI size, measured on a 2-core machine: about 6-10 s per runner when nothing
# is found (the five runners together stay within 60-90 s).
CI_SEEDS = 50
CI_LEN = 200


def seeds_from_env() -> list[int]:
    v = os.environ.get("DIFF_SEEDS", "").strip()
    if not v:
        return list(range(1, CI_SEEDS + 1))
    if "," in v:
        return [int(x) for x in v.split(",") if x.strip()]
    if "-" in v[1:]:
        a, b = v.split("-", 1)
        return list(range(int(a), int(b) + 1))
    return list(range(1, int(v) + 1))


def need_so():
    if not H.guard_so().exists():
        pytest.fail(f"{H.guard_so()} is missing: run `cargo build --release` (or set LITEFS_GUARD_SO)")


def test_runner_matrix():
    """Every supported SQLite version has a runner (tests/versions)."""
    names = {r.name for r in RUNNERS}
    missing = [n for n in H.EXPECTED_RUNNERS if n not in names]
    if missing:
        msg = (f"sqlrun runners missing from {H.runner_dir()}: {', '.join(missing)} "
               f"(found: {', '.join(sorted(names)) or 'none'})")
        if CI:
            pytest.fail(msg)
        pytest.skip(msg)


def first_runner() -> Path:
    if not RUNNERS:
        msg = f"no sqlrun-* runner in {H.runner_dir()}"
        if CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return RUNNERS[0]


def cmd(sql: str, kind: str = "selftest", mode: str = gen.QO) -> gen.Cmd:
    return gen.Cmd(gen.B(sql), kind, mode)


def test_oracle_sees_writes_on_an_unguarded_replica(tmp_path):
    """Self-test: without the extension, a write lands and the oracle must say so."""
    need_so()
    case = H.Case(first_runner(), 1, 1, tmp_path)
    cmds = [cmd("SELECT count(*) FROM t1"), cmd("INSERT INTO t1(a) VALUES('landed')"),
            cmd("SELECT count(*) FROM t1")]
    fs = oracle.judge(cmds, case.run(cmds, load=False), case.spec)
    types = {f.type for f in fs}
    assert "ACK" in types and "FILES" in types, [f.detail for f in fs]
    # ... and with the guard, this sequence is clean.
    assert oracle.judge(cmds, case.run(cmds), case.spec) == []


def test_stock_runs_are_reproducible(tmp_path):
    """Self-test: two stock runs of the same sequence on two copies answer identically
    once paths are normalized (no address, counter or path leaks into the comparison)."""
    runner = first_runner()
    for seed in (1, 2, 3):
        case = H.Case(runner, seed, 120, tmp_path / str(seed))
        lines = []
        for k in range(2):
            root = tmp_path / f"{seed}-{k}"
            H.copy_tree(case.pristine, root, case.spec)
            argv, line_of = H.stock_argv(case.cmds, [c.mode for c in case.cmds], root)
            t = H.run_sqlrun(runner, argv, root, H._clean_env(home=str(root)))
            lines.append([oracle.parse(t.lines[i], [bytes(root)]) for i in line_of if i is not None])
        assert lines[0] == lines[1]


@pytest.mark.parametrize("runner", RUNNERS or [None], ids=lambda r: r.name if r else "no-runner")
def test_differential(runner):
    if runner is None:
        first_runner()
    need_so()
    seeds = seeds_from_env()
    length = int(os.environ.get("DIFF_LEN", CI_LEN))
    budget = float(os.environ.get("DIFF_SHRINK_SECONDS", 10))
    rep = H.run_batch(runner, seeds, length, shrink_budget=budget, log=lambda t: None)
    summary = (f"{runner.name} (SQLite {H.features(runner).version}): seeds {seeds[0]}..{seeds[-1]} "
               f"({len(seeds)}), {length} commands each, {rep.compared}/{rep.commands} compared, "
               f"{len(rep.findings)} distinct finding(s), {rep.seconds:.1f}s")
    print(summary)
    if rep.findings:
        pytest.fail("\n\n".join(rep.texts) + "\n\n" + summary, pytrace=False)
