//! LiteFS's halt lock: a write lock on byte 72 of `NAME-lock`, taken with a
//! blocking fcntl, lets a replica write and makes the primary's writers wait.
//!
//! The tests run one at a time (`common::serial`): a child closing its
//! inherited copy of a lock descriptor releases the halt lock (as on
//! LiteFS), and starting a sim spawns one. Forking tests are in `halt_fork.rs`.

mod common;

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{fcntl_lock, opts, start};
use libc::{
    EACCES, EAGAIN, EBADF, EINVAL, EIO, ENOLCK, ENOSYS, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_RDLCK,
    F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK,
};
use litefs_sim::harness::Sim;

const HALT: i64 = 72;
/// SQLite's RESERVED byte and the WAL write lock in -shm.
const RESERVED: i64 = 0x4000_0001;
const WAL_WRITE: i64 = 120;

fn rw(sim: &Sim, node: &str, file: &str) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(sim.path(node, file))
        .unwrap()
}

fn mode(sim: &Sim, node: &str, file: &str) -> u32 {
    fs::metadata(sim.path(node, file)).unwrap().permissions().mode() & 0o777
}

/// Takes the halt lock through `f` the way LiteFS's clients do.
fn halt(f: &File) -> i32 {
    fcntl_lock(f.as_raw_fd(), F_OFD_SETLKW, F_WRLCK, HALT, 1)
}

/// F_OFD_GETLK on byte 72: the type a write lock would meet.
fn halt_probe(f: &File) -> i32 {
    // SAFETY: zeroed flock (l_pid 0, as OFD requires); f is open.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = HALT;
    fl.l_len = 1;
    let rc = unsafe { libc::fcntl(f.as_raw_fd(), F_OFD_GETLK, &mut fl) };
    assert_eq!(rc, 0, "F_OFD_GETLK errno {}", common::errno());
    fl.l_type as i32
}

fn halts(sim: &Sim) -> String {
    sim.command("halts").unwrap()
}

fn setup(nodes: &[&str]) -> Sim {
    let sim = start(nodes);
    fs::write(sim.path("n1", "app.db"), b"0123456789").unwrap();
    sim
}

#[test]
fn only_a_blocking_one_byte_write_lock_at_72_on_a_rw_descriptor() {
    require_fuse!();
    let _serial = common::serial();
    let sim = setup(&["n1", "n2"]);
    let f = rw(&sim, "n2", "app.db-lock");
    let fd = f.as_raw_fd();
    // Non-blocking forms: ENOSYS (LiteFS's Lock), whatever the range.
    assert_eq!(fcntl_lock(fd, F_SETLK, F_WRLCK, HALT, 1), ENOSYS);
    assert_eq!(fcntl_lock(fd, F_OFD_SETLK, F_WRLCK, HALT, 1), ENOSYS);
    assert_eq!(fcntl_lock(fd, F_SETLK, F_WRLCK, 0, 1), ENOSYS);
    // Read locks: ENOSYS; other bytes or lengths: EINVAL.
    assert_eq!(fcntl_lock(fd, F_SETLKW, F_RDLCK, HALT, 1), ENOSYS);
    assert_eq!(fcntl_lock(fd, F_OFD_SETLKW, F_RDLCK, HALT, 1), ENOSYS);
    assert_eq!(fcntl_lock(fd, F_SETLKW, F_WRLCK, 71, 1), EINVAL);
    assert_eq!(fcntl_lock(fd, F_OFD_SETLKW, F_WRLCK, HALT, 2), EINVAL);
    assert_eq!(fcntl_lock(fd, F_SETLKW, F_WRLCK, HALT, 0), EINVAL, "to EOF");
    assert_eq!(fcntl_lock(fd, F_SETLKW, F_RDLCK, 0, 1), EINVAL);
    assert_eq!(fcntl_lock(fd, F_SETLK, F_UNLCK, 0, 1), EINVAL);
    // A read-only descriptor: the kernel says EBADF.
    let ro = File::open(sim.path("n2", "app.db-lock")).unwrap();
    assert_eq!(fcntl_lock(ro.as_raw_fd(), F_OFD_SETLKW, F_WRLCK, HALT, 1), EBADF);
    assert_eq!(fcntl_lock(ro.as_raw_fd(), F_SETLKW, F_WRLCK, HALT, 1), EBADF);
    assert_eq!(halts(&sim), "count=0");
    // Process-associated F_SETLKW works as well as OFD (FUSE cannot tell them apart).
    assert_eq!(fcntl_lock(fd, F_SETLKW, F_WRLCK, HALT, 1), 0);
    assert_eq!(halts(&sim), "count=1 app.db:n2");
    // Again through the same descriptor: ENOLCK, as LiteFS.
    assert_eq!(halt(&f), ENOLCK);
    assert_eq!(fcntl_lock(fd, F_SETLK, F_UNLCK, HALT, 1), 0);
    assert_eq!(halts(&sim), "count=0");
    // The probe: a read-only descriptor may ask; other bytes are EINVAL.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = F_WRLCK as i16;
    fl.l_len = 1;
    // SAFETY: valid flock, open fd.
    assert_eq!(unsafe { libc::fcntl(ro.as_raw_fd(), F_OFD_GETLK, &mut fl) }, -1);
    assert_eq!(common::errno(), EINVAL);
    assert_eq!(halt_probe(&ro), F_UNLCK);

    // On the primary it is a no-op: nothing held, nothing shown.
    let p = rw(&sim, "n1", "app.db-lock");
    assert_eq!(halt(&p), 0);
    assert_eq!(halts(&sim), "count=0");
    assert_eq!(halt_probe(&p), F_UNLCK);
    // With no primary it fails at once with EIO.
    sim.set_lease(None).unwrap();
    let t = Instant::now();
    assert_eq!(halt(&f), EIO);
    assert!(t.elapsed() < Duration::from_secs(2));
    let log = sim.log().unwrap();
    let results: Vec<&str> = log
        .iter()
        .filter(|e| e.op() == Some("halt"))
        .filter_map(|e| e.result())
        .collect();
    // The ENOLCK refusal and the unlock are answered on different FUSE
    // threads: their two log lines may come in either order.
    assert_eq!(results.len(), 5, "{log:#?}");
    let mut middle = [results[1], results[2]];
    middle.sort_unstable();
    assert_eq!(
        (results[0], middle, results[3], results[4]),
        ("acquired", ["error", "released"], "noop", "error"),
        "{log:#?}"
    );
}

