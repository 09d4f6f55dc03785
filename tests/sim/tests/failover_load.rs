//! Failover under load across nodes, with the guard, without it, and with
//! the deliberately broken `test-no-gate` build.
//!
//! Three nodes; on each a worker process (this test binary re-run as
//! `node_worker`) with 4 writer threads doing small write transactions while
//! the test moves the lease every 0.5–1 s (random holder, sometimes nobody).
//! Afterwards the acknowledged commits are checked against the database
//! (read through the final holder) and against the sim's log of lease
//! changes, and the refusals are counted at the client and at the filesystem.

mod common;
mod scenarios;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{mpsc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::start;
use litefs_sim::harness::{LogEvent, Sim};
use rusqlite::{params, Connection};
use scenarios::{
    am_child, child, is_guarded, load_guard, mono_ns, no_gate_so_path, so_path, SqlErr, SQLITE_AUTH,
    SQLITE_BUSY, SQLITE_IOERR, SQLITE_READONLY,
};

const NODES: [&str; 3] = ["n1", "n2", "n3"];
const WRITERS: usize = 4;
const WORKER: &str = "node_worker";
/// Share of lease moves that go to nobody.
const NONE_PERCENT: u64 = 15;

/// The workloads run one at a time: on a small machine two at once would
/// blur each other's figures.
static HEAVY: Mutex<()> = Mutex::new(());

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Guarded,
    Unguarded,
    NoGate,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Guarded => "guarded",
            Mode::Unguarded => "no guard",
            Mode::NoGate => "test-no-gate",
        }
    }
}

/// Seconds of workload; `$FAILOVER_SECS_SCALE` scales every run (default 1.0).
fn secs(default: f64) -> f64 {
    let scale = std::env::var("FAILOVER_SECS_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.0);
    default * scale
}

/// `$FAILOVER_SEED` reproduces a lease schedule.
fn seed() -> u64 {
    std::env::var("FAILOVER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| mono_ns() ^ (std::process::id() as u64) << 32)
}

/// xorshift64*: a reproducible lease schedule without a rand dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
    /// A new holder, different from `current`; nobody now and then.
    fn next_holder(&mut self, current: Option<&str>) -> Option<&'static str> {
        loop {
            let pick = if current.is_some() && self.below(100) < NONE_PERCENT {
                None
            } else {
                Some(NODES[self.below(NODES.len() as u64) as usize])
            };
            if pick != current {
                return pick;
            }
        }
    }
}

// ---------------------------------------------------------------- worker side

fn var(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"))
}

/// One node's application: WRITERS threads, each with its own connection.
/// Protocol on stdio: prints `ready` once every connection is open, reads
/// `go END_NS`, writes until CLOCK_MONOTONIC passes END_NS, prints one
/// `ack`/`err` line per transaction and `done`.
#[test]
fn node_worker() {
    if !am_child(WORKER) {
        return;
    }
    let db = PathBuf::from(var("FAILOVER_DB"));
    let node = var("FAILOVER_NODE");
    let so = std::env::var_os("FAILOVER_SO").map(PathBuf::from);
    if let Some(so) = &so {
        load_guard(so);
    }
    let guarded = so.is_some();
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut go = Vec::new();
    let mut writers = Vec::new();
    for t in 0..WRITERS {
        let (go_tx, go_rx) = mpsc::channel::<u64>();
        go.push(go_tx);
        let (db, node, ready_tx) = (db.clone(), node.clone(), ready_tx.clone());
        writers.push(thread::spawn(move || {
            let c = Connection::open(&db).unwrap();
            c.busy_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(is_guarded(&c), guarded, "guard loaded as asked on {node}");
            if guarded {
                let cfg: String = c.query_row("SELECT litefs_config()", [], |r| r.get(0)).unwrap();
                assert!(
                    cfg.contains("\"mount_source\":\"database directory\""),
                    "worker settings must be the defaults (no LITEFS_GUARD_*, no litefs.yml): {cfg}"
                );
            }
            ready_tx.send(()).unwrap();
            let end = go_rx.recv().unwrap();
            writer(&c, &node, t, end)
        }));
    }
    for _ in 0..WRITERS {
        ready_rx.recv().unwrap();
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let end: u64 = line
        .trim()
        .strip_prefix("go ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad go line {line:?}"));
    for g in go {
        g.send(end).unwrap();
    }
    let mut out = String::new();
    for w in writers {
        for rec in w.join().unwrap() {
            out.push_str(&rec);
            out.push('\n');
        }
    }
    out.push_str("done\n");
    print!("{out}");
    std::io::stdout().flush().unwrap();
}

