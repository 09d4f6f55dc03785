"""litefs_guard.django.middleware.ReplayOnPrimaryMiddleware: a view refused
on a replica answers with fly-replay (or a 307 to LITEFS_PRIMARY_URL), a 503
when the primary is unknown; on the primary the view runs. First on this
process's fake mount, then on a real two-node litefs-sim."""

import json

import pytest
from django.test import Client, override_settings

from notes.models import Note
from conftest import clean_env, run, set_replica


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


def titles():
    return sorted(Note.objects.values_list("title", flat=True))


def test_primary_runs_the_view(client):
    r = client.post("/notes/write/", {"title": "third"})
    assert r.status_code == 200 and r.json()["title"] == "third"
    assert "fly-replay" not in r.headers
    assert titles() == ["first", "second", "third"]


@pytest.mark.parametrize("method", ["post", "put", "delete", "get"])
def test_replica_answers_fly_replay(client, method):
    set_replica("node-b")
    r = getattr(client, method)("/notes/write/?title=never")
    assert r.status_code == 409 and r.content == b""
    assert r.headers["fly-replay"] == "instance=node-b"
    assert r.headers["Cache-Control"] == "no-store"
    assert titles() == ["first", "second"]


@pytest.mark.parametrize("base", ["http://{primary}:8000", "https://{primary}.internal:8000/"])
def test_replica_redirects_to_primary_url(client, base):
    set_replica("node-b")
    with override_settings(LITEFS_PRIMARY_URL=base):
        r = client.post("/notes/write/?title=never&x=%2F1", {"title": "never"})
    assert r.status_code == 307 and "fly-replay" not in r.headers
    host = base.replace("{primary}", "node-b").rstrip("/")
    assert r.headers["Location"] == f"{host}/notes/write/?title=never&x=%2F1"
    assert titles() == ["first", "second"]


def test_bad_primary_url_is_a_configuration_error(client):
    set_replica("node-b")
    with override_settings(LITEFS_PRIMARY_URL="node-b:8000"):
        r = client.post("/notes/write/")
    assert r.status_code == 500


def test_already_replayed_request_is_not_replayed_again(client):
    set_replica("node-b")
    r = client.post("/notes/write/", headers={"Fly-Replay-Src": "instance=node-a;t=1"})
    assert r.status_code == 503 and "fly-replay" not in r.headers
    assert "the primary is node-b, but this request was already replayed" in r.content.decode()


def test_refusal_raised_from_by_the_application(client):
    set_replica("node-b")
    r = client.post("/notes/wrapped/")
    assert r.status_code == 409 and r.headers["fly-replay"] == "instance=node-b"


def test_other_errors_pass(client):
    set_replica("node-b")
    assert client.get("/notes/boom/").status_code == 500
    r = client.get("/notes/")
    assert r.status_code == 200 and r.json() == {"titles": ["first", "second"]}


def test_streaming_refusal_is_not_replayed(client):
    """The headers are out before the write: the refusal reaches the server."""
    set_replica("node-b")
    r = client.get("/notes/stream/")
    assert r.status_code == 200 and r.streaming
    from litefs_guard.django import NotPrimaryError

    with pytest.raises(NotPrimaryError, match="the primary is node-b"):
        b"".join(r.streaming_content)
    assert titles() == ["first", "second"]


# On litefs-sim: one Django process per node, each with its database on that
# node's mount (the guard's default: the database's directory is the mount).

WRITE = [["POST", "/notes/write/?q=1", {"title": "from-client"}]]
READ = [["GET", "/notes/", {}]]


def requests(sim, node, reqs, **env):
    r = run(["sim_requests.py", json.dumps(reqs)],
            clean_env(TEST_DB_NAME=sim.mount(node) / "app.db", HOME=sim.dir, **env))
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_replay_on_litefs_sim(sim):
    r = run(["manage.py", "migrate", "notes", "0001", "--verbosity=0"],
            clean_env(TEST_DB_NAME=sim.mount("n1") / "app.db", HOME=sim.dir))
    assert r.returncode == 0, r.stderr

    # n2, a replica of n1: fly-replay to n1; with the URL setting, a 307 there.
    [w] = requests(sim, "n2", WRITE)
    assert (w["status"], w["fly-replay"], w["body"]) == (409, "instance=n1", "")
    [w] = requests(sim, "n2", WRITE, TEST_LITEFS_PRIMARY_URL="http://{primary}:8000")
    assert (w["status"], w["location"]) == (307, "http://n1:8000/notes/write/?q=1")

    # Nobody holds the lease: n2 knows no primary.
    sim.lease(None)
    w, rd = requests(sim, "n2", WRITE + READ, TEST_LITEFS_PRIMARY_URL="http://{primary}:8000")
    assert w["status"] == 503 and w["fly-replay"] is None and w["location"] is None
    assert w["body"].startswith("not the LiteFS primary, and no primary to send this request to: ")
    assert "this node is not the primary" in w["body"] and "no write permission" in w["body"], w["body"]
    assert rd["status"] == 200 and json.loads(rd["body"]) == {"titles": []}

    # n1 holds the lease again: the view runs there, the row is written.
    sim.lease("n1")
    w, rd = requests(sim, "n1", WRITE + READ)
    assert w["status"] == 200 and w["fly-replay"] is None
    assert json.loads(rd["body"]) == {"titles": ["from-client"]}
    [rd] = requests(sim, "n2", READ)
    assert json.loads(rd["body"]) == {"titles": ["from-client"]}
