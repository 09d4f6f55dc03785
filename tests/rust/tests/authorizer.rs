//! Prepare-time veto: every kind of write is refused on a replica and leaves
//! the database bytes unchanged; the same statements succeed on the primary;
//! reads and lookalikes are never refused.

mod common;
use common::*;
use rusqlite::{Connection, ErrorCode};

const SCHEMA: &str = "
    CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
    CREATE TABLE log(msg TEXT);
    CREATE TABLE u(k TEXT PRIMARY KEY, n INT);
    CREATE INDEX t_v ON t(v);
    CREATE VIEW tv AS SELECT * FROM t;
    CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO log VALUES('ins'); END;
    INSERT INTO t VALUES(1, 'a');
    INSERT INTO u VALUES('x', 1);
";

/// Statements that write the main database, in every spelling we know.
const WRITES: &[&str] = &[
    "INSERT INTO t(v) VALUES('b')",
    "INSERT INTO u VALUES('x', 1) ON CONFLICT(k) DO UPDATE SET n = n + 1",
    "REPLACE INTO t VALUES(1, 'z')",
    "INSERT OR REPLACE INTO t VALUES(1, 'z')",
    "INSERT INTO t(v) VALUES('r') RETURNING id",
    "UPDATE t SET v = 'q' WHERE id = 1",
    "UPDATE t SET v = 'q', id = id WHERE id = 1",
    "DELETE FROM t",
    "DELETE FROM t WHERE id = 1 RETURNING id",
    "WITH x(n) AS (SELECT 5) INSERT INTO t(v) SELECT n FROM x",
    "WITH d AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM d)",
    "WITH d AS (SELECT 1) UPDATE t SET v = 'w' WHERE id IN (SELECT * FROM d)",
    "CREATE TABLE t2(x)",
    "CREATE INDEX t_id2 ON t(v, id)",
    "CREATE VIEW v2 AS SELECT 1",
    "CREATE TRIGGER tr2 AFTER DELETE ON t BEGIN SELECT 1; END",
    "CREATE VIRTUAL TABLE ft USING fts5(x)",
    "DROP TABLE u",
    "DROP INDEX t_v",
    "DROP VIEW tv",
    "DROP TRIGGER t_ins",
    "ALTER TABLE t ADD COLUMN w",
    "ALTER TABLE t RENAME TO t9",
    "ALTER TABLE t RENAME COLUMN v TO vv",
    "REINDEX",
    "REINDEX t_v",
    "ANALYZE",
    "PRAGMA user_version = 5",
    "PRAGMA main.application_id = 7",
    "PRAGMA schema_version = 99",
    "PRAGMA wal_checkpoint(TRUNCATE)",
    "PRAGMA incremental_vacuum",
    "PRAGMA optimize",
];

/// Never refused, on any node.
const NEVER_DENIED: &[&str] = &[
    "SELECT * FROM t",
    "SELECT 'INSERT'",
    "SELECT 'DELETE FROM t'",
    "SELECT 1 AS update_count, 2 AS deleted",
    "WITH \"insert\"(x) AS (SELECT 1) SELECT * FROM \"insert\"",
    "WITH update_count(deleted) AS (SELECT 1) SELECT deleted FROM update_count",
    "WITH \"delete\" AS (SELECT v FROM t) SELECT * FROM \"delete\"",
    "EXPLAIN QUERY PLAN SELECT * FROM t WHERE v = 'a'",
    "EXPLAIN SELECT * FROM t",
    "SELECT * FROM tv",
    "PRAGMA user_version",
    "PRAGMA journal_mode",
    "PRAGMA busy_timeout = 100",
    "PRAGMA foreign_keys = ON",
    "PRAGMA cache_size = -2000",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA query_only = 0",
    "PRAGMA table_info(t)",
    "PRAGMA integrity_check",
    "CREATE TEMP TABLE scratch(a)",
    "CREATE TEMP VIEW tview AS SELECT 1",
];

fn fresh(tag: &str) -> (Mount, Connection) {
    let m = Mount::new(tag);
    let c = m.open("app.db");
    c.execute_batch(SCHEMA).unwrap();
    (m, c)
}

#[test]
fn every_write_kind_is_refused_on_a_replica_and_nothing_changes() {
    for sql in WRITES {
        let (m, c) = fresh("deny");
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        let before = file_bytes(&m.db("app.db"));
        m.make_replica("node-a");
        let e = c.execute_batch(sql).expect_err(sql);
        assert!(is_refusal(&e), "{sql}: {e}");
        // Once the guard has seen the replica, refusals come at prepare
        // time — except CREATE TABLE/INDEX/VIEW/TRIGGER, REINDEX, ANALYZE and
        // `PRAGMA optimize` (any of which may change nothing), which the lock gate
        // refuses (so `IF NOT EXISTS` on an existing object still succeeds).
        let e = c.execute_batch(sql).expect_err(sql);
        let gate = (sql.starts_with("CREATE ") && !sql.contains("VIRTUAL"))
            || sql.starts_with("REINDEX")
            || sql.starts_with("ANALYZE")
            || *sql == "PRAGMA optimize";
        let expected = if gate {
            ErrorCode::ReadOnly
        } else {
            ErrorCode::AuthorizationForStatementDenied
        };
        assert_eq!(code(&e), Some(expected), "{sql}: {e}");
        assert_eq!(count(&c, "t"), 1, "{sql}");
        assert_eq!(count(&c, "log"), 1, "{sql}");
        drop(c);
        assert!(
            file_bytes(&m.db("app.db")) == before,
            "{sql} changed the database bytes"
        );
    }
}

