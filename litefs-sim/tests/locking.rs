//! POSIX locks across mounts: the daemon's shared lock table must make a
//! lock taken through one node exclude the others, with POSIX semantics.

mod common;

use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{fcntl_lock, fork_lock_holder, getlk, opts, start};
use libc::{EAGAIN, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK};
use litefs_sim::harness::Sim;

fn rw(sim: &Sim, node: &str, file: &str) -> fs::File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(sim.path(node, file))
        .unwrap()
}

#[test]
fn a_lock_through_one_node_excludes_the_others() {
    require_fuse!();
    let sim = start(&["n1", "n2", "n3"]);
    fs::write(sim.path("n1", "l.db"), b"").unwrap();
    let a = rw(&sim, "n1", "l.db");
    let b = rw(&sim, "n2", "l.db");
    let c = rw(&sim, "n3", "l.db");
    // Same process, different nodes: like different machines, they conflict.
    assert_eq!(fcntl_lock(a.as_raw_fd(), F_SETLK, F_WRLCK, 100, 10), 0);
    assert_eq!(fcntl_lock(b.as_raw_fd(), F_SETLK, F_RDLCK, 105, 1), EAGAIN);
    assert_eq!(fcntl_lock(c.as_raw_fd(), F_SETLK, F_WRLCK, 0, 0), EAGAIN);
    assert_eq!(
        fcntl_lock(b.as_raw_fd(), F_SETLK, F_WRLCK, 110, 5),
        0,
        "disjoint range"
    );
    let (typ, pid) = getlk(b.as_raw_fd(), F_WRLCK, 100, 1);
    assert_eq!(typ, F_WRLCK);
    assert_eq!(pid as u32, std::process::id());
    // Unlocking a sub-range splits: only that part frees up.
    assert_eq!(fcntl_lock(a.as_raw_fd(), F_SETLK, F_UNLCK, 102, 2), 0);
    assert_eq!(fcntl_lock(c.as_raw_fd(), F_SETLK, F_RDLCK, 102, 2), 0);
    assert_eq!(fcntl_lock(c.as_raw_fd(), F_SETLK, F_RDLCK, 101, 2), EAGAIN);
    // Readers share across nodes.
    assert_eq!(fcntl_lock(a.as_raw_fd(), F_SETLK, F_RDLCK, 200, 1), 0);
    assert_eq!(fcntl_lock(b.as_raw_fd(), F_SETLK, F_RDLCK, 200, 1), 0);
    assert_eq!(fcntl_lock(c.as_raw_fd(), F_SETLK, F_WRLCK, 200, 1), EAGAIN);
    // Closing a descriptor drops that owner's locks on the file (POSIX).
    drop(a);
    assert_eq!(fcntl_lock(c.as_raw_fd(), F_SETLK, F_WRLCK, 100, 2), 0);
    assert_eq!(
        getlk(c.as_raw_fd(), F_WRLCK, 110, 1).0,
        F_WRLCK,
        "n2 still holds its own"
    );
}

#[test]
fn two_processes_on_one_node_conflict_one_process_does_not() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    fs::write(sim.path("n1", "p.db"), b"").unwrap();
    let holder = fork_lock_holder(&sim.path("n1", "p.db"), F_WRLCK, 0, 1);
    assert_eq!(holder.result, 0);
    let mine = rw(&sim, "n1", "p.db");
    assert_eq!(fcntl_lock(mine.as_raw_fd(), F_SETLK, F_RDLCK, 0, 1), EAGAIN);
    let (typ, pid) = getlk(mine.as_raw_fd(), F_RDLCK, 0, 1);
    assert_eq!((typ, pid), (F_WRLCK, holder.pid));
    // Two descriptors of one process share an owner: no conflict.
    let mine2 = rw(&sim, "n1", "p.db");
    assert_eq!(fcntl_lock(mine.as_raw_fd(), F_SETLK, F_WRLCK, 5, 1), 0);
    assert_eq!(fcntl_lock(mine2.as_raw_fd(), F_SETLK, F_WRLCK, 5, 1), 0);
    // The child exiting releases its lock.
    drop(holder);
    assert_eq!(fcntl_lock(mine.as_raw_fd(), F_SETLK, F_WRLCK, 0, 1), 0);
    // And a child on the other node is refused ours.
    let other = fork_lock_holder(&sim.path("n2", "p.db"), F_RDLCK, 0, 1);
    assert_eq!(other.result, EAGAIN);
}

