"""Settings of the test project. The database comes from the environment
so the tests and their subprocesses can point it anywhere:
TEST_DB_NAME, TEST_DB_ENGINE (default litefs_guard.django), TEST_DB_OPTIONS (JSON),
and TEST_LITEFS (JSON: settings.LITEFS, for `manage.py litefs_config`)."""

import json
import os

SECRET_KEY = "litefs-guard-tests"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ENGINE = os.environ.get("TEST_DB_ENGINE", "litefs_guard.django")
# The control runs (Django's stock backend) never import litefs_guard.
INSTALLED_APPS = (["litefs_guard.django"] if ENGINE == "litefs_guard.django" else []) + ["notes"]
DATABASES = {
    "default": {
        "ENGINE": ENGINE,
        "NAME": os.environ.get("TEST_DB_NAME", "/nonexistent/app.db"),
        "OPTIONS": json.loads(os.environ.get("TEST_DB_OPTIONS", "{}")),
    }
}
if "TEST_LITEFS" in os.environ:
    LITEFS = json.loads(os.environ["TEST_LITEFS"])

ROOT_URLCONF = "proj.urls"
ALLOWED_HOSTS = ["testserver"]
# ReplayOnPrimaryMiddleware (test_middleware.py); TEST_LITEFS_PRIMARY_URL
# sets LITEFS_PRIMARY_URL (redirect instead of fly-replay).
MIDDLEWARE = (
    ["litefs_guard.django.middleware.ReplayOnPrimaryMiddleware"] if ENGINE == "litefs_guard.django" else []
)
if "TEST_LITEFS_PRIMARY_URL" in os.environ:
    LITEFS_PRIMARY_URL = os.environ["TEST_LITEFS_PRIMARY_URL"]
