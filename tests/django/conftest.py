"""A Django project (proj, app notes) on a fake LiteFS mount.

In this process the default database is <tmp>/litefs/app.db with the
litefs_guard.django engine and default guard settings (the database's
directory is the mount). Migrations: notes 0001 applied, 0002 left pending.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for _k in [k for k in os.environ if k.startswith("LITEFS_GUARD_")]:
    del os.environ[_k]

import tempfile  # noqa: E402

_root = Path(tempfile.mkdtemp(prefix="litefs-guard-django-"))
MOUNT = _root / "litefs"
MOUNT.mkdir()
DB = MOUNT / "app.db"
os.environ["TEST_DB_NAME"] = str(DB)
os.environ.pop("TEST_DB_ENGINE", None)
os.environ.pop("TEST_DB_OPTIONS", None)
os.environ["DJANGO_SETTINGS_MODULE"] = "proj.settings"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # simnodes

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

call_command("migrate", "notes", "0001", verbosity=0)

from simnodes import sim  # noqa: E402,F401  (the fixture: a real two-node litefs-sim)


def pytest_sessionfinish(session, exitstatus):
    import shutil

    connection.close()
    shutil.rmtree(_root, ignore_errors=True)


def set_replica(primary="node-b"):
    (MOUNT / ".primary").write_text(primary + "\n")


def set_primary():
    (MOUNT / ".primary").unlink(missing_ok=True)


def db_files():
    """sha256 of app.db and a non-empty WAL."""
    out = {}
    for name in ("app.db", "app.db-wal"):
        p = MOUNT / name
        if p.exists() and p.stat().st_size:
            out[name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(autouse=True)
def fresh_data():
    """Each test starts as the primary with two notes and a counter."""
    from notes.models import Counter, Note

    set_primary()
    Note.objects.all().delete()
    Counter.objects.all().delete()
    Note.objects.create(title="first", body="one")
    Note.objects.create(title="second", body="two")
    Counter.objects.create(name="hits", value=5)
    yield
    set_primary()


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITEFS_GUARD_", "TEST_DB_"))}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(args, env, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=HERE, env=env, capture_output=True, text=True, timeout=timeout)


def run_json(args, env, timeout=120):
    r = run(args, env, timeout)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return json.loads(r.stdout.strip().splitlines()[-1])
