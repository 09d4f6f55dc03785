"""A turn picked up at the barrier, then the retry's read refused (bounded
staleness): the WAL write lock stays held after the statement failed."""
import os, sys, sqlite3, threading, time, tempfile, json
import litefs_guard

d = tempfile.mkdtemp(prefix="rv-leak-", dir=os.environ["ATTACK_DIR"])
db = os.path.join(d, "app.db")
lag = os.path.join(d, ".lag")
open(lag, "w").write("+000000000")
c = litefs_guard.connect(db, isolation_level=None)
c.execute("PRAGMA journal_mode=wal"); c.execute("CREATE TABLE log(msg)"); c.close()

def conn(t):
    return litefs_guard.connect(db, timeout=t, isolation_level=None, check_same_thread=False)

MODE = os.environ.get("MODE", "auto")
h = conn(5)
h.execute("BEGIN IMMEDIATE"); h.execute("INSERT INTO log VALUES ('h')")
w = conn(5)
w.execute("PRAGMA litefs_max_lag_ms = 1000")
res = {}
def waiter():
    t = time.monotonic()
    try:
        if MODE == "begin": w.execute("BEGIN")
        w.execute("INSERT INTO log VALUES ('w')"); res["w"] = "ok"
    except sqlite3.Error as e:
        res["w"] = f"{e.sqlite_errorname}: {e}"
        if w.in_transaction:
            w.execute("ROLLBACK"); res["w_rolled_back"] = True
    res["w_ms"] = round((time.monotonic() - t) * 1000)
th = threading.Thread(target=waiter); th.start()
time.sleep(0.3)
open(lag, "w").write("+000099999")   # the node falls behind while W waits
h.execute("COMMIT")
th.join()
x = conn(1)
t = time.monotonic()
try:
    x.execute("INSERT INTO log VALUES ('x')"); res["x"] = "ok"
except sqlite3.Error as e:
    res["x"] = f"{e.sqlite_errorname}: {e}"
res["x_ms"] = round((time.monotonic() - t) * 1000)
time.sleep(2)
y = conn(0)
try:
    y.execute("INSERT INTO log VALUES ('y')"); res["y_3s_later"] = "ok"
except sqlite3.Error as e:
    res["y_3s_later"] = e.sqlite_errorname
open(lag, "w").write("+000000000")   # caught up again
w.execute("SELECT 1 FROM log LIMIT 1").fetchall()   # W's next (read) transaction
try:
    y.execute("INSERT INTO log VALUES ('y')"); res["y_after_w_reads"] = "ok"
except sqlite3.Error as e:
    res["y_after_w_reads"] = e.sqlite_errorname
print(json.dumps(res))
os._exit(0)
