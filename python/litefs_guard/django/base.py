"""``ENGINE = "litefs_guard.django"``: Django's SQLite backend, guarded."""

from django.db.backends.sqlite3 import base as sqlite3_base
from django.db.utils import DatabaseError as DjangoDatabaseError

import litefs_guard

from . import NotPrimaryError

__all__ = ["DatabaseWrapper", "NotPrimaryError"]


def _not_primary(exc, conn):
    """The NotPrimaryError ``exc`` (a sqlite3 error, or a Django error made
    from one) stands for, or None."""
    cause = exc
    if isinstance(exc, DjangoDatabaseError) and exc.__cause__ is not None:
        cause = exc.__cause__
    err = litefs_guard.translate(cause, conn)
    if err is None:
        return None
    return NotPrimaryError(
        str(err),
        primary=err.primary,
        role=err.role,
        reason=err.reason,
        sqlite_errorcode=err.sqlite_errorcode,
        sqlite_errorname=err.sqlite_errorname,
    )


class GuardedCursorWrapper(sqlite3_base.SQLiteCursorWrapper):
    def execute(self, query, params=None):
        try:
            return super().execute(query, params)
        except sqlite3_base.Database.Error as exc:
            err = _not_primary(exc, self.connection)
            if err is None:
                raise
            raise err from exc

    def executemany(self, query, param_list):
        try:
            return super().executemany(query, param_list)
        except sqlite3_base.Database.Error as exc:
            err = _not_primary(exc, self.connection)
            if err is None:
                raise
            raise err from exc


class DatabaseWrapper(sqlite3_base.DatabaseWrapper):
    # Everything but the refusals is Django's own SQLite backend, down to the
    # names in its messages ("SQLite 3.31 or later is required"): no
    # display_name, vendor or class of our own.

    def get_new_connection(self, conn_params):
        # Resident before the file is opened: the connection gets the guard's
        # VFS (execution-time gate, IMMEDIATE escalation, WAL) as well as its
        # authorizer.
        litefs_guard.ensure_loaded()
        return super().get_new_connection(conn_params)

    def create_cursor(self, name=None):
        return self.connection.cursor(factory=GuardedCursorWrapper)

    def _commit(self):
        try:
            return super()._commit()
        except DjangoDatabaseError as exc:
            err = _not_primary(exc, self.connection)
            if err is None:
                raise
            raise err from exc
