"""A forked child that closes the connection it inherited (the usual
post-fork hygiene, e.g. Django's close_all in a gunicorn post_fork hook)
unlinks the parent's line: later processes wait in a different line."""
import os, sys, sqlite3, tempfile, json, time
import litefs_guard

d = tempfile.mkdtemp(prefix="rv-fork-", dir=os.environ["ATTACK_DIR"])
db = os.path.join(d, "app.db")
c = sqlite3.connect(db); c.execute("PRAGMA journal_mode=wal"); c.execute("CREATE TABLE log(msg)"); c.close()
st = os.stat(db); line = f"/dev/shm/litefs_guard.{st.st_dev:x}.{st.st_ino:x}.line"
p = litefs_guard.connect(db, timeout=5, isolation_level=None)
p.execute("INSERT INTO log VALUES ('parent')")   # the parent joins the line
out = {"before_fork": os.path.exists(line)}
pid = os.fork()
if pid == 0:
    p.close()
    os._exit(0)
os.waitpid(pid, 0)
out["after_child_closed_inherited_conn"] = os.path.exists(line)
p.execute("INSERT INTO log VALUES ('parent again')")
out["parent_still_writing_line_exists"] = os.path.exists(line)
print(json.dumps(out))
# A new process joins: it creates a second line file at the same name.
import subprocess
q = subprocess.Popen([sys.executable, "-c", f"""
import litefs_guard, time, sys
c = litefs_guard.connect({db!r}, timeout=5, isolation_level=None)
c.execute("INSERT INTO log VALUES ('q')")
print('ready', flush=True); sys.stdin.readline()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
q.stdout.readline()
out2 = {"q_created_new_line": os.path.exists(line), "q_ino": os.stat(line).st_ino if os.path.exists(line) else None}
p.close()   # the parent's last connection: its (converted) lock lets it unlink Q's file
out2["after_parent_close_q_line_exists"] = os.path.exists(line)
q.stdin.write("\n"); q.stdin.flush(); q.wait()
print(json.dumps(out2))
