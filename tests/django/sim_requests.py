"""Requests through Django's test client in a process of its own (the
database, TEST_DB_NAME, is on a litefs-sim mount): argv[1] is a JSON list of
[method, path, data]; prints a JSON list of {status, fly-replay, location,
body}."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

client = Client(raise_request_exception=False)
out = []
for method, path, data in json.loads(sys.argv[1]):
    r = getattr(client, method.lower())(path, data)
    out.append({
        "status": r.status_code,
        "fly-replay": r.headers.get("fly-replay"),
        "location": r.headers.get("Location"),
        "body": r.content.decode(),
    })
print(json.dumps(out))
