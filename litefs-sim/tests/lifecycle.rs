//! Mounts always go away: on drop, on panic, on `quit`, on SIGTERM, when
//! the daemon is killed, and when its parent dies.

mod common;

use std::fs;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::start;
use litefs_sim::mounts::is_mounted;

fn exited(sim: &mut litefs_sim::harness::Sim) -> bool {
    sim.wait_exit(Duration::from_secs(10)).unwrap().is_some()
}

#[test]
fn drop_unmounts_and_cleans_up() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    let paths: Vec<_> = ["n1", "n2"].iter().map(|n| sim.mount(n).to_path_buf()).collect();
    let dir = sim.dir().to_path_buf();
    assert!(paths.iter().all(|p| is_mounted(p)));
    drop(sim);
    assert!(paths.iter().all(|p| !is_mounted(p)));
    assert!(!dir.exists(), "temp dir removed");
}

#[test]
fn a_panicking_test_still_unmounts() {
    require_fuse!();
    let mut paths = Vec::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let sim = start(&["n1", "n2"]);
        paths.push(sim.mount("n1").to_path_buf());
        paths.push(sim.mount("n2").to_path_buf());
        // Keep a file open in the mount: unmount must cope with "busy".
        let _f = fs::File::open(sim.path("n1", ".lag")).unwrap();
        panic!("test failure");
    }));
    assert!(r.is_err());
    assert_eq!(paths.len(), 2);
    assert!(paths.iter().all(|p| !is_mounted(p)));
}

#[test]
fn quit_command_unmounts_everything() {
    require_fuse!();
    let mut sim = start(&["n1", "n2", "n3"]);
    let _ = sim.command("quit");
    assert!(exited(&mut sim));
    for n in ["n1", "n2", "n3"] {
        assert!(!is_mounted(sim.mount(n)), "{n}");
    }
    assert!(sim
        .log()
        .unwrap()
        .iter()
        .any(|e| e.op() == Some("stop") && e.get("reason") == Some("quit")));
}

#[test]
fn sigterm_unmounts_even_when_busy() {
    require_fuse!();
    let mut sim = start(&["n1", "n2"]);
    fs::write(sim.path("n1", "busy.db"), b"x").unwrap();
    let mut busy = fs::File::open(sim.path("n2", "busy.db")).unwrap();
    let pid = sim.pid().unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert!(exited(&mut sim));
    assert!(!is_mounted(sim.mount("n1")));
    assert!(!is_mounted(sim.mount("n2")), "busy mount lazily detached");
    let mut s = String::new();
    assert!(
        busy.read_to_string(&mut s).is_err(),
        "dead mount no longer serves"
    );
    assert!(sim
        .log()
        .unwrap()
        .iter()
        .any(|e| e.get("reason") == Some("signal-15")));
}

#[test]
fn killed_daemon_leaves_nothing_after_drop() {
    require_fuse!();
    let mut sim = start(&["n1", "n2"]);
    let paths: Vec<_> = ["n1", "n2"].iter().map(|n| sim.mount(n).to_path_buf()).collect();
    let pid = sim.pid().unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(exited(&mut sim));
    assert!(paths.iter().all(|p| is_mounted(p)), "SIGKILL cannot unmount");
    drop(sim);
    assert!(paths.iter().all(|p| !is_mounted(p)), "harness fallback umount -l");
}

#[test]
fn daemon_exits_when_its_parent_goes_away() {
    require_fuse!();
    let dir = std::env::temp_dir().join(format!("litefs-sim-eof-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let mnt = dir.join("n1");
    let mut child = Command::new(env!("CARGO_BIN_EXE_litefs-sim"))
        .arg("--backing")
        .arg(dir.join("b"))
        .arg("--node")
        .arg(format!("n1={}", mnt.display()))
        .arg("--exit-on-stdin-eof")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_mounted(&mnt) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(is_mounted(&mnt));
    drop(child.stdin.take()); // what the kernel does when the parent dies
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!is_mounted(&mnt));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_fail_fast() {
    let out = Command::new(env!("CARGO_BIN_EXE_litefs-sim"))
        .args(["--node", "n1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}
