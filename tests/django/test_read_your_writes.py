"""litefs_guard.django.middleware.ReadYourWritesMiddleware, the
`forward_writes` option and README's Django recipe.

README's recipe ("README's recipe, on litefs-sim" below) runs on a real
two-node litefs-sim (tests/simnodes.py), one Django process per node, with
the recipe's settings as written.

The middleware's own contract (cookie attributes and forms, no file read on
requests that write nothing, the floor reset after the view, 503 details)
is checked in this process on two stand-in nodes: plain directories (each
database's directory is its mount: default guard settings), a primary and a
replica (`.primary`), both starting as copies of the test database at TXID
5. A request "goes to a node" by pointing the default alias at that node's
app.db. LiteFS's part is played by hand: the primary's `app.db-pos` is
advanced to 6 just before the write (what `litefs_position()` reads after
COMMIT is all the middleware sees), and a stock-SQLite subprocess
"replicates": after a delay it copies the notes into the replica's
database, then writes the replica's `app.db-pos` (see
tests/python/test_positions.py for the file's format). Only here can a
replica's bytes be behind (litefs-sim's nodes share one backing store), so
only here is a stale answer without the cookie shown.
"""

import json
import select
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection, connections
from django.test import Client, override_settings

from conftest import HERE, clean_env, run

MW = "litefs_guard.django.middleware.ReadYourWritesMiddleware"
README = Path(__file__).resolve().parents[2] / "README.md"


def pos(txid, checksum=0x83B05248774CE767):
    return f"{txid:016x}/{checksum:016x}"


def write_pos(db, txid):
    p = Path(str(db) + "-pos")
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(pos(txid) + "\n")
    tmp.replace(p)


class Nodes:
    def __init__(self, root):
        self.primary = root / "a" / "litefs" / "app.db"
        self.replica = root / "b" / "litefs" / "app.db"
        for db in (self.primary, self.replica):
            db.parent.mkdir(parents=True)
            with connection.cursor() as c:
                c.execute("VACUUM INTO %s", [str(db)])
            write_pos(db, 5)
            (db.parent / ".lag").write_text("+000000000\n")
        (self.replica.parent / ".primary").write_text("node-a\n")
        self.replicators = []

    @contextmanager
    def on(self, db):
        """Requests inside go to the node whose database is `db`."""
        default = connections["default"]
        old = default.settings_dict["NAME"]
        default.close()
        default.settings_dict["NAME"] = str(db)
        try:
            yield
        finally:
            default.close()
            default.settings_dict["NAME"] = old

    def replicate(self, txid, delay):
        """In `delay` seconds, the replica gets the primary's notes and TXID `txid`."""
        code = f"""
            import sqlite3, time, os
            time.sleep({delay})
            c = sqlite3.connect({str(self.replica)!r}, isolation_level=None)
            c.execute("ATTACH ? AS p", ({str(self.primary)!r},))
            c.executescript("BEGIN; DELETE FROM main.notes_note; "
                            "INSERT INTO main.notes_note SELECT * FROM p.notes_note; COMMIT;")
            c.close()
            tmp = {str(self.replica) + "-pos.tmp"!r}
            open(tmp, "w").write({pos(txid) + chr(10)!r})
            os.replace(tmp, {str(self.replica) + "-pos"!r})
        """
        # Stock SQLite: this interpreter never loads the guard.
        p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=clean_env())
        self.replicators.append(p)
        return p

    def close(self):
        for p in self.replicators:
            assert p.wait(timeout=30) == 0


@pytest.fixture
def nodes(tmp_path):
    n = Nodes(tmp_path)
    yield n
    n.close()


def rywsettings(**kw):
    return override_settings(ROOT_URLCONF="ryw_urls", MIDDLEWARE=[MW], **kw)


def titles(response):
    assert response.status_code == 200, (response.status_code, response.content)
    return response.json()["titles"]


def write_on_primary(nodes, client, title="third"):
    with nodes.on(nodes.primary):
        write_pos(nodes.primary, 6)  # as LiteFS will at this COMMIT
        r = client.post("/notes", {"title": title})
    assert title in titles(r)
    return r


@rywsettings()
def test_a_write_sets_the_cookie_with_the_position_reached(nodes):
    client = Client()
    r = write_on_primary(nodes, client)
    morsel = r.cookies["litefs_txid"]
    assert morsel.value == "default:" + pos(6)
    assert morsel["httponly"] is True and morsel["samesite"] == "Lax"
    assert morsel["max-age"] == 300 and morsel["path"] == "/"
    assert not morsel["secure"]
    # Over HTTPS it is Secure.
    with nodes.on(nodes.primary):
        r = Client().post("/notes", {"title": "fourth"}, secure=True)
    assert r.cookies["litefs_txid"]["secure"] is True


