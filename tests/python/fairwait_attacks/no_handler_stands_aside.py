"""A connection that once waited with a busy timeout, then turned it off
(PRAGMA busy_timeout=0: no busy handler), still stands aside: it gets
SQLITE_BUSY at once although the write lock is free. Here the lock was last
held by a writer outside the guard (a stock process), so the front waiter
distrusts the line and sleeps out its delay while the lock is free."""
import os, sys, sqlite3, subprocess, threading, time, tempfile, json
import litefs_guard

d = tempfile.mkdtemp(prefix="rv-nohandler-", dir=os.environ["ATTACK_DIR"])
db = os.path.join(d, "app.db")
c = sqlite3.connect(db); c.execute("PRAGMA journal_mode=wal"); c.execute("CREATE TABLE log(msg)"); c.close()

def conn(t):
    return litefs_guard.connect(db, timeout=t, isolation_level=None, check_same_thread=False)

# A stock writer (no guard loaded), told when to take and let go the lock.
STOCK = r'''
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
for line in sys.stdin:
    c.execute("BEGIN IMMEDIATE" if line.strip() == "hold" else "COMMIT")
    print("done", flush=True)
'''
s = subprocess.Popen([sys.executable, "-c", STOCK, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
def stock(cmd):
    s.stdin.write(cmd + "\n"); s.stdin.flush(); assert s.stdout.readline().strip() == "done"

res = {}
# C waits once behind the stock writer (its busy handler sleeps in line)...
cc = conn(5)
stock("hold")
t = threading.Thread(target=lambda: cc.execute("INSERT INTO log VALUES ('c waited')")); t.start()
time.sleep(0.2); stock("release"); t.join()
# ...then drops its busy handler.
cc.execute("PRAGMA busy_timeout = 0")
# W: a patient fair waiter, in line while the stock writer holds the lock.
stock("hold")
def w():
    ww = conn(5); t0 = time.monotonic()
    ww.execute("INSERT INTO log VALUES ('w')"); res["w_waited_ms"] = round((time.monotonic() - t0) * 1000)
th = threading.Thread(target=w); th.start()
time.sleep(0.5)
stock("release")
released = time.monotonic()
# The lock is free now. C (no busy handler) tries at once, then again.
tries = []
for i in range(5):
    try:
        cc.execute("INSERT INTO log VALUES ('c')"); tries.append("ok")
    except sqlite3.OperationalError as e:
        tries.append(e.sqlite_errorname)
    time.sleep(0.002)
th.join()
res["c_tries_right_after_release"] = tries
res["w_done_after_release_ms"] = round((time.monotonic() - released) * 1000)
print(json.dumps(res))
os._exit(0)
