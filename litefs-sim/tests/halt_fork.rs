//! The halt lock and process lifetimes: a killed holder releases it, and so
//! does a forked child closing its inherited copy of the descriptor (LiteFS:
//! "any fork drops it"). In a binary of its own, one test at a time.

mod common;

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::thread;
use std::time::{Duration, Instant};

use common::{fcntl_lock, fork_lock_holder_cmd, start};
use libc::{EACCES, F_OFD_SETLKW, F_WRLCK};
use litefs_sim::harness::Sim;

const HALT: i64 = 72;

fn rw(sim: &Sim, node: &str, file: &str) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(sim.path(node, file))
        .unwrap()
}

fn halts(sim: &Sim) -> String {
    sim.command("halts").unwrap()
}

fn setup(nodes: &[&str]) -> Sim {
    let sim = start(nodes);
    fs::write(sim.path("n1", "app.db"), b"0123456789").unwrap();
    sim
}

fn wait_released(sim: &Sim) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while halts(sim) != "count=0" {
        assert!(Instant::now() < deadline, "still held: {}", halts(sim));
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_process_releases_it() {
    require_fuse!();
    let _serial = common::serial();
    let sim = setup(&["n1", "n2"]);
    let holder = fork_lock_holder_cmd(&sim.path("n2", "app.db-lock"), F_OFD_SETLKW, F_WRLCK, HALT, 1);
    assert_eq!(holder.result, 0);
    assert_eq!(halts(&sim), "count=1 app.db:n2");
    // Node-wide: this process on n2 may write while the child holds it.
    rw(&sim, "n2", "app.db").write_at(b"K", 0).unwrap();
    holder.kill();
    wait_released(&sim);
    assert_eq!(
        rw(&sim, "n2", "app.db")
            .write_at(b"L", 0)
            .unwrap_err()
            .raw_os_error(),
        Some(EACCES)
    );
}

#[test]
fn a_forked_child_exiting_releases_it() {
    require_fuse!();
    let _serial = common::serial();
    let sim = setup(&["n1", "n2"]);
    let lock = rw(&sim, "n2", "app.db-lock");
    assert_eq!(fcntl_lock(lock.as_raw_fd(), F_OFD_SETLKW, F_WRLCK, HALT, 1), 0);
    assert_eq!(halts(&sim), "count=1 app.db:n2");
    // SAFETY: the child only calls _exit, which closes its inherited copy.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        unsafe { libc::_exit(0) };
    }
    let mut st = 0;
    // SAFETY: reaping our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    wait_released(&sim);
    let log = sim.log().unwrap();
    assert!(log.iter().any(|e| e.op() == Some("halt")
        && e.result() == Some("released")
        && e.get("reason") == Some("close")));
    drop(lock);
}
