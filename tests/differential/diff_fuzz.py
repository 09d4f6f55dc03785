#!/usr/bin/env python3
"""Command line for the differential test (the pytest file runs the CI-size batch).

  diff_fuzz.py fuzz [--seconds 600] [--len 300]   seeds from the clock, every runner, until the time is up
  diff_fuzz.py run --seed S [--runner NAME] [--len N]   one seed (shrinks and prints each finding)

Exit status: 0 when nothing was found, 1 on findings, 2 on a usage or setup error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import diff_harness as H  # noqa: E402


def pick_runners(name: str | None) -> list[Path]:
    runners = H.discover_runners()
    if name:
        runners = [r for r in runners if r.name == name or str(r) == name]
    if not runners:
        print(f"no sqlrun runner found in {H.runner_dir()} (build one: see tests/differential/README.md)",
              file=sys.stderr)
        sys.exit(2)
    if not H.guard_so().exists():
        print(f"{H.guard_so()} is missing: cargo build --release", file=sys.stderr)
        sys.exit(2)
    return runners


def summary(rep: H.Report) -> str:
    return (f"{rep.runner.name}: {len(rep.seeds)} seeds x {rep.length} commands "
            f"({rep.compared} of {rep.commands} compared), {len(rep.findings)} distinct finding(s), "
            f"{rep.seconds:.1f}s")


def cmd_fuzz(a) -> int:
    """Batches of fresh seeds on every runner until the time is up (keeping a share of it
    for shrinking), then one shrunk reproduction per distinct finding."""
    runners = pick_runners(a.runner)
    t0 = time.monotonic()
    end = t0 + a.seconds
    reserve = min(180.0, a.seconds * 0.25)
    top = Path(tempfile.mkdtemp(prefix="litefs-diff-fuzz-"))
    first: dict[tuple, tuple] = {}
    batches = seeds_run = 0
    try:
        while time.monotonic() < end - reserve or batches == 0:
            batches += 1
            base = time.time_ns() // 1000 % (1 << 40)
            seeds = [base + i for i in range(a.batch)]
            seeds_run += len(seeds)
            print(f"batch {batches}: seeds {seeds[0]}..{seeds[-1]}  (rerun: DIFF_SEEDS={seeds[0]}-{seeds[-1]} "
                  f"DIFF_LEN={a.len})", flush=True)
            for r in runners:
                found, stats = H.explore(r, seeds, a.len, top)
                for sig, item in found.items():
                    if sig not in first:
                        first[sig] = item
                        print(f"  new finding on {r.name} seed {item[0].seed}: {sig}", flush=True)
                keep = {id(case) for case, _ in first.values()}
                for case, _ in found.values():
                    if id(case) not in keep and not os.environ.get("DIFF_KEEP"):
                        shutil.rmtree(case.workdir, ignore_errors=True)
                print(f"  {r.name}: {stats['compared']}/{stats['commands']} commands compared", flush=True)
        print(f"\nfuzz: {seeds_run} seeds x {a.len} commands on {len(runners)} runner(s) in "
              f"{time.monotonic() - t0:.0f}s; {len(first)} distinct finding(s); shrinking\n", flush=True)
        H.shrink_and_describe(list(first.values()), max(end, time.monotonic() + 30), log=lambda t: print(t + "\n", flush=True))
    finally:
        if not os.environ.get("DIFF_KEEP"):
            shutil.rmtree(top, ignore_errors=True)
    print(f"fuzz: {len(first)} distinct finding(s)")
    for sig, (case, _) in sorted(first.items(), key=str):
        print(f"  {sig}  first: {case.runner.name} seed {case.seed}")
    return 1 if first else 0


def cmd_run(a) -> int:
    rc = 0
    for r in pick_runners(a.runner):
        rep = H.run_batch(r, [a.seed], a.len, shrink_budget=a.shrink_seconds)
        print(summary(rep))
        rc |= 1 if rep.findings else 0
    return rc


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fuzz")
    f.add_argument("--seconds", type=float, default=float(os.environ.get("DIFF_FUZZ_SECONDS", 600)))
    f.add_argument("--len", type=int, default=int(os.environ.get("DIFF_LEN", 300)))
    f.add_argument("--batch", type=int, default=20, help="seeds per batch and runner")
    f.add_argument("--runner")
    r = sub.add_parser("run")
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--len", type=int, default=int(os.environ.get("DIFF_LEN", 150)))
    r.add_argument("--runner")
    r.add_argument("--shrink-seconds", type=float, default=120.0)
    a = p.parse_args()
    return cmd_fuzz(a) if a.cmd == "fuzz" else cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