#[test]
fn a_replica_writes_only_while_it_holds_the_halt_lock() {
    require_fuse!();
    let _serial = common::serial();
    let sim = setup(&["n1", "n2", "n3"]);
    let db2 = rw(&sim, "n2", "app.db");
    assert_eq!(db2.write_at(b"X", 0).unwrap_err().raw_os_error(), Some(EACCES));
    assert_eq!(mode(&sim, "n2", "app.db"), 0o444);

    let lock = rw(&sim, "n2", "app.db-lock");
    assert_eq!(halt(&lock), 0);
    // Node-wide: any descriptor (any process) on n2 sees it and may write.
    let other = File::open(sim.path("n2", "app.db-lock")).unwrap();
    assert_eq!(halt_probe(&other), F_WRLCK);
    assert_eq!(halt_probe(&rw(&sim, "n3", "app.db-lock")), F_UNLCK);
    assert_eq!(mode(&sim, "n2", "app.db"), 0o666);
    assert_eq!(mode(&sim, "n3", "app.db"), 0o444);
    db2.write_at(b"X", 0).unwrap();
    fs::write(sim.path("n2", "app.db-journal"), b"j").unwrap();
    fs::remove_file(sim.path("n2", "app.db-journal")).unwrap();
    assert_eq!(
        u64::from_str_radix(&sim.command("pos app.db").unwrap()[..16], 16).unwrap(),
        1,
        "a commit under the halt lock advances the position"
    );
    // Other replicas are still refused; so are other databases.
    let db3 = rw(&sim, "n3", "app.db");
    assert_eq!(db3.write_at(b"Y", 0).unwrap_err().raw_os_error(), Some(EACCES));
    fs::write(sim.path("n1", "other.db"), b"o").unwrap();
    assert_eq!(
        rw(&sim, "n2", "other.db")
            .write_at(b"Z", 0)
            .unwrap_err()
            .raw_os_error(),
        Some(EACCES)
    );
    assert_eq!(fs::read(sim.backing().join("app.db")).unwrap(), b"X123456789");

    assert_eq!(fcntl_lock(lock.as_raw_fd(), F_OFD_SETLK, F_UNLCK, HALT, 1), 0);
    assert_eq!(db2.write_at(b"W", 0).unwrap_err().raw_os_error(), Some(EACCES));
    assert_eq!(mode(&sim, "n2", "app.db"), 0o444);
    assert_eq!(halt_probe(&other), F_UNLCK);

    let log = sim.log().unwrap();
    let via_halt = log
        .iter()
        .filter(|e| e.node() == Some("n2") && e.result() == Some("accepted"))
        .filter(|e| e.get("via") == Some("halt"))
        .count();
    assert!(via_halt >= 4, "db write, journal create/write/unlink: {via_halt}");
    assert!(log.iter().any(|e| e.op() == Some("halt")
        && e.result() == Some("released")
        && e.get("reason") == Some("unlock")
        && e.file() == Some("app.db-lock")));
}

