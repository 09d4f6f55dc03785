"""Attacks on the fair wait found by review, kept as regression tests: each
script of fairwait_attacks/ runs in a fresh interpreter (settings are read
once per process); where it makes sense the same script also runs with
LITEFS_GUARD_FAIR_WAIT=0 as the control."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clean_env, require

HERE = Path(__file__).resolve().parent / "fairwait_attacks"


def run(script, tmp_path, fair=True, **env):
    e = clean_env(ATTACK_DIR=tmp_path, **env)
    if not fair:
        e["LITEFS_GUARD_FAIR_WAIT"] = "0"
    r = subprocess.run([sys.executable, str(HERE / script)], env=e, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith(("{", "["))]


@pytest.mark.parametrize("fair", [True, False], ids=["fair", "control"])
@pytest.mark.parametrize("mode", ["auto", "begin"])
def test_a_retry_whose_read_is_refused_leaves_no_write_lock(tmp_path, fair, mode):
    # A write waits in line; the node falls behind meanwhile, so the retry's
    # read is refused (litefs_max_lag_ms). Nobody may be locked out after.
    (r,) = run("leak_turn.py", tmp_path, fair=fair, MODE=mode)
    assert r["w"].startswith("SQLITE_LOCKED"), r
    assert r["x"] == "ok", r
    assert r["y_3s_later"] == "ok", r


def test_a_full_dev_shm_does_not_crash_the_writer(tmp_path):
    require(os.geteuid() == 0 and shutil.which("unshare"), "root and unshare (a private tmpfs on /dev/shm)")
    r = subprocess.run(
        [str(HERE / "shm_full.sh")],
        env=dict(clean_env(ATTACK_DIR=tmp_path), PY=sys.executable),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "wrote 1" in r.stdout and "python exit status: 0" in r.stdout, (r.stdout, r.stderr)


def test_a_forked_child_closing_its_inherited_connection_leaves_the_line_alone(tmp_path):
    a, b = run("fork_unlink.py", tmp_path)
    assert a["before_fork"], a
    assert a["after_child_closed_inherited_conn"], a
    assert b["after_parent_close_q_line_exists"], "the parent never removes a newer process's line"


@pytest.mark.parametrize("fair", [True, False], ids=["fair", "control"])
def test_a_connection_without_a_busy_handler_writes_when_the_lock_is_free(tmp_path, fair):
    # It waited in line once, then dropped its busy handler. Its first try
    # may still stand aside (busy at once, as the no-handler contract
    # says); that busy answer followed by no sleep teaches the guard it
    # does not wait here, and from then on it writes whenever the lock is free.
    (r,) = run("no_handler_stands_aside.py", tmp_path, fair=fair)
    tries = r["c_tries_right_after_release"]
    assert tries[1:] == ["ok"] * 4, r
    assert tries[0] == "ok" or (fair and tries[0] == "SQLITE_BUSY"), r
