//! The role check on a FUSE mount: litefs-sim, so `.primary` lookups and
//! stats really reach a FUSE daemon.
//!
//! The guarded database is on one litefs-sim mount (node n1, holding the
//! lease), which is the guard's mount (LITEFS_GUARD_DIR). The stock one is
//! on a second litefs-sim daemon's mount (node s1, holding its own lease),
//! outside the guarded mount, so the wrapper leaves it to the base VFS. Both
//! sides thus pay the same FUSE round trips for their own I/O and the ratio
//! is the guard's cost alone; a stock database on local disk would charge
//! FUSE itself to the guard. Two daemons rather than two nodes of one: only
//! the lease holder of a sim may write.
//!
//! The guard reads its settings once per process and the local rows have a
//! mount of their own, so this runs in a child process of the bench
//! (`litefs-guard-bench fuse-child REPS N [aa]`), which prints its figures as
//! JSON. With `aa` (calibration, `--aa`) both sims hold stock databases and
//! the guard's mount is a local directory neither of them is in.

use crate::common::{load_guard, lookups, open_guarded, open_stock, set_guard_env, Dirs, Paired};
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

pub fn sim_bin() -> PathBuf {
    match std::env::var_os("LITEFS_SIM_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/litefs-sim"),
    }
}

/// Lookups per operation while `f` runs `n` operations on `c`.
pub fn lookups_per(c: &Connection, n: usize, f: impl FnOnce(&Connection, usize)) -> f64 {
    let before = lookups(c);
    f(c, n);
    (lookups(c) - before) as f64 / n as f64
}

/// Runs this binary as `sub ARGS…` with litefs-sim at hand (FUSE needed) and
/// returns the JSON it prints, or the `{"error": …}` it reports. `what`
/// names the child in messages.
pub fn run_child(sub: &str, args: &[String], what: &str) -> Result<serde_json::Value, String> {
    fuse_available()?;
    let bin = sim_bin();
    if !bin.is_file() {
        return Err(format!(
            "{} is missing: cargo build --release -p litefs-sim (make sim-build)",
            bin.display()
        ));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(&exe)
        .arg(sub)
        .args(args)
        .env("LITEFS_SIM_BIN", &bin)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("running {} {sub}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!("the {what} child process exited with {}", out.status));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("the {what} child's output: {e}"))?;
    if let Some(why) = v["error"].as_str() {
        return Err(why.to_string());
    }
    Ok(v)
}

/// The FUSE figures, measured by a child process of this binary.
pub fn run(reps: usize, n_insert: usize, aa: bool) -> Result<Fuse, String> {
    let mut args = vec![reps.to_string(), n_insert.to_string()];
    args.extend(aa.then(|| "aa".to_string()));
    let v = run_child("fuse-child", &args, "FUSE")?;
    let per = |k: &str| v[k].as_f64().ok_or(format!("the FUSE child's output has no {k}"));
    Ok(Fuse {
        insert: Paired::from_json(&v["insert"]).ok_or("the FUSE child's output has no insert figure")?,
        per_insert: per("per_insert")?,
        per_tx10: per("per_tx10")?,
        per_read: per("per_read")?,
    })
}

/// `fuse-child REPS N [aa]`: prints `{"insert": …, "per_insert": …}` or `{"error": …}`.
pub fn child(args: &[String]) {
    let parsed = (
        args.first().and_then(|r| r.parse::<usize>().ok()),
        args.get(1).and_then(|n| n.parse::<usize>().ok()),
    );
    let v = match parsed {
        (Some(reps), Some(n)) => match measure(reps, n, args.get(2).map(String::as_str) == Some("aa")) {
            Ok(f) => serde_json::json!({
                "insert": f.insert.json(),
                "per_insert": f.per_insert,
                "per_tx10": f.per_tx10,
                "per_read": f.per_read,
            }),
            Err(why) => serde_json::json!({ "error": why }),
        },
        _ => {
            eprintln!("usage: litefs-guard-bench fuse-child REPS N [aa]");
            std::process::exit(2);
        }
    };
    println!("{v}");
}

fn measure(reps: usize, n_insert: usize, aa: bool) -> Result<Fuse, String> {
    fuse_available()?;
    let start = |node: &str| {
        Sim::start_with(SimOptions::new(&[node]).lease(Some(node)).bin(sim_bin()))
            .map_err(|e| format!("litefs-sim did not start: {e}"))
    };
    let guarded = start("n1")?;
    let stock = start("s1")?;
    let elsewhere = aa.then(|| Dirs::new("fuse-aa"));
    set_guard_env(match &elsewhere {
        Some(d) => &d.guarded,
        None => guarded.mount("n1"),
    });
    load_guard();
    // A block, so the connections close before the sims stop.
    let out = {
        let g = if aa {
            open_stock(&guarded.path("n1", "g.db"))
        } else {
            open_guarded(&guarded.path("n1", "g.db"))
        };
        let s = open_stock(&stock.path("s1", "s.db"));
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
    Ok(out)
}
