//! IMMEDIATE for plain BEGIN: read-modify-write transactions from many
//! threads and processes, guarded vs stock SQLite in the same test (the stock
//! run must fail, or the test proves nothing). WAL mode here; rollback-journal
//! mode in rollback_mode.rs.

mod common;
use common::*;

/// One contention run at a time: two at once on 2 cores starve SQLite's
/// polling busy handler past its timeout, stock and guarded alike.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
use std::path::Path;
use std::process::Command;

const THREADS: usize = 8;
const PROCS: usize = 4;
const TXNS: usize = 300;

/// Runs THREADS × TXNS transactions; returns (errors, final counter).
fn run_threads(m: &Mount, stock: bool) -> (usize, i64) {
    run_rmw_threads(m, stock, THREADS, TXNS, "")
}

pub fn setup_counter(m: &Mount, mode: &str) {
    let c = m.open("app.db");
    c.execute_batch(&format!(
        "PRAGMA journal_mode = {mode}; CREATE TABLE IF NOT EXISTS counter(id INTEGER PRIMARY KEY, v INT);
         DELETE FROM counter; INSERT INTO counter VALUES (1, 0);"
    ))
    .unwrap();
}

#[test]
fn threads_wal_guard_has_no_errors_and_stock_fails() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let m = Mount::new("cont-wal");
    setup_counter(&m, "wal");
    let (errors, v) = run_threads(&m, false);
    println!("guarded: {errors} errors, counter {v}");
    assert_eq!(errors, 0);
    assert_eq!(v, (THREADS * TXNS) as i64);

    setup_counter(&m, "wal");
    let (errors, v) = run_threads(&m, true);
    println!("stock: {errors} errors of {}, counter {v}", THREADS * TXNS);
    assert!(
        errors > 0,
        "stock SQLite with plain BEGIN should fail under contention"
    );
    assert_eq!(v, (THREADS * TXNS - errors) as i64);
}

pub fn run_procs(db: &Path, mode: &str, env: &[(&str, &str)]) -> (usize, usize) {
    let _ = std::fs::remove_file(db.with_extension("go"));
    let worker = env!("CARGO_BIN_EXE_guard-worker");
    let children: Vec<_> = (0..PROCS)
        .map(|_| {
            let mut cmd = Command::new(worker);
            cmd.args([db.to_str().unwrap(), &TXNS.to_string(), mode])
                .env("LITEFS_GUARD_SO", so_path())
                .env("GUARD_WORKER_GO", db.with_extension("go"));
            for (k, v) in env {
                cmd.env(k, v);
            }
            cmd.stdout(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    // Start all workers at once, so they really contend.
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(db.with_extension("go"), b"").unwrap();
    let (mut ok, mut err) = (0, 0);
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(out.status.success());
        let s = String::from_utf8(out.stdout).unwrap();
        let nums: Vec<usize> = s
            .trim()
            .split(' ')
            .map(|kv| kv.split('=').nth(1).unwrap().parse().unwrap())
            .collect();
        ok += nums[0];
        err += nums[1];
    }
    (ok, err)
}

#[test]
fn processes_wal_guard_has_no_errors_and_stock_fails() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let m = Mount::new("cont-wal-procs");
    setup_counter(&m, "wal");
    let (ok, err) = run_procs(&m.db("app.db"), "guard", &[]);
    let v: i64 = m
        .open("app.db")
        .query_row("SELECT v FROM counter", [], |r| r.get(0))
        .unwrap();
    println!("guarded processes: ok={ok} err={err} counter={v}");
    assert_eq!((ok, err), (PROCS * TXNS, 0));
    assert_eq!(v, (PROCS * TXNS) as i64);

    setup_counter(&m, "wal");
    let (ok, err) = run_procs(&m.db("app.db"), "stock", &[]);
    println!("stock processes: ok={ok} err={err}");
    assert!(
        err > 0,
        "stock SQLite with plain BEGIN should fail under contention"
    );
}

/// A custom busy handler (not SQLite's sleeping one) is never sent round the
/// guard's fair line: it is called as often as without the guard, sleeps
/// its own way, and wins the lock once free, even while a waiter that does
/// sleep through the VFS stands in line ahead of it.
#[test]
fn custom_busy_handlers_keep_working_beside_the_fair_line() {
    use rusqlite::{Connection, ErrorCode};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let m = Mount::new("cont-custom");
    setup_counter(&m, "wal");
    let holder = m.open("app.db");
    holder
        .execute_batch("BEGIN IMMEDIATE; UPDATE counter SET v = v + 1")
        .unwrap();

    // A waiter with SQLite's own handler (busy_timeout): it waits in line.
    let path = m.db("app.db");
    let in_line = std::thread::spawn(move || {
        let c = Connection::open(&path).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c.execute_batch("BEGIN IMMEDIATE; UPDATE counter SET v = v + 1; COMMIT")
            .map_err(|e| e.to_string())
    });
    std::thread::sleep(Duration::from_millis(50));

    // A handler that gives up at once: busy, as without the guard.
    let quitter = m.open("app.db");
    static QUIT_CALLS: AtomicU32 = AtomicU32::new(0);
    quitter
        .busy_handler(Some(|_| {
            QUIT_CALLS.fetch_add(1, Ordering::SeqCst);
            false
        }))
        .unwrap();
    let t = Instant::now();
    let e = quitter.execute_batch("BEGIN IMMEDIATE").unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::DatabaseBusy), "{e}");
    assert_eq!(QUIT_CALLS.load(Ordering::SeqCst), 1);
    assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());

    // A handler that sleeps 2 ms a time in its own way, up to 2 s.
    let own = m.open("app.db");
    static OWN_CALLS: AtomicU32 = AtomicU32::new(0);
    own.busy_handler(Some(|n| {
        OWN_CALLS.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(2));
        n < 1000
    }))
    .unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        holder.execute_batch("COMMIT").unwrap();
    });
    own.execute_batch("BEGIN IMMEDIATE; UPDATE counter SET v = v + 1; COMMIT")
        .unwrap();
    assert!(
        OWN_CALLS.load(Ordering::SeqCst) >= 10,
        "it was called while it waited"
    );
    release.join().unwrap();
    assert_eq!(in_line.join().unwrap(), Ok(()));
    let v: i64 = m
        .open("app.db")
        .query_row("SELECT v FROM counter", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 3);
}
