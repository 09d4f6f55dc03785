"""Read your own writes across LiteFS nodes, with any load balancer.

    MIDDLEWARE = [
        "litefs_guard.django.read_your_writes.ReadYourWritesMiddleware",
        ...
    ]

**After a request that wrote.** The response carries a cookie (``litefs_txid``)
holding, for each guarded database the request changed, the position the
commit reached (``SELECT litefs_position()`` on that connection after the view
returned): ``default:0000000000000027/83b05248774ce767``, several joined by
``|``.

**A request that carries the cookie**, on any node, gets a read floor on each
guarded connection it names before the view runs (``PRAGMA litefs_min_txid =
'<position>'``, then one read to wait for it, so the wait happens here and not
in the middle of the view), reset to ``0`` afterwards. So it never reads data
older than what its client wrote. A replica that does not catch up within
``litefs_wait_ms`` answers **503** (``Retry-After: 1``) with the guard's reason
(``litefs_config()``'s ``last_refusal``) instead of stale data; the cookie is
kept, so the retry (on this node or another) still has the floor. A cookie
that is not of this form (or names an alias that is not a guarded database) is
ignored and cleared, never an error.

**How a write is detected.** While the request runs, an ``execute_wrapper``
on each guarded connection compares ``sqlite3_total_changes()`` (Python's
``Connection.total_changes``, a counter in memory) before and after each
query: rows inserted, updated or deleted. No SQL and no file read is added to
a request that changes nothing and carries no cookie; a request that wrote
pays one ``NAME-pos`` read per database it changed. Not seen: DDL (``CREATE
TABLE`` in a view), writes made outside Django's cursors (``connection.connection``
used directly) and writes made while a streaming response is iterated; a
transaction still open when the response leaves the middleware gets the
position before its COMMIT. A rolled-back change still sets the cookie (at a
position already reached: harmless).

Settings (all optional):

- ``LITEFS_TXID_COOKIE``: the cookie's name, default ``"litefs_txid"``.
- ``LITEFS_TXID_COOKIE_MAX_AGE``: seconds, default 300. Past it a lagging
  replica may again serve data older than the client's writes; a floor
  already reached costs nothing, so a longer value is cheap.
- ``LITEFS_TXID_COOKIE_DOMAIN``, ``LITEFS_TXID_COOKIE_PATH`` (default ``"/"``).
- ``LITEFS_READ_YOUR_WRITES_WAIT_MS``: ``PRAGMA litefs_wait_ms`` while the
  floor is set (0 to 60000), default: the connection's own (5000).

The cookie is ``HttpOnly`` (pages' scripts have no use for it),
``SameSite=Lax`` and ``Secure`` when the request came over HTTPS
(``request.is_secure()``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpResponse

from .base import DatabaseWrapper as GuardedDatabaseWrapper

__all__ = ["ReadYourWritesMiddleware", "parse_cookie", "format_cookie"]

logger = logging.getLogger("litefs_guard.django")

#: A position exactly as ``litefs_position()`` returns it.
POSITION = re.compile(r"[0-9a-f]{16}/[0-9a-f]{16}")
_ALIAS = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
SQLITE_LOCKED = 6


def parse_cookie(value):
    """``{alias: position}`` from a cookie value, or None when it is not one
    (empty, malformed, an alias twice)."""
    if not isinstance(value, str) or not value or len(value) > 4096:
        return None
    out = {}
    for item in value.split("|"):
        alias, sep, position = item.partition(":")
        if not sep or not _ALIAS.fullmatch(alias) or not POSITION.fullmatch(position) or alias in out:
            return None
        out[alias] = position
    return out


def format_cookie(floors):
    return "|".join(f"{alias}:{floors[alias]}" for alias in sorted(floors))


def _txid(position):
    return int(position.split("/", 1)[0], 16)


def _code(exc):
    cause = exc
    while cause is not None and getattr(cause, "sqlite_errorcode", None) is None:
        cause = cause.__cause__
    code = getattr(cause, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    return SQLITE_LOCKED if "database table is locked" in str(exc) else None


class FloorNotReached(Exception):
    """This node did not reach the client's floor within the wait."""

    def __init__(self, alias, position, reason):
        super().__init__(reason or f"this node did not reach {position} for database {alias!r}")
        self.alias = alias
        self.position = position
        self.reason = reason


class _Changes:
    """An execute_wrapper noting whether a query changed rows on its connection."""

    def __init__(self, alias):
        self.alias = alias
        self.wrote = False
        self.raw = None
        self.start = None

    def __call__(self, execute, sql, params, many, context):
        raw = context["connection"].connection
        before = raw.total_changes if raw is not None else None
        if raw is not None and raw is not self.raw:
            self.raw, self.start = raw, before
        try:
            return execute(sql, params, many, context)
        finally:
            if raw is not None and raw.total_changes != before:
                self.wrote = True

    def changed(self, conn):
        """Whether rows changed on ``conn`` during the request (including
        those a RETURNING statement counts only once fetched)."""
        if self.wrote:
            return True
        raw = conn.connection
        return raw is not None and raw is self.raw and raw.total_changes != self.start


class ReadYourWritesMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        self.cookie_name = getattr(settings, "LITEFS_TXID_COOKIE", "litefs_txid")
        self.max_age = int(getattr(settings, "LITEFS_TXID_COOKIE_MAX_AGE", 300))
        self.domain = getattr(settings, "LITEFS_TXID_COOKIE_DOMAIN", None)
        self.path = getattr(settings, "LITEFS_TXID_COOKIE_PATH", "/")
        wait = getattr(settings, "LITEFS_READ_YOUR_WRITES_WAIT_MS", None)
        if wait is not None and (isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= 60000):
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                f"LITEFS_READ_YOUR_WRITES_WAIT_MS = {wait!r}: pass an integer from 0 to 60000 (milliseconds)"
            )
        self.wait_ms = wait

    # -- which databases ----------------------------------------------------

    @staticmethod
    def guarded_aliases():
        return [alias for alias in connections if isinstance(connections[alias], GuardedDatabaseWrapper)]

    # -- the request ----------------------------------------------------------

    def __call__(self, request):
        aliases = self.guarded_aliases()
        raw_cookie = request.COOKIES.get(self.cookie_name)
        floors = None
        clear = False
        if raw_cookie is not None:
            floors = parse_cookie(raw_cookie)
            if floors is None or not set(floors) <= set(aliases):
                logger.info("litefs_guard: ignoring cookie %s=%r: not a position", self.cookie_name, raw_cookie[:200])
                floors, clear = None, True
        floored = []
        try:
            if floors:
                try:
                    for alias, position in floors.items():
                        floored.append(alias)
                        self.apply_floor(alias, position)
                except FloorNotReached as exc:
                    return self.refused_response(request, exc)
            request._litefs_floored = floored
            changes = {alias: _Changes(alias) for alias in aliases}
            with contextlib.ExitStack() as stack:
                for alias, watcher in changes.items():
                    stack.enter_context(connections[alias].execute_wrapper(watcher))
                response = self.get_response(request)
            reached = {}
            for alias, watcher in changes.items():
                conn = connections[alias]
                if conn.connection is not None and watcher.changed(conn):
                    position = self.position(alias)
                    if position is not None:
                        reached[alias] = position
            if reached:
                merged = dict(floors or {})
                for alias, position in reached.items():
                    if alias not in merged or _txid(position) >= _txid(merged[alias]):
                        merged[alias] = position
                self.set_cookie(request, response, format_cookie(merged))
            elif clear:
                response.delete_cookie(self.cookie_name, path=self.path, domain=self.domain, samesite="Lax")
            return response
        finally:
            for alias in floored:
                self.reset_floor(alias)

    # -- the floor --------------------------------------------------------------

    def apply_floor(self, alias, position):
        """Sets the floor on ``alias``'s connection and waits for it with one
        read of main; raises :class:`FloorNotReached`."""
        conn = connections[alias]
        conn.ensure_connection()
        raw = conn.connection
        if self.wait_ms is not None:
            raw.execute(f"PRAGMA litefs_wait_ms = {self.wait_ms}").fetchall()
        # POSITION.fullmatch()ed: hex digits and a slash, safe to quote.
        raw.execute(f"PRAGMA litefs_min_txid = '{position}'").fetchall()
        try:
            raw.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except Exception as exc:
            if _code(exc) != SQLITE_LOCKED:
                raise
            raise FloorNotReached(alias, position, self.last_refusal(alias)) from exc

    def reset_floor(self, alias):
        raw = connections[alias].connection
        if raw is None:
            return
        try:
            raw.execute("PRAGMA litefs_min_txid = 0").fetchall()
            if self.wait_ms is not None:
                raw.execute("PRAGMA litefs_wait_ms = 5000").fetchall()
        except Exception:
            # An unusable connection: Django discards it at the end of the request.
            logger.warning("litefs_guard: could not reset the read floor on %r", alias, exc_info=True)

    def last_refusal(self, alias):
        raw = connections[alias].connection
        try:
            raw.execute("PRAGMA litefs_min_txid = 0").fetchall()
            return json.loads(raw.execute("SELECT litefs_config()").fetchone()[0]).get("last_refusal")
        except Exception:
            return None

    def process_exception(self, request, exception):
        """A view that let the floor's refusal through (a connection opened
        or replaced during the view, waited on there): 503, not 500."""
        floored = getattr(request, "_litefs_floored", None)
        if not floored or not isinstance(exception, DatabaseError) or _code(exception) != SQLITE_LOCKED:
            return None
        for alias in floored:
            reason = self.last_refusal(alias)
            if reason:
                return self.refused_response(request, FloorNotReached(alias, None, reason))
        return None

    def position(self, alias):
        raw = connections[alias].connection
        try:
            return raw.execute("SELECT litefs_position()").fetchone()[0]
        except Exception as exc:
            # No NAME-pos (the database is not on a running LiteFS mount):
            # nothing to carry.
            logger.warning("litefs_guard: no position for database %r after a write: %s", alias, exc)
            return None

    # -- responses --------------------------------------------------------------

    def set_cookie(self, request, response, value):
        response.set_cookie(
            self.cookie_name,
            value,
            max_age=self.max_age,
            path=self.path,
            domain=self.domain,
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",
        )

    def refused_response(self, request, exc):
        """The answer when this node is behind the client's writes: 503 with
        the reason. Override to render your own page."""
        body = (
            "503 Service Unavailable: this node has not yet caught up with your last write; "
            f"try again.\n{exc.reason or exc}\n"
        )
        response = HttpResponse(body, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "1"
        return response
