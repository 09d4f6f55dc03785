//! Write forwarding (`PRAGMA litefs_forward`) on the sim's halt lock: a
//! replica's writes succeed only with forwarding on and only while the halt
//! lock is held; the primary's writers wait meanwhile; every way a
//! transaction can end — commit, rollback, error, close, process exit, a
//! fork — leaves no halt lock behind, and a lock lost to a fork fails the
//! commit with nothing applied; the wait is bounded by
//! LITEFS_GUARD_HALT_TIMEOUT_MS. The guard is loaded into this process with
//! default settings (forwarding off); children run the cases that need other
//! settings or must die.

mod common;
mod scenarios;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use common::start;
use litefs_sim::harness::Sim;
use rusqlite::Connection;
use scenarios::{
    am_child, child, load_guard, must_fail, run_child, so_path, SQLITE_AUTH, SQLITE_BUSY, SQLITE_READONLY,
};

static GUARD: Once = Once::new();

/// The tests of this file run one at a time: a fork or a spawned child in
/// one test (the test harness's own `run_child` included) drops every halt
/// lock this process holds — exactly what forwarding must survive, but not
/// across tests.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn guard() {
    GUARD.call_once(|| load_guard(&so_path()));
}

fn open(path: &Path) -> Connection {
    guard();
    let c = Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(2)).unwrap();
    c
}

fn pragma(c: &Connection, sql: &str) -> String {
    c.query_row(sql, [], |r| r.get::<_, String>(0)).unwrap()
}

fn count(c: &Connection) -> i64 {
    c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
}

/// One control command on the sim's socket (usable from a child process).
fn control(socket: &Path, line: &str) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    writeln!(s, "{line}").unwrap();
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply).unwrap();
    reply.trim_end().to_string()
}

fn socket(sim: &Sim) -> PathBuf {
    sim.dir().join("sim.sock")
}

/// The sim's current halt locks, e.g. `ok count=1 app.db:n2`.
fn halts(sim: &Sim) -> String {
    control(&socket(sim), "halts")
}

fn no_halt(sim: &Sim) {
    assert_eq!(halts(sim), "ok count=0", "a halt lock was left behind");
}

fn held_by_n2(sim: &Sim) {
    assert_eq!(halts(sim), "ok count=1 app.db:n2");
}

/// A two-node cluster with `t(x)` holding one row, written on the primary.
fn cluster() -> Sim {
    let sim = start(&["n1", "n2"]);
    let p = open(&sim.path("n1", "app.db"));
    p.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1); CREATE TABLE u(y UNIQUE);")
        .unwrap();
    sim
}

/// A connection on the replica with forwarding switched on.
fn forwarding(sim: &Sim) -> Connection {
    let r = open(&sim.path("n2", "app.db"));
    assert_eq!(pragma(&r, "PRAGMA litefs_forward"), "0", "off by default");
    assert_eq!(pragma(&r, "PRAGMA litefs_forward = ON"), "1");
    r
}