@rywsettings()
def test_requests_that_change_nothing_set_no_cookie_and_read_no_file(nodes):
    client = Client()
    with nodes.on(nodes.primary):
        assert titles(client.get("/notes")) == ["first", "second"]
        with connection.cursor() as c:
            before = json.loads(c.execute("SELECT litefs_guard_stats()").fetchone()[0])
        r1 = client.get("/notes")
        r2 = client.get("/static")  # no database at all
        with connection.cursor() as c:
            after = json.loads(c.execute("SELECT litefs_guard_stats()").fetchone()[0])
        assert after == before, "no NAME-pos, .lag or .primary read"
        r3 = client.get("/unchanged")  # an UPDATE that matches no row
        with connection.cursor() as c:
            after = json.loads(c.execute("SELECT litefs_guard_stats()").fetchone()[0])
        # (The UPDATE's write transaction costs the guard's own one .primary lookup.)
        assert after["position_reads"] == before["position_reads"] and after["lag_reads"] == before["lag_reads"]
    for r in (r1, r2, r3):
        assert r.status_code == 200 and "litefs_txid" not in r.cookies


@rywsettings()
def test_the_cookie_makes_a_lagging_replica_wait_for_the_write(nodes):
    client = Client()
    write_on_primary(nodes, client)
    with nodes.on(nodes.replica):
        # Control: without the cookie the replica answers at once, stale.
        assert titles(Client().get("/notes")) == ["first", "second"]
        nodes.replicate(6, delay=0.3)
        t0 = time.monotonic()
        r = client.get("/notes")
        took = time.monotonic() - t0
    assert titles(r) == ["first", "second", "third"]
    assert 0.25 <= took < 3, took
    assert "litefs_txid" not in r.cookies, "a read leaves the cookie as it is"


@rywsettings(LITEFS_READ_YOUR_WRITES_WAIT_MS=200)
def test_a_replica_that_does_not_catch_up_answers_503_with_the_reason(nodes):
    client = Client()
    write_on_primary(nodes, client)
    with nodes.on(nodes.replica):
        t0 = time.monotonic()
        r = client.get("/notes")
        took = time.monotonic() - t0
        assert r.status_code == 503, r.content
        assert r["Retry-After"] == "1"
        body = r.content.decode()
        assert "below the read floor TXID 6 (PRAGMA litefs_min_txid), after waiting" in body, body
        assert "the primary is node-a" in body
        assert "litefs_txid" not in r.cookies, "kept for the retry"
        assert 0.15 <= took < 2, took
        # The connection is left without the floor.
        with connection.cursor() as c:
            assert c.execute("PRAGMA litefs_min_txid").fetchone()[0] == "0"
            assert c.execute("PRAGMA litefs_wait_ms").fetchone()[0] == "5000"
        # Caught up: the same cookie reads the write.
        nodes.replicate(6, delay=0).wait(timeout=30)
        assert titles(client.get("/notes")) == ["first", "second", "third"]


@rywsettings()
def test_the_floor_holds_during_the_view_and_is_reset_after(nodes):
    client = Client()
    write_on_primary(nodes, client)
    with nodes.on(nodes.primary):
        r = client.get("/floor")
        assert r.json() == {"floor": "6"}
        with connection.cursor() as c:
            assert c.execute("PRAGMA litefs_min_txid").fetchone()[0] == "0"
        # A view that replaces its connection: the new one reads (the node is
        # known to be at the floor already).
        assert titles(client.get("/reopen")) == ["first", "second", "third"]


@rywsettings()
def test_a_floor_refusal_inside_the_view_is_a_503_not_a_500(nodes):
    client = Client()
    write_on_primary(nodes, client)
    with nodes.on(nodes.replica):
        nodes.replicate(6, delay=0).wait(timeout=30)
        r = client.get("/beyond")
        assert r.status_code == 503, r.content
        assert "below the read floor TXID 99 (PRAGMA litefs_min_txid)" in r.content.decode()
        with connection.cursor() as c:
            assert c.execute("PRAGMA litefs_min_txid").fetchone()[0] == "0"
        # Without the client's cookie the middleware leaves the view's errors alone.
        with pytest.raises(Exception, match="database table is locked"):
            Client().get("/beyond")


