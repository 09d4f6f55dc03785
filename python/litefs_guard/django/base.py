"""``ENGINE = "litefs_guard.django"``: Django's SQLite backend, guarded."""

import json

from django.core.exceptions import ImproperlyConfigured
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


def _forward_on(conn, alias):
    """PRAGMA litefs_forward = ON on a new connection. SQLite ignores a pragma
    it does not know (no row): on a guarded database that means an extension
    without write forwarding, which must not pass for "forwarding on"."""
    row = conn.execute("PRAGMA litefs_forward = ON").fetchone()
    if row is not None and str(row[0]).lower() in ("1", "on", "true"):
        return
    if row is None:
        info = json.loads(conn.execute("SELECT litefs_config()").fetchone()[0])
        if info.get("guarded") is not True:
            return  # outside every LiteFS mount: its writes are not guarded, nothing to forward
        raise ImproperlyConfigured(
            f"settings.DATABASES[{alias!r}]['OPTIONS']['forward_writes'] is True, but this "
            f"litefs_guard ({info.get('version')}) has no PRAGMA litefs_forward: upgrade it"
        )
    raise ImproperlyConfigured(
        f"settings.DATABASES[{alias!r}]['OPTIONS']['forward_writes']: PRAGMA litefs_forward = ON "
        f"answered {row[0]!r}"
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

    #: OPTIONS["forward_writes"]: each new connection runs PRAGMA litefs_forward = ON.
    forward_writes = False

    def get_connection_params(self):
        # Taken out before the rest reaches sqlite3.connect(), which knows no
        # such keyword.
        params = super().get_connection_params()
        forward = params.pop("forward_writes", False)
        if not isinstance(forward, bool):
            raise ImproperlyConfigured(
                f"settings.DATABASES[{self.alias!r}]['OPTIONS']['forward_writes'] is {forward!r}: "
                "pass True or False"
            )
        self.forward_writes = forward
        return params

    def get_new_connection(self, conn_params):
        # Resident before the file is opened: the connection gets the guard's
        # VFS (execution-time gate, IMMEDIATE escalation, WAL) as well as its
        # authorizer.
        litefs_guard.ensure_loaded()
        conn = super().get_new_connection(conn_params)
        if self.forward_writes:
            try:
                _forward_on(conn, self.alias)
            except BaseException:
                conn.close()
                raise
        return conn

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
