//! LiteFS's HALT lock: a POSIX write lock on byte 72 of `NAME-lock`. A
//! replica holding it may write (LiteFS forwards the change to the primary).
//!
//! Two parts: [`is_held`], the role check's question (anyone on this node
//! holds it), and the mechanics of write forwarding — [`acquire`] a
//! [`Held`] lock with a bounded wait, ask whether it was [`Held::lost`], let
//! go of it — kept per guarded main database file in a registry ([`take`],
//! [`lost`], [`give_back`]) so that the file's `-wal` and `-journal` can ask
//! about it too.
//!
//! Rules from LiteFS (see /work/shared/LITEFS.md "The halt lock on a real
//! replica"), and how they are kept here:
//! - only `F_SETLKW`-style blocking requests work and they have no timeout:
//!   a waiter thread makes the request on its own duplicate of the
//!   descriptor while the caller waits on a condition variable; on timeout
//!   the caller closes its copy — a flush of the open file description,
//!   which ends a pending request (and releases a lock granted meanwhile) —
//!   and the waiter closes its own when the request returns. No signal, no
//!   alarm; nothing else in the process is touched;
//! - any flush of the open file description releases it: the descriptors are
//!   `O_CLOEXEC`, never duplicated after the request is made, and closed only
//!   to release;
//! - a process dying with it must not hang: both descriptors are moved above
//!   every descriptor open at that moment (`F_DUPFD_CLOEXEC`) *before* the
//!   request, so the kernel closes SQLite's descriptors of the database
//!   (and drops their locks) first;
//! - any fork may drop it: a fork counter ([`pthread_atfork`]) and an
//!   `F_OFD_GETLK` probe tell a transaction that it lost the lock;
//! - it expires after 30 s on LiteFS: a hold older than [`MAX_HOLD`] counts
//!   as lost, so its transaction fails instead of writing unprotected.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

/// Byte offset LiteFS uses for the halt lock.
pub const HALT_BYTE: i64 = 72;

/// `NAME-lock` for database `NAME`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push("-lock");
    PathBuf::from(s)
}

/// Descriptors of the `-lock` files asked about, kept open for the life of
/// the process: closing any descriptor of a file drops every POSIX lock this
/// process holds on it, so opening and closing one per check would release
/// the application's own halt lock.
static OPEN: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// Whether anyone — another process, or this one through any descriptor —
/// holds the halt lock of `db`. Any failure to ask counts as "not held".
pub fn is_held(db: &Path) -> bool {
    let path = lock_path(db);
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    let fd = match open.iter().find(|(p, _)| *p == path) {
        Some((_, f)) => f.as_raw_fd(),
        None => {
            // O_NONBLOCK and O_NOCTTY: a FIFO or a terminal in its place
            // must not block or become ours; only a regular file (LiteFS's
            // is one) is kept and asked.
            let Ok(f) = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(&path)
            else {
                return false;
            };
            if !f.metadata().is_ok_and(|m| m.file_type().is_file()) {
                return false;
            }
            let fd = f.as_raw_fd();
            open.push((path, f));
            fd
        }
    };
    // Open-file-description locks see traditional POSIX locks held by this
    // very process too, which F_GETLK would not report.
    match query(fd, libc::F_OFD_GETLK) {
        Some(held) => held,
        None => query(fd, libc::F_GETLK).unwrap_or(false),
    }
}

fn query(fd: i32, cmd: i32) -> Option<bool> {
    // SAFETY: flock is plain old data; all-zero is valid (l_pid must be 0 for OFD).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = HALT_BYTE;
    fl.l_len = 1;
    // SAFETY: `fd` is open for the duration of the call; `fl` is a valid flock.
    let rc = unsafe { libc::fcntl(fd, cmd, &mut fl) };
    (rc == 0).then_some(fl.l_type != libc::F_UNLCK as i16)
}

/// The longest a forwarded transaction may keep the halt lock: well under
/// LiteFS's 30-second expiry. An older hold counts as lost.
pub const MAX_HOLD: Duration = Duration::from_secs(20);

/// Forks of this process since it started (counted from the first
/// acquisition on). Each may drop a held halt lock: the child's copy of the
/// descriptor closes at exec or exit.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked_parent() {
    FORKS.fetch_add(1, Ordering::SeqCst);
}

