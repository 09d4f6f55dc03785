"""The same database under other names: a symlink to the file or to the
mount, a hard link and bind mounts outside the mount, /proc/<pid>/fd/<n>,
paths with `..`/`.`/`//`, relative paths, a mount directory that appears
(or is re-pointed) after the extension loaded, LITEFS_GUARD_DIR given
through a symlink. Every write is refused with 23/8, the read still
answers, and neither the real files (database, -wal, -journal) nor the
alias's own -wal/-journal change."""

import os
import shutil

import pytest
from conftest import SO, assert_all_refused, guarded

WRITES = [
    "INSERT INTO t(v, n) VALUES ('alias', 1)",
    "UPDATE t SET n = n + 1",
    "DELETE FROM t WHERE id > 30",
    "CREATE TABLE newt(a)",
    "PRAGMA user_version = 99",
    "VACUUM",
]


def attack(runner, node, path, env=None, cwd=None, pre=()):
    """Open `path`, read, try every write, close; assert the contract."""
    node.make_replica()
    before = node.snapshot()
    out = guarded(runner, node, *pre, f".open {path}", "SELECT count(*) FROM t", *WRITES, ".close", env=env, cwd=cwd)
    after = node.snapshot()
    k = len(pre)
    assert out[k].startswith("ok"), f"opening {path}: {out[k]}"
    assert out[k + 1] == "ok 40", f"reading through {path}: {out[k + 1]}"
    assert_all_refused(WRITES, out[k + 2 : k + 2 + len(WRITES)], before, after, f"through {path}")


@pytest.fixture(params=["wal", "delete"])
def anode(request, make_node):
    n = make_node(request.param)
    n.outside = n.root / "outside"
    n.outside.mkdir()
    return n


def test_symlink_to_file_outside(runner, anode):
    link = anode.outside / "link.db"
    link.symlink_to(anode.db)
    anode.track(link)
    attack(runner, anode, link)


def test_symlink_to_mount_dir(runner, anode):
    alias = anode.root / "alias"
    alias.symlink_to(anode.mount, target_is_directory=True)
    attack(runner, anode, alias / "app.db")


def test_hard_link_outside(runner, anode):
    hard = anode.outside / "hard.db"
    os.link(anode.db, hard)
    anode.track(hard)
    attack(runner, anode, hard)


def test_bind_mount_of_file(runner, anode, mounts):
    bound = anode.outside / "bound.db"
    bound.touch()
    mounts(anode.db, bound)
    anode.track(bound)
    attack(runner, anode, bound)


def test_bind_mount_of_dir(runner, anode, mounts):
    mnt = anode.outside / "mnt"
    mnt.mkdir()
    mounts(anode.mount, mnt)
    attack(runner, anode, mnt / "app.db")


def test_proc_fd_of_test_process(runner, anode):
    fd = os.open(anode.db, os.O_RDONLY)
    try:
        attack(runner, anode, f"/proc/{os.getpid()}/fd/{fd}")
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "form",
    ["mount/../litefs/app.db", "mount/./app.db", "mount//app.db", "outside/../litefs/app.db", "mount/./../litefs/./app.db"],
)
def test_dot_paths(runner, anode, form):
    path = form.replace("mount", str(anode.mount)).replace("outside", str(anode.outside))
    attack(runner, anode, path)


@pytest.mark.parametrize(
    "cwd,rel",
    [("mount", "app.db"), ("mount", "./app.db"), ("root", "litefs/app.db"), ("outside", "../litefs/app.db")],
    ids=["in_mount", "dot_in_mount", "parent", "sibling"],
)
def test_relative_path(runner, anode, cwd, rel):
    where = {"mount": anode.mount, "root": anode.root, "outside": anode.outside}[cwd]
    attack(runner, anode, rel, cwd=where)


def test_uri_with_dots(runner, anode):
    attack(runner, anode, f"file:{anode.mount}/../litefs/./app.db")


def test_guard_dir_through_symlink(runner, anode):
    """LITEFS_GUARD_DIR names the mount through a symlink; the db is opened
    by its real path and by the link's path."""
    mlink = anode.root / "mlink"
    mlink.symlink_to(anode.mount, target_is_directory=True)
    env = anode.env(LITEFS_GUARD_DIR=mlink)
    attack(runner, anode, anode.db, env=env)
    attack(runner, anode, mlink / "app.db", env=env)


def test_guard_dir_with_trailing_slash_and_dots(runner, anode):
    """LITEFS_GUARD_DIR spelled `<root>/./litefs/` (if the extension accepts
    it at all, the db under it is guarded; if not, loading fails)."""
    env = anode.env(LITEFS_GUARD_DIR=f"{anode.root}/./litefs/")
    anode.make_replica()
    before = anode.snapshot()
    from conftest import run

    out = run(runner, f".load {SO}", f".open {anode.db}", *WRITES, env=env)
    if out[0].startswith("err"):
        return  # refused to load: nothing is unguarded
    assert_all_refused(WRITES, out[2:], before, anode.snapshot(), "LITEFS_GUARD_DIR with ./ and trailing /")


def _paused(runner, anode, live, gates, env, open_path, during):
    """Load the guard, pause, let the test change the filesystem
    (`during`), then open open_path and write."""
    (gate,) = gates(1)
    gate.hold()
    cmds = [f".load {SO}", gate.cmd(), f".open {open_path}", "SELECT count(*) FROM t", *WRITES, ".close"]
    lv = live(runner, cmds, env)
    first = lv.until(1)
    assert first[0].startswith("ok"), f"loading the guard: {first[0]}"
    during()
    before = anode.snapshot()
    gate.release()
    out = lv.finish()
    after = anode.snapshot()
    assert out[2].startswith("ok"), f"opening {open_path}: {out[2]}"
    assert out[3] == "ok 40", f"reading: {out[3]}"
    assert_all_refused(WRITES, out[4 : 4 + len(WRITES)], before, after, "after the mount changed")


def test_mount_dir_appears_after_load(runner, anode, live, gates):
    """LITEFS_GUARD_DIR does not exist when the extension loads; the mount
    (a replica) appears before the database is opened."""
    hidden = anode.root / "hidden"
    anode.mount.rename(hidden)
    env = anode.env()

    def appear():
        hidden.rename(anode.mount)
        anode.make_replica()

    _paused(runner, anode, live, gates, env, anode.db, appear)


def test_mount_symlink_repointed_after_load(runner, anode, live, gates):
    """LITEFS_GUARD_DIR is a symlink to an empty directory at load time and
    points at the replica's mount when the database is opened."""
    empty = anode.root / "empty"
    empty.mkdir()
    cur = anode.root / "cur"
    cur.symlink_to(empty, target_is_directory=True)
    env = anode.env(LITEFS_GUARD_DIR=cur)

    def repoint():
        tmp = anode.root / "cur.new"
        tmp.symlink_to(anode.mount, target_is_directory=True)
        os.replace(tmp, cur)
        anode.make_replica()

    _paused(runner, anode, live, gates, env, cur / "app.db", repoint)


def test_mount_replaced_by_bind_after_load(runner, anode, live, gates, mounts):
    """The mount path is an empty directory at load time; the replica's
    files are bind-mounted over it before the database is opened."""
    real = anode.root / "real"
    shutil.copytree(anode.mount, real)
    shutil.rmtree(anode.mount)
    anode.mount.mkdir()
    env = anode.env()

    def bind():
        mounts(real, anode.mount)
        anode.make_replica()

    _paused(runner, anode, live, gates, env, anode.db, bind)
