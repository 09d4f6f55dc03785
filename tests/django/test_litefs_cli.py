"""`manage.py litefs_status`'s exit codes as `litefs-guard status`'s,
`manage.py litefs_config [--check]` (settings.LITEFS through the
litefs-guard tool), and the backend reading exactly as Django's own SQLite
backend outside the refusals."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.backends.sqlite3 import base as stock
from django.db.utils import NotSupportedError
from django.test import override_settings

import litefs_guard
from litefs_guard.django import base as guarded
from litefs_guard.django import litefs_yml
from conftest import clean_env, run

REPO = Path(__file__).resolve().parents[2]
# Built by `make build` (cargo build --release builds every workspace member).
CLI = REPO / "target" / "release" / "litefs-guard"


@pytest.fixture
def cli():
    assert CLI.is_file(), f"{CLI} is missing: run cargo build --release -p litefs-guard-cli"
    return str(CLI)


GOOD = {
    "FUSE": {"DIR": "/litefs"},
    "DATA": {"DIR": "/var/lib/litefs"},
    "LEASE": {"TYPE": "static", "CANDIDATE": True, "ADVERTISE_URL": "http://node-a:20202"},
    "PROXY": {"ADDR": ":8080", "TARGET": "localhost:8000", "DB": "db.sqlite3"},
    "EXEC": "gunicorn app.wsgi",
}


def litefs_config(*args, **settings):
    """Runs `manage.py litefs_config` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with override_settings(**settings):
        try:
            call_command("litefs_config", *args, stdout=out, stderr=err)
            code = 0
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_litefs_config_renders_what_litefs_guard_config_init_renders(cli, tmp_path):
    code, out, err = litefs_config(LITEFS=GOOD, LITEFS_GUARD_CLI=cli)
    assert code == 0, err
    r = run_cli(cli, ["config", "init", "--candidate", "true", "--advertise-url", "http://node-a:20202",
                      "--proxy-addr", ":8080", "--proxy-target", "localhost:8000", "--proxy-db", "db.sqlite3",
                      "--exec", "gunicorn app.wsgi"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert out == r.stdout
    # Deterministic, and what it writes is what it prints.
    assert litefs_config(LITEFS=GOOD, LITEFS_GUARD_CLI=cli)[1] == out
    target = tmp_path / "litefs.yml"
    code, _, err = litefs_config("-o", str(target), LITEFS=GOOD, LITEFS_GUARD_CLI=cli)
    assert code == 0, err
    assert target.read_text() == out
    r = run_cli(cli, ["config", "check", str(target)], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    code, out, err = litefs_config("--check", LITEFS=GOOD, LITEFS_GUARD_CLI=cli)
    assert (code, out.strip(), err) == (0, "settings.LITEFS: ok", "")


def run_cli(cli, args, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITEFS_GUARD_")}
    env["HOME"] = str(tmp_path)
    return subprocess.run([cli, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_litefs_config_accepts_the_earlier_flat_keys(cli):
    flat = {
        "MOUNT_PATH": "/litefs",
        "DATA_PATH": "/var/lib/litefs",
        "PROXY_ADDR": ":8080",
        "DATABASE_NAME": "db.sqlite3",
        "RETENTION": "10m",
        "LEADER_ELECTION": "static",
        "PROXY": {"TARGET": "localhost:8000"},
    }
    code, out, err = litefs_config(LITEFS=flat, LITEFS_GUARD_CLI=cli)
    assert code == 0, err
    assert out == (
        'fuse:\n  dir: "/litefs"\ndata:\n  dir: "/var/lib/litefs"\n  retention: "10m"\n'
        'proxy:\n  addr: ":8080"\n  target: "localhost:8000"\n  db: "db.sqlite3"\n'
        'lease:\n  type: "static"\n'
    )


@pytest.mark.parametrize("litefs, expected", [
    ({**GOOD, "LEASE": {"TYPE": "etcd"}}, ['LITEFS["LEASE"]["TYPE"]: unknown variant `etcd`']),
    ({**GOOD, "FUSE": {"DIR": "litefs"}}, ['LITEFS["FUSE"]["DIR"] = "litefs": must be an absolute path']),
    ({**GOOD, "DATA": {}}, ['LITEFS["DATA"]["DIR"]: is missing']),
    ({k: v for k, v in GOOD.items() if k != "FUSE"} | {"MOUNT_PATH": "relative"},
     ['LITEFS["MOUNT_PATH"] = "relative": must be an absolute path']),
    ({**GOOD, "LEADER_ELECTION": "raft"}, ['LITEFS["LEADER_ELECTION"] = \'raft\': LiteFS has no such leader election']),
    ({**GOOD, "MOUNT_PATH": "/x"}, ['LITEFS["MOUNT_PATH"] and LITEFS["FUSE"]["DIR"] both set']),
    ({**GOOD, "FUSE": {"DIR": "/litefs", "ALOW_OTHER": True}}, ['LITEFS["FUSE"]["ALOW_OTHER"]: not a LiteFS setting']),
    ({**GOOD, "EXEC": [{"CMD": "migrate", "IF_CANDIDATE": True}, {"CMD": " "}]},
     ['LITEFS["EXEC"][1]["CMD"] = " ": is an empty command']),
    ({**GOOD, "LEASE": {"TYPE": "consul", "CONSUL": {"URL": "consul:8500"}}},
     ['LITEFS["LEASE"]["CONSUL"]["URL"] = "consul:8500": must start with http']),
])
def test_litefs_config_check_names_the_settings_key(cli, litefs, expected):
    for args in (["--check"], []):
        code, out, err = litefs_config(*args, LITEFS=litefs, LITEFS_GUARD_CLI=cli)
        assert code == 1, (args, out, err)
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == len(expected), err
        for line, want in zip(lines, expected):
            assert line.startswith(want), (line, want)


def test_litefs_config_without_settings_or_tool(cli, tmp_path, monkeypatch):
    code, _, err = litefs_config("--check", LITEFS_GUARD_CLI=cli)
    assert code == 78 and "settings.LITEFS is not set" in err
    code, _, err = litefs_config("--check", LITEFS=["FUSE"], LITEFS_GUARD_CLI=cli)
    assert code == 78 and "must be a dict" in err
    # Not found anywhere: a clear error naming every way to point at it.
    monkeypatch.delenv("LITEFS_GUARD_CLI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(litefs_yml._cli, "bundled_path", lambda: str(tmp_path / "pkg" / "bin" / "litefs-guard"))
    code, _, err = litefs_config("--check", LITEFS=GOOD)
    assert code == 69, err
    assert "litefs-guard command line tool was not found" in err and "LITEFS_GUARD_CLI" in err
    # The environment variable, then PATH, are used.
    monkeypatch.setenv("LITEFS_GUARD_CLI", cli)
    assert litefs_config("--check", LITEFS=GOOD)[0] == 0
    monkeypatch.setenv("LITEFS_GUARD_CLI", str(tmp_path / "nope"))
    code, _, err = litefs_config("--check", LITEFS=GOOD)
    assert code == 69 and "$LITEFS_GUARD_CLI" in err and "nope" in err
    monkeypatch.delenv("LITEFS_GUARD_CLI")
    link = tmp_path / "litefs-guard"
    link.symlink_to(cli)
    assert litefs_config("--check", LITEFS=GOOD)[0] == 0


def test_litefs_config_from_the_settings_module(cli, tmp_path):
    env = clean_env(TEST_DB_NAME=tmp_path / "app.db", HOME=tmp_path, LITEFS_GUARD_CLI=cli,
                    TEST_LITEFS=json.dumps(GOOD))
    r = run(["manage.py", "litefs_config"], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('fuse:\n  dir: "/litefs"\n')
    r = run(["manage.py", "litefs_config", "--check"], env | {"TEST_LITEFS": json.dumps({**GOOD, "LEASE": {"TYPE": "raft"}})})
    assert r.returncode == 1, r.stderr
    assert 'LITEFS["LEASE"]["TYPE"]: unknown variant `raft`' in r.stderr


def _status(tmp_path, db, *args, **env):
    return run(["manage.py", "litefs_status", *args], clean_env(TEST_DB_NAME=db, HOME=tmp_path, **env))


def test_litefs_status_exit_3_outside_every_mount(tmp_path):
    mount = tmp_path / "litefs"
    mount.mkdir()
    (mount / ".primary").write_text("node-b\n")
    outside = tmp_path / "elsewhere" / "app.db"
    outside.parent.mkdir()
    r = _status(tmp_path, outside, LITEFS_GUARD_DIR=mount, LITEFS_GUARD_REQUIRE_FUSE=0)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "role:         outside" in r.stdout and "mount_role:   replica" in r.stdout
    assert "is outside the guarded mount" in r.stdout
    r = _status(tmp_path, outside, "--json", LITEFS_GUARD_DIR=mount, LITEFS_GUARD_REQUIRE_FUSE=0)
    assert r.returncode == 3
    info = json.loads(r.stdout)
    assert info["role"] == "outside" and info["guarded"] is False
    # Inside the mount: the replica it is.
    r = _status(tmp_path, mount / "app.db", LITEFS_GUARD_DIR=mount, LITEFS_GUARD_REQUIRE_FUSE=0)
    assert r.returncode == 1, r.stdout + r.stderr


def test_litefs_status_same_codes_as_the_cli(cli, tmp_path):
    mount = tmp_path / "litefs"
    mount.mkdir()
    cases = [
        (mount / "app.db", {}),
        (tmp_path / "out.db", {}),
        (mount / "app.db", {".primary": "node-c\n"}),
    ]
    for db, files in cases:
        for name, text in files.items():
            (mount / name).write_text(text)
        env = {"LITEFS_GUARD_DIR": mount, "LITEFS_GUARD_REQUIRE_FUSE": 0}
        django_code = _status(tmp_path, db, **env).returncode
        tool = subprocess.run([cli, "status", "--db", str(db)], cwd=tmp_path, capture_output=True, text=True,
                              env=clean_env(HOME=tmp_path, **env), timeout=60)
        assert django_code == tool.returncode, (db, files, tool.stdout)
        assert django_code in (0, 1, 3)


def test_litefs_status_unusable_settings_exit_78(tmp_path):
    r = _status(tmp_path, tmp_path / "app.db", LITEFS_GUARD_MARKER="sideways")
    assert r.returncode == 78, r.stdout + r.stderr
    assert "LITEFS_GUARD_MARKER" in r.stderr


STOCK_ATTRS = [
    "vendor", "display_name", "data_types", "data_types_suffix", "data_type_check_constraints",
    "operators", "pattern_esc", "pattern_ops", "Database", "SchemaEditorClass", "client_class",
    "creation_class", "features_class", "introspection_class", "ops_class",
]


def test_backend_reads_exactly_as_djangos_sqlite_backend():
    for attr in STOCK_ATTRS:
        assert getattr(guarded.DatabaseWrapper, attr) == getattr(stock.DatabaseWrapper, attr), attr
    assert connection.display_name == "SQLite" and connection.vendor == "sqlite"
    assert type(connection.features) is stock.DatabaseWrapper.features_class
    assert type(connection.ops) is stock.DatabaseWrapper.ops_class
    # Django's own messages name the database as for the stock backend.
    settings_dict = dict(connection.settings_dict)
    messages = []
    for cls in (stock.DatabaseWrapper, guarded.DatabaseWrapper):
        w = cls(settings_dict, alias="compare")
        w.get_database_version = lambda: (3, 1)
        with pytest.raises(NotSupportedError) as exc:
            w.check_database_version_supported()
        messages.append(str(exc.value))
    assert messages[0] == messages[1] == "SQLite 3.31 or later is required (found 3.1)."
    # What differs is what refuses writes.
    assert guarded.DatabaseWrapper.create_cursor is not stock.DatabaseWrapper.create_cursor
    assert litefs_guard.NotPrimaryError


def test_the_wheel_ships_the_tool(monkeypatch, tmp_path):
    """The installed package carries the tool (litefs_guard/bin/litefs-guard),
    found before PATH, and the `litefs-guard` console script execs it."""
    from litefs_guard import _cli

    bundled = _cli.bundled()
    assert bundled == os.path.join(os.path.dirname(litefs_guard.__file__), "bin", "litefs-guard")
    monkeypatch.delenv("LITEFS_GUARD_CLI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert litefs_yml.find_cli() == bundled
    script = Path(sys.executable).parent / "litefs-guard"
    assert script.is_file()
    mount = tmp_path / "litefs"
    mount.mkdir()
    env = clean_env(LITEFS_GUARD_DIR=mount, LITEFS_GUARD_REQUIRE_FUSE=0, HOME=tmp_path)
    r = subprocess.run([str(script), "status", "--json", "--db", str(mount / "app.db")],
                       env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["role"] == "primary", r.stdout + r.stderr
    (mount / ".primary").write_text("node-b\n")
    r = subprocess.run([str(script), "status", "--json", "--db", str(mount / "app.db")],
                       env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 1 and json.loads(r.stdout)["primary"] == "node-b", r.stdout + r.stderr
    r = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and litefs_guard.__version__ in r.stdout, r.stdout + r.stderr
