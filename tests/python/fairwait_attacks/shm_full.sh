#!/bin/sh
# /dev/shm full (a container's 64 MiB /dev/shm filled by something else):
# the line is created with ftruncate (sparse), and its first store faults.
# Run as root: a private mount namespace with a tiny, full tmpfs on /dev/shm.
PY=${PY:-build/venv/bin/python}
exec unshare -m sh -c '
mount -t tmpfs -o size=64k tmpfs /dev/shm || exit 2
dd if=/dev/zero of=/dev/shm/filler bs=4k count=100 2>/dev/null   # fills it (ENOSPC)
df -h /dev/shm | tail -1
D=$(mktemp -d -p "$ATTACK_DIR")
'"$PY"' - "$D/app.db" <<PYEOF
import sys, sqlite3, litefs_guard
db = sys.argv[1]
c = sqlite3.connect(db); c.execute("PRAGMA journal_mode=wal"); c.execute("CREATE TABLE log(msg)"); c.close()
c = litefs_guard.connect(db, timeout=5, isolation_level=None)
c.execute("INSERT INTO log VALUES (1)")
print("wrote", c.execute("SELECT count(*) FROM log").fetchone()[0])
PYEOF
echo "python exit status: $?"
'