#[test]
fn locks_on_the_passthrough_shm_reach_the_daemon() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    fs::write(sim.path("n1", "s.db"), b"").unwrap();
    fs::write(sim.path("n1", "s.db-shm"), vec![0u8; 32768]).unwrap();
    let a = rw(&sim, "n1", "s.db-shm");
    let b = rw(&sim, "n2", "s.db-shm");
    // SQLite's WAL locks: bytes 120..128 of -shm.
    assert_eq!(fcntl_lock(a.as_raw_fd(), F_SETLK, F_WRLCK, 120, 1), 0);
    assert_eq!(fcntl_lock(b.as_raw_fd(), F_SETLK, F_RDLCK, 120, 1), EAGAIN);
    let locks = sim.command("locks").unwrap();
    assert!(locks.contains("s.db-shm:n1:W:120-120"), "{locks}");
    // close() reaches the daemon too (FLUSH), releasing the lock.
    drop(a);
    assert_eq!(fcntl_lock(b.as_raw_fd(), F_SETLK, F_WRLCK, 120, 1), 0);
    assert_eq!(sim.command("locks").unwrap(), "count=1 s.db-shm:n2:W:120-120");
}

#[test]
fn setlkw_waits_without_holding_a_worker_and_wakes_on_unlock() {
    require_fuse!();
    // One worker thread per mount: a parked F_SETLKW must not occupy it.
    let sim = Sim::start_with(opts(&["n1", "n2"]).threads(1)).unwrap();
    fs::write(sim.path("n1", "w.db"), b"hello").unwrap();
    let holder = fork_lock_holder(&sim.path("n1", "w.db"), F_WRLCK, 72, 1);
    assert_eq!(holder.result, 0);
    let path = sim.path("n2", "w.db");
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
        let t = Instant::now();
        let rc = fcntl_lock(f.as_raw_fd(), F_SETLKW, F_WRLCK, 72, 1);
        tx.send((rc, t.elapsed())).unwrap();
        drop(f);
    });
    thread::sleep(Duration::from_millis(300));
    assert!(
        rx.try_recv().is_err(),
        "F_SETLKW returned while the lock was held"
    );
    assert_eq!(
        sim.command("status").unwrap().split(' ').next_back(),
        Some("waiting_locks=1")
    );
    // The same mount still serves other requests meanwhile.
    let t = Instant::now();
    assert_eq!(fs::read(sim.path("n2", "w.db")).unwrap(), b"hello");
    assert!(t.elapsed() < Duration::from_secs(2));
    drop(holder);
    let (rc, waited) = rx.recv_timeout(Duration::from_secs(5)).expect("woken");
    assert_eq!(rc, 0);
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    waiter.join().unwrap();
}

extern "C" fn on_usr1(_: libc::c_int) {}

#[test]
fn a_signal_interrupts_a_blocked_setlkw() {
    require_fuse!();
    let sim = start(&["n1", "n2"]);
    fs::write(sim.path("n1", "i.db"), b"").unwrap();
    let holder = fork_lock_holder(&sim.path("n1", "i.db"), F_WRLCK, 0, 1);
    // SAFETY: installing a no-op handler without SA_RESTART for SIGUSR1.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let path = sim.path("n2", "i.db");
    let (tid_tx, tid_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
        // SAFETY: pthread_self has no preconditions.
        tid_tx.send(unsafe { libc::pthread_self() }).unwrap();
        fcntl_lock(f.as_raw_fd(), F_SETLKW, F_WRLCK, 0, 1)
    });
    let tid = tid_rx.recv().unwrap();
    thread::sleep(Duration::from_millis(200));
    // Repeat in case a signal lands before the thread reaches fcntl.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !waiter.is_finished() && Instant::now() < deadline {
        // SAFETY: the thread's handle stays valid until joined below.
        unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(waiter.join().unwrap(), libc::EINTR);
    assert_eq!(
        sim.command("status").unwrap().split(' ').next_back(),
        Some("waiting_locks=0")
    );
    drop(holder);
}
