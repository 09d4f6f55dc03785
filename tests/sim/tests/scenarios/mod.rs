//! Shared by the failover tests (`failover*.rs`): where the guard's
//! `.so` is, loading it, CLOCK_MONOTONIC, SQLite error codes, and re-running
//! the test binary as a child process (only one `.so` and one set of guard
//! settings can live in a process).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Primary result codes the scenarios count (`extended & 0xff`).
pub const SQLITE_BUSY: i32 = 5;
pub const SQLITE_READONLY: i32 = 8;
pub const SQLITE_IOERR: i32 = 10;
pub const SQLITE_CANTOPEN: i32 = 14;
pub const SQLITE_PROTOCOL: i32 = 15;
pub const SQLITE_AUTH: i32 = 23;

/// Env var that selects a helper test in a re-executed test binary.
pub const CHILD_VAR: &str = "LITEFS_FAILOVER_CHILD";

pub use crate::common::repo_root;

/// The guard under test: `$LITEFS_GUARD_SO`, else the root's release build.
pub fn so_path() -> PathBuf {
    let p = match std::env::var_os("LITEFS_GUARD_SO") {
        Some(p) => PathBuf::from(p),
        None => repo_root().join("target/release/liblitefs_guard.so"),
    };
    assert!(
        p.is_file(),
        "litefs_guard extension not found at {}: run `cargo build --release` in the repository root \
         (`make sim-test` does it), or point LITEFS_GUARD_SO at the .so",
        p.display()
    );
    p
}

/// The deliberately broken build (`--features test-no-gate`):
/// `$LITEFS_GUARD_NO_GATE_SO`, else built here into `target/no-gate` (a
/// no-op when `make sim-broken-gate` already built it).
pub fn no_gate_so_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LITEFS_GUARD_NO_GATE_SO") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "LITEFS_GUARD_NO_GATE_SO={} does not exist",
            p.display()
        );
        return p;
    }
    let root = repo_root();
    let cargo = std::env::var("CARGO")
        .ok()
        .or_else(|| option_env!("CARGO").map(str::to_string))
        .unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "-p",
            "litefs_guard",
            "--features",
            "test-no-gate",
            "--target-dir",
            "target/no-gate",
        ])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("running {cargo} to build the test-no-gate .so: {e}"));
    assert!(
        out.status.success(),
        "building the test-no-gate .so failed (`make sim-broken-gate`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = root.join("target/no-gate/release/liblitefs_guard.so");
    assert!(p.is_file(), "{} missing after the build", p.display());
    p
}

/// Loads the extension into this process on a throwaway `:memory:`
/// connection: every connection opened later is guarded.
pub fn load_guard(so: &Path) {
    let c = Connection::open_in_memory().unwrap();
    // SAFETY: loading the extension under test, built from this repository.
    unsafe {
        c.load_extension_enable().unwrap();
        c.load_extension(so, None::<&str>)
            .unwrap_or_else(|e| panic!("loading {}: {e}", so.display()));
        c.load_extension_disable().unwrap();
    }
}

/// Whether `c` is guarded (the guard's functions exist on it).
pub fn is_guarded(c: &Connection) -> bool {
    c.query_row("SELECT litefs_config()", [], |_| Ok(()))
        .map(|_| true)
        .or_else(|e| match e.to_string().contains("no such function") {
            true => Ok(false),
            false => Err(e),
        })
        .unwrap()
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of the sim's event log.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A SQLite error as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlErr {
    /// Primary code (`ext & 0xff`).
    pub code: i32,
    pub ext: i32,
    pub msg: String,
}

impl SqlErr {
    pub fn from(e: &rusqlite::Error) -> SqlErr {
        match e {
            rusqlite::Error::SqliteFailure(f, msg) => SqlErr {
                code: f.extended_code & 0xff,
                ext: f.extended_code,
                msg: msg.clone().unwrap_or_else(|| f.to_string()),
            },
            other => SqlErr {
                code: -1,
                ext: -1,
                msg: other.to_string(),
            },
        }
    }

    /// The guard's refusal: SQLITE_AUTH at prepare, SQLITE_READONLY at the lock.
    pub fn is_refusal(&self) -> bool {
        self.code == SQLITE_AUTH || self.code == SQLITE_READONLY
    }
}

impl std::fmt::Display for SqlErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}/{})", self.msg, code_name(self.code), self.ext)
    }
}

pub fn code_name(code: i32) -> &'static str {
    match code {
        SQLITE_BUSY => "SQLITE_BUSY",
        SQLITE_READONLY => "SQLITE_READONLY",
        SQLITE_IOERR => "SQLITE_IOERR",
        SQLITE_CANTOPEN => "SQLITE_CANTOPEN",
        SQLITE_PROTOCOL => "SQLITE_PROTOCOL",
        SQLITE_AUTH => "SQLITE_AUTH",
        _ => "other",
    }
}

/// The error of a statement that must fail.
pub fn must_fail<T: std::fmt::Debug>(what: &str, r: rusqlite::Result<T>) -> SqlErr {
    match r {
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
        Err(e) => SqlErr::from(&e),
    }
}

/// Runs `f` on another thread; panics if it takes longer than `limit`
/// (a hang fails the test instead of stalling the suite). Returns the
/// result and how long it took.
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => (v, t0.elapsed()),
        Err(_) => panic!("{what}: no answer within {limit:?} (hang)"),
    }
}

/// The current test binary re-run for one helper test, selected by
/// `CHILD_VAR=name`; the guard's settings variables and litefs.yml search
/// paths (cwd, HOME) are cleared so the child's settings are exactly what
/// the caller adds.
pub fn child(name: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_VAR, name)
        .env("HOME", dir)
        .current_dir(dir);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LITEFS_GUARD_") && k != "LITEFS_GUARD_SO" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// In a helper test: whether this process was started to run it.
pub fn am_child(name: &str) -> bool {
    std::env::var(CHILD_VAR).as_deref() == Ok(name)
}

/// Runs a helper test in a child (see [`child`]), echoes its output to
/// stderr, and fails unless it passed. Returns its stdout.
pub fn run_child(name: &str, dir: &Path, envs: &[(&str, &str)]) -> String {
    let mut cmd = child(name, dir);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("spawn child test");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("--- child {name} ---\n{}{}--- end {name} ---", stdout, stderr);
    assert!(out.status.success(), "child test {name} failed ({})", out.status);
    stdout
}
