"""Django ORM: stock ``django.db.backends.sqlite3`` vs ``litefs_guard.django``.

Run by ``make bench`` (through the bench binary) with build/venv's Python:

    build/venv/bin/python bench/django_bench.py --out target/bench/django.json

Both aliases live in this one process and run interleaved: for every
repetition and workload, the guarded alias then the stock one. Once the
extension is loaded every later connection of the process gets its
authorizer and every VFS (``unix`` included) is the guard's wrapper, so the
stock database lives outside the guarded location: the guarded one in
``<tmp>/guarded`` (LITEFS_GUARD_DIR, set here before loading, with
LITEFS_GUARD_REQUIRE_FUSE=0), the stock one in the sibling ``<tmp>/stock``,
which the wrapper leaves to the base VFS (no write gate, no IMMEDIATE
escalation). The stock alias opens it through a ``file:`` URI with
``vfs=unix`` and drops the authorizer as the connection is created
(``set_authorizer(None)``): that is stock SQLite cost-wise. Both are WAL
with synchronous=NORMAL.
"""

import argparse
import gc
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

INIT = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"
SEED_ROWS = 2000


def use_extension_from_env():
    """With LITEFS_GUARD_SO set (make bench sets it), load that build of the
    extension, the one the Rust figures measure, not the wheel's copy."""
    so = os.environ.get("LITEFS_GUARD_SO")
    if so:
        import litefs_guard

        so = os.path.abspath(so)
        if not os.path.isfile(so):
            raise SystemExit("LITEFS_GUARD_SO=%s does not exist" % so)
        litefs_guard.loadable_path = lambda: so
    return so


def guard_env(mount):
    """The guard reads its settings once per process: set them before the
    extension loads, whatever the caller's environment says."""
    for k in [k for k in os.environ if k.startswith("LITEFS_GUARD_") and k != "LITEFS_GUARD_SO"]:
        del os.environ[k]
    os.environ["LITEFS_GUARD_DIR"] = mount
    os.environ["LITEFS_GUARD_REQUIRE_FUSE"] = "0"


def setup(guarded_dir, stock_dir, aa=False):
    import django
    from django.conf import settings

    guarded = {
        "ENGINE": "litefs_guard.django",
        "NAME": os.path.join(guarded_dir, "guarded.db"),
        "OPTIONS": {"init_command": INIT, "timeout": 5},
    }
    if aa:
        # Calibration: the "guarded" side is a second stock alias.
        guarded = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": "file:%s?vfs=unix" % os.path.join(stock_dir, "guarded.db"),
            "OPTIONS": {"init_command": INIT, "timeout": 5, "uri": True},
        }
    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        INSTALLED_APPS=[],
        DATABASES={
            "default": guarded,
            "stock": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": "file:%s?vfs=unix" % os.path.join(stock_dir, "stock.db"),
                "OPTIONS": {"init_command": INIT, "timeout": 5, "uri": True},
            },
        },
    )
    django.setup()

    from django.db import models
    from django.db.backends.signals import connection_created

    def stock_without_authorizer(sender, connection, **kwargs):
        if connection.alias == "stock" or aa:
            connection.connection.set_authorizer(None)

    connection_created.connect(stock_without_authorizer)

    class Item(models.Model):
        k = models.IntegerField()
        v = models.IntegerField(default=0)
        s = models.CharField(max_length=64)

        class Meta:
            app_label = "bench"

    return Item


def config(alias):
    from django.db import connections

    with connections[alias].cursor() as c:
        c.execute("SELECT litefs_config()")
        return json.loads(c.fetchone()[0])


