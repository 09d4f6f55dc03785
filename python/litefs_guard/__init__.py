"""Load the litefs_guard SQLite extension and recognise its refusals.

Loading the extension once per process guards every SQLite connection the
process opens afterwards: writes are refused while this node is a LiteFS
replica, plain ``BEGIN`` takes the write lock up front on the primary, and
guarded databases stay in WAL.

    import litefs_guard
    conn = litefs_guard.connect("/litefs/app.db")   # loads the guard first

A refused write raises ``sqlite3.DatabaseError`` with code SQLITE_AUTH (23,
refused while preparing) or SQLITE_READONLY (8, refused when the write lock
was taken). :func:`raise_if_not_primary` turns those into
:class:`NotPrimaryError`, whose message names the primary.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import sqlite3
import sys
import threading
from typing import Any, Dict, Iterator, Optional

try:
    # The installed distribution's version: the Rust workspace's, stamped in at build time.
    __version__ = importlib.metadata.version("litefs-guard")
except importlib.metadata.PackageNotFoundError:  # imported from a source tree, not installed
    __version__ = "0+unknown"

__all__ = [
    "LiteFSGuardError",
    "NotPrimaryError",
    "SQLITE_AUTH",
    "SQLITE_READONLY",
    "connect",
    "ensure_loaded",
    "is_refusal",
    "load",
    "loadable_path",
    "raise_if_not_primary",
    "status",
    "translate",
    "translate_errors",
]

#: The file name of the extension inside this package.
LIBRARY_NAME = "liblitefs_guard.so"

#: Primary result codes the guard refuses writes with.
SQLITE_AUTH = 23
SQLITE_READONLY = 8

_MESSAGES = {
    # Message SQLite gives each code; used when the exception carries no code
    # (Python < 3.11, some third-party drivers).
    "not authorized": SQLITE_AUTH,
    "attempt to write a readonly database": SQLITE_READONLY,
}
_NAMES = {SQLITE_AUTH: "SQLITE_AUTH", SQLITE_READONLY: "SQLITE_READONLY"}


class LiteFSGuardError(Exception):
    """The guard could not be loaded or used."""


class NotPrimaryError(LiteFSGuardError):
    """A write was refused because this node is not the LiteFS primary.

    Attributes: ``primary`` (the primary's hostname, or None when unknown),
    ``role`` ("replica", "not_running" or None when it could not be asked),
    ``reason`` (the guard's own explanation), ``sqlite_errorcode`` and
    ``sqlite_errorname`` of the refusal. The original exception is
    ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        primary: Optional[str] = None,
        role: Optional[str] = None,
        reason: Optional[str] = None,
        sqlite_errorcode: Optional[int] = None,
        sqlite_errorname: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.primary = primary
        self.role = role
        self.reason = reason
        self.sqlite_errorcode = sqlite_errorcode
        self.sqlite_errorname = sqlite_errorname


def loadable_path() -> str:
    """The absolute path of the extension shipped in this package."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)
    if not os.path.isfile(path):
        raise LiteFSGuardError(
            f"the litefs_guard extension is missing: {path} does not exist "
            "(install the platform wheel built by `make wheel`, not the source tree)"
        )
    return path


def _no_extensions_error(conn: Any) -> LiteFSGuardError:
    return LiteFSGuardError(
        f"this Python's sqlite3 module cannot load extensions: {type(conn).__module__}."
        f"{type(conn).__qualname__} has no enable_load_extension ({sys.executable} was "
        "built without --enable-loadable-sqlite-extensions, as pyenv and python.org "
        "builds often are). Use a Python whose sqlite3 allows extensions, e.g. "
        "Debian's /usr/bin/python3, or install pysqlite3 (pip install pysqlite3-binary) "
        "and pass module=pysqlite3.dbapi2 to litefs_guard.ensure_loaded()/connect()"
    )


def load(conn: Any) -> None:
    """Loads the extension through ``conn``.

    The first load registers the guard for every connection opened later in
    this process. ``conn`` itself, having opened its file before the guard's
    VFS existed, only gets the prepare-time checks and the SQL functions:
    prefer :func:`ensure_loaded` / :func:`connect`, which load through a
    throwaway in-memory connection.
    """
    enable = getattr(conn, "enable_load_extension", None)
    if enable is None:
        raise _no_extensions_error(conn)
    path = loadable_path()
    enable(True)
    try:
        conn.load_extension(path)
    except Exception as exc:  # the driver's OperationalError
        raise LiteFSGuardError(f"loading {path} failed: {exc}") from exc
    finally:
        enable(False)


_loaded: set = set()
_lock = threading.Lock()


def ensure_loaded(module: Any = None) -> None:
    """Loads the extension once per process (per SQLite driver ``module``,
    default :mod:`sqlite3`) on a throwaway ``:memory:`` connection, so that
    every connection opened afterwards is fully guarded."""
    mod = module if module is not None else sqlite3
    key = getattr(mod, "__name__", repr(mod))
    if key in _loaded:
        return
    with _lock:
        if key in _loaded:
            return
        conn = mod.connect(":memory:")
        try:
            load(conn)
        finally:
            conn.close()
        _loaded.add(key)


def connect(database: Any, *args: Any, module: Any = None, **kwargs: Any) -> Any:
    """:func:`ensure_loaded`, then ``sqlite3.connect(database, ...)``
    (``module.connect`` when a driver module is given)."""
    ensure_loaded(module)
    mod = module if module is not None else sqlite3
    return mod.connect(database, *args, **kwargs)


def _code(exc: BaseException) -> Optional[int]:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(exc.args[0]) if exc.args else ""
    return _MESSAGES.get(text.strip().lower())


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` has one of the codes the guard refuses writes with
    (SQLITE_AUTH or SQLITE_READONLY, extended codes included)."""
    return _code(exc) in (SQLITE_AUTH, SQLITE_READONLY)


def status(conn: Any) -> Dict[str, Any]:
    """``litefs_config()`` of ``conn``, parsed: role, primary, mount_dir, ..."""
    row = conn.execute("SELECT litefs_config()").fetchone()
    return json.loads(row[0])


def translate(exc: BaseException, conn: Any = None) -> Optional[NotPrimaryError]:
    """The :class:`NotPrimaryError` that ``exc`` stands for, or None.

    ``exc`` must carry SQLITE_AUTH or SQLITE_READONLY. When ``conn`` is given
    it is asked (``litefs_config()``) who the primary is; a refusal on a
    connection whose database this node may write (a ``mode=ro`` open, an
    authorizer of the application's own) is not the guard's and gives None.
    """
    code = _code(exc)
    if code not in (SQLITE_AUTH, SQLITE_READONLY):
        return None
    info: Dict[str, Any] = {}
    if conn is not None:
        try:
            info = status(conn)
        except Exception:
            info = {}
        if info.get("may_write") is True:
            return None
    reason = info.get("reason")
    detail = reason or "this node is not the LiteFS primary"
    name = getattr(exc, "sqlite_errorname", None) or _NAMES[code]
    message = f"write refused: {detail} ({name}: {exc})"
    err = NotPrimaryError(
        message,
        primary=info.get("primary"),
        role=info.get("role"),
        reason=reason,
        sqlite_errorcode=getattr(exc, "sqlite_errorcode", code),
        sqlite_errorname=name,
    )
    err.__cause__ = exc
    return err


def raise_if_not_primary(exc: BaseException, conn: Any = None) -> None:
    """Raises :class:`NotPrimaryError` (from ``exc``) when ``exc`` is the
    guard refusing a write; returns otherwise, so the caller re-raises::

        except sqlite3.Error as exc:
            litefs_guard.raise_if_not_primary(exc, conn)
            raise
    """
    err = translate(exc, conn)
    if err is not None:
        raise err from exc


@contextlib.contextmanager
def translate_errors(conn: Any) -> Iterator[Any]:
    """``with translate_errors(conn): ...`` raises :class:`NotPrimaryError`
    for refused writes inside the block; other errors pass unchanged."""
    try:
        yield conn
    except Exception as exc:
        raise_if_not_primary(exc, conn)
        raise
