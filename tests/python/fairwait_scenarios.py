"""Scenarios for test_fair_wait.py, each run in a fresh interpreter (the
guard reads its settings once per process, and the control run sets
LITEFS_GUARD_FAIR_WAIT=0). Prints one JSON line.

    python fairwait_scenarios.py SCENARIO DB

Every waiter uses Python's `timeout=` (sqlite3_busy_timeout: SQLite's
default busy handler, which sleeps through the connection's VFS).
"""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

import litefs_guard

MODES = ("BEGIN", "BEGIN IMMEDIATE", "autocommit")


def connect(db, timeout):
    return litefs_guard.connect(db, timeout=timeout, isolation_level=None, check_same_thread=False)


def write(conn, mode, msg):
    """One write in `mode`; returns the error code or None."""
    try:
        if mode == "autocommit":
            conn.execute("INSERT INTO log(msg) VALUES (?)", (msg,))
        else:
            conn.execute(mode)
            conn.execute("INSERT INTO log(msg) VALUES (?)", (msg,))
            conn.execute("COMMIT")
        return None
    except sqlite3.OperationalError as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return e.sqlite_errorcode & 0xFF


def line_files(db):
    st = os.stat(db)
    name = f"litefs_guard.{st.st_dev:x}.{st.st_ino:x}.line"
    return os.path.exists(os.path.join("/dev/shm", name))


def arrival(db, procs):
    """A holder keeps the write lock; five waiters arrive 25 ms apart (each
    a thread, or a process); the holder commits 150 ms after the last
    arrived. In what order do they write, and how soon after the release?"""
    holder = connect(db, 5)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO log(msg) VALUES ('holder')")
    done, errors, children = {}, {}, []
    t0 = time.monotonic()

    def waiter(i, ready, go):
        c = connect(db, 5)
        ready.set()
        go.wait()
        errors[i] = write(c, MODES[i % 3], f"w{i}")
        done[i] = time.monotonic()
        c.close()

    threads = []
    for i in range(5):
        # Each waiter is connected (and, as a process, has loaded the
        # guard) before it is told to write: it arrives when told.
        if procs:
            code = (
                "import sys, time; sys.path.insert(0, %r); import fairwait_scenarios as s; "
                "c = s.connect(%r, 5); print('ready', flush=True); sys.stdin.readline(); "
                "e = s.write(c, s.MODES[%d %% 3], 'w%d'); print(e, time.monotonic())"
            ) % (os.path.dirname(os.path.abspath(__file__)), db, i, i)
            p = subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            assert p.stdout.readline().strip() == "ready"
            p.stdin.write("go\n")
            p.stdin.flush()
            children.append((i, p))
        else:
            ready, go = threading.Event(), threading.Event()
            t = threading.Thread(target=waiter, args=(i, ready, go))
            t.start()
            ready.wait()
            go.set()
            threads.append(t)
        time.sleep(0.025)
    time.sleep(0.15)
    in_line = line_files(db)
    holder.execute("COMMIT")
    released = time.monotonic()
    for t in threads:
        t.join()
    for i, p in children:
        out, _ = p.communicate(timeout=30)
        err, at = out.split()[-2:]
        errors[i] = None if err == "None" else int(err)
        done[i] = float(at)
    order = [r[0] for r in holder.execute("SELECT msg FROM log WHERE msg LIKE 'w%' ORDER BY rowid")]
    holder.close()
    return {
        "order": order,
        "errors": [errors[i] for i in range(5)],
        "first_after_release_ms": (min(done.values()) - released) * 1000,
        "last_after_release_ms": (max(done.values()) - released) * 1000,
        "line_while_waiting": in_line,
        "line_after": line_files(db),
        "setup_ms": (released - t0) * 1000,
    }


def timeouts(db):
    """The lock stays held for 2 s. A patient waiter (3 s) stands first in
    line; then waiters with 200 ms and 500 ms timeouts in each mode, and
    one with no busy handler. When does each give up?"""
    holder = connect(db, 5)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO log(msg) VALUES ('holder')")
    out = {}

    def waiter(key, timeout, mode):
        c = connect(db, timeout)
        start = time.monotonic()
        code = write(c, mode, key)
        out[key] = {"code": code, "ms": (time.monotonic() - start) * 1000}
        c.close()

    patient = threading.Thread(target=waiter, args=("patient", 3.0, "BEGIN"))
    patient.start()
    time.sleep(0.05)
    threads = [
        threading.Thread(target=waiter, args=(f"{mode}/{t}", t, mode))
        for t in (0.2, 0.5)
        for mode in MODES
    ]
    threads.append(threading.Thread(target=waiter, args=("no-handler", 0, "BEGIN IMMEDIATE")))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(max(0.0, 2.0 - 0.55))
    holder.execute("COMMIT")
    patient.join()
    holder.close()
    return out


def sustained(db):
    """Six threads write for 1.5 s, each holding the lock ~1 ms and pausing
    2 ms between transactions. Nobody fails or waits long."""
    stop = time.monotonic() + 1.5
    res = {}

    def writer(i):
        c = connect(db, 5)
        lat, fails = [], 0
        while time.monotonic() < stop:
            t = time.monotonic()
            try:
                c.execute("BEGIN")
                c.execute("INSERT INTO log(msg) VALUES (?)", (f"s{i}",))
                time.sleep(0.001)
                c.execute("COMMIT")
                lat.append((time.monotonic() - t) * 1000)
            except sqlite3.OperationalError:
                fails += 1
                c.execute("ROLLBACK")
            time.sleep(0.002)
        res[i] = {"n": len(lat), "max_ms": max(lat), "fails": fails}
        c.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return res


if __name__ == "__main__":
    name, db = sys.argv[1], sys.argv[2]
    result = {
        "threads": lambda: arrival(db, False),
        "processes": lambda: arrival(db, True),
        "timeouts": lambda: timeouts(db),
        "sustained": lambda: sustained(db),
    }[name]()
    print(json.dumps(result))
