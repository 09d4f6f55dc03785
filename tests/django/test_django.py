"""The litefs_guard.django backend: ORM writes on the primary, NotPrimaryError
on a replica with nothing written, migrations, concurrency, failover, and
`manage.py litefs_status`."""

import json
import shutil
import sqlite3

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import F, Sum
from django.db.migrations.recorder import MigrationRecorder

import litefs_guard
from litefs_guard.django import NotPrimaryError
from notes.models import Counter, Note
from conftest import DB, clean_env, db_files, run, run_json, set_primary, set_replica


def snapshot():
    return (
        sorted(Note.objects.values_list("title", "body")),
        sorted(Counter.objects.values_list("name", "value")),
        db_files(),
    )


def test_backend_is_guarded():
    # Named exactly as Django's own SQLite backend (test_litefs_cli.py compares the two).
    assert connection.vendor == "sqlite" and connection.display_name == "SQLite"
    with connection.cursor() as c:
        cfg = json.loads(c.execute("SELECT litefs_config()").fetchone()[0])
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cfg["vfs"] is True and cfg["role"] == "primary" and cfg["database"] == str(DB)


def test_error_class():
    assert issubclass(NotPrimaryError, DatabaseError)
    assert issubclass(NotPrimaryError, litefs_guard.NotPrimaryError)


def test_orm_writes_on_primary():
    n = Note.objects.create(title="third")
    n.body = "edited"
    n.save()
    assert Note.objects.filter(title__in=["first", "second"]).update(body="bulk") == 2
    Note.objects.bulk_create([Note(title=f"b{i}") for i in range(3)])
    obj, created = Note.objects.get_or_create(title="goc", defaults={"body": "new"})
    assert created
    obj, created = Note.objects.update_or_create(title="goc", defaults={"body": "updated"})
    assert not created and obj.body == "updated"
    Note.objects.get(title="b0").delete()
    assert Note.objects.filter(title__startswith="b").delete()[0] == 2
    assert sorted(Note.objects.values_list("title", "body")) == [
        ("first", "bulk"), ("goc", "updated"), ("second", "bulk"), ("third", "edited")]


WRITES = {
    "create": lambda: Note.objects.create(title="third"),
    "save_update": lambda: _save_existing(),
    "queryset_update": lambda: Note.objects.update(body="x"),
    "f_update": lambda: Counter.objects.update(value=F("value") + 1),
    "instance_delete": lambda: Note.objects.get(title="first").delete(),
    "queryset_delete": lambda: Note.objects.all().delete(),
    "bulk_create": lambda: Note.objects.bulk_create([Note(title="x1"), Note(title="x2")]),
    "bulk_update": lambda: _bulk_update(),
    "get_or_create": lambda: Note.objects.get_or_create(title="new", defaults={"body": "b"}),
    "update_or_create": lambda: Note.objects.update_or_create(title="first", defaults={"body": "changed"}),
    "atomic_read_then_write": lambda: _atomic_read_then_write(),
    "raw_cursor": lambda: connection.cursor().execute("DELETE FROM notes_note"),
    "raw_executemany": lambda: connection.cursor().executemany(
        "INSERT INTO notes_note(title, body) VALUES (%s, %s)", [("r1", ""), ("r2", "")]),
}


def _save_existing():
    n = Note.objects.get(title="first")
    n.body = "changed"
    n.save()


def _bulk_update():
    notes = list(Note.objects.all())
    for n in notes:
        n.body = "bulk"
    Note.objects.bulk_update(notes, ["body"])


def _atomic_read_then_write():
    with transaction.atomic():
        c = Counter.objects.get(name="hits")
        c.value += 1
        c.save()


@pytest.mark.parametrize("op", sorted(WRITES))
def test_write_refused_on_replica(op):
    set_replica("node-b")
    before = snapshot()
    with pytest.raises(NotPrimaryError) as ei:
        WRITES[op]()
    msg = str(ei.value)
    assert "this node is a replica; the primary is node-b" in msg, msg
    assert ei.value.primary == "node-b" and ei.value.role == "replica"
    assert ei.value.sqlite_errorcode in (8, 23)
    assert isinstance(ei.value.__cause__, sqlite3.DatabaseError)
    assert snapshot() == before
    assert not connection.in_atomic_block
    # The connection stays usable.
    assert Note.objects.count() == 2


