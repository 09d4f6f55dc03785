//! The contention table (issue #14): N writers on one counter row, plain
//! `BEGIN` under the guard against stock `BEGIN IMMEDIATE` and stock plain
//! `BEGIN`, for 2, 8 and 32 writers, as threads of one process and as
//! processes, request-like (a pause between transactions) and back to back,
//! on local disk and on litefs-sim.
//!
//! Every writer runs [`work::writer`]: the same code in a thread and in a
//! child process (`contention-child`, one connection each, started at a
//! CLOCK_MONOTONIC time the parent hands out once all children are ready).
//! Every connection waits through SQLite's own default busy handler
//! (`busy_timeout`, 5 s), whose sleeps go through the connection's VFS.
//! The three sides of a cell run in turn, A B C, once per repetition.
//!
//! The local cells run in the bench's own process (guard mount
//! `…/guarded`, stock databases in `…/stock`); the litefs-sim cells in a child
//! process (`contention-sim-child`) whose guard mount is the sim's node n1
//! (holding the lease) and whose stock databases are on a second sim, as in
//! the FUSE rows. Guarded child writers load the extension with the same
//! mount; stock child writers never load it.

use crate::common::{
    load_guard, mount, open_guarded, open_stock, open_unloaded, percentile, set_guard_env, Dirs,
};
use crate::fuse::{run_child, sim_bin};
use crate::work::{self, Begin, Plan, Stmt, WriterLog};
use litefs_sim::harness::{fuse_available, Sim, SimOptions};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The names a dimension of the table takes on the command line and in ids.
pub trait Named: Copy + PartialEq + 'static {
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
}

fn parse_list<T: Named>(flag: &str, s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|w| {
            T::ALL.iter().copied().find(|x| x.name() == w).ok_or_else(|| {
                let names: Vec<_> = T::ALL.iter().map(|x| x.name()).collect();
                format!("{flag}: {w:?} is not one of {}", names.join(", "))
            })
        })
        .collect()
}

fn names<T: Named>(v: &[T]) -> String {
    v.iter().map(|x| x.name()).collect::<Vec<_>>().join(",")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Threads,
    Processes,
}

impl Named for Mode {
    const ALL: &'static [Mode] = &[Mode::Threads, Mode::Processes];
    fn name(self) -> &'static str {
        match self {
            Mode::Threads => "threads",
            Mode::Processes => "processes",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// A pause between each writer's transactions.
    Request,
    BackToBack,
}

impl Named for Load {
    const ALL: &'static [Load] = &[Load::Request, Load::BackToBack];
    fn name(self) -> &'static str {
        match self {
            Load::Request => "request",
            Load::BackToBack => "back-to-back",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Local,
    Sim,
}

impl Named for Place {
    const ALL: &'static [Place] = &[Place::Local, Place::Sim];
    fn name(self) -> &'static str {
        match self {
            Place::Local => "local",
            Place::Sim => "sim",
        }
    }
}

/// Who writes: how the connection is opened and how it begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Plain `BEGIN` on a guarded database.
    Guard,
    StockImmediate,
    StockPlain,
}

impl Named for Side {
    const ALL: &'static [Side] = &[Side::Guard, Side::StockImmediate, Side::StockPlain];
    fn name(self) -> &'static str {
        match self {
            Side::Guard => "guard",
            Side::StockImmediate => "stock-immediate",
            Side::StockPlain => "stock-plain",
        }
    }
}

impl Side {
    /// The transaction, and where its write lock is taken (the wait figure):
    /// stock `BEGIN IMMEDIATE` in BEGIN; stock plain `BEGIN` in the UPDATE;
    /// plain `BEGIN` under the guard in the first statement that reads the
    /// database, the SELECT (a deferred BEGIN does no I/O; the guard takes
    /// the WAL write lock when the read transaction starts). The wait is
    /// timed from the BEGIN, so it includes every statement up to that one.
    pub fn plan(self, hold: Duration, pause: Duration) -> Plan {
        let (begin, lock_at) = match self {
            Side::Guard => (Begin::Plain, Stmt::Select),
            Side::StockImmediate => (Begin::Immediate, Stmt::Begin),
            Side::StockPlain => (Begin::Plain, Stmt::Update),
        };
        Plan {
            begin,
            lock_at,
            hold,
            pause,
        }
    }

