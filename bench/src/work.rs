//! The workloads. Each takes a connection and an operation count and returns
//! operations per second; guarded and stock run the very same code.

use crate::common::Lcg;
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

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

/// How a contention writer begins its transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    Plain,
    Immediate,
}

/// The statements of a contention transaction, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stmt {
    Begin,
    Select,
    Update,
    Commit,
}

/// What one contention writer does: `begin`; `SELECT v`; `UPDATE … SET
/// v = ?+1`; `hold` (a spin, with the write lock held); `COMMIT`; then
/// `pause` (a sleep) before the next transaction. `lock_at` is the statement
/// in which the write lock is taken, for the wait figure (see [`writer`]).
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub begin: Begin,
    pub lock_at: Stmt,
    pub hold: Duration,
    pub pause: Duration,
}

/// What one writer (or, merged, all writers of one run) did.
#[derive(Debug, Clone, Default)]
pub struct WriterLog {
    /// Committed transactions, including those that began before the stop
    /// time and committed after it.
    pub committed: usize,
    /// Committed by the stop time: the throughput figure.
    pub in_window: usize,
    pub failed: usize,
    /// Per committed transaction: BEGIN issued → COMMIT returned, µs.
    pub lat_us: Vec<u64>,
    /// Per committed transaction: BEGIN issued → the statement that took the
    /// write lock returned, µs.
    pub wait_us: Vec<u64>,
    /// The longest failed attempt, µs.
    pub max_failed_us: u64,
    /// "STATEMENT: message (extended code)" → count.
    pub errors: BTreeMap<String, usize>,
}

impl WriterLog {
    pub fn merge(&mut self, o: WriterLog) {
        self.committed += o.committed;
        self.in_window += o.in_window;
        self.failed += o.failed;
        self.lat_us.extend(o.lat_us);
        self.wait_us.extend(o.wait_us);
        self.max_failed_us = self.max_failed_us.max(o.max_failed_us);
        for (k, n) in o.errors {
            *self.errors.entry(k).or_default() += n;
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "committed": self.committed,
            "in_window": self.in_window,
            "failed": self.failed,
            "lat_us": self.lat_us,
            "wait_us": self.wait_us,
            "max_failed_us": self.max_failed_us,
            "errors": self.errors,
        })
    }

    pub fn from_json(v: &serde_json::Value) -> Option<WriterLog> {
        let n = |k: &str| v[k].as_u64().map(|x| x as usize);
        let list = |k: &str| -> Option<Vec<u64>> { v[k].as_array()?.iter().map(|x| x.as_u64()).collect() };
        Some(WriterLog {
            committed: n("committed")?,
            in_window: n("in_window")?,
            failed: n("failed")?,
            lat_us: list("lat_us")?,
            wait_us: list("wait_us")?,
            max_failed_us: v["max_failed_us"].as_u64()?,
            errors: v["errors"]
                .as_object()?
                .iter()
                .map(|(k, n)| Some((k.clone(), n.as_u64()? as usize)))
                .collect::<Option<_>>()?,
        })
    }
}

/// CLOCK_MONOTONIC in ns: one clock for every process of the machine, so a
/// start and stop time can be handed to child processes.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sleep_until(ns: u64) {
    let now = mono_ns();
    if ns > now {
        std::thread::sleep(Duration::from_nanos(ns - now));
    }
}

/// Busy-waits `d` (wall clock): the transaction's work, done on a CPU like a
/// request handler's, exactly as long whatever the timer slack.
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// One read-modify-write transaction; `Err` names the failing statement.
/// Returns the time at which the `lock_at` statement returned.
fn rmw(c: &Connection, plan: &Plan) -> Result<u64, (Stmt, rusqlite::Error)> {
    let begin = match plan.begin {
        Begin::Plain => "BEGIN",
        Begin::Immediate => "BEGIN IMMEDIATE",
    };
    let at = |s: Stmt, r: rusqlite::Result<()>| r.map(|()| mono_ns()).map_err(|e| (s, e));
    let t_begin = at(
        Stmt::Begin,
        c.prepare_cached(begin).and_then(|mut s| s.execute([]).map(drop)),
    )?;
    let mut v = 0i64;
    let t_select = at(
        Stmt::Select,
        c.prepare_cached("SELECT v FROM counter WHERE id = 1")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map(|x| v = x),
    )?;
    let t_update = at(
        Stmt::Update,
        c.prepare_cached("UPDATE counter SET v = ?1 WHERE id = 1")
            .and_then(|mut s| s.execute([v + 1]).map(drop)),
    )?;
    spin(plan.hold);
    at(
        Stmt::Commit,
        c.prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]).map(drop)),
    )?;
    Ok(match plan.lock_at {
        Stmt::Begin => t_begin,
        Stmt::Select => t_select,
        Stmt::Update | Stmt::Commit => t_update,
    })
}

/// One writer on connection `c`: from `start_ns` until `stop_ns`
/// ([`mono_ns`]) it runs `plan`'s transaction, then pauses. A failed
/// transaction (any error) is rolled back and counted, not retried. The same
/// code runs in a thread and in a child process (`contention-child`).
pub fn writer(c: &Connection, plan: &Plan, start_ns: u64, stop_ns: u64) -> WriterLog {
    let mut log = WriterLog::default();
    sleep_until(start_ns);
    while mono_ns() < stop_ns {
        let t0 = mono_ns();
        match rmw(c, plan) {
            Ok(locked) => {
                let end = mono_ns();
                log.committed += 1;
                log.in_window += usize::from(end <= stop_ns);
                log.lat_us.push((end - t0) / 1000);
                log.wait_us.push((locked - t0) / 1000);
            }
            Err((stmt, e)) => {
                let _ = c.execute_batch("ROLLBACK");
                log.failed += 1;
                log.max_failed_us = log.max_failed_us.max((mono_ns() - t0) / 1000);
                let code = e.sqlite_error().map_or(0, |f| f.extended_code);
                *log.errors.entry(format!("{stmt:?}: {e} ({code})")).or_default() += 1;
            }
        }
        std::thread::sleep(plan.pause);
    }
    log
}

/// `conns.len()` writers, one thread each, from `start_ns` to `stop_ns`.
pub fn writer_threads(conns: Vec<Connection>, plan: &Plan, start_ns: u64, stop_ns: u64) -> Vec<WriterLog> {
    std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .into_iter()
            .map(|c| s.spawn(move || writer(&c, plan, start_ns, stop_ns)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The counter's value (to check against the committed transactions).
pub fn counter(c: &Connection) -> i64 {
    c.query_row("SELECT v FROM counter WHERE id = 1", [], |r| r.get(0))
        .unwrap()
}

/// Before a contention run: counter at 0, WAL checkpointed and truncated,
/// so every run starts from the same state.
pub fn reset_counter(c: &Connection) {
    c.execute_batch("UPDATE counter SET v = 0 WHERE id = 1").unwrap();
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
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
