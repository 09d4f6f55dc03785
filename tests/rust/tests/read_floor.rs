//! PRAGMA litefs_min_txid / litefs_max_lag_ms refusals as SQLite's log shows
//! them (SQLITE_CONFIG_LOG, which Python cannot set), on rusqlite's bundled
//! SQLite (3.41+: an interrupt ends a floor wait). The rest is covered
//! through Python's sqlite3 in tests/python/test_read_floor.py.

mod common;
use common::*;
use rusqlite::ffi;
use rusqlite::ErrorCode;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

static LOG: Mutex<Vec<(c_int, String)>> = Mutex::new(Vec::new());

extern "C" fn log_line(_: *mut c_void, code: c_int, msg: *const c_char) {
    // SAFETY: SQLite passes a NUL-terminated message.
    let m = unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned();
    LOG.lock().unwrap().push((code, m));
}

/// SQLITE_CONFIG_LOG must be set before SQLite initialises: first thing in
/// every test of this binary.
fn capture_log() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: before any connection of this process (SQLite not yet
        // initialised); the callback lives for the process.
        let rc = unsafe {
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_LOG,
                log_line as extern "C" fn(*mut c_void, c_int, *const c_char),
                std::ptr::null_mut::<c_void>(),
            )
        };
        assert_eq!(rc, ffi::SQLITE_OK);
    });
}

fn logged(containing: &str) -> Vec<(c_int, String)> {
    LOG.lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| m.contains(containing))
        .cloned()
        .collect()
}

fn write_pos(m: &Mount, txid: u64) {
    std::fs::write(m.dir.join("app.db-pos"), format!("{txid:016x}/{:016x}\n", 1)).unwrap();
}

fn replica(tag: &str) -> (Mount, rusqlite::Connection) {
    capture_log();
    let m = Mount::new(tag);
    let c = m.open("app.db");
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    m.make_replica("node-b");
    write_pos(&m, 5);
    std::fs::write(m.dir.join(".lag"), "+000000000\n").unwrap();
    (m, c)
}

fn read(c: &rusqlite::Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
}

#[test]
fn a_floor_refusal_names_both_positions_and_the_primary_in_the_log() {
    let (m, c) = replica("floor-log");
    // busy_timeout is 5 s on this connection (Mount::open): it does not
    // stretch the wait.
    let v: String = c
        .query_row("PRAGMA litefs_wait_ms = 150", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, "150");
    c.execute_batch("PRAGMA litefs_min_txid = 6").unwrap();
    let start = Instant::now();
    let e = read(&c).unwrap_err();
    let took = start.elapsed().as_millis() as i64;
    assert_eq!(code(&e), Some(ErrorCode::DatabaseLocked), "{e}");
    assert!((took - 150).abs() <= 50, "{took} ms");
    let db = m.db("app.db");
    let lines = logged(&format!("read of {} refused", db.display()));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].0, ffi::SQLITE_LOCKED);
    let msg = &lines[0].1;
    assert!(
        msg.starts_with(&format!(
            "litefs_guard: read of {} refused: this node is at 0000000000000005/0000000000000001 \
             (TXID 5), below the read floor TXID 6 (PRAGMA litefs_min_txid), after waiting ",
            db.display()
        )) && msg.ends_with(" ms (PRAGMA litefs_wait_ms); the primary is node-b"),
        "{msg}"
    );
    // The same text under litefs_config()'s last_refusal.
    let cfg: String = c
        .query_row("SELECT litefs_config() ->> 'last_refusal'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(&cfg, msg);
    write_pos(&m, 6);
    assert_eq!(read(&c).unwrap(), 1);
}

#[test]
fn a_staleness_refusal_in_the_log() {
    let (m, c) = replica("lag-log");
    c.execute_batch("PRAGMA litefs_max_lag_ms = 1000").unwrap();
    std::fs::write(m.dir.join(".lag"), "+000001500\n").unwrap();
    let start = Instant::now();
    let e = read(&c).unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(50), "at once");
    assert_eq!(code(&e), Some(ErrorCode::DatabaseLocked), "{e}");
    let lines = logged(&format!(
        "read of {} refused: replica is",
        m.db("app.db").display()
    ));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].1.ends_with(
            "refused: replica is 1500 ms behind primary node-b; limit 1000 ms (PRAGMA litefs_max_lag_ms)"
        ),
        "{}",
        lines[0].1
    );
    std::fs::write(m.dir.join(".lag"), "+000000020\n").unwrap();
    assert_eq!(read(&c).unwrap(), 1);
}

#[test]
fn an_interrupt_ends_a_floor_wait_at_once() {
    let (_m, c) = replica("floor-int");
    assert!(rusqlite::version_number() >= 3_041_000);
    c.execute_batch("PRAGMA litefs_min_txid = 100; PRAGMA litefs_wait_ms = 10000")
        .unwrap();
    let h = c.get_interrupt_handle();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        h.interrupt();
    });
    let start = Instant::now();
    let e = read(&c).unwrap_err();
    let took = start.elapsed();
    t.join().unwrap();
    assert_eq!(code(&e), Some(ErrorCode::OperationInterrupted), "{e}");
    assert!(
        took >= Duration::from_millis(95) && took < Duration::from_millis(200),
        "{took:?}"
    );
    c.execute_batch("PRAGMA litefs_min_txid = 0").unwrap();
    assert_eq!(read(&c).unwrap(), 1);
}

#[test]
fn rollback_mode_waits_at_the_shared_lock() {
    capture_log();
    let m = Mount::new("floor-rb");
    m.stock_exec(
        "rb.db",
        "PRAGMA journal_mode = DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (1)",
    );
    m.make_replica("node-b");
    std::fs::write(m.dir.join("rb.db-pos"), format!("{:016x}/{:016x}\n", 5, 1)).unwrap();
    let c = m.open("rb.db");
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete", "a replica leaves the journal mode alone");
    c.execute_batch("PRAGMA litefs_min_txid = 6; PRAGMA litefs_wait_ms = 2000")
        .unwrap();
    let dir = m.dir.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(dir.join("rb.db-pos"), format!("{:016x}/{:016x}\n", 6, 1)).unwrap();
    });
    let start = Instant::now();
    assert_eq!(read(&c).unwrap(), 1);
    let took = start.elapsed();
    t.join().unwrap();
    assert!(
        took >= Duration::from_millis(95) && took < Duration::from_millis(300),
        "{took:?}"
    );
    // Every read transaction takes SHARED afresh in rollback mode: checked
    // again, and refused after the wait (busy_timeout 5 s does not stretch it).
    c.execute_batch("PRAGMA litefs_min_txid = 7; PRAGMA litefs_wait_ms = 100")
        .unwrap();
    let start = Instant::now();
    let e = read(&c).unwrap_err();
    let took = start.elapsed().as_millis() as i64;
    assert_eq!(code(&e), Some(ErrorCode::DatabaseLocked), "{e}");
    assert!((took - 100).abs() <= 50, "{took} ms");
    assert_eq!(
        logged(&format!("read of {} refused", m.db("rb.db").display())).len(),
        1
    );
}