/// Counts forks from now on. `posix_spawn` and `vfork` children run no
/// fork handlers: their loss shows in the `F_OFD_GETLK` probe instead.
fn watch_forks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a handler that only bumps an atomic counter;
        // glibc unregisters it if this library is ever unloaded.
        unsafe { libc::pthread_atfork(None, Some(forked_parent), None) };
    });
}

/// Why a halt lock could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcquireError {
    /// Not granted within the bound.
    Timeout,
    /// Refused or failed (e.g. EIO: no primary; ENOENT: not a LiteFS database).
    Failed(String),
}

/// A halt lock held by this process: two descriptors of one open file
/// description (the caller's and the waiter's), both numbered high.
/// Dropping it releases the lock.
#[derive(Debug)]
pub struct Held {
    /// Kept, never read: closing them is what releases the lock.
    #[allow(dead_code)]
    fds: [OwnedFd; 2],
    since: Instant,
    forks: u64,
}

impl Held {
    /// Why the lock is no longer this transaction's, or None when it still is.
    /// Asks LiteFS (`F_OFD_GETLK`) unless the answer is known without it —
    /// through another open file description of `db`'s lock file ([`is_held`]'s):
    /// through its own, a plain file shows no lock at all (a lock never
    /// conflicts with its own description), while LiteFS shows it to every prober.
    pub fn lost(&self, db: &Path) -> Option<String> {
        if FORKS.load(Ordering::SeqCst) != self.forks {
            return Some("may have been dropped: this process forked while holding it (a child closing its copy of the descriptor releases it)".into());
        }
        if self.since.elapsed() > MAX_HOLD {
            return Some(format!(
                "was held longer than {} s (LiteFS lets it expire at 30 s)",
                MAX_HOLD.as_secs()
            ));
        }
        if is_held(db) {
            None
        } else {
            Some("is no longer held (LiteFS released it: a child process closed its copy, the primary changed, or it expired)".into())
        }
    }
}

/// The lowest descriptor number above every descriptor open now.
fn above_open_descriptors() -> RawFd {
    let highest = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
                .max()
                .unwrap_or(2)
        })
        // No /proc: well above what a small process has open.
        .unwrap_or(255);
    highest + 1
}

/// `fd` moved to a number at or above `floor` (close-on-exec); the original closes.
fn move_high(fd: OwnedFd, floor: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: `fd` is open; F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let high = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor) };
    if high < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `high` was just created and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

/// The blocking request (`F_OFD_SETLKW`, write lock, byte 72, one byte).
/// An interrupted wait is asked again while `wanted` says so (a flush of the
/// description by an abandoning caller also ends it with EINTR).
fn request(fd: RawFd, wanted: &dyn Fn() -> bool) -> Result<(), i32> {
    // SAFETY: flock is plain old data; all-zero is valid (l_pid must be 0 for OFD).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = HALT_BYTE;
    fl.l_len = 1;
    loop {
        // SAFETY: `fd` stays open until this returns (see `acquire`); `fl` is valid.
        let rc = unsafe { libc::fcntl(fd, libc::F_OFD_SETLKW, &mut fl) };
        if rc == 0 {
            return Ok(());
        }
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        if errno != libc::EINTR || !wanted() {
            return Err(errno);
        }
        // A signal for this thread: ask again (the caller bounds the wait).
    }
}

enum Wait {
    Waiting,
    Done(Result<(), i32>),
    Abandoned,
}