#[test]
fn replica_writes_succeed_only_with_forwarding_and_only_under_the_halt_lock() {
    require_fuse!();
    let _serial = serial();
    let sim = cluster();
    let p = open(&sim.path("n1", "app.db"));
    let r = open(&sim.path("n2", "app.db"));
    // Negative control: without forwarding a replica refuses, as before.
    let e = must_fail("replica insert", r.execute("INSERT INTO t VALUES (2)", []));
    assert_eq!(e.code, SQLITE_AUTH, "{e}");
    let e = must_fail("replica BEGIN IMMEDIATE", r.execute_batch("BEGIN IMMEDIATE"));
    assert_eq!(e.code, SQLITE_READONLY, "{e}");
    no_halt(&sim);
    assert_eq!(pragma(&r, "PRAGMA litefs_forward"), "0");
    assert_eq!(pragma(&r, "PRAGMA litefs_forward = ON"), "1");
    let e = must_fail(
        "bad value",
        r.query_row("PRAGMA litefs_forward = maybe", [], |_| Ok(())),
    );
    assert!(e.msg.contains("use ON or OFF"), "{e}");

    // Autocommit: forwarded; no halt lock afterwards; the primary has it.
    r.execute("INSERT INTO t VALUES (2)", []).unwrap();
    no_halt(&sim);
    assert_eq!(count(&p), 2);
    let cfg: String = r.query_row("SELECT litefs_config()", [], |x| x.get(0)).unwrap();
    let txid: i64 = p.query_row("SELECT litefs_txid()", [], |x| x.get(0)).unwrap();
    assert!(cfg.contains("\"forwarding\":true"), "{cfg}");
    assert!(
        cfg.contains(&format!("\"forwarded_txid\":{txid}")),
        "the read floor is the TXID the write produced ({txid}): {cfg}"
    );

    // Explicit: held from the first statement to COMMIT; the primary's
    // writers wait meanwhile.
    r.execute_batch("BEGIN; SELECT count(*) FROM t;").unwrap();
    held_by_n2(&sim);
    r.execute("INSERT INTO t VALUES (3)", []).unwrap();
    held_by_n2(&sim);
    p.busy_timeout(Duration::from_millis(300)).unwrap();
    let t0 = Instant::now();
    let e = must_fail(
        "primary write while a replica holds the halt lock",
        p.execute("INSERT INTO t VALUES (30)", []),
    );
    assert_eq!(e.code, SQLITE_BUSY, "{e}");
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "it waited: {:?}",
        t0.elapsed()
    );
    r.execute_batch("COMMIT").unwrap();
    no_halt(&sim);
    p.busy_timeout(Duration::from_secs(2)).unwrap();
    p.execute("INSERT INTO t VALUES (30)", []).unwrap();
    assert_eq!(count(&p), 4);
    assert_eq!(count(&r), 4);

    // BEGIN IMMEDIATE, and several statements in one transaction.
    r.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (4); UPDATE t SET x = x + 0;")
        .unwrap();
    held_by_n2(&sim);
    r.execute_batch("COMMIT").unwrap();
    no_halt(&sim);
    assert_eq!(count(&p), 5);

    // Every write the replica's node made went through under the halt lock.
    let log = sim.log().unwrap();
    let writes: Vec<_> = log
        .iter()
        .filter(|e| e.node() == Some("n2") && e.op() == Some("write") && e.result() == Some("accepted"))
        .collect();
    assert!(!writes.is_empty());
    for w in &writes {
        assert_eq!(w.get("via"), Some("halt"), "{w:?}");
    }
    let halt_events = log
        .iter()
        .filter(|e| e.node() == Some("n2") && e.op() == Some("halt"))
        .count();
    assert!(
        halt_events >= 6,
        "three forwarded transactions: acquired and released each"
    );

    // Off again: refused as before, nothing taken.
    assert_eq!(pragma(&r, "PRAGMA litefs_forward = OFF"), "0");
    let e = must_fail(
        "replica insert, forwarding off",
        r.execute("INSERT INTO t VALUES (9)", []),
    );
    assert_eq!(e.code, SQLITE_AUTH, "{e}");
    no_halt(&sim);
    assert_eq!(count(&p), 5);
    // A write on the primary with forwarding on takes nothing.
    assert_eq!(pragma(&p, "PRAGMA litefs_forward = ON"), "1");
    p.execute_batch("BEGIN; INSERT INTO t VALUES (5);").unwrap();
    no_halt(&sim);
    p.execute_batch("COMMIT").unwrap();
}

