"""Settings of the guestbook example: a Django app whose SQLite database lives
on a LiteFS mount, guarded by litefs_guard.

Every node of the cluster runs this same app with the same settings; only the
environment differs:

    GUESTBOOK_DB              the database file, inside the LiteFS mount
                              (default /litefs/guestbook.db)
    GUESTBOOK_FORWARD_WRITES  1: a replica writes through LiteFS's halt lock
                              instead of refusing (default 0)
    GUESTBOOK_RYW_WAIT_MS     how long a request carrying the read-your-writes
                              cookie waits for this node to catch up before
                              answering 503 (default 5000)
    LITEFS_PRIMARY_URL        e.g. http://{primary}:8000: answer writes sent to
                              a replica with a 307 redirect there, instead of
                              Fly.io's fly-replay header
    DJANGO_ALLOWED_HOSTS      comma-separated (default localhost,127.0.0.1)
    DJANGO_SECRET_KEY         set it in production

The guard also reads its own LITEFS_GUARD_* variables (README.md of the
repository, "Configuration"), e.g. LITEFS_GUARD_DIR=/litefs, the mount.
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-set-DJANGO_SECRET_KEY")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

INSTALLED_APPS = [
    "litefs_guard.django",  # manage.py litefs_status, litefs_config
    "guestbook",
]

MIDDLEWARE = [
    # First: a request carrying the cookie waits here until this node has
    # caught up with the client's last write (or gets a 503).
    "litefs_guard.django.read_your_writes.ReadYourWritesMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Last, so that it sees a refused write first: a write sent to a replica
    # becomes "go to the primary" (fly-replay header, or a 307) instead of a 500.
    "litefs_guard.django.middleware.ReplayOnPrimaryMiddleware",
]
# A JSON API without sessions or logins: no CSRF or session middleware. Add
# them (and keep sessions out of the LiteFS database: cookie or cache
# sessions) if your app has forms and users.

ROOT_URLCONF = "guestbook_site.urls"
WSGI_APPLICATION = "guestbook_site.wsgi.application"

DATABASES = {
    "default": {
        # Django's SQLite backend with the litefs_guard extension loaded.
        "ENGINE": "litefs_guard.django",
        "NAME": os.environ.get("GUESTBOOK_DB", "/litefs/guestbook.db"),
        "OPTIONS": {
            "forward_writes": os.environ.get("GUESTBOOK_FORWARD_WRITES", "0") == "1",
        },
    }
}

LITEFS_READ_YOUR_WRITES_WAIT_MS = int(os.environ.get("GUESTBOOK_RYW_WAIT_MS", "5000"))
if os.environ.get("LITEFS_PRIMARY_URL"):
    LITEFS_PRIMARY_URL = os.environ["LITEFS_PRIMARY_URL"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
