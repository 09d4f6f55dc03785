//! The cost of a forwarded write transaction (`PRAGMA litefs_forward = ON`)
//! against a local one, on a two-node litefs-sim cluster: `BEGIN`, one small
//! INSERT, `COMMIT`, on the primary n1 (local, guarded) and on the replica
//! n2 (forwarded through LiteFS's halt lock, which the sim implements), on
//! the same database, interleaved like every figure (`Paired::run`).
//!
//! Both connections are guarded and the two nodes are two mounts, so no
//! single LITEFS_GUARD_DIR fits: this runs in a child process of its own
//! (`litefs-guard-bench forward-child REPS N`) with no mount configured —
//! each database's directory is its mount, as a default deployment — and
//! prints its figures as JSON. The sim has no network: what a forwarded
//! transaction costs here is the guard's part (taking and dropping the halt
//! lock through FUSE, the `.primary` and mode checks) plus the sim's, not a
//! round trip to a distant primary.

use crate::common::{config, configure, load_guard_per_database_dir, percentile, Paired};
use crate::fuse::{run_child, sim_bin};
use crate::work;
use litefs_sim::harness::{fuse_available, Sim, SimOptions};
use rusqlite::Connection;
use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

pub struct Forward {
    /// "guarded" = forwarded on n2, "stock" = local on n1 (tx/s).
    pub tx: Paired,
    /// Per-transaction latencies, µs, after the warm-up pair.
    pub fwd_p50: f64,
    pub fwd_p99: f64,
    pub local_p50: f64,
    pub local_p99: f64,
}

impl Forward {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "tx": self.tx.json(),
            "forwarded_p50_us": self.fwd_p50,
            "forwarded_p99_us": self.fwd_p99,
            "local_p50_us": self.local_p50,
            "local_p99_us": self.local_p99,
        })
    }
    fn from_json(v: &serde_json::Value) -> Option<Forward> {
        Some(Forward {
            tx: Paired::from_json(&v["tx"])?,
            fwd_p50: v["forwarded_p50_us"].as_f64()?,
            fwd_p99: v["forwarded_p99_us"].as_f64()?,
            local_p50: v["local_p50_us"].as_f64()?,
            local_p99: v["local_p99_us"].as_f64()?,
        })
    }
}

/// The figures, measured by a child process of this binary.
pub fn run(reps: usize, n: usize) -> Result<Forward, String> {
    let v = run_child("forward-child", &[reps.to_string(), n.to_string()], "forwarding")?;
    Forward::from_json(&v).ok_or_else(|| "the forwarding child's output is incomplete".into())
}

/// `forward-child REPS N`: prints the figures as JSON, or `{"error": …}`.
pub fn child(args: &[String]) {
    let parsed = (
        args.first().and_then(|r| r.parse::<usize>().ok()),
        args.get(1).and_then(|n| n.parse::<usize>().ok()),
    );
    let v = match parsed {
        (Some(reps), Some(n)) => match measure(reps, n) {
            Ok(f) => f.json(),
            Err(why) => serde_json::json!({ "error": why }),
        },
        _ => {
            eprintln!("usage: litefs-guard-bench forward-child REPS N");
            std::process::exit(2);
        }
    };
    println!("{v}");
}

fn open(path: &Path, role: &str) -> Connection {
    let c = Connection::open(path).unwrap();
    configure(&c);
    let cfg = config(&c);
    assert_eq!(
        cfg["vfs"],
        serde_json::json!(true),
        "not on the guard's VFS: {cfg}"
    );
    assert_eq!(cfg["role"], serde_json::json!(role), "{cfg}");
    c
}

fn measure(reps: usize, n: usize) -> Result<Forward, String> {
    fuse_available()?;
    let sim = Sim::start_with(SimOptions::new(&["n1", "n2"]).lease(Some("n1")).bin(sim_bin()))
        .map_err(|e| format!("litefs-sim did not start: {e}"))?;
    load_guard_per_database_dir();
    // A block, so the connections close before the sim stops.
    let (out, rows) = {
        let local = open(&sim.path("n1", "fw.db"), "primary");
        work::fw_schema(&local);
        let fwd = open(&sim.path("n2", "fw.db"), "replica");
        let on: String = fwd
            .query_row("PRAGMA litefs_forward = ON", [], |r| r.get(0))
            .map_err(|e| format!("PRAGMA litefs_forward = ON: {e}"))?;
        if on != "1" {
            return Err(format!("PRAGMA litefs_forward = ON answered {on}"));
        }
        // Each transaction timed on its own; Paired::run's warm-up pair
        // (its first n of each) is dropped below.
        let (lat_f, lat_l) = (RefCell::new(Vec::new()), RefCell::new(Vec::new()));
        let timed = |c: &Connection, lat: &RefCell<Vec<f64>>, k: usize| {
            for _ in 0..k {
                let t = Instant::now();
                work::small_tx(c, 1);
                lat.borrow_mut().push(t.elapsed().as_secs_f64() * 1e6);
            }
        };
        let tx = Paired::run(reps, n, |k| timed(&fwd, &lat_f, k), |k| timed(&local, &lat_l, k));
        let (lf, ll) = (lat_f.into_inner(), lat_l.into_inner());
        let rows: i64 = local
            .query_row("SELECT count(*) FROM fw", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        let expected = (lf.len() + ll.len()) as i64;
        if rows != expected {
            return Err(format!(
                "{rows} rows in fw after {expected} committed transactions"
            ));
        }
        let f = Forward {
            fwd_p50: percentile(&lf[tx.n..], 0.5),
            fwd_p99: percentile(&lf[tx.n..], 0.99),
            local_p50: percentile(&ll[tx.n..], 0.5),
            local_p99: percentile(&ll[tx.n..], 0.99),
            tx,
        };
        (f, rows)
    };
    let halts = sim.command("halts").map_err(|e| e.to_string())?;
    if halts.trim().trim_start_matches("ok ") != "count=0" {
        return Err(format!("a halt lock was left behind: {halts}"));
    }
    let stats = sim.stats().map_err(|e| e.to_string())?;
    for node in ["n1", "n2"] {
        let refused = stats.node(node).refused;
        if refused != 0 {
            return Err(format!("litefs-sim refused {refused} writes on {node}"));
        }
    }
    eprintln!(
        "bench: forwarding: {rows} transactions committed, median forwarded/local tx/s {:.3}",
        out.tx.ratio()
    );
    sim.stop().map_err(|e| format!("stopping litefs-sim: {e}"))?;
    Ok(out)
}