#[test]
fn rollback_error_and_close_leave_no_halt_lock() {
    require_fuse!();
    let _serial = serial();
    let sim = cluster();
    let p = open(&sim.path("n1", "app.db"));
    let r = forwarding(&sim);
    // ROLLBACK.
    r.execute_batch("BEGIN; INSERT INTO t VALUES (2);").unwrap();
    held_by_n2(&sim);
    r.execute_batch("ROLLBACK").unwrap();
    no_halt(&sim);
    // A failing autocommit statement (constraint): rolled back, released.
    let e = must_fail("duplicate", r.execute("INSERT INTO u VALUES (1), (1)", []));
    assert_eq!(e.code, 19, "{e}");
    no_halt(&sim);
    // An error inside a transaction keeps it (and the lock) until it ends.
    r.execute_batch("BEGIN; INSERT INTO u VALUES (7);").unwrap();
    must_fail("duplicate in txn", r.execute("INSERT INTO u VALUES (7)", []));
    held_by_n2(&sim);
    r.execute_batch("ROLLBACK").unwrap();
    no_halt(&sim);
    // Closing the connection inside a transaction.
    r.execute_batch("BEGIN; INSERT INTO t VALUES (3);").unwrap();
    held_by_n2(&sim);
    drop(r);
    no_halt(&sim);
    assert_eq!(count(&p), 1, "nothing of it applied");
    let n: i64 = p.query_row("SELECT count(*) FROM u", [], |x| x.get(0)).unwrap();
    assert_eq!(n, 0);
}

/// A child process forking (and exiting) mid-transaction drops the lock:
/// COMMIT fails with SQLITE_READONLY and nothing is applied.
#[test]
fn a_fork_mid_transaction_fails_the_commit_and_applies_nothing() {
    require_fuse!();
    let _serial = serial();
    let sim = cluster();
    let p = open(&sim.path("n1", "app.db"));
    let r = forwarding(&sim);
    for how in ["fork", "spawn"] {
        r.execute_batch("BEGIN; INSERT INTO t VALUES (2); INSERT INTO t VALUES (3);")
            .unwrap();
        held_by_n2(&sim);
        match how {
            "fork" => {
                // SAFETY: the child only calls _exit (async-signal-safe).
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: ends the child at once.
                    unsafe { libc::_exit(0) };
                }
                let mut status = 0;
                // SAFETY: waiting for our own child.
                assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            }
            _ => {
                // posix_spawn: no fork handlers run; exec closes the copy.
                assert!(std::process::Command::new("true").status().unwrap().success());
            }
        }
        let e = must_fail(&format!("commit after a {how}"), r.execute_batch("COMMIT"));
        assert_eq!(e.code, SQLITE_READONLY, "{how}: {e}");
        assert!(e.msg.contains("halt lock") || e.code == SQLITE_READONLY, "{e}");
        if !r.is_autocommit() {
            r.execute_batch("ROLLBACK").unwrap();
        }
        no_halt(&sim);
        assert_eq!(count(&p), 1, "{how}: nothing applied");
        assert_eq!(count(&r), 1);
        // The connection forwards again afterwards.
        r.execute("INSERT INTO t VALUES (4)", []).unwrap();
        no_halt(&sim);
        assert_eq!(count(&p), 2);
        p.execute("DELETE FROM t WHERE x = 4", []).unwrap();
    }
}

/// LiteFS lets a halt lock expire (30 s; the sim here 400 ms): the
/// transaction that held it fails at COMMIT with nothing applied.
#[test]
fn an_expired_halt_lock_fails_the_commit_and_applies_nothing() {
    require_fuse!();
    let _serial = serial();
    let sim = Sim::start_with(common::opts(&["n1", "n2"]).halt_expiry_ms(400)).expect("start litefs-sim");
    let p = open(&sim.path("n1", "app.db"));
    p.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let r = forwarding(&sim);
    r.execute_batch("BEGIN; INSERT INTO t VALUES (2);").unwrap();
    held_by_n2(&sim);
    std::thread::sleep(Duration::from_millis(800));
    no_halt(&sim);
    let e = must_fail("commit after expiry", r.execute_batch("COMMIT"));
    assert_eq!(e.code, SQLITE_READONLY, "{e}");
    if !r.is_autocommit() {
        r.execute_batch("ROLLBACK").unwrap();
    }
    no_halt(&sim);
    assert_eq!(count(&p), 1, "nothing applied");
    // A short transaction afterwards goes through.
    r.execute("INSERT INTO t VALUES (3)", []).unwrap();
    assert_eq!(count(&p), 2);
}

const EXIT_CHILD: &str = "exit_mid_transaction_child";
const TIMEOUT_CHILD: &str = "halt_timeout_child";

