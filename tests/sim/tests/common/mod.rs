//! Shared helpers for the SQLite-on-the-sim tests: FUSE or fail, and the
//! sim binary (a path dependency's binary is not built for this package, so
//! there is no `CARGO_BIN_EXE_litefs-sim` here).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use litefs_sim::harness::{Sim, SimOptions};

/// Skips (loudly) or fails (CI=true) when FUSE cannot be used.
#[macro_export]
macro_rules! require_fuse {
    () => {
        fn here() {}
        let name = std::any::type_name_of_val(&here);
        if !litefs_sim::harness::fuse_or_skip(name.strip_suffix("::here").unwrap_or(name)) {
            return;
        }
    };
}

/// The repository root, two levels above tests/sim.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$LITEFS_SIM_BIN` (`make sim-test` sets it), else the workspace's
/// release build, built here first so it is never stale (a no-op when it is
/// up to date).
pub fn sim_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("LITEFS_SIM_BIN") {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "LITEFS_SIM_BIN={} does not exist", p.display());
            return p;
        }
        let root = repo_root();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(&cargo)
            .args(["build", "--release", "-p", "litefs-sim", "--bin", "litefs-sim"])
            .current_dir(&root)
            .output()
            .unwrap_or_else(|e| panic!("running {cargo} to build litefs-sim: {e}"));
        assert!(
            out.status.success(),
            "building litefs-sim failed (`make sim-build`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let p = root.join("target/release/litefs-sim");
        assert!(p.is_file(), "{} missing after the build", p.display());
        p
    })
    .clone()
}

pub fn opts(nodes: &[&str]) -> SimOptions {
    SimOptions::new(nodes).bin(sim_bin())
}

pub fn start(nodes: &[&str]) -> Sim {
    Sim::start_with(opts(nodes)).expect("start litefs-sim")
}