    /// A connection of this process (the guard loaded, its mount set).
    fn open(self, path: &Path) -> Connection {
        match self {
            Side::Guard => open_guarded(path),
            _ => open_stock(path),
        }
    }
}

/// One side's database.
pub struct Target {
    pub side: Side,
    pub path: PathBuf,
}

/// One repetition of one side: all its writers' logs merged.
pub struct Run {
    pub log: WriterLog,
    pub secs: f64,
    pub counter: i64,
}

impl Run {
    pub fn tx_per_s(&self) -> f64 {
        self.log.in_window as f64 / self.secs
    }
    /// The counter equals the committed transactions (no lost update).
    pub fn counter_exact(&self) -> bool {
        self.counter == self.log.committed as i64
    }
}

impl Target {
    pub fn new(side: Side, path: PathBuf) -> Target {
        Target { side, path }
    }

    /// Creates the database (schema, counter row).
    pub fn create(&self) {
        work::schema(&self.side.open(&self.path));
    }

    /// `writers` writers for `secs` seconds, as threads of this process or
    /// as child processes; the counter reset before, checked after.
    pub fn run(&self, mode: Mode, writers: usize, plan: &Plan, secs: f64) -> Run {
        let setup = self.side.open(&self.path);
        work::reset_counter(&setup);
        let logs = match mode {
            Mode::Threads => {
                let conns = (0..writers).map(|_| self.side.open(&self.path)).collect();
                let (start, stop) = window(secs);
                work::writer_threads(conns, plan, start, stop)
            }
            Mode::Processes => self.processes(writers, plan, secs),
        };
        let mut log = WriterLog::default();
        for l in logs {
            log.merge(l);
        }
        Run {
            log,
            secs,
            counter: work::counter(&setup),
        }
    }

    /// `writers` child processes (`contention-child`), one connection each.
    /// Each says "ready" once its connection is open; then all get the same
    /// start and stop time on stdin, and print their [`WriterLog`] as JSON.
    fn processes(&self, writers: usize, plan: &Plan, secs: f64) -> Vec<WriterLog> {
        let exe = std::env::current_exe().unwrap();
        let guard_mount = match self.side {
            Side::Guard => mount().expect("the guard's mount is set").display().to_string(),
            _ => "-".to_string(),
        };
        let mut kids: Vec<_> = (0..writers)
            .map(|_| {
                Command::new(&exe)
                    .arg("contention-child")
                    .arg(self.side.name())
                    .arg(&self.path)
                    .arg(&guard_mount)
                    .arg(plan.hold.as_micros().to_string())
                    .arg(plan.pause.as_micros().to_string())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("starting a contention-child")
            })
            .collect();
        let mut outs: Vec<_> = kids
            .iter_mut()
            .map(|k| BufReader::new(k.stdout.take().unwrap()))
            .collect();
        for o in &mut outs {
            let mut line = String::new();
            o.read_line(&mut line).unwrap();
            assert_eq!(line.trim(), "ready", "a contention-child did not start");
        }
        let (start, stop) = window(secs);
        for k in &mut kids {
            let mut stdin = k.stdin.take().unwrap();
            writeln!(stdin, "{start} {stop}").unwrap();
        }
        kids.iter_mut()
            .zip(outs)
            .map(|(k, mut o)| {
                let mut s = String::new();
                o.read_to_string(&mut s).unwrap();
                let status = k.wait().unwrap();
                assert!(status.success(), "a contention-child exited with {status}");
                let v: Value = serde_json::from_str(&s).expect("a contention-child's output");
                WriterLog::from_json(&v).expect("a contention-child's log")
            })
            .collect()
    }
}

