//! Plain SQLite through the mounts (bundled SQLite via rusqlite): what a
//! LiteFS replica looks like to an application.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::start;
use rusqlite::{Connection, ErrorCode};

fn open(sim: &litefs_sim::harness::Sim, node: &str) -> Connection {
    let c = Connection::open(sim.path(node, "app.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

fn count(c: &Connection) -> i64 {
    c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
}

fn sqlite_error(e: rusqlite::Error) -> (ErrorCode, i32, String) {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => (f.code, f.extended_code, msg.unwrap_or_default()),
        other => panic!("not a SQLite failure: {other}"),
    }
}

#[test]
fn wal_mode_replica_reads_and_refuses_writes() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    let w = open(&sim, "n1");
    let mode: String = w.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    w.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        .unwrap();

    let r = open(&sim, "n2");
    assert_eq!(count(&r), 2);
    // The replica's connection stays open and sees every later commit.
    for i in 3..=20 {
        w.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        assert_eq!(count(&r), i);
    }
    let e = r.execute("INSERT INTO t VALUES (99)", []).unwrap_err();
    let (code, ext, msg) = sqlite_error(e);
    assert_eq!(code, ErrorCode::SystemIoFailure, "{msg}");
    assert_eq!(ext, 778, "SQLITE_IOERR_WRITE as on LiteFS: {msg}");
    assert_eq!(msg, "disk I/O error");
    assert_eq!(count(&r), 20);
    assert_eq!(count(&w), 20);
    assert!(sim.stats().unwrap().node("n2").refused >= 1);
    let pos = std::fs::read_to_string(sim.path("n2", "app.db-pos")).unwrap();
    assert!(u64::from_str_radix(&pos[..16], 16).unwrap() >= 19, "{pos}");

    // Failover: n2 takes the lease, n1 becomes the replica.
    drop(r);
    sim.set_lease(Some("n2")).unwrap();
    let r2 = open(&sim, "n2");
    r2.execute("INSERT INTO t VALUES (21)", []).unwrap();
    assert_eq!(count(&w), 21);
    let (code, ext, _) = sqlite_error(w.execute("INSERT INTO t VALUES (0)", []).unwrap_err());
    assert_eq!((code, ext), (ErrorCode::SystemIoFailure, 778));
    let ok: String = r2.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn delete_mode_replica_reads_and_refuses_writes() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    let w = open(&sim, "n1");
    let mode: String = w
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    w.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let r = open(&sim, "n2");
    assert_eq!(count(&r), 1);
    w.execute("INSERT INTO t VALUES (2)", []).unwrap();
    assert_eq!(count(&r), 2);

    let (code, ext, msg) = sqlite_error(r.execute("INSERT INTO t VALUES (3)", []).unwrap_err());
    assert_eq!(code, ErrorCode::ReadOnly, "{msg}");
    assert_eq!(ext, 1544, "SQLITE_READONLY_DIRECTORY as on LiteFS: {msg}");
    assert_eq!(msg, "attempt to write a readonly database");
    assert_eq!(count(&r), 2);
    let refused: Vec<_> = sim
        .log()
        .unwrap()
        .into_iter()
        .filter(|e| e.result() == Some("refused"))
        .collect();
    assert!(refused
        .iter()
        .any(|e| e.node() == Some("n2") && e.op() == Some("create") && e.file() == Some("app.db-journal")));

    // No primary at all: nobody writes, everybody reads.
    sim.set_lease(None).unwrap();
    assert_eq!(
        sqlite_error(w.execute("INSERT INTO t VALUES (4)", []).unwrap_err()).0,
        ErrorCode::ReadOnly
    );
    assert_eq!(count(&w), 2);
}

#[test]
fn a_new_database_cannot_be_created_on_a_replica() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    // SQLite's O_CREAT open gets EACCES, its read-only retry ENOENT.
    let e = Connection::open(sim.path("n2", "fresh.db"))
        .and_then(|c| c.execute_batch("CREATE TABLE t(x)"))
        .unwrap_err();
    let (code, _, msg) = sqlite_error(e);
    assert!(
        matches!(code, ErrorCode::CannotOpen | ErrorCode::ReadOnly),
        "{code:?} {msg}"
    );
    assert!(!sim.backing().join("fresh.db").exists());
}