/// Small write transactions until `end`. Even threads reuse a cached INSERT
/// (prepared once, so the authorizer never sees it again: only the VFS gate
/// can refuse it); odd threads prepare it afresh. Every other transaction
/// reads first. Each attempt has its own seq, so an ack names one row.
fn writer(c: &Connection, node: &str, thread: usize, end: u64) -> Vec<String> {
    let mut recs = Vec::new();
    let mut seq = 0u64;
    while mono_ns() < end {
        seq += 1;
        let t0 = mono_ns();
        let r = transaction(c, node, thread, seq, seq % 2 == 0, thread % 2 == 0);
        let t1 = mono_ns();
        match r {
            Ok(()) => recs.push(format!("ack {node} {thread} {seq} {t0} {t1}")),
            Err((stage, e)) => {
                let e = SqlErr::from(&e);
                recs.push(format!(
                    "err {node} {thread} {seq} {stage} {} {} {t0} {t1} {}",
                    e.code,
                    e.ext,
                    e.msg.replace('\n', " ")
                ));
                if !c.is_autocommit() {
                    let _ = c.execute_batch("ROLLBACK");
                }
                // An application would send the write to the primary; here
                // it just tries again a little later.
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    recs
}

type Step = Result<(), (&'static str, rusqlite::Error)>;

fn transaction(c: &Connection, node: &str, thread: usize, seq: u64, read_first: bool, cached: bool) -> Step {
    c.execute_batch("BEGIN").map_err(|e| ("begin", e))?;
    if read_first {
        let _: Option<i64> = c
            .query_row(
                "SELECT max(seq) FROM acks WHERE node = ?1 AND thread = ?2",
                params![node, thread as i64],
                |r| r.get(0),
            )
            .map_err(|e| ("read", e))?;
    }
    let sql = "INSERT INTO acks(node, thread, seq) VALUES (?1, ?2, ?3)";
    let p = params![node, thread as i64, seq as i64];
    let r = if cached {
        c.prepare_cached(sql).and_then(|mut s| s.execute(p))
    } else {
        c.execute(sql, p)
    };
    r.map_err(|e| ("insert", e))?;
    c.execute_batch("COMMIT").map_err(|e| ("commit", e))
}

// ---------------------------------------------------------------- test side

struct Worker {
    node: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: JoinHandle<Vec<String>>,
}

#[derive(Debug)]
struct Ack {
    node: String,
    thread: i64,
    seq: i64,
    t0: u64,
    t1: u64,
}

#[derive(Debug)]
struct ErrRec {
    node: String,
    stage: String,
    code: i32,
    ext: i32,
    msg: String,
}

/// One lease move as the test made it, with CLOCK_MONOTONIC just before the
/// control command went out.
struct Move {
    t_req: u64,
    to: Option<&'static str>,
}

/// What one workload run did.
struct Run {
    mode: Mode,
    seed: u64,
    secs: f64,
    moves: usize,
    moves_to_none: usize,
    acks: Vec<Ack>,
    errs: Vec<ErrRec>,
    /// Sim refusals during the run: (node, op, file) -> count.
    fs_refused: BTreeMap<(String, String, String), usize>,
    /// Most sim refusals between two lease moves.
    max_refused_per_move: usize,
    rows: usize,
    missing: usize,
    duplicated: usize,
    not_acked_rows: usize,
    outside_lease: Vec<String>,
    integrity: String,
}

impl Run {
    fn count(&self, code: i32) -> usize {
        self.errs.iter().filter(|e| e.code == code).count()
    }
    fn other_errors(&self) -> usize {
        self.errs
            .iter()
            .filter(|e| ![SQLITE_AUTH, SQLITE_READONLY, SQLITE_IOERR, SQLITE_BUSY].contains(&e.code))
            .count()
    }
    fn fs_total(&self) -> usize {
        self.fs_refused.values().sum()
    }
    fn bound(&self) -> usize {
        self.moves * WRITERS
    }
    fn nodes_with_commits(&self) -> usize {
        let mut n: Vec<&str> = self.acks.iter().map(|a| a.node.as_str()).collect();
        n.sort();
        n.dedup();
        n.len()
    }

    /// The guarded scenario's assertions; empty when all hold.
    fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                v.push(what)
            }
        };
        check(
            self.missing == 0 && self.duplicated == 0,
            format!(
                "acknowledged commits not in the database exactly once: {} missing, {} duplicated",
                self.missing, self.duplicated
            ),
        );
        check(
            self.outside_lease.is_empty(),
            format!(
                "{} commits acknowledged by a node not holding the lease, e.g. {:?}",
                self.outside_lease.len(),
                self.outside_lease.first()
            ),
        );
        check(
            self.count(SQLITE_IOERR) == 0,
            format!(
                "{} refusals reached clients as SQLITE_IOERR (disk I/O error), e.g. {:?}",
                self.count(SQLITE_IOERR),
                self.errs.iter().find(|e| e.code == SQLITE_IOERR)
            ),
        );
        check(
            self.fs_total() <= self.bound(),
            format!(
                "{} writes refused by the filesystem > bound {} ({} lease moves x {WRITERS} writers)",
                self.fs_total(),
                self.bound(),
                self.moves
            ),
        );
        check(
            self.not_acked_rows == 0,
            format!(
                "{} rows committed although the client was told the commit failed",
                self.not_acked_rows
            ),
        );
        check(
            self.other_errors() == 0,
            format!(
                "{} unexpected client errors, e.g. {:?}",
                self.other_errors(),
                self.errs
                    .iter()
                    .find(|e| ![SQLITE_AUTH, SQLITE_READONLY, SQLITE_IOERR, SQLITE_BUSY].contains(&e.code))
            ),
        );
        check(
            self.integrity == "ok",
            format!("integrity_check: {}", self.integrity),
        );
        check(
            self.nodes_with_commits() >= 2,
            format!(
                "commits on only {} node(s): no failover happened",
                self.nodes_with_commits()
            ),
        );
        v
    }

    fn print(&self) {
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &self.acks {
            *per_node.entry(&a.node).or_default() += 1;
        }
        let mut errs: BTreeMap<(&str, i32, &str), usize> = BTreeMap::new();
        for e in &self.errs {
            *errs.entry((&e.stage, e.ext, first_words(&e.msg))).or_default() += 1;
        }
        eprintln!(
            "\n== failover under load, {} (seed {}): {:.1} s, {} nodes x {WRITERS} writers, {} lease moves ({} to nobody)\n\
             commits acknowledged: {} {:?}; rows in db {}; missing {}, duplicated {}, rows whose commit reported failure {}\n\
             commits outside the committer's lease: {}; integrity_check: {}\n\
             refused at the guard (client errors): SQLITE_AUTH {}, SQLITE_READONLY {}\n\
             client SQLITE_IOERR (disk I/O error): {}; SQLITE_BUSY: {}; other: {}\n\
             refused at the filesystem (sim): {} (bound {} = moves x writers; at most {} after one move)",
            self.mode.name(),
            self.seed,
            self.secs,
            NODES.len(),
            self.moves,
            self.moves_to_none,
            self.acks.len(),
            per_node,
            self.rows,
            self.missing,
            self.duplicated,
            self.not_acked_rows,
            self.outside_lease.len(),
            self.integrity,
            self.count(SQLITE_AUTH),
            self.count(SQLITE_READONLY),
            self.count(SQLITE_IOERR),
            self.count(SQLITE_BUSY),
            self.other_errors(),
            self.fs_total(),
            self.bound(),
            self.max_refused_per_move,
        );
        for ((node, op, file), n) in &self.fs_refused {
            eprintln!("  sim refused: {node} {op} {file}: {n}");
        }
        let mut by_node: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &self.errs {
            *by_node.entry(&e.node).or_default() += 1;
        }
        eprintln!("  client errors per node: {by_node:?}");
        for ((stage, ext, msg), n) in &errs {
            eprintln!("  client error at {stage}: {msg} (extended {ext}): {n}");
        }
    }
}

fn first_words(s: &str) -> &str {
    s.get(..s.len().min(60)).unwrap_or(s)
}

/// A connection of the test itself (never guarded: this process does not load the .so).
fn plain(sim: &Sim, node: &str) -> Connection {
    let c = Connection::open(sim.path(node, "app.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// Starts `node`'s worker; `ready` gets `(node, true)` when its connections
/// are open, `(node, false)` if it exits before that.
fn spawn_worker(
    sim: &Sim,
    node: &'static str,
    so: Option<&Path>,
    ready: mpsc::Sender<(&'static str, bool)>,
) -> Worker {
    let mut cmd = child(WORKER, sim.dir());
    cmd.env("FAILOVER_DB", sim.path(node, "app.db"))
        .env("FAILOVER_NODE", node)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Some(so) = so {
        cmd.env("FAILOVER_SO", so);
    }
    let mut child = cmd.spawn().expect("spawn node worker");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = thread::spawn(move || {
        let mut out = Vec::new();
        let mut was_ready = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "ready" {
                was_ready = true;
                let _ = ready.send((node, true));
            } else if line.starts_with("ack ") || line.starts_with("err ") || line == "done" {
                out.push(line);
            }
        }
        if !was_ready {
            let _ = ready.send((node, false));
        }
        out
    });
    Worker {
        node,
        child,
        stdin,
        lines,
    }
}

fn parse(lines: &[String], acks: &mut Vec<Ack>, errs: &mut Vec<ErrRec>) {
    for l in lines {
        let w: Vec<&str> = l.splitn(10, ' ').collect();
        match w[0] {
            "ack" => acks.push(Ack {
                node: w[1].to_string(),
                thread: w[2].parse().unwrap(),
                seq: w[3].parse().unwrap(),
                t0: w[4].parse().unwrap(),
                t1: w[5].parse().unwrap(),
            }),
            "err" => errs.push(ErrRec {
                node: w[1].to_string(),
                stage: w[4].to_string(),
                code: w[5].parse().unwrap(),
                ext: w[6].parse().unwrap(),
                msg: w.get(9).unwrap_or(&"").to_string(),
            }),
            _ => {}
        }
    }
}

/// Per node, the CLOCK_MONOTONIC intervals it held the lease, from the
/// sim's log. Each interval starts when the test sent the `lease` command
/// (the switch happens between that and the log line) and ends at the log
/// line of the next move (written just after the switch).
fn holding_intervals(log: &[LogEvent], moves: &[Move]) -> HashMap<String, Vec<(u64, u64)>> {
    let start = log
        .iter()
        .find(|e| e.op() == Some("start"))
        .expect("op=start in the sim log");
    let changes: Vec<&LogEvent> = log.iter().filter(|e| e.op() == Some("lease")).collect();
    assert_eq!(changes.len(), moves.len(), "every lease move is in the sim log");
    let mut out: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    let mut holder = start.get("lease").filter(|h| *h != "none").map(str::to_string);
    let mut since = start.ts.as_nanos() as u64;
    for (ev, mv) in changes.iter().zip(moves) {
        assert_eq!(ev.get("to"), Some(mv.to.unwrap_or("none")), "{}", ev.raw);
        assert_eq!(
            ev.get("from"),
            Some(holder.as_deref().unwrap_or("none")),
            "{}",
            ev.raw
        );
        let at = ev.ts.as_nanos() as u64;
        if let Some(h) = holder.take() {
            out.entry(h).or_default().push((since, at));
        }
        holder = mv.to.map(str::to_string);
        since = at.min(mv.t_req);
    }
    if let Some(h) = holder {
        out.entry(h).or_default().push((since, u64::MAX));
    }
    out
}

fn run_workload(mode: Mode, so: Option<&Path>, secs: f64, seed: u64) -> Run {
    let sim = start(&NODES);
    {
        let c = plain(&sim, "n1");
        let m: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).unwrap();
        assert_eq!(m, "wal");
        c.execute_batch(
            "CREATE TABLE acks(node TEXT NOT NULL, thread INTEGER NOT NULL, seq INTEGER NOT NULL);
             CREATE INDEX acks_seq ON acks(node, thread, seq);",
        )
        .unwrap();
    }
    // One idle connection per node for the whole run: in WAL mode each holds
    // a SHARED lock on the database, so no worker's close is the last one
    // and tries a checkpoint from a node that is not the holder.
    let keepers: Vec<(&str, Connection)> = NODES
        .iter()
        .map(|n| {
            let c = plain(&sim, n);
            c.query_row("SELECT count(*) FROM acks", [], |_| Ok(())).unwrap();
            (*n, c)
        })
        .collect();

    let (ready_tx, ready_rx) = mpsc::channel();
    let mut workers: Vec<Worker> = NODES
        .iter()
        .map(|n| spawn_worker(&sim, n, so, ready_tx.clone()))
        .collect();
    for _ in &workers {
        let (node, ok) = ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("node workers did not get ready within 60 s");
        assert!(
            ok,
            "node worker {node} exited before it was ready (its stderr is above)"
        );
    }

    let mut rng = Rng::new(seed);
    let t_start = mono_ns();
    let end = t_start + (secs * 1e9) as u64;
    for w in &mut workers {
        writeln!(w.stdin, "go {end}").unwrap();
        w.stdin.flush().unwrap();
    }
    let mut moves = Vec::new();
    let mut holder: Option<&'static str> = Some(NODES[0]);
    loop {
        let pause = Duration::from_millis(500 + rng.below(501));
        let wake = mono_ns() + pause.as_nanos() as u64;
        if wake >= end {
            thread::sleep(Duration::from_nanos(end.saturating_sub(mono_ns())));
            break;
        }
        thread::sleep(pause);
        let to = rng.next_holder(holder);
        let t_req = mono_ns();
        sim.set_lease(to).unwrap();
        moves.push(Move { t_req, to });
        holder = to;
    }
    let workload_moves = moves.len();
    let moves_to_none = moves.iter().filter(|m| m.to.is_none()).count();

    let (mut acks, mut errs) = (Vec::new(), Vec::new());
    for w in workers {
        let Worker {
            node,
            mut child,
            stdin,
            lines,
        } = w;
        drop(stdin);
        let status = child.wait().unwrap();
        let lines = lines.join().unwrap();
        assert!(status.success(), "node worker {node} failed: {status}");
        assert_eq!(
            lines.last().map(String::as_str),
            Some("done"),
            "worker {node} output"
        );
        parse(&lines, &mut acks, &mut errs);
    }
    let t_stop = mono_ns();
    let log = sim.log().unwrap();
    let stats = sim.stats().unwrap();

    let mut fs_refused = BTreeMap::new();
    for e in log.iter().filter(|e| e.result() == Some("refused")) {
        let key = (
            e.node().unwrap_or("?").to_string(),
            e.op().unwrap_or("?").to_string(),
            e.file().unwrap_or("?").to_string(),
        );
        *fs_refused.entry(key).or_default() += 1;
    }
    let mut per_move = vec![0usize];
    for e in &log {
        if e.op() == Some("lease") {
            per_move.push(0);
        } else if e.result() == Some("refused") {
            *per_move.last_mut().unwrap() += 1;
        }
    }
    let max_refused_per_move = per_move.into_iter().max().unwrap_or(0);
    let stats_refused: u64 = NODES.iter().map(|n| stats.node(n).refused).sum();
    assert_eq!(
        stats_refused as usize,
        fs_refused.values().sum::<usize>(),
        "stats agree with the log"
    );

    // Read everything back through the final holder.
    if holder.is_none() {
        let to = Some(NODES[rng.below(NODES.len() as u64) as usize]);
        let t_req = mono_ns();
        sim.set_lease(to).unwrap();
        moves.push(Move { t_req, to });
        holder = to;
    }
    let final_holder = holder.unwrap();
    let intervals = holding_intervals(&sim.log().unwrap(), &moves);
    let reader = &keepers.iter().find(|(n, _)| *n == final_holder).unwrap().1;
    let mut rows: HashMap<(String, i64, i64), usize> = HashMap::new();
    {
        let mut st = reader.prepare("SELECT node, thread, seq FROM acks").unwrap();
        let it = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        for row in it {
            *rows.entry(row.unwrap()).or_default() += 1;
        }
    }
    let integrity: String = reader
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let (mut missing, mut duplicated) = (0, 0);
    for a in &acks {
        match rows.get(&(a.node.clone(), a.thread, a.seq)).copied().unwrap_or(0) {
            0 => missing += 1,
            1 => {}
            _ => duplicated += 1,
        }
    }
    let acked: std::collections::HashSet<(&str, i64, i64)> =
        acks.iter().map(|a| (a.node.as_str(), a.thread, a.seq)).collect();
    let not_acked_rows = rows
        .keys()
        .filter(|(n, t, s)| !acked.contains(&(n.as_str(), *t, *s)))
        .count();
    let outside_lease: Vec<String> = acks
        .iter()
        .filter(|a| {
            !intervals
                .get(&a.node)
                .is_some_and(|iv| iv.iter().any(|&(s, e)| a.t0 <= e && a.t1 >= s))
        })
        .map(|a| format!("{a:?}"))
        .collect();

    // Idle connections on the other nodes go first; the holder's last, so
    // the final checkpoint runs where writes are allowed.
    let mut keepers = keepers;
    keepers.sort_by_key(|(n, _)| *n == final_holder);
    drop(keepers);
    sim.stop().expect("sim stops and unmounts");

    Run {
        mode,
        seed,
        secs: (t_stop - t_start) as f64 / 1e9,
        moves: workload_moves,
        moves_to_none,
        acks,
        errs,
        fs_refused,
        max_refused_per_move,
        rows: rows.values().sum(),
        missing,
        duplicated,
        not_acked_rows,
        outside_lease,
        integrity,
    }
}

/// Scenarios 2 and 3: the guarded workload must pass every check; the same
/// workload without the guard shows what the guard saves clients from.
#[test]
fn failover_under_load_with_and_without_the_guard() {
    require_fuse!();
    let so = so_path();
    let _one_at_a_time = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let seed = seed();

    let g = run_workload(Mode::Guarded, Some(&so), secs(10.0), seed);
    g.print();
    let v = g.violations();
    assert!(
        v.is_empty(),
        "guarded failover (seed {seed}):\n  {}",
        v.join("\n  ")
    );
    assert!(
        g.count(SQLITE_AUTH) + g.count(SQLITE_READONLY) > 0,
        "the guard refused nothing: the workload did not exercise it"
    );

    let u = run_workload(Mode::Unguarded, None, secs(6.0), seed);
    u.print();
    let rows: [(&str, String, String); 6] = [
        ("seconds", format!("{:.1}", g.secs), format!("{:.1}", u.secs)),
        ("lease moves", g.moves.to_string(), u.moves.to_string()),
        ("commits", g.acks.len().to_string(), u.acks.len().to_string()),
        (
            "client SQLITE_AUTH + READONLY",
            (g.count(SQLITE_AUTH) + g.count(SQLITE_READONLY)).to_string(),
            (u.count(SQLITE_AUTH) + u.count(SQLITE_READONLY)).to_string(),
        ),
        (
            "client SQLITE_IOERR",
            g.count(SQLITE_IOERR).to_string(),
            u.count(SQLITE_IOERR).to_string(),
        ),
        (
            "refused at the filesystem",
            g.fs_total().to_string(),
            u.fs_total().to_string(),
        ),
    ];
    eprintln!(
        "\n== guard vs no guard (seed {seed})\n{:<32}{:>10}{:>10}",
        "", "guarded", "no guard"
    );
    for (what, a, b) in rows {
        eprintln!("{what:<32}{a:>10}{b:>10}");
    }
    assert!(
        u.count(SQLITE_IOERR) > 0,
        "without the guard, clients on replicas should see disk I/O errors"
    );
    assert!(u.fs_total() > 0, "without the guard the sim must refuse writes");
    assert!(
        u.fs_total() > g.fs_total(),
        "the guard should keep writes away from the filesystem"
    );
}

/// Scenario 4: the same guarded workload against the `test-no-gate` build
/// must fail the checks above, or the failover test could not tell that
/// the execution-time gate is missing.
#[test]
fn failover_under_load_fails_without_the_execution_time_gate() {
    require_fuse!();
    let so = no_gate_so_path();
    let _one_at_a_time = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let seed = seed();
    let b = run_workload(Mode::NoGate, Some(&so), secs(6.0), seed);
    b.print();
    let v = b.violations();
    eprintln!(
        "test-no-gate build fails the guarded checks ({} of them):\n  {}",
        v.len(),
        v.join("\n  ")
    );
    assert!(
        !v.is_empty(),
        "the test-no-gate build passed the guarded failover checks (seed {seed}): they cannot tell the gate is missing"
    );
}