/// Takes the halt lock of `db`, waiting at most `timeout`.
pub fn acquire(db: &Path, timeout: Duration) -> Result<Held, AcquireError> {
    watch_forks();
    let path = lock_path(db);
    let failed =
        |what: &str, e: std::io::Error| AcquireError::Failed(format!("{what} {}: {e}", path.display()));
    // Read-write (LiteFS answers EBADF otherwise); O_NONBLOCK and O_NOCTTY:
    // a FIFO or terminal in its place neither blocks nor becomes ours.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path)
        .map_err(|e| failed("opening", e))?;
    if !f.metadata().is_ok_and(|m| m.file_type().is_file()) {
        return Err(AcquireError::Failed(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    // Numbered above every descriptor open now — SQLite's of this database
    // included — before the request: moving it afterwards would release it.
    let floor = above_open_descriptors();
    let mine = move_high(OwnedFd::from(f), floor).map_err(|e| failed("moving the descriptor of", e))?;
    let theirs = move_high(mine.try_clone().map_err(|e| failed("duplicating", e))?, floor)
        .map_err(|e| failed("moving the descriptor of", e))?;
    let forks = FORKS.load(Ordering::SeqCst);
    let shared = Arc::new((Mutex::new(Wait::Waiting), Condvar::new()));
    let theirs_fd = theirs.as_raw_fd();
    let waiter = {
        let shared = shared.clone();
        let fd = theirs.as_raw_fd();
        move || {
            let (m, cv) = &*shared;
            let wanted = || matches!(*m.lock().unwrap_or_else(|e| e.into_inner()), Wait::Waiting);
            let r = request(fd, &wanted);
            let mut w = m.lock().unwrap_or_else(|e| e.into_inner());
            match *w {
                Wait::Abandoned => {
                    // The caller gave up and closed its copy; closing this one
                    // releases a lock granted meanwhile.
                    drop(w);
                    drop(theirs);
                }
                _ => {
                    *w = Wait::Done(r);
                    cv.notify_all();
                    // Kept open: the caller owns it now (closing it would
                    // release the lock). Leaked from this thread on purpose.
                    std::mem::forget(theirs);
                }
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("litefs-halt".into())
        .spawn(waiter)
    {
        return Err(AcquireError::Failed(format!("starting a waiter thread: {e}")));
    }
    let (m, cv) = &*shared;
    let deadline = Instant::now() + timeout;
    let mut w = m.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        match &*w {
            Wait::Done(r) => {
                let r = *r;
                drop(w);
                // SAFETY: the waiter handed its descriptor over (forgot it
                // after its request returned) and never touches it again.
                let theirs = unsafe { OwnedFd::from_raw_fd(theirs_fd) };
                return match r {
                    Ok(()) => Ok(Held {
                        fds: [mine, theirs],
                        since: Instant::now(),
                        forks,
                    }),
                    Err(errno) => Err(AcquireError::Failed(format!(
                        "{}: {}",
                        path.display(),
                        std::io::Error::from_raw_os_error(errno)
                    ))),
                };
            }
            Wait::Abandoned => unreachable!("only this thread abandons"),
            Wait::Waiting => {
                let now = Instant::now();
                if now >= deadline {
                    *w = Wait::Abandoned;
                    drop(w);
                    // A flush of the open file description: ends the pending
                    // request and releases a lock granted in the meantime.
                    drop(mine);
                    return Err(AcquireError::Timeout);
                }
                w = cv
                    .wait_timeout(w, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}
/// The halt locks held for guarded main database files, keyed by the file
/// (the address of its state); its `-wal` and `-journal` ask with the same key.
static HOLDS: Mutex<Vec<(usize, Held, PathBuf)>> = Mutex::new(Vec::new());
/// How many entries HOLDS has: a write with none to check costs one load.
static N_HOLDS: AtomicUsize = AtomicUsize::new(0);

fn holds() -> std::sync::MutexGuard<'static, Vec<(usize, Held, PathBuf)>> {
    HOLDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes the halt lock of `db` for the file `key` (see [`acquire`]).
pub fn take(key: usize, db: &Path, timeout: Duration) -> Result<(), AcquireError> {
    let held = acquire(db, timeout)?;
    let mut h = holds();
    h.push((key, held, db.to_path_buf()));
    N_HOLDS.store(h.len(), Ordering::SeqCst);
    Ok(())
}

/// Whether `key` holds a halt lock (lost or not).
#[cfg(test)]
pub fn has(key: usize) -> bool {
    N_HOLDS.load(Ordering::SeqCst) != 0 && holds().iter().any(|(k, ..)| *k == key)
}

/// Why the halt lock of `key` is lost; None when it is still held, or when
/// `key` holds none.
pub fn lost(key: usize) -> Option<String> {
    if N_HOLDS.load(Ordering::SeqCst) == 0 {
        return None;
    }
    holds()
        .iter()
        .find(|(k, ..)| *k == key)
        .and_then(|(_, h, db)| h.lost(db))
}

/// Releases the halt lock of `key`, if it holds one; true when it did. The
/// close may wait (LiteFS releases once every WAL lock of the database on
/// this node is free): it happens outside the registry's mutex.
pub fn give_back(key: usize) -> bool {
    let held = {
        let mut h = holds();
        let i = h.iter().position(|(k, ..)| *k == key);
        let held = i.map(|i| h.swap_remove(i));
        N_HOLDS.store(h.len(), Ordering::SeqCst);
        held
    };
    held.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// Another open file description of the lock file, holding byte 72.
    fn hold_elsewhere(db: &Path) -> File {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(lock_path(db))
            .unwrap();
        // SAFETY: as in `request`.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as i16;
        fl.l_start = HALT_BYTE;
        fl.l_len = 1;
        // SAFETY: an open descriptor and a valid flock.
        let rc = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
        assert_eq!(rc, 0);
        f
    }

    fn probe(db: &Path) -> bool {
        let f = File::open(lock_path(db)).unwrap();
        query(f.as_raw_fd(), libc::F_OFD_GETLK).unwrap()
    }

    #[test]
    fn acquire_takes_byte_72_on_a_high_descriptor_and_dropping_releases_it() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("app.db");
        std::fs::write(lock_path(&db), b"").unwrap();
        let floor = above_open_descriptors();
        let held = acquire(&db, Duration::from_secs(5)).unwrap();
        assert!(
            held.fds.iter().all(|f| f.as_raw_fd() >= floor),
            "above every open descriptor"
        );
        for f in &held.fds {
            // SAFETY: an open descriptor.
            let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFD) };
            assert_ne!(flags & libc::FD_CLOEXEC, 0, "close-on-exec");
        }
        assert!(probe(&db), "another description sees it");
        drop(held);
        assert!(!probe(&db), "released");
    }

    #[test]
    fn acquire_gives_up_after_the_timeout_and_leaves_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("app.db");
        std::fs::write(lock_path(&db), b"").unwrap();
        let other = hold_elsewhere(&db);
        let t0 = Instant::now();
        assert_eq!(
            acquire(&db, Duration::from_millis(200)).unwrap_err(),
            AcquireError::Timeout
        );
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "{took:?}"
        );
        // The abandoned request, granted once the other holder lets go, is
        // released by its waiter at once: a third party gets the lock.
        drop(other);
        let again = acquire(&db, Duration::from_secs(5)).expect("not left held by the abandoned waiter");
        drop(again);
        assert!(!probe(&db));
    }

    #[test]
    fn registry_take_lost_give_back() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("app.db");
        std::fs::write(lock_path(&db), b"").unwrap();
        take(7, &db, Duration::from_secs(5)).unwrap();
        assert!(has(7) && !has(8));
        assert_eq!(lost(8), None, "no hold, nothing lost");
        // Probed through another open file description: held, on a local
        // file as on LiteFS (which shows it to every prober on the node).
        assert_eq!(lost(7), None);
        assert!(probe(&db));
        assert!(give_back(7));
        assert!(!give_back(7), "exactly once");
        assert!(!probe(&db));
        // A fork counts as a loss whatever the probe says.
        take(9, &db, Duration::from_secs(5)).unwrap();
        forked_parent();
        assert!(lost(9).unwrap().contains("forked"));
        give_back(9);
    }

    #[test]
    fn a_hold_older_than_the_bound_counts_as_lost() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("app.db");
        std::fs::write(lock_path(&db), b"").unwrap();
        let mut held = acquire(&db, Duration::from_secs(5)).unwrap();
        held.since -= MAX_HOLD + Duration::from_secs(1);
        assert!(held.lost(&db).unwrap().contains("longer than 20 s"));
    }

    #[test]
    fn a_missing_lock_file_fails_at_once() {
        let d = tempfile::tempdir().unwrap();
        let e = acquire(&d.path().join("none.db"), Duration::from_secs(5)).unwrap_err();
        assert!(
            matches!(e, AcquireError::Failed(ref m) if m.contains("none.db-lock")),
            "{e:?}"
        );
    }

    #[test]
    fn a_fifo_in_place_of_the_lock_file_never_blocks() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("app.db");
        let fifo = std::ffi::CString::new(lock_path(&db).as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(is_held(&db));
        });
        let held = rx.recv_timeout(std::time::Duration::from_secs(1));
        assert_eq!(held, Ok(false));
    }
}
