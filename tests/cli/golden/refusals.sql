-- Writes refused on a replica, reads and lookalikes allowed.
.bail off
.mode list
.load ./litefs_guard
.open app.db
CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE u(k TEXT PRIMARY KEY, n INT);
INSERT INTO t(v) VALUES ('a'), ('b');
INSERT INTO u VALUES ('x', 1);
.shell echo node-a > .primary
SELECT 'after flip:', count(*) FROM t;
INSERT INTO t(v) VALUES ('c');
INSERT INTO t(v) VALUES ('c');
INSERT INTO u VALUES ('x', 1) ON CONFLICT(k) DO UPDATE SET n = n + 1;
REPLACE INTO t VALUES (1, 'z');
UPDATE t SET v = 'q' RETURNING id;
DELETE FROM t;
WITH x(n) AS (SELECT 5) INSERT INTO t(v) SELECT n FROM x;
CREATE TABLE t2(x);
CREATE INDEX t_v ON t(v);
DROP TABLE u;
ALTER TABLE t ADD COLUMN w;
REINDEX;
ANALYZE;
PRAGMA user_version = 7;
PRAGMA wal_checkpoint(TRUNCATE);
VACUUM;
SELECT 'still:', count(*), group_concat(v) FROM t;
SELECT 'reads:', 'INSERT', 1 AS update_count, 2 AS deleted;
WITH "insert"(x) AS (SELECT 1) SELECT 'cte:', x FROM "insert";
BEGIN;
SELECT 'in txn:', count(*) FROM t;
SAVEPOINT s;
RELEASE s;
COMMIT;
PRAGMA user_version;
CREATE TEMP TABLE scratch(a);
INSERT INTO scratch VALUES (1);
SELECT 'temp:', count(*) FROM scratch;
.shell rm .primary
INSERT INTO t(v) VALUES ('c');
SELECT 'primary again:', count(*) FROM t;
