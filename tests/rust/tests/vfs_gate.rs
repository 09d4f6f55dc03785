//! The execution-time gate, the WAL rule and lock hygiene.

mod common;
use common::*;
use rusqlite::{Connection, ErrorCode};
use std::time::{Duration, Instant};

fn setup(m: &Mount) -> Connection {
    let c = m.open("app.db");
    c.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a')")
        .unwrap();
    c
}

#[test]
fn statement_prepared_on_primary_is_refused_after_failover() {
    let m = Mount::new("gate-prepared");
    let c = setup(&m);
    let mut ins = c.prepare("INSERT INTO t(v) VALUES (?1)").unwrap();
    ins.execute(["b"]).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    let before = file_bytes(&m.db("app.db"));
    m.make_replica("node-b");
    let e = ins.execute(["c"]).unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::ReadOnly), "{e}");
    drop(ins);
    assert_eq!(count(&c, "t"), 2);
    assert!(file_bytes(&m.db("app.db")) == before, "bytes changed");
    // And back: the same statement text works again on the primary.
    m.make_primary();
    c.prepare_cached("INSERT INTO t(v) VALUES (?1)")
        .unwrap()
        .execute(["d"])
        .unwrap();
    assert_eq!(count(&c, "t"), 3);
}

#[test]
fn statement_prepared_before_failover_inside_begin_is_refused() {
    let m = Mount::new("gate-begin");
    let c = setup(&m);
    let mut upd = c.prepare("UPDATE t SET v = ?1").unwrap();
    m.make_replica("node-b");
    c.execute_batch("BEGIN").unwrap();
    assert_eq!(count(&c, "t"), 1, "reads still work inside BEGIN on a replica");
    let e = upd.execute(["z"]).unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::ReadOnly), "{e}");
    c.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn vacuum_has_no_authorizer_action_but_the_gate_stops_it() {
    let m = Mount::new("gate-vacuum");
    let c = setup(&m);
    m.make_replica("node-b");
    let e = c.execute_batch("VACUUM").unwrap_err();
    assert!(is_refusal(&e), "{e}");
}

#[test]
fn twenty_connections_open_a_fresh_database_at_once_and_it_ends_in_wal() {
    let m = Mount::new("wal-open");
    load_guard();
    let path = m.db("fresh.db");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (p, b) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                let c = Connection::open(&p)?;
                c.busy_timeout(Duration::from_secs(5))?;
                c.execute_batch("CREATE TABLE IF NOT EXISTS t(x)")?;
                c.execute("INSERT INTO t VALUES (?1)", [i])?;
                c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), "wal");
    }
    let c = m.open("fresh.db");
    assert_eq!(count(&c, "t"), 20);
    let hdr = std::fs::read(&path).unwrap();
    assert_eq!((hdr[18], hdr[19]), (2, 2), "header says WAL");
}

#[test]
fn a_rollback_journal_database_is_put_in_wal_on_open() {
    let m = Mount::new("wal-convert");
    m.stock_exec("app.db", "PRAGMA journal_mode = DELETE; CREATE TABLE t(x)");
    assert_eq!(std::fs::read(m.db("app.db")).unwrap()[18], 1);
    let c = m.open("app.db");
    assert_eq!(
        c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "wal"
    );
}

#[test]
fn leaving_wal_is_refused_and_the_mode_stays_wal() {
    let m = Mount::new("wal-keep");
    let c = setup(&m);
    for mode in ["DELETE", "truncate", "persist", "memory", "off"] {
        let e = c
            .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| {
                r.get::<_, String>(0)
            })
            .unwrap_err();
        assert!(e.to_string().contains("refused"), "{mode}: {e}");
    }
    assert_eq!(
        c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "wal"
    );
    assert_eq!(
        c.query_row("PRAGMA journal_mode = wal", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "wal"
    );
}

#[test]
fn on_a_replica_nothing_is_written_to_switch_modes() {
    let m = Mount::new("wal-replica");
    m.stock_exec("app.db", "PRAGMA journal_mode = DELETE; CREATE TABLE t(x)");
    let before = std::fs::read(m.db("app.db")).unwrap();
    m.make_replica("node-a");
    let c = m.open("app.db");
    assert_eq!(count(&c, "t"), 0);
    drop(c);
    assert!(std::fs::read(m.db("app.db")).unwrap() == before);
}

