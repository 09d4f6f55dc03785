"""Helpers for the Python-sqlite3 client scripts some adversarial cases run
in a subprocess (Debian's /usr/bin/python3: SQLite 3.40, extension loading
enabled). Each operation prints one line, `ok ROWS` or `err CODE MESSAGE`,
like sqlrun; `pause()` prints PAUSE and waits for a line on stdin, so the
test can change the node (e.g. make it a replica) at that point.

Python's sqlite3 keeps prepared statements in a per-connection cache keyed
by the SQL text: executing the same SQL again reuses the statement prepared
the first time — the "cached statement" of a driver."""

import sqlite3
import sys


def out(line):
    print(line, flush=True)


def op(conn, sql, params=()):
    try:
        rows = conn.execute(sql, params).fetchall()
        out("ok " + ";".join("|".join(str(c) for c in r) for r in rows))
    except sqlite3.Error as e:
        code = getattr(e, "sqlite_errorcode", 1)
        out(f"err {code} {e}".replace("\n", " "))


def load(conn, so):
    try:
        conn.enable_load_extension(True)
        conn.load_extension(so)
        out("ok ")
    except sqlite3.Error as e:
        out(f"err {getattr(e, 'sqlite_errorcode', 1)} {e}")


def connect(path):
    return sqlite3.connect(path, isolation_level=None, cached_statements=100)


def pause():
    out("PAUSE")
    sys.stdin.readline()