/// Start and stop times of a run: the start a little ahead, so every
/// writer (thread or process) is waiting for it.
fn window(secs: f64) -> (u64, u64) {
    let start = work::mono_ns() + 50_000_000;
    (start, start + (secs * 1e9) as u64)
}

/// `contention-child SIDE DB MOUNT|- HOLD_US PAUSE_US`: one writer.
pub fn child(args: &[String]) {
    let usage = || -> ! {
        eprintln!("usage: litefs-guard-bench contention-child guard|stock-immediate|stock-plain DB MOUNT|- HOLD_US PAUSE_US");
        std::process::exit(2)
    };
    let [side, db, mnt, hold, pause] = args else {
        usage()
    };
    let Ok(side) = parse_list::<Side>("side", side).map(|v| v[0]) else {
        usage()
    };
    let (Ok(hold), Ok(pause)) = (hold.parse::<u64>(), pause.parse::<u64>()) else {
        usage()
    };
    let db = Path::new(db);
    let c = match side {
        Side::Guard => {
            set_guard_env(Path::new(mnt));
            load_guard();
            open_guarded(db)
        }
        _ => open_unloaded(db),
    };
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let t: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    let [start, stop] = t[..] else { usage() };
    let plan = side.plan(Duration::from_micros(hold), Duration::from_micros(pause));
    let log = work::writer(&c, &plan, start, stop);
    println!("{}", log.json());
}

/// What to run: the table's options.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Seconds per side per cell per repetition.
    pub secs: f64,
    pub reps: usize,
    pub writers: Vec<usize>,
    pub modes: Vec<Mode>,
    pub loads: Vec<Load>,
    pub places: Vec<Place>,
    /// Inside each transaction, with the write lock held (a spin).
    pub hold: Duration,
    /// Between a writer's transactions under request-like load (a sleep).
    pub pause: Duration,
    /// Calibration: the guard's side is a second stock `BEGIN IMMEDIATE`.
    pub aa: bool,
}

pub const DEFAULT_REPS: usize = 2;

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            secs: 0.75,
            reps: DEFAULT_REPS,
            writers: vec![2, 8, 32],
            modes: Mode::ALL.to_vec(),
            loads: Load::ALL.to_vec(),
            places: Place::ALL.to_vec(),
            hold: Duration::from_micros(600),
            pause: Duration::from_millis(4),
            aa: false,
        }
    }
}