/// Many writers on the holder and readers on replicas, all at once: the
/// cross-node locks keep every reader's snapshot consistent.
#[test]
fn concurrent_writers_and_cross_node_readers() {
    require_fuse!();
    const WRITERS: usize = 8;
    const ROWS: usize = 40;
    let sim = Arc::new(start(&["n1", "n2", "n3"]));
    {
        let c = open(&sim, "n1");
        c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
        c.execute_batch("CREATE TABLE t(w INTEGER, i INTEGER, pad BLOB)")
            .unwrap();
    }
    let t0 = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = ["n2", "n3"]
        .into_iter()
        .map(|node| {
            let (sim, done) = (sim.clone(), done.clone());
            thread::spawn(move || {
                let c = open(&sim, node);
                let mut last = 0;
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    // Both aggregates come from one snapshot, so they agree.
                    let (n, s): (i64, i64) = c
                        .query_row("SELECT count(*), coalesce(sum(length(pad)),0) FROM t", [], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .unwrap();
                    assert_eq!(s, n * 100, "torn snapshot on {node}");
                    assert!(n >= last, "count went backwards on {node}");
                    last = n;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let sim = sim.clone();
            thread::spawn(move || {
                let c = open(&sim, "n1");
                for i in 0..ROWS {
                    c.execute(
                        "INSERT INTO t VALUES (?1, ?2, zeroblob(100))",
                        [w as i64, i as i64],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let elapsed = t0.elapsed();
    let c = open(&sim, "n3");
    assert_eq!(count(&c), (WRITERS * ROWS) as i64);
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    // Readers never write; only a replica's last connection closing may try
    // a checkpoint into the database file, refused as on LiteFS.
    for e in sim.log().unwrap() {
        if e.result() == Some("refused") {
            assert_eq!((e.op(), e.file()), (Some("write"), Some("app.db")), "{}", e.raw);
        }
    }
    eprintln!(
        "{} commits by {WRITERS} writers, {reads} cross-node reads in {elapsed:?}",
        WRITERS * ROWS
    );
}

/// Not a test on its own: the body of the writer processes spawned by
/// `concurrent_writer_processes` (runs only with LITEFS_SIM_WRITER set).
#[test]
fn helper_writer_process() {
    let Ok(path) = std::env::var("LITEFS_SIM_WRITER") else {
        return;
    };
    let id: i64 = std::env::var("LITEFS_SIM_WRITER_ID").unwrap().parse().unwrap();
    let rows: i64 = std::env::var("LITEFS_SIM_WRITER_ROWS").unwrap().parse().unwrap();
    let c = Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(30)).unwrap();
    for i in 0..rows {
        c.execute("INSERT INTO t VALUES (?1, ?2, zeroblob(100))", [id, i])
            .unwrap();
    }
}

fn writer_processes(journal_mode: &str) {
    const PROCS: i64 = 6;
    const ROWS: i64 = 25;
    let sim = Arc::new(start(&["n1", "n2"]));
    {
        let c = open(&sim, "n1");
        c.query_row(&format!("PRAGMA journal_mode={journal_mode}"), [], |_| Ok(()))
            .unwrap();
        c.execute_batch("CREATE TABLE t(w INTEGER, i INTEGER, pad BLOB)")
            .unwrap();
    }
    let t0 = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (sim, done) = (sim.clone(), done.clone());
        thread::spawn(move || {
            let c = open(&sim, "n2");
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) {
                let (n, s): (i64, i64) = c
                    .query_row("SELECT count(*), coalesce(sum(length(pad)),0) FROM t", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .unwrap();
                assert_eq!(s, n * 100, "torn snapshot on n2");
                reads += 1;
            }
            reads
        })
    };
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCS)
        .map(|id| {
            std::process::Command::new(&exe)
                .args([
                    "helper_writer_process",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("LITEFS_SIM_WRITER", sim.path("n1", "app.db"))
                .env("LITEFS_SIM_WRITER_ID", id.to_string())
                .env("LITEFS_SIM_WRITER_ROWS", ROWS.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    done.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    let c = open(&sim, "n2");
    assert_eq!(count(&c), PROCS * ROWS);
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    eprintln!(
        "{journal_mode}: {} commits by {PROCS} processes, {reads} reads on n2 in {:?}",
        PROCS * ROWS,
        t0.elapsed()
    );
}

#[test]
fn concurrent_writer_processes_wal() {
    require_fuse!();
    writer_processes("WAL");
}

#[test]
fn concurrent_writer_processes_delete() {
    require_fuse!();
    writer_processes("DELETE");
}