#[test]
fn the_same_writes_succeed_on_the_primary() {
    for sql in WRITES {
        let (_m, c) = fresh("allow");
        c.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[test]
fn reads_and_lookalikes_are_never_refused_on_a_replica() {
    let (m, c) = fresh("reads");
    m.make_replica("node-a");
    for sql in NEVER_DENIED {
        let mut st = c.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let mut rows = st.raw_query();
        while rows.next().unwrap_or_else(|e| panic!("{sql}: {e}")).is_some() {}
    }
    // Transactions and savepoints themselves are not writes.
    c.execute_batch("BEGIN; SELECT * FROM t; SAVEPOINT s1; RELEASE s1; ROLLBACK")
        .unwrap();
    c.execute_batch("BEGIN; SELECT count(*) FROM t; COMMIT").unwrap();
    // TEMP objects are this connection's own: writable on a replica.
    c.execute_batch(
        "CREATE TEMP TABLE tt(x); INSERT INTO tt VALUES (1); UPDATE tt SET x = 2; DELETE FROM tt",
    )
    .unwrap();
}

#[test]
fn a_temp_trigger_writing_main_is_refused() {
    let (m, c) = fresh("trigger");
    c.execute_batch(
        "CREATE TEMP TABLE tt(x);
         CREATE TEMP TRIGGER tt_ins AFTER INSERT ON tt BEGIN INSERT INTO log VALUES ('from trigger'); END;",
    )
    .unwrap();
    m.make_replica("node-a");
    let e = c.execute("INSERT INTO tt VALUES (1)", []).unwrap_err();
    assert!(is_refusal(&e), "{e}");
    assert_eq!(count(&c, "log"), 1, "only the schema's own insert is logged");
}

#[test]
fn attached_database_in_the_mount_is_guarded() {
    let (m, c) = fresh("attach");
    let other = m.open("other.db");
    other
        .execute_batch("CREATE TABLE o(x); INSERT INTO o VALUES (1)")
        .unwrap();
    drop(other);
    c.execute("ATTACH ?1 AS aux", [m.db("other.db").to_str().unwrap()])
        .unwrap();
    c.execute("INSERT INTO aux.o VALUES (2)", []).unwrap();
    m.make_replica("node-a");
    let e = c.execute("INSERT INTO aux.o VALUES (3)", []).unwrap_err();
    assert!(is_refusal(&e), "{e}");
    let e = c.execute("PRAGMA aux.user_version = 3", []).unwrap_err();
    assert!(is_refusal(&e), "{e}");
    assert_eq!(count(&c, "aux.o"), 2);
}

#[test]
fn role_flip_takes_effect_on_the_next_statement() {
    let (m, c) = fresh("flip");
    for round in 0..3 {
        m.make_replica("node-b");
        let e = c.execute("INSERT INTO t(v) VALUES ('x')", []).unwrap_err();
        assert!(is_refusal(&e), "round {round}: {e}");
        m.make_primary();
        c.execute("INSERT INTO t(v) VALUES ('y')", []).unwrap();
    }
    assert_eq!(count(&c, "t"), 4);
}

#[test]
fn steady_replica_refuses_at_prepare_with_sqlite_auth() {
    let m = Mount::new("auth");
    m.open("app.db").execute_batch(SCHEMA).unwrap();
    m.make_replica("node-a");
    let c = m.open("app.db");
    let e = c
        .prepare("INSERT INTO t(v) VALUES ('x')")
        .err()
        .expect("prepare must fail");
    assert_eq!(code(&e), Some(ErrorCode::AuthorizationForStatementDenied), "{e}");
}

#[test]
fn missing_mount_refuses_writes_but_reads_work() {
    let (m, c) = fresh("gone");
    let moved = m.dir.with_extension("moved");
    std::fs::rename(&m.dir, &moved).unwrap();
    // The open file still reads; any write is refused because the mount is gone.
    assert_eq!(count(&c, "t"), 1);
    let e = c.execute("INSERT INTO t(v) VALUES ('x')", []).unwrap_err();
    assert!(is_refusal(&e), "{e}");
    let e = c
        .query_row("SELECT litefs_is_primary()", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert!(
        e.to_string().contains("LiteFS is not running") && e.to_string().contains(m.dir.to_str().unwrap()),
        "{e}"
    );
    std::fs::rename(&moved, &m.dir).unwrap();
    c.execute("INSERT INTO t(v) VALUES ('x')", []).unwrap();
}

#[test]
fn read_only_database_file_means_not_primary() {
    use std::os::unix::fs::PermissionsExt;
    let (m, c) = fresh("mode");
    drop(c);
    // LiteFS shows 0444 on every node that is not the primary, even with no .primary.
    std::fs::set_permissions(m.db("app.db"), std::fs::Permissions::from_mode(0o444)).unwrap();
    let c = m.open("app.db");
    let e = c.execute("INSERT INTO t(v) VALUES ('x')", []).unwrap_err();
    assert!(is_refusal(&e), "{e}");
    assert_eq!(
        c.query_row("SELECT litefs_is_primary()", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        0
    );
}