def test_reads_on_replica():
    set_replica()
    assert list(Note.objects.order_by("title").values_list("title", flat=True)) == ["first", "second"]
    assert Note.objects.filter(body="two").exists()
    assert Counter.objects.get(name="hits").value == 5
    with transaction.atomic():
        assert Note.objects.count() == 2
        assert Counter.objects.aggregate(total=Sum("value"))["total"] == 5
    with connection.cursor() as c:
        assert c.execute("SELECT litefs_primary()").fetchone()[0] == "node-b"


def test_failover_between_requests():
    """A persistent connection opened as primary: after `.primary` appears,
    the very next ORM write is refused."""
    Note.objects.create(title="request 1")
    Note.objects.filter(title="request 1").update(body="as primary")
    set_replica("node-new")
    before = snapshot()
    with pytest.raises(NotPrimaryError, match="the primary is node-new"):
        Note.objects.filter(title="request 1").update(body="as replica")
    with pytest.raises(NotPrimaryError, match="the primary is node-new"):
        Note.objects.create(title="request 2")
    assert snapshot() == before
    set_primary()
    Note.objects.create(title="request 3")
    assert Note.objects.filter(title__startswith="request").count() == 2


def test_failover_inside_atomic_before_first_query():
    set_primary()
    with pytest.raises(NotPrimaryError):
        with transaction.atomic():
            set_replica("node-x")
            Note.objects.create(title="never")
    assert not Note.objects.filter(title="never").exists()


def test_migrate_refused_on_replica():
    recorder = MigrationRecorder(connection)
    applied = sorted(recorder.applied_migrations())
    set_replica("node-b")
    before = db_files()
    with pytest.raises(NotPrimaryError, match="the primary is node-b"):
        call_command("migrate", verbosity=0)
    assert db_files() == before
    assert sorted(recorder.applied_migrations()) == applied
    assert "notes_tag" not in connection.introspection.table_names()


def test_migrate_on_fresh_replica_database(tmp_path):
    """No django_migrations table yet: Django wraps the refusal in
    MigrationSchemaMissing, whose message and cause are the guard's."""
    mount = tmp_path / "litefs"
    mount.mkdir()
    (mount / ".primary").write_text("node-b\n")
    # The (empty) database exists, as on a real replica: creating one there is
    # itself a write the guard refuses.
    (mount / "app.db").touch()
    r = run(["manage.py", "migrate"], clean_env(TEST_DB_NAME=mount / "app.db", HOME=tmp_path))
    assert r.returncode != 0
    assert "MigrationSchemaMissing: Unable to create the django_migrations table" in r.stderr
    assert "this node is a replica; the primary is node-b" in r.stderr
    assert "litefs_guard.django.NotPrimaryError" in r.stderr


def test_commit_refusal_translated():
    """A refusal raised at COMMIT (LiteFS refusing the WAL write) becomes
    NotPrimaryError too."""
    set_replica("node-b")
    real = connection.connection

    class Refusing:
        def __getattr__(self, name):
            return getattr(real, name)

        def commit(self):
            e = sqlite3.OperationalError("attempt to write a readonly database")
            e.sqlite_errorcode, e.sqlite_errorname = 8, "SQLITE_READONLY"
            raise e

    wrapper = connections["default"]
    wrapper.connection = Refusing()
    try:
        with pytest.raises(NotPrimaryError, match="the primary is node-b"):
            wrapper._commit()
    finally:
        wrapper.connection = real


def _race(tmp_path, engine, options=None):
    mount = tmp_path / "litefs"
    mount.mkdir()
    env = clean_env(TEST_DB_NAME=mount / "app.db", TEST_DB_ENGINE=engine, HOME=tmp_path,
                    TEST_DB_OPTIONS=json.dumps(options or {}))
    return run_json(["counter_race.py", "8", "10"], env)