impl Opts {
    /// Takes `flag` (with its value from `val`) if it is one of the table's;
    /// `Ok(false)` if it is not.
    pub fn parse_arg(
        &mut self,
        flag: &str,
        val: &mut dyn FnMut() -> Result<String, String>,
    ) -> Result<bool, String> {
        let num = |s: String| s.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        let ms = |s: String| num(s).map(|x| Duration::from_secs_f64(x / 1e3));
        match flag {
            "--secs" => self.secs = num(val()?)?,
            "--writers" => {
                self.writers = val()?
                    .split(',')
                    .map(|w| w.parse().map_err(|e| format!("--writers: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--mode" => self.modes = parse_list(flag, &val()?)?,
            "--load" => self.loads = parse_list(flag, &val()?)?,
            "--place" => self.places = parse_list(flag, &val()?)?,
            "--hold-ms" => self.hold = ms(val()?)?,
            "--pause-ms" => self.pause = ms(val()?)?,
            _ => return Ok(false),
        }
        if self.secs.is_nan() || self.secs <= 0.0 || self.writers.contains(&0) {
            return Err(format!("{flag}: must be positive"));
        }
        Ok(true)
    }

    /// The same options as arguments, for the sim child.
    fn args(&self) -> Vec<String> {
        let ws: Vec<_> = self.writers.iter().map(usize::to_string).collect();
        let mut a: Vec<String> = [
            "--secs",
            &self.secs.to_string(),
            "--reps",
            &self.reps.to_string(),
            "--writers",
            &ws.join(","),
            "--mode",
            &names(&self.modes),
            "--load",
            &names(&self.loads),
            "--place",
            &names(&self.places),
            "--hold-ms",
            &(self.hold.as_secs_f64() * 1e3).to_string(),
            "--pause-ms",
            &(self.pause.as_secs_f64() * 1e3).to_string(),
        ]
        .map(str::to_string)
        .to_vec();
        a.extend(self.aa.then(|| "--aa".to_string()));
        a
    }

    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut o = Opts::default();
        let mut it = args.iter().cloned();
        while let Some(a) = it.next() {
            let mut val = || it.next().ok_or(format!("{a} needs a value"));
            match a.as_str() {
                "--reps" => o.reps = val()?.parse().map_err(|e| format!("--reps: {e}"))?,
                "--aa" => o.aa = true,
                _ if o.parse_arg(&a, &mut val)? => {}
                _ => return Err(format!("unknown argument {a:?}")),
            }
        }
        Ok(o)
    }

    fn cells(&self, place: Place) -> Vec<Cell> {
        let mut v = Vec::new();
        for &load in &self.loads {
            for &mode in &self.modes {
                for &writers in &self.writers {
                    v.push(Cell {
                        writers,
                        mode,
                        load,
                        place,
                    });
                }
            }
        }
        v
    }

    fn plan(&self, side: Side, load: Load) -> Plan {
        let pause = match load {
            Load::Request => self.pause,
            Load::BackToBack => Duration::ZERO,
        };
        side.plan(self.hold, pause)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub writers: usize,
    pub mode: Mode,
    pub load: Load,
    pub place: Place,
}

impl Cell {
    pub fn id(&self) -> String {
        format!(
            "{}-{}-{}-{}",
            self.writers,
            self.mode.name(),
            self.load.name(),
            self.place.name()
        )
    }

    fn json(&self) -> Value {
        json!({
            "writers": self.writers,
            "mode": self.mode.name(),
            "load": self.load.name(),
            "place": self.place.name(),
        })
    }

    fn from_json(v: &Value) -> Option<Cell> {
        let one = |k: &str| v[k].as_str().map(str::to_string);
        Some(Cell {
            writers: v["writers"].as_u64()? as usize,
            mode: parse_list::<Mode>("mode", &one("mode")?).ok()?[0],
            load: parse_list::<Load>("load", &one("load")?).ok()?[0],
            place: parse_list::<Place>("place", &one("place")?).ok()?[0],
        })
    }
}

/// One side of one cell over its repetitions: latencies pooled over all
/// repetitions and writers (committed transactions), throughput from the
/// transactions committed within the runs' windows.
#[derive(Debug, Clone)]
pub struct Stats {
    pub side: Side,
    pub tx_per_s: f64,
    pub committed: usize,
    pub failed: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub max_wait_ms: f64,
    pub counter_exact: bool,
    pub detail: Value,
}

impl Stats {
    fn of(side: Side, runs: &[Run]) -> Stats {
        let ms = |v: Vec<u64>| v.into_iter().map(|x| x as f64 / 1e3).collect::<Vec<f64>>();
        let lat = ms(runs.iter().flat_map(|r| r.log.lat_us.iter().copied()).collect());
        let wait = ms(runs.iter().flat_map(|r| r.log.wait_us.iter().copied()).collect());
        let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
        let window: f64 = runs.iter().map(|r| r.secs).sum();
        let mut errors = BTreeMap::<String, usize>::new();
        for r in runs {
            for (k, n) in &r.log.errors {
                *errors.entry(k.clone()).or_default() += n;
            }
        }
        let per_rep = |f: &dyn Fn(&Run) -> Value| runs.iter().map(f).collect::<Vec<_>>();
        Stats {
            side,
            tx_per_s: runs.iter().map(|r| r.log.in_window).sum::<usize>() as f64 / window,
            committed: runs.iter().map(|r| r.log.committed).sum(),
            failed: runs.iter().map(|r| r.log.failed).sum(),
            p50_ms: percentile(&lat, 0.5),
            p99_ms: percentile(&lat, 0.99),
            max_ms: max(&lat),
            max_wait_ms: max(&wait),
            counter_exact: runs.iter().all(Run::counter_exact),
            detail: json!({
                "p99_wait_ms": percentile(&wait, 0.99),
                "max_failed_ms": runs.iter().map(|r| r.log.max_failed_us).max().unwrap_or(0) as f64 / 1e3,
                "errors": errors,
                "per_rep_tx_per_s": per_rep(&|r| json!(r.tx_per_s())),
                "per_rep_committed": per_rep(&|r| json!(r.log.committed)),
                "per_rep_failed": per_rep(&|r| json!(r.log.failed)),
                "per_rep_counter": per_rep(&|r| json!(r.counter)),
                "per_rep_p99_ms": per_rep(&|r| json!(percentile(&ms(r.log.lat_us.clone()), 0.99))),
                "per_rep_max_ms": per_rep(&|r| json!(r.log.lat_us.iter().max().map(|x| *x as f64 / 1e3))),
            }),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "side": self.side.name(),
            "tx_per_s": self.tx_per_s,
            "committed": self.committed,
            "failed": self.failed,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "max_wait_ms": self.max_wait_ms,
            "counter_exact": self.counter_exact,
            "detail": self.detail,
        })
    }

    fn from_json(v: &Value) -> Option<Stats> {
        // NaN (no committed transaction) travels as null.
        let f = |k: &str| Some(v[k].as_f64().unwrap_or(f64::NAN));
        let n = |k: &str| v[k].as_u64().map(|x| x as usize);
        Some(Stats {
            side: parse_list::<Side>("side", v["side"].as_str()?).ok()?[0],
            tx_per_s: f("tx_per_s")?,
            committed: n("committed")?,
            failed: n("failed")?,
            p50_ms: f("p50_ms")?,
            p99_ms: f("p99_ms")?,
            max_ms: f("max_ms")?,
            max_wait_ms: f("max_wait_ms")?,
            counter_exact: v["counter_exact"].as_bool()?,
            detail: v["detail"].clone(),
        })
    }
}

/// A cell's outcome: the three sides (first: the guard, or under `--aa` a
/// second stock `BEGIN IMMEDIATE`), or why it did not run.
pub struct CellResult {
    pub cell: Cell,
    pub sides: Result<[Stats; 3], String>,
}

/// The guard against stock `BEGIN IMMEDIATE` in one cell, and the targets.
pub struct Verdict {
    /// guard / stock IMMEDIATE.
    pub p99: f64,
    pub max: f64,
    pub tx_per_s: f64,
    /// The targets missed, in words; empty: met.
    pub missed: Vec<String>,
}

impl CellResult {
    fn json(&self) -> Value {
        let mut v = json!({ "id": self.cell.id(), "cell": self.cell.json() });
        match &self.sides {
            Ok(s) => {
                v["sides"] = json!(s.iter().map(Stats::json).collect::<Vec<_>>());
                let verdict = self.verdict().unwrap();
                v["ratio_p99"] = json!(verdict.p99);
                v["ratio_max"] = json!(verdict.max);
                v["ratio_tx_per_s"] = json!(verdict.tx_per_s);
                v["met"] = json!(verdict.missed.is_empty());
                v["missed"] = json!(verdict.missed);
            }
            Err(why) => v["not_run"] = json!(why),
        }
        v
    }

    fn from_json(v: &Value) -> Option<CellResult> {
        let cell = Cell::from_json(&v["cell"])?;
        let sides = match v["not_run"].as_str() {
            Some(why) => Err(why.to_string()),
            None => {
                let s: Vec<Stats> = v["sides"]
                    .as_array()?
                    .iter()
                    .map(Stats::from_json)
                    .collect::<Option<_>>()?;
                Ok(s.try_into().ok()?)
            }
        };
        Some(CellResult { cell, sides })
    }

    /// The targets: no failure where stock IMMEDIATE has none and
    /// the counter exact, always; with 8 or more writers also, request-like:
    /// p99 and max ≤ 0.2× stock IMMEDIATE's, throughput ≥ 1.0×; back to
    /// back: max ≤ 0.2×, throughput ≥ 0.9×.
    pub fn verdict(&self) -> Option<Verdict> {
        let [g, s, _] = self.sides.as_ref().ok()?;
        let v = Verdict {
            p99: g.p99_ms / s.p99_ms,
            max: g.max_ms / s.max_ms,
            tx_per_s: g.tx_per_s / s.tx_per_s,
            missed: Vec::new(),
        };
        let mut missed = Vec::new();
        if s.failed == 0 && g.failed > 0 {
            missed.push(format!("{} failed", g.failed));
        }
        if !g.counter_exact {
            missed.push("counter ≠ committed".to_string());
        }
        if self.cell.writers >= 8 {
            let (p99, tps) = match self.cell.load {
                Load::Request => (Some(0.2), 1.0),
                Load::BackToBack => (None, 0.9),
            };
            if let Some(t) = p99.filter(|t| !at_most(v.p99, *t)) {
                missed.push(format!("p99 {:.2}× > {t}×", v.p99));
            }
            if !at_most(v.max, 0.2) {
                missed.push(format!("max {:.2}× > 0.2×", v.max));
            }
            if !at_most(tps, v.tx_per_s) {
                missed.push(format!("tx/s {:.2}× < {tps}×", v.tx_per_s));
            }
        }
        Some(Verdict { missed, ..v })
    }
}

/// `x ≤ limit`; false for NaN (a side that committed nothing misses).
fn at_most(x: f64, limit: f64) -> bool {
    x <= limit
}

/// The whole table.
pub struct Table {
    pub opts: Opts,
    pub cells: Vec<CellResult>,
    pub secs: f64,
}

impl Table {
    pub fn json(&self) -> Value {
        json!({
            "seconds_per_run": self.opts.secs,
            "reps": self.opts.reps,
            "hold_ms": self.opts.hold.as_secs_f64() * 1e3,
            "hold": "spin (busy-wait on the wall clock) with the write lock held, before COMMIT",
            "pause_ms_request_like": self.opts.pause.as_secs_f64() * 1e3,
            "busy_timeout_ms": 5000,
            "aa": self.opts.aa,
            "runtime_s": self.secs,
            "cells": self.cells.iter().map(CellResult::json).collect::<Vec<_>>(),
        })
    }
}

/// The table: local cells in this process (the guard's mount `dirs.guarded`),
/// the litefs-sim cells in a child process, or "not run" (`sim` is the
/// reason, or `None` to try).
pub fn run(o: &Opts, dirs: &Dirs, sim: Option<String>) -> Table {
    let started = Instant::now();
    let mut cells = Vec::new();
    if o.places.contains(&Place::Local) {
        let first = if o.aa {
            Target::new(Side::StockImmediate, dirs.stock.join("ct-aa.db"))
        } else {
            Target::new(Side::Guard, dirs.guarded.join("ct-guard.db"))
        };
        cells.extend(run_cells(
            o,
            Place::Local,
            [
                first,
                Target::new(Side::StockImmediate, dirs.stock.join("ct-immediate.db")),
                Target::new(Side::StockPlain, dirs.stock.join("ct-plain.db")),
            ],
        ));
    }
    if o.places.contains(&Place::Sim) {
        let sim = match sim {
            Some(why) => Err(why),
            None => run_child("contention-sim-child", &o.args(), "contention table").and_then(|v| {
                v["cells"]
                    .as_array()
                    .and_then(|c| c.iter().map(CellResult::from_json).collect::<Option<Vec<_>>>())
                    .ok_or_else(|| "the contention-sim-child's output is incomplete".to_string())
            }),
        };
        match sim {
            Ok(c) => cells.extend(c),
            Err(why) => {
                eprintln!("\n!!! CONTENTION TABLE ON LITEFS-SIM NOT RUN: {why}\n");
                cells.extend(o.cells(Place::Sim).into_iter().map(|cell| CellResult {
                    cell,
                    sides: Err(why.clone()),
                }));
            }
        }
    }
    Table {
        opts: o.clone(),
        cells,
        secs: started.elapsed().as_secs_f64(),
    }
}

/// Every cell of `place`, each side's repetitions interleaved A B C.
fn run_cells(o: &Opts, place: Place, targets: [Target; 3]) -> Vec<CellResult> {
    for t in &targets {
        t.create();
    }
    o.cells(place)
        .into_iter()
        .map(|cell| {
            let mut runs: [Vec<Run>; 3] = Default::default();
            for _ in 0..o.reps {
                for (t, r) in targets.iter().zip(&mut runs) {
                    r.push(t.run(cell.mode, cell.writers, &o.plan(t.side, cell.load), o.secs));
                }
            }
            let sides = [0, 1, 2].map(|i| Stats::of(targets[i].side, &runs[i]));
            let res = CellResult {
                cell,
                sides: Ok(sides),
            };
            progress(&res);
            res
        })
        .collect()
}

fn progress(r: &CellResult) {
    let (Ok(s), Some(v)) = (&r.sides, r.verdict()) else {
        return;
    };
    eprintln!(
        "bench: contention {}: tx/s {:.0} / {:.0} / {:.0}, p99 {:.1} / {:.1} ms, max {:.1} / {:.1} ms, \
         failed {} / {} / {} → {}",
        r.cell.id(),
        s[0].tx_per_s,
        s[1].tx_per_s,
        s[2].tx_per_s,
        s[0].p99_ms,
        s[1].p99_ms,
        s[0].max_ms,
        s[1].max_ms,
        s[0].failed,
        s[1].failed,
        s[2].failed,
        if v.missed.is_empty() {
            "PASS".to_string()
        } else {
            format!("FAIL ({})", v.missed.join(", "))
        }
    );
}

/// `contention-sim-child OPTS…`: the litefs-sim cells; prints
/// `{"cells": […]}` or `{"error": …}`.
pub fn sim_child(args: &[String]) {
    let v = match Opts::parse(args).and_then(|o| measure_sim(&o)) {
        Ok(cells) => json!({ "cells": cells.iter().map(CellResult::json).collect::<Vec<_>>() }),
        Err(why) => json!({ "error": why }),
    };
    println!("{v}");
}

fn measure_sim(o: &Opts) -> Result<Vec<CellResult>, String> {
    fuse_available()?;
    let start = |node: &str| {
        Sim::start_with(SimOptions::new(&[node]).lease(Some(node)).bin(sim_bin()))
            .map_err(|e| format!("litefs-sim did not start: {e}"))
    };
    let guarded = start("n1")?;
    let stock = start("s1")?;
    // Under --aa the guard's mount is elsewhere and n1 holds a stock database.
    let elsewhere = o.aa.then(|| Dirs::new("contention-aa"));
    set_guard_env(match &elsewhere {
        Some(d) => &d.guarded,
        None => guarded.mount("n1"),
    });
    load_guard();
    let first = if o.aa { Side::StockImmediate } else { Side::Guard };
    let cells = run_cells(
        o,
        Place::Sim,
        [
            Target::new(first, guarded.path("n1", "ct-guard.db")),
            Target::new(Side::StockImmediate, stock.path("s1", "ct-immediate.db")),
            Target::new(Side::StockPlain, stock.path("s1", "ct-plain.db")),
        ],
    );
    for (sim, node) in [(&guarded, "n1"), (&stock, "s1")] {
        let refused = sim.stats().map_err(|e| e.to_string())?.node(node).refused;
        if refused != 0 {
            return Err(format!(
                "litefs-sim refused {refused} writes on the lease holder {node}"
            ));
        }
    }
    guarded.stop().map_err(|e| format!("stopping litefs-sim: {e}"))?;
    stock.stop().map_err(|e| format!("stopping litefs-sim: {e}"))?;
    Ok(cells)
}
