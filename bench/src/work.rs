//! The workloads. Each takes a connection and an operation count and returns
//! operations per second; guarded and stock run the very same code.

use crate::common::Lcg;
use rusqlite::Connection;
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

/// Rows in `kv`, the table point SELECTs read.
pub const ROWS: i64 = 10_000;

/// `kv` for reads (ROWS rows), `ins` for inserts.
pub fn schema(c: &Connection) {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS kv(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, s TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS ins(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, s TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS counter(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);",
    )
    .unwrap();
    let n: i64 = c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0)).unwrap();
    if n == 0 {
        c.execute_batch("BEGIN").unwrap();
        {
            let mut st = c.prepare("INSERT INTO kv(id, v, s) VALUES (?1, ?2, ?3)").unwrap();
            for i in 1..=ROWS {
                st.execute(rusqlite::params![i, i * 7, format!("row-{i:08}")])
                    .unwrap();
            }
        }
        c.execute_batch("COMMIT").unwrap();
    }
    c.execute_batch("DELETE FROM counter; INSERT INTO counter VALUES (1, 0);")
        .unwrap();
}

/// Point SELECT by primary key: prepared once, stepped `n` times.
pub fn point_select(c: &Connection, n: usize) {
    let mut st = c.prepare_cached("SELECT v FROM kv WHERE id = ?1").unwrap();
    let mut ids = Lcg(n as u64);
    let mut sum = 0i64;
    for _ in 0..n {
        sum += st.query_row([ids.next_in(ROWS)], |r| r.get::<_, i64>(0)).unwrap();
    }
    black_box(sum);
}

/// Prepare + finalize of a write statement (the authorizer runs at prepare).
pub fn prepare_write(c: &Connection, n: usize) {
    for _ in 0..n {
        let st = c.prepare("INSERT INTO ins(v, s) VALUES (?1, ?2)").unwrap();
        black_box(&st);
        drop(st);
    }
}

/// Single-row autocommit INSERT (statement prepared once).
pub fn autocommit_insert(c: &Connection, n: usize) {
    let mut st = c.prepare_cached("INSERT INTO ins(v, s) VALUES (?1, ?2)").unwrap();
    for i in 0..n {
        st.execute(rusqlite::params![i as i64, "payload-0123456789"])
            .unwrap();
    }
}

/// Plain `BEGIN`, 10 single-row INSERTs, `COMMIT`; returns transactions/s.
pub fn tx10(c: &Connection, n: usize) {
    let mut begin = c.prepare_cached("BEGIN").unwrap();
    let mut commit = c.prepare_cached("COMMIT").unwrap();
    let mut st = c.prepare_cached("INSERT INTO ins(v, s) VALUES (?1, ?2)").unwrap();
    for i in 0..n {
        begin.execute([]).unwrap();
        for j in 0..10 {
            st.execute(rusqlite::params![(i * 10 + j) as i64, "payload-0123456789"])
                .unwrap();
        }
        commit.execute([]).unwrap();
    }
}

/// How a contention run begins its transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    Plain,
    Immediate,
}

/// Busy-handler calls of the current contention run, all threads.
static BUSY_CALLS: AtomicU64 = AtomicU64::new(0);

/// SQLite's own default busy handler (sqliteDefaultBusyCallback, what
/// `busy_timeout(5 s)` installs: the same sleeps, the same 5 s limit), plus
/// a count of how often it ran.
fn counting_busy_handler(count: i32) -> bool {
    const DELAYS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
    const TOTALS: [u64; 12] = [0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228];
    const TIMEOUT_MS: u64 = 5000;
    BUSY_CALLS.fetch_add(1, Ordering::Relaxed);
    let count = count.max(0) as usize;
    let (mut delay, prior) = if count < 12 {
        (DELAYS[count], TOTALS[count])
    } else {
        (100, TOTALS[11] + 100 * (count as u64 - 11))
    };
    if prior + delay > TIMEOUT_MS {
        if prior >= TIMEOUT_MS {
            return false;
        }
        delay = TIMEOUT_MS - prior;
    }
    std::thread::sleep(std::time::Duration::from_millis(delay));
    true
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Contention {
    pub committed: usize,
    /// Busy-handler sleeps per committed transaction.
    pub busy_per_tx: f64,
    pub failed: usize,
    pub per_s: f64,
    /// The counter equals the committed transactions (no lost update).
    pub consistent: bool,
}

fn rmw(c: &Connection, begin: &str) -> rusqlite::Result<()> {
    c.prepare_cached(begin)?.execute([])?;
    let v: i64 = c
        .prepare_cached("SELECT v FROM counter WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    c.prepare_cached("UPDATE counter SET v = ?1 WHERE id = 1")?
        .execute([v + 1])?;
    c.prepare_cached("COMMIT")?.execute([])?;
    Ok(())
}

/// `threads` connections (opened by `open`, outside the clock) run
/// read-modify-write transactions for `secs` seconds; a failed one is rolled
/// back and counted, not retried. Throughput counts committed transactions.
pub fn contention(
    path: &Path,
    open: fn(&Path) -> Connection,
    begin: Begin,
    threads: usize,
    secs: f64,
) -> Contention {
    let setup = open(path);
    setup
        .execute_batch("UPDATE counter SET v = 0 WHERE id = 1")
        .unwrap();
    let conns: Vec<Connection> = (0..threads)
        .map(|_| {
            let c = open(path);
            c.busy_handler(Some(counting_busy_handler)).unwrap();
            c
        })
        .collect();
    BUSY_CALLS.store(0, Ordering::Relaxed);
    let sql = match begin {
        Begin::Plain => "BEGIN",
        Begin::Immediate => "BEGIN IMMEDIATE",
    };
    let start = Arc::new(Barrier::new(threads + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = conns
        .into_iter()
        .map(|c| {
            let (start, stop) = (start.clone(), stop.clone());
            std::thread::spawn(move || {
                start.wait();
                let (mut ok, mut failed) = (0usize, 0usize);
                while !stop.load(Ordering::Relaxed) {
                    if rmw(&c, sql).is_ok() {
                        ok += 1;
                    } else {
                        failed += 1;
                        let _ = c.execute_batch("ROLLBACK");
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let (mut committed, mut failed) = (0, 0);
    for h in handles {
        let (o, f) = h.join().unwrap();
        committed += o;
        failed += f;
    }
    // Transactions still running at the stop signal finish before the join.
    let secs = t.elapsed().as_secs_f64();
    let v: i64 = setup
        .query_row("SELECT v FROM counter WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    Contention {
        committed,
        busy_per_tx: BUSY_CALLS.load(Ordering::Relaxed) as f64 / committed.max(1) as f64,
        failed,
        per_s: committed as f64 / secs,
        consistent: v == committed as i64,
    }
}

/// `BEGIN`, one small INSERT into `fw`, `COMMIT`: the forwarding row's
/// transaction (table made by [`fw_schema`]), `n` times.
pub fn small_tx(c: &Connection, n: usize) {
    let mut begin = c.prepare_cached("BEGIN").unwrap();
    let mut commit = c.prepare_cached("COMMIT").unwrap();
    let mut st = c.prepare_cached("INSERT INTO fw(v, s) VALUES (?1, ?2)").unwrap();
    for i in 0..n {
        begin.execute([]).unwrap();
        st.execute(rusqlite::params![i as i64, "payload-0123456789"])
            .unwrap();
        commit.execute([]).unwrap();
    }
}

pub fn fw_schema(c: &Connection) {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS fw(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, s TEXT NOT NULL);",
    )
    .unwrap();
}