#[test]
fn the_primarys_writers_wait_while_a_replica_holds_it() {
    require_fuse!();
    let _serial = common::serial();
    let sim = setup(&["n1", "n2", "n3"]);
    fs::write(sim.path("n1", "app.db-shm"), vec![0u8; 32768]).unwrap();
    let lock = rw(&sim, "n2", "app.db-lock");
    assert_eq!(halt(&lock), 0);

    let shm1 = rw(&sim, "n1", "app.db-shm");
    let db1 = rw(&sim, "n1", "app.db");
    assert_eq!(
        fcntl_lock(shm1.as_raw_fd(), F_SETLK, F_WRLCK, WAL_WRITE, 1),
        EAGAIN
    );
    assert_eq!(fcntl_lock(db1.as_raw_fd(), F_SETLK, F_WRLCK, RESERVED, 1), EAGAIN);
    // Readers on the primary are not stopped (LiteFS stops them too; see README).
    assert_eq!(fcntl_lock(shm1.as_raw_fd(), F_SETLK, F_RDLCK, 123, 1), 0);
    // The replica itself and other replicas are not blocked by it.
    let shm3 = rw(&sim, "n3", "app.db-shm");
    assert_eq!(fcntl_lock(shm3.as_raw_fd(), F_SETLK, F_WRLCK, WAL_WRITE, 1), 0);
    assert_eq!(fcntl_lock(shm3.as_raw_fd(), F_SETLK, F_UNLCK, WAL_WRITE, 1), 0);
    assert!(sim
        .command("locks")
        .unwrap()
        .contains("app.db-shm:halt:W:120-120"));

    // A blocking writer on the primary waits until the halt lock goes.
    let path = sim.path("n1", "app.db-shm");
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
        let rc = fcntl_lock(f.as_raw_fd(), F_SETLKW, F_WRLCK, WAL_WRITE, 1);
        tx.send(rc).unwrap();
        drop(f);
    });
    // A second replica asking for the halt lock queues behind n2.
    let lock3 = rw(&sim, "n3", "app.db-lock");
    let (tx3, rx3) = mpsc::channel();
    let fd3 = lock3.as_raw_fd();
    let waiter3 = thread::spawn(move || tx3.send(fcntl_lock(fd3, F_OFD_SETLKW, F_WRLCK, HALT, 1)).unwrap());
    thread::sleep(Duration::from_millis(300));
    assert!(
        rx.try_recv().is_err(),
        "primary writer got the lock during the halt"
    );
    assert!(rx3.try_recv().is_err(), "second halt granted while n2 holds it");
    assert!(sim.command("status").unwrap().contains(" waiting_halts=1 "));

    drop(lock); // close: the flush releases it
    assert_eq!(rx3.recv_timeout(Duration::from_secs(5)).unwrap(), 0);
    waiter3.join().unwrap();
    assert_eq!(halts(&sim), "count=1 app.db:n3");
    // n3 holds it now: the primary still waits.
    assert!(rx.try_recv().is_err());
    drop(lock3);
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 0);
    waiter.join().unwrap();
    assert_eq!(fcntl_lock(db1.as_raw_fd(), F_SETLK, F_WRLCK, RESERVED, 1), 0);
}

#[test]
fn it_expires_after_the_configured_ttl() {
    require_fuse!();
    let _serial = common::serial();
    let sim = Sim::start_with(opts(&["n1", "n2"]).halt_expiry_ms(300)).unwrap();
    fs::write(sim.path("n1", "app.db"), b"0123456789").unwrap();
    let lock = rw(&sim, "n2", "app.db-lock");
    let db2 = rw(&sim, "n2", "app.db");
    assert_eq!(halt(&lock), 0);
    db2.write_at(b"A", 0).unwrap();
    thread::sleep(Duration::from_millis(700));
    assert_eq!(halts(&sim), "count=0");
    assert_eq!(db2.write_at(b"B", 0).unwrap_err().raw_os_error(), Some(EACCES));
    let log = sim.log().unwrap();
    let expired = log
        .iter()
        .find(|e| e.op() == Some("halt") && e.result() == Some("expired"))
        .unwrap_or_else(|| panic!("expiry not logged: {log:#?}"));
    let held_ms: u64 = expired.get("held_ms").unwrap().parse().unwrap();
    assert!((300..2000).contains(&held_ms), "{held_ms}");
    // The same handle may take it again after expiry.
    assert_eq!(halt(&lock), 0);
}

#[test]
fn closing_a_duplicate_releases_it() {
    require_fuse!();
    let _serial = common::serial();
    let sim = setup(&["n1", "n2"]);
    let lock = rw(&sim, "n2", "app.db-lock");
    assert_eq!(halt(&lock), 0);
    // LiteFS: any flush of the same open file description releases it.
    let dup = lock.try_clone().unwrap();
    drop(dup);
    assert_eq!(halts(&sim), "count=0");
    // Another description's close does not.
    assert_eq!(halt(&lock), 0);
    drop(File::open(sim.path("n2", "app.db-lock")).unwrap());
    assert_eq!(halts(&sim), "count=1 app.db:n2");
}

#[test]
fn a_lease_move_ends_it() {
    require_fuse!();
    let _serial = common::serial();
    let sim = setup(&["n1", "n2", "n3"]);
    let lock = rw(&sim, "n2", "app.db-lock");
    assert_eq!(halt(&lock), 0);
    sim.set_lease(Some("n3")).unwrap();
    assert_eq!(halts(&sim), "count=0");
    assert!(!sim.command("locks").unwrap().contains(":halt:"));
    let log = sim.log().unwrap();
    assert!(log
        .iter()
        .any(|e| e.op() == Some("halt") && e.result() == Some("lost") && e.node() == Some("n2")));
    // It can be taken again from the new primary.
    assert_eq!(halt(&lock), 0);
}
