"""A real litefs-sim (the FUSE LiteFS stand-in, litefs-sim/README.md) for
the Python and Django test suites: nodes n1 (the lease holder: primary) and
n2 (replica), each a FUSE mount over one shared backing directory.

    from simnodes import sim          # in a conftest.py: registers the fixture

    def test_x(sim):
        db = sim.mount("n2") / "app.db"
        sim.lease("n2")               # failover; sim.lease(None): no primary
        sim.hold("n2"); sim.release("n2")
        sim.command("status")         # any control command, reply after "ok"

Nothing is built here: the binary is ``$LITEFS_SIM_BIN``, else the
workspace's ``target/release/litefs-sim`` (``make test-python`` and
``make test-django`` build it first). Needs root and /dev/fuse. When either
the binary or FUSE is missing the test is skipped with the reason, and fails
under ``CI=true``.

The sim runs in a fresh directory of its own under ``$TMPDIR`` (socket path
short enough for AF_UNIX, nothing left for pytest to keep), removed at
teardown after the daemon quit and every mount is gone: ``quit``, stdin
closed (``--exit-on-stdin-eof``: even a killed test process leaves no
mount), SIGKILL after 10 s, then ``umount``/``umount -l`` of whatever is
still mounted.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI") == "true"
MNT_DETACH = 2


def sim_bin() -> Path:
    return Path(os.environ.get("LITEFS_SIM_BIN") or ROOT / "target" / "release" / "litefs-sim")


def unavailable() -> Optional[str]:
    """Why a sim cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root: mounting FUSE needs CAP_SYS_ADMIN"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as exc:
        return f"/dev/fuse: {exc.strerror}"
    b = sim_bin()
    if not (b.is_file() and os.access(b, os.X_OK)):
        return f"{b} is missing: build it with `cargo build --release -p litefs-sim` (or set LITEFS_SIM_BIN)"
    return None


def require_sim() -> None:
    """Skips (with the reason) when no sim can run; fails under CI=true."""
    why = unavailable()
    if why is None:
        return
    if IN_CI:
        pytest.fail(f"litefs-sim cannot run under CI=true: {why}", pytrace=False)
    pytest.skip(f"litefs-sim unavailable: {why}")


def _unescape(field: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash in octal.
    out, i = bytearray(), 0
    raw = field.encode()
    while i < len(raw):
        if raw[i] == 0x5C and len(raw[i + 1 : i + 4]) == 3 and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="surrogateescape")


def is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            return any(_unescape(line.split(" ")[4]) == target for line in f)
    except OSError:
        return False


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def unmount(path: Path) -> None:
    """umount, else a lazy one (busy: a connection still open)."""
    p = os.fsencode(os.path.realpath(path))
    if is_mounted(path) and _libc.umount2(p, 0) != 0:
        _libc.umount2(p, MNT_DETACH)


class SimError(Exception):
    pass


class Sim:
    """A running litefs-sim. ``stop()`` always leaves no mount and no directory."""

    def __init__(self, nodes: Sequence[str] = ("n1", "n2"), lease: Optional[str] = "n1", threads: int = 4):
        self.dir = Path(tempfile.mkdtemp(prefix="litefs-sim-py-"))
        self.socket = self.dir / "sim.sock"
        self.log_path = self.dir / "sim.log"
        self.stderr_path = self.dir / "sim.stderr"
        self.mounts: Dict[str, Path] = {n: self.dir / n for n in nodes}
        self.proc: Optional[subprocess.Popen] = None
        args = [str(sim_bin()), "--backing", str(self.dir / "backing"), "--control", str(self.socket),
                "--log", str(self.log_path), "--threads", str(threads), "--lease", lease or "none",
                "--exit-on-stdin-eof"]
        for n, p in self.mounts.items():
            args += ["--node", f"{n}={p}"]
        try:
            with open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                                             cwd=self.dir)
            self._wait_ready(20.0)
        except BaseException:
            self.stop()
            raise

    def _stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace").strip()
        except OSError:
            return ""

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise SimError(f"litefs-sim exited at start ({rc}): {self._stderr()}")
            try:
                self.command("ping")
                if all(is_mounted(p) for p in self.mounts.values()):
                    return
            except (OSError, SimError):
                pass
            if time.monotonic() > deadline:
                raise SimError(f"litefs-sim not ready after {timeout}s: {self._stderr()}")
            time.sleep(0.02)

    def command(self, line: str) -> str:
        """One control command; the reply after ``ok``, or SimError."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        reply = buf.decode().rstrip("\n")
        if reply == "ok" or reply.startswith("ok "):
            return reply[3:]
        raise SimError(f"{line!r} -> {reply!r}")

    def mount(self, node: str) -> Path:
        return self.mounts[node]

    def lease(self, node: Optional[str]) -> str:
        """Moves the lease to ``node``; None: nobody holds it (replicas with no known primary)."""
        return self.command(f"lease {node or 'none'}")

    def holder(self) -> Optional[str]:
        holder = self.command("lease").split("=", 1)[1]
        return None if holder == "none" else holder

    def hold(self, node: str) -> str:
        return self.command(f"hold {node}")

    def release(self, node: str) -> str:
        return self.command(f"release {node}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                self.command("quit")
            except (OSError, SimError):
                pass
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        still = []
        for p in self.mounts.values():
            unmount(p)
            if is_mounted(p):
                still.append(str(p))
        if still:
            # Leave the directory: removing it would walk into the mounts.
            raise SimError(f"still mounted after stop: {', '.join(still)}")
        if not os.environ.get("LITEFS_SIM_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def sim():
    """A two-node litefs-sim: n1 primary, n2 replica (see the module)."""
    require_sim()
    s = Sim()
    try:
        yield s
    finally:
        s.stop()
