"""Requests through Django's test client in a process of its own (the
database, TEST_DB_NAME, is on a litefs-sim mount): argv[1] is a JSON list of
[method, path, data]; prints a JSON list of {status, fly-replay, location,
retry-after, cookies (name: value, as set by the response), body, seconds
(how long the request took)}.

Optional, in the environment: TEST_SETTINGS (JSON: settings to override,
e.g. a recipe's MIDDLEWARE) and TEST_COOKIES (JSON: name: value, sent with
the first request). "started" is printed (and flushed) just before the
first request, so a caller can tell Django's start-up from a request that
waits."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

import django  # noqa: E402

django.setup()

from django.test import Client, override_settings  # noqa: E402

override_settings(**json.loads(os.environ.get("TEST_SETTINGS", "{}"))).enable()
client = Client(raise_request_exception=False)
for name, value in json.loads(os.environ.get("TEST_COOKIES", "{}")).items():
    client.cookies[name] = value
print("started", flush=True)
out = []
for method, path, data in json.loads(sys.argv[1]):
    t0 = time.monotonic()
    r = getattr(client, method.lower())(path, data)
    took = time.monotonic() - t0
    out.append({
        "status": r.status_code,
        "fly-replay": r.headers.get("fly-replay"),
        "location": r.headers.get("Location"),
        "retry-after": r.headers.get("Retry-After"),
        "cookies": {name: morsel.value for name, morsel in r.cookies.items()},
        "body": r.content.decode(),
        "seconds": took,
    })
print(json.dumps(out))
