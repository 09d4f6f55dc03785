"""Safe by default. With a mount configured and LITEFS_GUARD_REQUIRE_FUSE
unset (or empty), a plain directory at the mount path means LiteFS is
down: writes are refused with 23/8, reads work, nothing changes, and
litefs_config()'s reason says the mount is not FUSE. With LITEFS_GUARD_DIR
set, a broken ./litefs.yml (or $HOME/litefs.yml) does not stop the
extension from loading."""

import json
from pathlib import Path

import pytest
from conftest import SO, assert_all_refused, assert_ok, run

WRITES = ["INSERT INTO t(v) VALUES ('plain dir')", "CREATE TABLE newt(a)", "VACUUM"]


def _plain_dir_case(runner, node, env, cwd=None):
    before = node.snapshot()  # the node looks like a primary: no .primary
    out = run(runner, f".load {SO}", f".open {node.db}", "SELECT count(*) FROM t", *WRITES, "SELECT litefs_config()", env=env, cwd=cwd)
    assert_ok(out[0], "loading the guard")
    assert out[2] == "ok 40", f"read: {out[2]}"
    assert_all_refused(WRITES, out[3:-1], before, node.snapshot(), "plain directory, FUSE check by default")
    assert_ok(out[-1], "litefs_config()")
    cfg = json.loads(out[-1][3:])
    assert cfg.get("require_fuse") is True, f"require_fuse: {cfg.get('require_fuse')}"
    assert "fuse" in str(cfg.get("reason", "")).lower(), f"reason does not say the mount is not FUSE: {cfg.get('reason')!r}"


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_guard_dir_requires_fuse_by_default(runner, node, value):
    env = node.env(LITEFS_GUARD_REQUIRE_FUSE=value)
    _plain_dir_case(runner, node, env)


def test_litefs_yml_requires_fuse_by_default(runner, node, tmp_path):
    """Mount from ./litefs.yml (no LITEFS_GUARD_DIR): FUSE required too."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "litefs.yml").write_text(
        f'fuse:\n  dir: "{node.mount}"\ndata:\n  dir: "/var/lib/litefs"\n'
        "lease:\n  type: static\n  hostname: node-b\n  candidate: true\n"
    )
    env = node.env(LITEFS_GUARD_DIR=None, LITEFS_GUARD_REQUIRE_FUSE=None)
    _plain_dir_case(runner, node, env, cwd=cwd)


BROKEN = {
    "bad_yaml": "fuse: [unclosed\n",
    "wrong_type": "fuse: 5\n",
    "missing_data_dir": 'fuse:\n  dir: "/elsewhere"\n',
    "binary": "\x00\x01\x02\xff",
    "tabs": "fuse:\n\tdir: /x\n",
    "unknown_keys": "nonsense:\n  - 1\n  - {a: b}\n",
    "alias_bomb": (Path(__file__).parents[1] / "configs" / "bad-alias-bomb.yml").read_text(),
    "env_expansion": 'fuse:\n  dir: "${UNSET_LITEFS_VAR_FOR_TEST}/x"\ndata:\n  dir: "$ALSO_UNSET"\n',
}


@pytest.mark.parametrize("where", ["cwd", "home"])
@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_litefs_yml_with_guard_dir(runner, node, tmp_path, kind, where):
    d = tmp_path / "yml"
    d.mkdir()
    (d / "litefs.yml").write_bytes(BROKEN[kind].encode("latin-1"))
    env = node.env()
    if where == "home":
        env["HOME"] = str(d)
        cwd = tmp_path
    else:
        cwd = d
    node.make_replica()
    before = node.snapshot()
    out = run(runner, f".load {SO}", f".open {node.db}", "SELECT count(*) FROM t", *WRITES, "SELECT litefs_is_primary()", env=env, cwd=cwd)
    assert_ok(out[0], f"loading with a broken {where} litefs.yml ({kind}) and LITEFS_GUARD_DIR set")
    assert out[2] == "ok 40", f"read: {out[2]}"
    assert out[-1] == "ok 0", f"litefs_is_primary(): {out[-1]}"
    assert_all_refused(WRITES, out[3:-1], before, node.snapshot(), f"broken litefs.yml ({kind})")


def test_litefs_yml_directory_in_cwd(runner, node, tmp_path):
    """./litefs.yml is a directory: still loads with LITEFS_GUARD_DIR set."""
    d = tmp_path / "yml"
    (d / "litefs.yml").mkdir(parents=True)
    out = run(runner, f".load {SO}", "SELECT litefs_is_primary()", env=node.env(), cwd=d)
    assert_ok(out[0], "loading with ./litefs.yml a directory")
