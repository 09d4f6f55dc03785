//! The role check on a FUSE mount: litefs-sim with one node holding the
//! lease, so `.primary` lookups and stats really reach a FUSE daemon.

use crate::common::{lookups, open_guarded, open_stock, Paired};
use crate::work;
use litefs_sim::harness::{fuse_available, Sim, SimOptions};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

pub struct Fuse {
    pub insert: Paired,
    /// `.primary` lookups per autocommit INSERT, per 10-statement BEGIN
    /// transaction, per autocommit point SELECT.
    pub per_insert: f64,
    pub per_tx10: f64,
    pub per_read: f64,
}

fn sim_bin() -> PathBuf {
    match std::env::var_os("LITEFS_SIM_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../litefs-sim/target/release/litefs-sim"),
    }
}

/// Lookups per operation while `f` runs `n` operations on `c`.
pub fn lookups_per(c: &Connection, n: usize, f: impl FnOnce(&Connection, usize)) -> f64 {
    let before = lookups(c);
    f(c, n);
    (lookups(c) - before) as f64 / n as f64
}

pub fn run(reps: usize, n_insert: usize) -> Result<Fuse, String> {
    fuse_available()?;
    let bin = sim_bin();
    if !bin.is_file() {
        return Err(format!(
            "{} is missing: cargo build --release --manifest-path litefs-sim/Cargo.toml",
            bin.display()
        ));
    }
    let sim = Sim::start_with(SimOptions::new(&["n1"]).lease(Some("n1")).bin(bin))
        .map_err(|e| format!("litefs-sim did not start: {e}"))?;
    // A block, so the connections close before the sim stops.
    let out = {
        let g = open_guarded(&sim.path("n1", "g.db"));
        let s = open_stock(&sim.path("n1", "s.db"));
        work::schema(&g);
        work::schema(&s);
        let insert = Paired::run(
            reps,
            n_insert,
            |n| work::autocommit_insert(&g, n),
            |n| work::autocommit_insert(&s, n),
        );
        let per_insert = lookups_per(&g, n_insert, work::autocommit_insert);
        let per_tx10 = lookups_per(&g, n_insert / 10, work::tx10);
        let per_read = lookups_per(&g, n_insert * 4, work::point_select);
        Fuse {
            insert,
            per_insert,
            per_tx10,
            per_read,
        }
    };
    let stats = sim.stats().map_err(|e| e.to_string())?;
    if stats.node("n1").refused != 0 {
        return Err(format!(
            "litefs-sim refused {} writes on the lease holder",
            stats.node("n1").refused
        ));
    }
    sim.stop().map_err(|e| format!("stopping litefs-sim: {e}"))?;
    Ok(out)
}