@rywsettings()
def test_a_later_write_moves_the_cookie_forward(nodes):
    client = Client()
    write_on_primary(nodes, client)
    with nodes.on(nodes.primary):
        write_pos(nodes.primary, 9)
        r = client.post("/notes", {"title": "fourth"})
    assert r.cookies["litefs_txid"].value == "default:" + pos(9)


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "default:6",
        "default:" + pos(6).upper(),
        "default:" + pos(6) + "'; DROP TABLE notes_note; --",
        "default:" + pos(6) + "|default:" + pos(7),
        "other:" + pos(6),
        ":" + pos(6),
        "x" * 5000,
    ],
)
@rywsettings()
def test_a_cookie_that_is_not_a_position_is_ignored_and_cleared(nodes, value):
    client = Client()
    client.cookies["litefs_txid"] = value
    with nodes.on(nodes.replica):
        r = client.get("/notes")
    assert titles(r) == ["first", "second"]
    cleared = r.cookies["litefs_txid"]
    assert cleared.value == "" and cleared["max-age"] == 0


@rywsettings(LITEFS_TXID_COOKIE="rw", LITEFS_TXID_COOKIE_MAX_AGE=30)
def test_cookie_name_and_max_age_are_settings(nodes):
    client = Client()
    r = write_on_primary(nodes, client)
    assert "litefs_txid" not in r.cookies
    assert r.cookies["rw"].value == "default:" + pos(6) and r.cookies["rw"]["max-age"] == 30


@rywsettings()
def test_a_write_refused_on_a_replica_sets_no_cookie(nodes):
    client = Client(raise_request_exception=False)
    with nodes.on(nodes.replica):
        r = client.post("/notes", {"title": "x"})
    assert r.status_code == 500 and "litefs_txid" not in r.cookies


@rywsettings()
def test_no_position_file_no_cookie_and_no_error(nodes):
    Path(str(nodes.primary) + "-pos").unlink()
    with nodes.on(nodes.primary):
        r = Client().post("/notes", {"title": "third"})
    assert titles(r) == ["first", "second", "third"] and "litefs_txid" not in r.cookies


# -- README's recipe, on litefs-sim ---------------------------------------------------
# One Django process per request batch and node (sim_requests.py), its database
# on that node's mount: n1 holds the lease (the primary), n2 is its replica,
# held back with `sim.hold("n2")` (what n2 reports as its position freezes).
# A held node of litefs-sim still reads the newest bytes (one shared backing
# store), so a replica that ignored the cookie would not answer stale here:
# it would answer at once. The test asserts that the request carrying the
# cookie is still waiting while n2 is held and answers after the release, and
# a control shows that the same request without the cookie answers at once.

#: How long a request must still be waiting on the held replica to count as blocked.
BLOCKED_FOR = 0.5


