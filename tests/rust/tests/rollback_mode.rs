//! IMMEDIATE escalation in rollback-journal (DELETE) mode. This process runs
//! with LITEFS_GUARD_WAL=0 so the guard leaves the journal mode alone.

mod common;
use common::*;

/// One contention run at a time: two at once on 2 cores starve SQLite's
/// polling busy handler past its timeout, stock and guarded alike.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

const THREADS: usize = 8;
const TXNS: usize = 300;

fn env_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Set before the extension loads (settings are read once per process).
    ONCE.call_once(|| std::env::set_var("LITEFS_GUARD_WAL", "0"));
    load_guard();
}

fn setup(m: &Mount) {
    let c = m.open("app.db");
    c.execute_batch(
        "PRAGMA journal_mode = DELETE; DROP TABLE IF EXISTS counter;
         CREATE TABLE counter(id INTEGER PRIMARY KEY, v INT); INSERT INTO counter VALUES (1, 0);",
    )
    .unwrap();
    assert_eq!(
        c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "delete"
    );
}

fn run(m: &Mount, stock: bool) -> (usize, i64) {
    run_rmw_threads(m, stock, THREADS, TXNS, "PRAGMA synchronous = OFF")
}

#[test]
fn threads_delete_mode_guard_has_no_errors_and_stock_fails() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    env_once();
    let m = Mount::new("cont-del");
    setup(&m);
    let (errors, v) = run(&m, false);
    println!("guarded (DELETE): {errors} errors, counter {v}");
    assert_eq!((errors, v), (0, (THREADS * TXNS) as i64));
    setup(&m);
    let (errors, v) = run(&m, true);
    println!(
        "stock (DELETE): {errors} errors of {}, counter {v}",
        THREADS * TXNS
    );
    assert!(
        errors > 0,
        "stock SQLite with plain BEGIN should fail under contention"
    );
}

#[test]
fn processes_delete_mode_guard_has_no_errors() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    env_once();
    let m = Mount::new("cont-del-procs");
    setup(&m);
    let worker = env!("CARGO_BIN_EXE_guard-worker");
    let spawn = |mode: &str| {
        let _ = std::fs::remove_file(m.dir.join("go"));
        let children: Vec<_> = (0..4)
            .map(|_| {
                std::process::Command::new(worker)
                    .args([m.db("app.db").to_str().unwrap(), &TXNS.to_string(), mode])
                    .env("LITEFS_GUARD_SO", so_path())
                    .env("LITEFS_GUARD_WAL", "0")
                    .env("GUARD_WORKER_GO", m.dir.join("go"))
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Start all workers at once, so they really contend.
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(m.dir.join("go"), b"").unwrap();
        children
            .into_iter()
            .map(|c| String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap())
            .collect::<Vec<_>>()
    };
    let outs = spawn("guard");
    assert!(
        outs.iter().all(|o| o.trim() == format!("ok={TXNS} err=0")),
        "{outs:?}"
    );
    let v: i64 = m
        .open("app.db")
        .query_row("SELECT v FROM counter", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 4 * TXNS as i64);
    setup(&m);
    let outs = spawn("stock");
    println!("stock processes (DELETE): {outs:?}");
    assert!(
        outs.iter().any(|o| !o.contains("err=0")),
        "stock should fail: {outs:?}"
    );
}

#[test]
fn delete_mode_gate_refuses_prepared_statement_after_failover() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    env_once();
    let m = Mount::new("del-gate");
    setup(&m);
    let c = m.open("app.db");
    let mut upd = c.prepare("UPDATE counter SET v = v + 1").unwrap();
    upd.execute([]).unwrap();
    m.make_replica("node-b");
    let e = upd.execute([]).unwrap_err();
    assert_eq!(code(&e), Some(rusqlite::ErrorCode::ReadOnly), "{e}");
    drop(upd);
    assert_eq!(
        c.query_row("SELECT v FROM counter", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        1
    );
    assert!(!m.db("app.db-journal").exists());
}

#[test]
fn delete_mode_hot_journal_is_rolled_back_not_escalated_over() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    env_once();
    let m = Mount::new("del-hot");
    setup(&m);
    // A hot journal: copy one from a crashed writer (kill a child mid-transaction).
    let c = m.open("app.db");
    // synchronous=OFF writes nRec = -1, so a copy taken mid-transaction is a valid journal.
    c.execute_batch("PRAGMA synchronous = OFF; BEGIN; UPDATE counter SET v = 41")
        .unwrap();
    // While RESERVED is held, a snapshot of db + journal is a crash image.
    std::fs::copy(m.db("app.db-journal"), m.dir.join("saved-journal")).unwrap();
    c.execute_batch("COMMIT").unwrap();
    drop(c);
    // Restore the pre-commit state from the journal image: journal back in place.
    std::fs::copy(m.dir.join("saved-journal"), m.db("app.db-journal")).unwrap();
    let c = m.open("app.db");
    c.execute_batch("BEGIN").unwrap();
    let v: i64 = c.query_row("SELECT v FROM counter", [], |r| r.get(0)).unwrap();
    c.execute_batch("COMMIT").unwrap();
    assert_eq!(v, 0, "the hot journal was rolled back");
    assert!(!m.db("app.db-journal").exists());
}
