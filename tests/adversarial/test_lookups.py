"""Role lookups that can't hang or flood: `.primary` as a FIFO (no writer),
a directory, a character device (/dev/zero's numbers), a huge sparse file,
a symlink to /dev/zero: a guarded open + litefs_is_primary() +
litefs_primary() + a write + a read finish within 3 s, the node is not
taken for the primary, the write is refused with 23/8, the read works, no
byte changes, and the process stays small (max RSS < 64 MiB, address space
capped at 1 GiB)."""

import os

import pytest
from conftest import REFUSED, code_of, guarded

LIMIT_S = 3
MAX_RSS_KB = 64 * 1024


def make_fifo(p):
    os.mkfifo(p)


def make_dir(p):
    p.mkdir()


def make_chardev(p):
    os.mknod(p, 0o644 | 0o020000, os.makedev(1, 5))


def make_sparse(p):
    with open(p, "wb") as f:
        f.write(b"node-a\n")
        f.truncate(64 << 30)


def make_zero_link(p):
    p.symlink_to("/dev/zero")


def make_long_line(p):
    p.write_bytes(b"n" * (8 << 20))


KINDS = {
    "fifo": make_fifo,
    "directory": make_dir,
    "chardev_zero": make_chardev,
    "sparse_64g": make_sparse,
    "symlink_dev_zero": make_zero_link,
    "eight_mib_line": make_long_line,
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_odd_primary_file(runner, node, kind):
    primary = node.mount / ".primary"
    try:
        KINDS[kind](primary)
    except PermissionError as e:
        pytest.skip(f"cannot create a {kind} here: {e}")
    before = node.snapshot()
    out = guarded(
        runner,
        node,
        f".open {node.db}",
        "SELECT litefs_is_primary()",
        "SELECT length(litefs_primary())",
        "INSERT INTO t(v) VALUES ('odd primary')",
        "SELECT count(*) FROM t",
        timeout=LIMIT_S,
        mem_limit_mb=1024,
    )
    problems = []
    if out[1] == "ok 1":
        problems.append(f"litefs_is_primary() says primary with a {kind} .primary")
    code = code_of(out[3])
    if code is None or code & 0xFF not in REFUSED:
        problems.append(f"write answered {out[3]!r}")
    if out[4] != "ok 40":
        problems.append(f"read answered {out[4]!r}")
    if out.maxrss_kb > MAX_RSS_KB:
        problems.append(f"max RSS {out.maxrss_kb} KiB")
    if out[2].startswith("ok") and out[2][3:].isdigit() and int(out[2][3:]) > 4096:
        problems.append(f"litefs_primary() returned {out[2][3:]} bytes")
    assert not problems, f".primary is a {kind}: " + "; ".join(problems) + f" | {list(out)}"
    assert node.snapshot() == before, "files changed"


def test_fifo_with_writer_does_not_block_connections(runner, node):
    """A FIFO whose writer never writes: opening connections and reading
    must not wait on it either."""
    primary = node.mount / ".primary"
    os.mkfifo(primary)
    # hold a writer end open (non-blocking open needs a reader: open RDWR)
    fd = os.open(primary, os.O_RDWR | os.O_NONBLOCK)
    try:
        out = guarded(
            runner, node, f".open {node.db}", "SELECT count(*) FROM t", ".open " + str(node.db), "SELECT litefs_is_primary()",
            "INSERT INTO t(v) VALUES ('x')", timeout=LIMIT_S,
        )
    finally:
        os.close(fd)
    assert out[1] == "ok 40", out
    assert out[3] != "ok 1", out
    code = code_of(out[4])
    assert code is not None and code & 0xFF in REFUSED, f"write: {out[4]}"