def readme_recipe(name):
    out = subprocess.run(
        ["bash", str(README.parent / "scripts" / "readme-snippet.sh"), name], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def recipe_settings(**extra):
    """The recipe's settings, as written (its `...` left out), on ryw_urls."""
    ns = {}
    exec(readme_recipe("ryw-django"), ns)
    middleware = [m for m in ns["MIDDLEWARE"] if m is not Ellipsis]
    assert middleware == [MW], middleware
    litefs = {k: v for k, v in ns.items() if k.startswith("LITEFS_")}
    return {"ROOT_URLCONF": "ryw_urls", "MIDDLEWARE": middleware, **litefs, **extra}


def sim_env(sim, node, settings, cookies=None):
    return clean_env(TEST_DB_NAME=sim.mount(node) / "app.db", HOME=sim.dir,
                     TEST_SETTINGS=json.dumps(settings), TEST_COOKIES=json.dumps(cookies or {}))


def sim_requests(sim, node, reqs, settings, cookies=None):
    r = run(["sim_requests.py", json.dumps(reqs)], sim_env(sim, node, settings, cookies))
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def sim_titles(response):
    assert response["status"] == 200, response
    return json.loads(response["body"])["titles"]


def txid(position):
    return int(position.split("/")[0], 16)


@pytest.fixture
def ryw_sim(sim):
    """The sim with the notes app migrated (0001) on n1; n2 held."""
    r = run(["manage.py", "migrate", "notes", "0001", "--verbosity=0"],
            clean_env(TEST_DB_NAME=sim.mount("n1") / "app.db", HOME=sim.dir))
    assert r.returncode == 0, r.stderr
    sim.hold("n2")
    return sim


def write_on_n1(sim, settings):
    """POST /notes on n1: the cookie's (name, value), checked against the sim's position."""
    name = settings.get("LITEFS_TXID_COOKIE", "litefs_txid")
    [w] = sim_requests(sim, "n1", [["POST", "/notes", {"title": "third"}]], settings)
    assert sim_titles(w) == ["third"]
    position = sim.command("pos app.db")
    assert w["cookies"] == {name: "default:" + position}, w["cookies"]
    assert sim.command("pos app.db n2") != position, "n2 is held: it does not report the write"
    return name, w["cookies"][name]


def test_readme_recipe_ryw_django_waits_on_a_held_replica(ryw_sim):
    sim = ryw_sim
    settings = recipe_settings()
    name, cookie = write_on_n1(sim, settings)

    # The control: without the cookie, the held n2 answers at once (not after
    # the 5 s wait), with the row (litefs-sim: the bytes are there).
    [rd] = sim_requests(sim, "n2", [["GET", "/notes", {}]], settings)
    assert sim_titles(rd) == ["third"] and rd["seconds"] < 2, rd

    proc = subprocess.Popen([sys.executable, "sim_requests.py", json.dumps([["GET", "/notes", {}]])], cwd=HERE,
                            env=sim_env(sim, "n2", settings, {name: cookie}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready and proc.stdout.readline() == "started\n", proc.communicate()
        time.sleep(BLOCKED_FOR)
        assert proc.poll() is None, f"the request on the held n2 did not wait: {proc.communicate()}"
        sim.release("n2")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    [rd] = json.loads(out.strip().splitlines()[-1])
    assert sim_titles(rd) == ["third"]
    assert rd["seconds"] >= BLOCKED_FOR, rd
    assert rd["cookies"] == {}, "a read leaves the cookie as it is"


def test_readme_recipe_ryw_django_answers_503_while_the_replica_stays_held(ryw_sim):
    """The recipe's refusal: a node that does not catch up within the wait
    (LITEFS_READ_YOUR_WRITES_WAIT_MS, shortened here) answers 503 with
    Retry-After and the guard's reason, and keeps the cookie for the retry."""
    sim = ryw_sim
    settings = recipe_settings(LITEFS_READ_YOUR_WRITES_WAIT_MS=300)
    name, cookie = write_on_n1(sim, settings)
    [rd] = sim_requests(sim, "n2", [["GET", "/notes", {}]], settings, {name: cookie})
    assert (rd["status"], rd["retry-after"], rd["cookies"]) == (503, "1", {}), rd
    floor = txid(cookie.split(":", 1)[1])
    assert f"below the read floor TXID {floor} (PRAGMA litefs_min_txid), after waiting" in rd["body"], rd["body"]
    assert "the primary is n1" in rd["body"], rd["body"]
    assert 0.3 <= rd["seconds"] < 3, rd

    sim.release("n2")
    [rd] = sim_requests(sim, "n2", [["GET", "/notes", {}]], settings, {name: cookie})
    assert sim_titles(rd) == ["third"]


# -- OPTIONS["forward_writes"] ----------------------------------------------------


def _django(tmp_path, options, code):
    mount = tmp_path / "litefs"
    mount.mkdir()
    env = clean_env(
        DJANGO_SETTINGS_MODULE="proj.settings",
        TEST_DB_NAME=mount / "app.db",
        TEST_DB_OPTIONS=json.dumps(options),
    )
    script = "import django; django.setup()\nfrom django.db import connection\n" + textwrap.dedent(code)
    return run(["-c", script], env)


def test_forward_writes_option_is_popped_before_connect(tmp_path):
    r = _django(tmp_path, {"forward_writes": False, "timeout": 3},
                "print(connection.cursor().execute('SELECT litefs_is_primary()').fetchone()[0])")
    assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_forward_writes_option_must_be_a_bool(tmp_path, value):
    r = _django(tmp_path, {"forward_writes": value}, "connection.cursor()")
    assert r.returncode != 0
    assert f"settings.DATABASES['default']['OPTIONS']['forward_writes'] is {value!r}: pass True or False" in r.stderr


def test_forward_writes_option_turns_forwarding_on(tmp_path):
    """Needs PRAGMA litefs_forward in the extension (the forwarding work):
    without it the connection is refused with ImproperlyConfigured naming the
    missing pragma."""
    r = _django(tmp_path, {"forward_writes": True}, """
        with connection.cursor() as c:
            print(c.execute("PRAGMA litefs_forward").fetchone()[0])
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"


def test_importable_from_litefs_guard_django_middleware():
    from litefs_guard.django.middleware import ReadYourWritesMiddleware
    from litefs_guard.django.read_your_writes import ReadYourWritesMiddleware as same

    assert ReadYourWritesMiddleware is same
