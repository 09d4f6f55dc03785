"""Read-then-write transactions from many threads at once; prints JSON.

    python counter_race.py THREADS ITERATIONS

The database and engine come from proj.settings' environment variables.
Used for the guarded backend and, as a control, for Django's stock one (in
which case this process never loads the extension).
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from notes.models import Counter  # noqa: E402

threads, iterations = int(sys.argv[1]), int(sys.argv[2])
call_command("migrate", "notes", "0001", verbosity=0)
Counter.objects.create(name="hits", value=0)
connection.close()

errors = []
start = threading.Barrier(threads)


def work():
    start.wait()
    try:
        for _ in range(iterations):
            try:
                with transaction.atomic():
                    c = Counter.objects.get(name="hits")
                    time.sleep(0.002)  # widen the read-to-write window
                    c.value += 1
                    c.save(update_fields=["value"])
            except Exception as exc:  # noqa: BLE001 - every failure counts
                errors.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
    finally:
        connection.close()


ts = [threading.Thread(target=work) for _ in range(threads)]
t0 = time.monotonic()
for t in ts:
    t.start()
for t in ts:
    t.join()
value = Counter.objects.get(name="hits").value
print(json.dumps({
    "value": value,
    "expected": threads * iterations,
    "errors": errors,
    "seconds": round(time.monotonic() - t0, 3),
    "engine": connection.settings_dict["ENGINE"],
    "journal_mode": connection.cursor().execute("PRAGMA journal_mode").fetchone()[0],
    "package_imported": "litefs_guard" in sys.modules,
    "extension_mapped": "liblitefs_guard" in open("/proc/self/maps").read(),
}))