/// Another connection must be able to write at once (no waiting on a stale lock).
fn writes_promptly(m: &Mount) {
    let other = m.open("app.db");
    other.busy_timeout(Duration::from_millis(0)).unwrap();
    let t = Instant::now();
    other.execute("INSERT INTO t(v) VALUES ('other')", []).unwrap();
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn no_lock_left_after_rollback() {
    let m = Mount::new("hyg-rollback");
    let c = setup(&m);
    c.execute_batch("BEGIN; SELECT * FROM t; UPDATE t SET v = 'x'; ROLLBACK")
        .unwrap();
    writes_promptly(&m);
    c.execute_batch("BEGIN; SELECT * FROM t; ROLLBACK").unwrap();
    writes_promptly(&m);
    c.execute_batch("BEGIN; SELECT * FROM t; COMMIT").unwrap();
    writes_promptly(&m);
}

#[test]
fn no_lock_left_after_an_error_mid_transaction() {
    let m = Mount::new("hyg-error");
    let c = setup(&m);
    c.execute_batch("BEGIN; SELECT * FROM t").unwrap();
    assert!(c.execute("INSERT INTO t(id, v) VALUES (1, 'dup')", []).is_err());
    assert!(c.execute("INSERT INTO nope VALUES (1)", []).is_err());
    c.execute_batch("ROLLBACK").unwrap();
    writes_promptly(&m);
}

#[test]
fn no_lock_left_after_an_interrupted_statement() {
    let m = Mount::new("hyg-interrupt");
    let c = setup(&m);
    let h = c.get_interrupt_handle();
    c.execute_batch("BEGIN").unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        h.interrupt();
    });
    let e = c
        .query_row(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap_err();
    t.join().unwrap();
    assert_eq!(code(&e), Some(ErrorCode::OperationInterrupted), "{e}");
    let _ = c.execute_batch("ROLLBACK");
    writes_promptly(&m);
}

#[test]
fn no_lock_left_after_closing_inside_a_transaction() {
    let m = Mount::new("hyg-close");
    let c = setup(&m);
    c.execute_batch("BEGIN; SELECT * FROM t; UPDATE t SET v = 'x'")
        .unwrap();
    drop(c);
    writes_promptly(&m);
    let c = m.open("app.db");
    c.execute_batch("BEGIN; SELECT * FROM t").unwrap();
    drop(c);
    writes_promptly(&m);
}

#[test]
fn replica_explicit_read_transactions_take_no_write_lock() {
    let m = Mount::new("replica-read");
    let c = setup(&m);
    m.make_replica("node-a");
    c.execute_batch("BEGIN").unwrap();
    assert_eq!(count(&c, "t"), 1);
    // The primary could still write: the replica holds no write lock.
    m.make_primary();
    writes_promptly(&m);
    c.execute_batch("COMMIT").unwrap();
}

#[test]
fn begin_immediate_and_exclusive_keep_working() {
    let m = Mount::new("immediate");
    let c = setup(&m);
    c.execute_batch("BEGIN IMMEDIATE; UPDATE t SET v = 'i'; COMMIT")
        .unwrap();
    c.execute_batch("BEGIN EXCLUSIVE; UPDATE t SET v = 'e'; COMMIT")
        .unwrap();
    c.execute_batch("BEGIN; SAVEPOINT a; UPDATE t SET v = 's'; ROLLBACK TO a; RELEASE a; COMMIT")
        .unwrap();
    assert_eq!(
        c.query_row("SELECT v FROM t", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "e"
    );
}

#[test]
fn checkpoints_inside_and_outside_transactions_do_not_deadlock() {
    let m = Mount::new("ckpt");
    let c = setup(&m);
    let other = m.open("app.db");
    for mode in ["PASSIVE", "FULL", "RESTART", "TRUNCATE"] {
        c.execute("INSERT INTO t(v) VALUES (?1)", [mode]).unwrap();
        c.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
            .unwrap();
        other.execute_batch("BEGIN").unwrap();
        other
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
            .unwrap();
        other.execute_batch("COMMIT").unwrap();
        writes_promptly(&m);
    }
}

#[test]
fn exclusive_locking_mode_is_refused_because_it_would_bypass_the_gate() {
    let m = Mount::new("excl");
    let c = setup(&m);
    for sql in [
        "PRAGMA locking_mode = EXCLUSIVE",
        "PRAGMA main.locking_mode = exclusive",
    ] {
        let e = c.query_row(sql, [], |r| r.get::<_, String>(0)).unwrap_err();
        assert!(
            e.to_string().contains("locking_mode=EXCLUSIVE refused"),
            "{sql}: {e}"
        );
    }
    assert_eq!(
        c.query_row("PRAGMA locking_mode", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "normal"
    );
}

#[test]
fn unqualified_journal_mode_cannot_move_an_attached_database_out_of_wal() {
    let m = Mount::new("attach-jm");
    drop(setup(&m));
    load_guard();
    let c = Connection::open_in_memory().unwrap();
    c.execute("ATTACH ?1 AS aux", [m.db("app.db").to_str().unwrap()])
        .unwrap();
    assert!(c
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0))
        .is_err());
    assert!(c
        .query_row("PRAGMA aux.journal_mode = DELETE", [], |r| r.get::<_, String>(0))
        .is_err());
    assert_eq!(
        c.query_row("PRAGMA aux.journal_mode", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "wal"
    );
}

#[test]
fn shared_cache_connections_closing_in_any_order_are_safe() {
    let m = Mount::new("shared");
    drop(setup(&m));
    load_guard();
    let uri = format!("file:{}?cache=shared", m.db("app.db").display());
    let flags = rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let a = Connection::open_with_flags(&uri, flags).unwrap();
    let b = Connection::open_with_flags(&uri, flags).unwrap();
    b.execute_batch("BEGIN; SELECT * FROM t; COMMIT").unwrap();
    drop(b);
    // Under valgrind (make valgrind) a dangling connection pointer shows here.
    a.execute_batch("BEGIN; SELECT * FROM t; UPDATE t SET v = 'shared'; COMMIT")
        .unwrap();
    assert_eq!(count(&a, "t"), 1);
}