def lookups():
    from django.db import connections

    with connections["default"].cursor() as c:
        c.execute("SELECT litefs_guard_stats()")
        return json.loads(c.fetchone()[0])["primary_lookups"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--aa", action="store_true", help="A/A calibration: both sides stock")
    args = ap.parse_args()

    directory = os.path.realpath(tempfile.mkdtemp(prefix="lfg-bench-django-"))
    try:
        result = run(directory, args.reps, args.scale, args.aa)
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(directory, ignore_errors=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)


def run(directory, reps, scale, aa=False):
    guarded_dir = os.path.join(directory, "guarded")
    stock_dir = os.path.join(directory, "stock")
    os.mkdir(guarded_dir)
    os.mkdir(stock_dir)
    guard_env(guarded_dir)
    so = use_extension_from_env()
    import litefs_guard

    litefs_guard.ensure_loaded()  # as in production: every later connection is guarded
    Item = setup(guarded_dir, stock_dir, aa)
    import django
    from django.db import connections, transaction
    from django.db.models import F

    aliases = ("default", "stock")
    for alias in aliases:
        with connections[alias].schema_editor() as editor:
            editor.create_model(Item)
        Item.objects.using(alias).bulk_create(
            [Item(k=i, v=0, s="seed-%06d" % i) for i in range(SEED_ROWS)]
        )
    g, s = config("default"), config("stock")
    assert aa or (
        g["vfs"] is True
        and g["role"] == "primary"
        and g["mount_source"] == "LITEFS_GUARD_DIR"
        and g["mount_dir"] == guarded_dir
        and g["require_fuse"] is False
    ), g
    assert s["vfs"] is False, s
    for alias in aliases:
        with connections[alias].cursor() as c:
            c.execute("PRAGMA journal_mode")
            assert c.fetchone()[0] == "wal", alias

    n_create = max(1, int(800 * scale))
    n_get = max(1, int(2500 * scale))
    n_atomic = max(1, int(120 * scale))
    ids = [1 + (i * 7919) % SEED_ROWS for i in range(max(n_get, n_atomic * 10))]

    def create(alias, n):
        objects = Item.objects.using(alias)
        for i in range(n):
            objects.create(k=i, v=0, s="payload-0123456789")

    def get(alias, n):
        objects = Item.objects.using(alias)
        for i in range(n):
            objects.get(pk=ids[i])

    def atomic10(alias, n):
        objects = Item.objects.using(alias)
        for b in range(n):
            with transaction.atomic(using=alias):
                for j in range(10):
                    objects.filter(pk=ids[b * 10 + j]).update(v=F("v") + 1)

    workloads = [
        ("django_create", "single create()", create, n_create),
        ("django_get", "get(pk=…)", get, n_get),
        ("django_atomic10", "atomic() with 10 updates", atomic10, n_atomic),
    ]

    def timed(fn, alias, n):
        # wall and thread-CPU seconds
        c = time.thread_time()
        t = time.perf_counter()
        fn(alias, n)
        return time.perf_counter() - t, time.thread_time() - c

    # Each repetition alternates guarded and stock slices of n/SLICES
    # operations, so a burst of load elsewhere lands on both sides.
    SLICES = 10
    samples = {w[0]: {"guarded": [], "stock": [], "gcpu": [], "scpu": []} for w in workloads}
    for rep in range(reps + 1):  # the first round is the warm-up
        for key, _, fn, n in workloads:
            k = max(1, n // SLICES)
            gw = gc_ = sw = sc = 0.0
            gc.collect()
            for _ in range(SLICES):
                a = timed(fn, "default", k)
                b = timed(fn, "stock", k)
                gw, gc_ = gw + a[0], gc_ + a[1]
                sw, sc = sw + b[0], sc + b[1]
            if rep:
                m = k * SLICES
                samples[key]["guarded"].append(m / gw)
                samples[key]["stock"].append(m / sw)
                samples[key]["gcpu"].append(gc_ * 1e6 / m)
                samples[key]["scpu"].append(sc * 1e6 / m)

    per_op = {}
    for key, _, fn, n in workloads:
        if aa:
            per_op[key] = None
            continue
        before = lookups()
        fn("default", n)
        per_op[key] = (lookups() - before) / n

    out = {
        "mode": "one process, interleaved (10 alternating slices per repetition); guarded alias in "
        "LITEFS_GUARD_DIR; stock alias = django.db.backends.sqlite3 on a file: URI with vfs=unix "
        "outside LITEFS_GUARD_DIR and set_authorizer(None) at connection creation",
        "python": sys.version.split()[0],
        "python_sqlite": sqlite3.sqlite_version,
        "django": django.get_version(),
        "reps": reps,
        "aa_calibration": aa,
        "extension": so or "the litefs_guard wheel in this venv",
        "workloads": {},
    }
    for key, label, _, n in workloads:
        gs, ss = samples[key]["guarded"], samples[key]["stock"]
        gcpu, scpu = samples[key]["gcpu"], samples[key]["scpu"]
        out["workloads"][key] = {
            "label": label,
            "ops_per_rep": n,
            "guarded_ops_per_s": gs,
            "stock_ops_per_s": ss,
            "guarded_median": statistics.median(gs),
            "stock_median": statistics.median(ss),
            "ratio_median_of_pairs": statistics.median(a / b for a, b in zip(gs, ss)),
            "ratio_of_medians": statistics.median(gs) / statistics.median(ss),
            "guarded_cpu_us_per_op": gcpu,
            "stock_cpu_us_per_op": scpu,
            "cpu_ratio": statistics.median(b / a for a, b in zip(gcpu, scpu)),
            "primary_lookups_per_op": per_op[key],
        }
    return out


if __name__ == "__main__":
    main()
