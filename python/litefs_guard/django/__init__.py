"""Django database backend for SQLite on LiteFS.

    DATABASES = {"default": {"ENGINE": "litefs_guard.django", "NAME": "/litefs/app.db"}}
    INSTALLED_APPS = [..., "litefs_guard.django"]   # for `manage.py litefs_status` and `litefs_config`

It is Django's own SQLite backend with the litefs_guard extension loaded
before any database file is opened, so every connection refuses writes while
this node is a replica (raising :class:`NotPrimaryError`), escalates plain
BEGIN to a write lock on the primary and keeps the database in WAL.
"""

from django.db.utils import DatabaseError

import litefs_guard

__all__ = ["NotPrimaryError"]


class NotPrimaryError(DatabaseError, litefs_guard.NotPrimaryError):
    """A write refused because this node is not the LiteFS primary.

    A ``django.db.utils.DatabaseError`` (so ``except DatabaseError`` keeps
    working) and a ``litefs_guard.NotPrimaryError`` (``.primary``, ``.role``,
    ``.reason``, ``.sqlite_errorcode``). Nothing was written.
    """