def test_atomic_read_then_write_from_8_threads(tmp_path):
    out = _race(tmp_path, "litefs_guard.django")
    assert out["extension_mapped"] and out["journal_mode"] == "wal"
    assert out["errors"] == []
    assert out["value"] == out["expected"] == 80


def test_control_stock_backend_fails_same_race(tmp_path):
    """Django's stock backend, plain deferred transactions, same WAL mode:
    the same test fails (database is locked, or updates lost)."""
    out = _race(tmp_path, "django.db.backends.sqlite3", {"init_command": "PRAGMA journal_mode=WAL"})
    assert not out["extension_mapped"] and not out["package_imported"]
    assert out["journal_mode"] == "wal"
    assert out["errors"] or out["value"] < out["expected"], out
    assert all("database is locked" in e for e in out["errors"]), out["errors"][:3]


def test_options_transaction_mode_and_init_command(tmp_path):
    mount = tmp_path / "litefs"
    mount.mkdir()
    code = """
import json, os, sys
sys.path.insert(0, os.getcwd())
os.environ["DJANGO_SETTINGS_MODULE"] = "proj.settings"
import django; django.setup()
from django.core.management import call_command
from django.db import connection, transaction
from notes.models import Note
call_command("migrate", "notes", "0001", verbosity=0)
res = {"mode": connection.transaction_mode,
       "cache_size": connection.cursor().execute("PRAGMA cache_size").fetchone()[0]}
with transaction.atomic():
    Note.objects.create(title="immediate")
res["primary_rows"] = Note.objects.count()
open(os.path.join(sys.argv[1], ".primary"), "w").write("node-b\\n")
try:
    with transaction.atomic():
        Note.objects.count()
    res["replica_atomic"] = "ok"
except Exception as e:
    res["replica_atomic"] = type(e).__module__ + "." + type(e).__name__
res["replica_read"] = Note.objects.count()
print(json.dumps(res))
"""
    out = run_json(["-c", code, str(mount)], clean_env(
        TEST_DB_NAME=mount / "app.db", HOME=tmp_path,
        TEST_DB_OPTIONS=json.dumps({"transaction_mode": "IMMEDIATE", "init_command": "PRAGMA cache_size=-1234"})))
    # BEGIN IMMEDIATE takes the write lock: on a replica even a read-only
    # atomic() block is refused (leave transaction_mode unset with the guard).
    assert out == {"mode": "IMMEDIATE", "cache_size": -1234, "primary_rows": 1,
                   "replica_atomic": "litefs_guard.django.NotPrimaryError", "replica_read": 1}


def _status(tmp_path, mount, db, *args, **env):
    return run(["manage.py", "litefs_status", *args],
               clean_env(TEST_DB_NAME=db, HOME=tmp_path, **env))


def test_litefs_status_exit_codes(tmp_path):
    mount = tmp_path / "litefs"
    mount.mkdir()
    db = mount / "app.db"
    r = _status(tmp_path, mount, db)
    assert r.returncode == 0, r.stderr
    assert "role:         primary" in r.stdout
    assert f"mount:        {mount} (from database directory)" in r.stdout
    assert "config:       none (no litefs.yml)" in r.stdout

    (mount / ".primary").write_text("node-b\n")
    r = _status(tmp_path, mount, db)
    assert r.returncode == 1, r.stderr
    assert "role:         replica" in r.stdout and "primary:      node-b" in r.stdout
    assert "this node is a replica; the primary is node-b" in r.stdout

    r = _status(tmp_path, mount, db, "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["primary"] == "node-b"

    shutil.rmtree(mount)
    r = _status(tmp_path, mount, db, LITEFS_GUARD_DIR=mount)
    assert r.returncode == 2, r.stderr
    assert "role:         not_running" in r.stdout and str(mount) in r.stdout

    r = _status(tmp_path, mount, db)
    assert r.returncode == 2, r.stderr
    assert "role:         not_running" in r.stdout and "could not be opened" in r.stdout
