//! `litefs-guard status` on litefs-sim's FUSE mounts: the primary, a
//! replica, a replica that lost its primary, and LiteFS gone. Needs root
//! and /dev/fuse: without them the test says loudly that it did not run,
//! and fails under CI=true.

use litefs_sim::harness::{fuse_or_skip, Sim, SimOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_litefs-guard");

/// `$LITEFS_SIM_BIN`, else the workspace's release build, built first (a
/// no-op when up to date).
fn sim_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LITEFS_SIM_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["build", "--release", "-p", "litefs-sim", "--bin", "litefs-sim"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    root.join("target/release/litefs-sim")
}

fn status(mount: &Path, db: Option<&Path>) -> Output {
    let home = tempfile::Builder::new()
        .prefix("litefs-guard-cli-sim-")
        .tempdir()
        .unwrap();
    let mut c = Command::new(BIN);
    c.arg("status")
        .arg("--json")
        .current_dir(home.path())
        .env("HOME", home.path());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LITEFS_GUARD_") {
            c.env_remove(k);
        }
    }
    // FUSE is required by default with a configured mount: the real check.
    c.env("LITEFS_GUARD_DIR", mount);
    if let Some(db) = db {
        c.arg("--db").arg(db);
    }
    c.output().unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn status_on_the_sims_primary_and_replica() {
    if !fuse_or_skip("status_on_the_sims_primary_and_replica") {
        return;
    }
    let sim = Sim::start_with(SimOptions::new(&["n1", "n2"]).bin(sim_bin())).unwrap();
    let (m1, m2) = (sim.mount("n1").to_path_buf(), sim.mount("n2").to_path_buf());
    std::fs::write(m1.join("app.db"), b"").unwrap();

    let o = status(&m1, Some(&m1.join("app.db")));
    assert_eq!(o.status.code(), Some(0), "{}", json(&o));
    assert_eq!(json(&o)["role"], "primary");

    let o = status(&m2, Some(&m2.join("app.db")));
    assert_eq!(o.status.code(), Some(1), "{}", json(&o));
    assert_eq!(json(&o)["primary"], "n1");
    let o = status(&m2, None);
    assert_eq!(o.status.code(), Some(1), "{}", json(&o));

    // Failover: n2 takes the lease.
    sim.command("lease n2").unwrap();
    assert_eq!(status(&m2, Some(&m2.join("app.db"))).status.code(), Some(0));
    let o = status(&m1, Some(&m1.join("app.db")));
    assert_eq!(
        (o.status.code(), json(&o)["primary"].clone()),
        (Some(1), "n2".into())
    );

    // No primary at all: still a replica (exit 1), primary unknown. Only
    // the database's mode (0444) tells: `.primary` is gone, as in LiteFS.
    sim.command("lease none").unwrap();
    let o = status(&m1, Some(&m1.join("app.db")));
    assert_eq!(o.status.code(), Some(1), "{}", json(&o));
    assert_eq!(json(&o)["primary"], serde_json::Value::Null);

    // A database beside the mount is outside it.
    let outside = m1.parent().unwrap().join("outside.db");
    assert_eq!(status(&m1, Some(&outside)).status.code(), Some(3));

    // LiteFS gone: the mount is a plain directory (or nothing).
    drop(sim);
    let o = status(&m1, Some(&m1.join("app.db")));
    assert_eq!(o.status.code(), Some(2), "{}", json(&o));
    assert_eq!(json(&o)["role"], "not_running");
}