/// A process that dies mid-transaction (exit, SIGKILL) leaves no halt lock,
/// and nothing of its transaction.
#[test]
fn process_exit_mid_transaction_leaves_no_halt_lock() {
    require_fuse!();
    let _serial = serial();
    let sim = cluster();
    let p = open(&sim.path("n1", "app.db"));
    let dir = tempfile_dir();
    for how in ["exit", "kill"] {
        let out = child(EXIT_CHILD, &dir)
            .env("FWD_DB", sim.path("n2", "app.db"))
            .env("FWD_SOCK", socket(&sim))
            .env("FWD_HOW", how)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            stdout.contains("held: ok count=1 app.db:n2"),
            "{how}: the child held it"
        );
        no_halt(&sim);
        assert_eq!(count(&p), 1, "{how}: nothing applied");
    }
}

#[test]
fn exit_mid_transaction_child() {
    if !am_child(EXIT_CHILD) {
        return;
    }
    load_guard(&so_path());
    let r = Connection::open(std::env::var_os("FWD_DB").unwrap()).unwrap();
    r.busy_timeout(Duration::from_secs(2)).unwrap();
    r.execute_batch("PRAGMA litefs_forward = ON; BEGIN; INSERT INTO t VALUES (2);")
        .unwrap();
    let sock = PathBuf::from(std::env::var_os("FWD_SOCK").unwrap());
    println!("held: {}", control(&sock, "halts"));
    std::io::stdout().flush().unwrap();
    if std::env::var("FWD_HOW").as_deref() == Ok("kill") {
        // SAFETY: kills this process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    // SAFETY: ends the process without unwinding or closing the connection.
    unsafe { libc::_exit(0) };
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("litefs-fwd-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const HOLD_CHILD: &str = "hold_child";

/// Takes the halt lock of `db` (what `litefs run -with-halt-lock-on` does).
fn hold(db: &Path) -> std::fs::File {
    let mut lock = db.as_os_str().to_os_string();
    lock.push("-lock");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(lock)
        .unwrap();
    // SAFETY: flock is plain old data.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_start = 72;
    fl.l_len = 1;
    // SAFETY: an open descriptor and a valid flock.
    assert_eq!(
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLKW, &mut fl) },
        0
    );
    f
}

/// Another holder keeps the halt lock: a forwarded write gives up after
/// LITEFS_GUARD_HALT_TIMEOUT_MS with SQLITE_BUSY, and leaves nothing held.
#[test]
fn the_halt_timeout_is_honoured() {
    require_fuse!();
    let _serial = serial();
    let sim = cluster();
    let p = open(&sim.path("n1", "app.db"));
    // Another process holds it (a lock of this process would be dropped by
    // spawning the child below: its exec closes the inherited copy).
    let mut holder = child(HOLD_CHILD, &tempfile_dir())
        .env("FWD_DB", sim.path("n2", "app.db"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("holding"));
    assert!(ready, "the holder took the halt lock");
    held_by_n2(&sim);
    let out = run_child(
        TIMEOUT_CHILD,
        &tempfile_dir(),
        &[
            ("LITEFS_GUARD_FORWARD", "1"),
            ("LITEFS_GUARD_HALT_TIMEOUT_MS", "300"),
            ("FWD_DB", sim.path("n2", "app.db").to_str().unwrap()),
        ],
    );
    assert!(out.contains("timed out"), "{out}");
    held_by_n2(&sim);
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    no_halt(&sim);
    assert_eq!(count(&p), 1);
}

#[test]
fn hold_child() {
    if !am_child(HOLD_CHILD) {
        return;
    }
    let _f = hold(Path::new(&std::env::var_os("FWD_DB").unwrap()));
    println!("holding");
    std::io::stdout().flush().unwrap();
    // Until the parent closes our stdin.
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest);
}

#[test]
fn halt_timeout_child() {
    if !am_child(TIMEOUT_CHILD) {
        return;
    }
    load_guard(&so_path());
    let r = Connection::open(std::env::var_os("FWD_DB").unwrap()).unwrap();
    // No busy handler: the write waits for the halt lock at its write lock.
    r.busy_timeout(Duration::ZERO).unwrap();
    assert_eq!(
        pragma(&r, "PRAGMA litefs_forward"),
        "1",
        "LITEFS_GUARD_FORWARD=1 is the default"
    );
    let t0 = Instant::now();
    let e = must_fail("forwarded insert", r.execute("INSERT INTO t VALUES (2)", []));
    let took = t0.elapsed();
    assert_eq!(e.code, SQLITE_BUSY, "{e}");
    assert!(
        e.msg.contains("database is locked") || e.msg.contains("halt"),
        "{e}"
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // With a busy handler: its retries share the one bound.
    r.busy_timeout(Duration::from_millis(100)).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    for sql in ["INSERT INTO t VALUES (3)", "BEGIN; INSERT INTO t VALUES (3);"] {
        let t0 = Instant::now();
        let e = must_fail(sql, r.execute_batch(sql));
        let took = t0.elapsed();
        assert_eq!(e.code, SQLITE_BUSY, "{sql}: {e}");
        assert!(took < Duration::from_millis(1500), "{sql}: {took:?}");
        println!("{sql}: busy after {took:?}");
        if !r.is_autocommit() {
            r.execute_batch("ROLLBACK").unwrap();
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    println!("timed out after {took:?}");
}

const ROLLBACK_CHILD: &str = "rollback_journal_child";

/// Rollback-journal mode (LITEFS_GUARD_WAL=0): an autocommit write takes the
/// halt lock at RESERVED, an explicit transaction before SHARED; both let it
/// go at the last unlock.
#[test]
fn forwarding_in_rollback_journal_mode() {
    require_fuse!();
    let _serial = serial();
    let sim = start(&["n1", "n2"]);
    let out = run_child(
        ROLLBACK_CHILD,
        &tempfile_dir(),
        &[
            ("LITEFS_GUARD_WAL", "0"),
            ("LITEFS_GUARD_FORWARD", "1"),
            ("FWD_P", sim.path("n1", "rb.db").to_str().unwrap()),
            ("FWD_R", sim.path("n2", "rb.db").to_str().unwrap()),
            ("FWD_SOCK", socket(&sim).to_str().unwrap()),
        ],
    );
    assert!(out.contains("rollback ok"), "{out}");
    assert_eq!(halts(&sim), "ok count=0");
}

#[test]
fn rollback_journal_child() {
    if !am_child(ROLLBACK_CHILD) {
        return;
    }
    load_guard(&so_path());
    let var = |k: &str| PathBuf::from(std::env::var_os(k).unwrap());
    let sock = var("FWD_SOCK");
    let p = Connection::open(var("FWD_P")).unwrap();
    assert_eq!(pragma(&p, "PRAGMA journal_mode"), "delete");
    p.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let r = Connection::open(var("FWD_R")).unwrap();
    r.busy_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(pragma(&r, "PRAGMA journal_mode"), "delete");
    r.execute("INSERT INTO t VALUES (2)", []).unwrap();
    assert_eq!(control(&sock, "halts"), "ok count=0");
    r.execute_batch("BEGIN; SELECT count(*) FROM t;").unwrap();
    assert_eq!(control(&sock, "halts"), "ok count=1 rb.db:n2");
    r.execute("INSERT INTO t VALUES (3)", []).unwrap();
    r.execute_batch("COMMIT").unwrap();
    assert_eq!(control(&sock, "halts"), "ok count=0");
    r.execute_batch("BEGIN; INSERT INTO t VALUES (4);").unwrap();
    r.execute_batch("ROLLBACK").unwrap();
    assert_eq!(control(&sock, "halts"), "ok count=0");
    assert_eq!(count(&p), 3);
    // Forwarding off: refused as before.
    pragma(&r, "PRAGMA litefs_forward = OFF");
    let e = must_fail(
        "insert, forwarding off",
        r.execute("INSERT INTO t VALUES (5)", []),
    );
    assert_eq!(e.code, SQLITE_AUTH, "{e}");
    assert_eq!(count(&p), 3);
    println!("rollback ok");
}
