//! The real [`Line`]: one small shared-memory file per database on the node,
//! `/dev/shm/litefs_guard.<dev>.<inode>.line`, mapped by every process that
//! waits for that database's write lock (see `fairwait` for the protocol).
//!
//! Layout (one 4 KiB page, all fields atomics; all-zero is the empty line):
//! a header — the ticket counter (u64 at 0), how many times a guarded
//! writer released the lock (u64 at 8), whether one holds it (u32 at 16),
//! how many slots are taken (u32 at 20) — then [`SLOTS`] slots of 32 bytes
//! from 64: the waiter's ticket (0: empty), its heartbeat (CLOCK_MONOTONIC
//! µs, the same clock in every process) and a futex word its wakers bump.
//!
//! Keyed by the database file's device and inode, so every alias of the
//! path shares one line. Each attached process holds a shared OFD lock on the
//! file; the last one to let go (its exclusive lock granted) unlinks it, so
//! nothing is left behind once no process waits. A process that died
//! attached leaves its file: the first line a process opens sweeps away
//! every line file nobody holds. A file that is not ours (another owner, a
//! symlink, the wrong size) is not used, nor is one whose space cannot be
//! reserved (a full `/dev/shm`): the connection then waits as the busy
//! handler does. The line orders waiters; it never
//! decides who holds the lock, so a tampered line costs fairness, not safety.

use super::seams::Line;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Places in one line; a waiter finding it full waits as without it.
const SLOTS: usize = 126;
const SLOT0: usize = 64;
const SLOT_SIZE: usize = 32;
const SIZE: usize = SLOT0 + SLOTS * SLOT_SIZE;
const TICKETS: usize = 0;
const RELEASES: usize = 8;
const HELD: usize = 16;
const TAKEN: usize = 20;
/// A waiter whose heartbeat is this old is passed over (it refreshes at
/// least every `fairwait::BACK_DOZE`).
const STALE_US: u64 = 200_000;
/// Where the lines live: node-local shared memory.
const DIR: &str = "/dev/shm";

/// One database's line, mapped.
pub(super) struct RealLine {
    map: *mut u8,
    path: PathBuf,
    /// Holds the shared "attached" lock for as long as the line is mapped.
    fd: OwnedFd,
    /// The file's identity, to unlink only this file.
    ino: (u64, u64),
    /// The process that opened it: a forked child shares its OFD lock, so
    /// only this process may take that lock as "the last one out".
    pid: u32,
    /// Some connection of this process was seen sleeping in this line: a
    /// new one to the database is taken to sleep here too.
    sleepers_seen: AtomicBool,
}

// SAFETY: the mapping is only read and written through atomics; the fd
// and path are plain owned values.
unsafe impl Send for RealLine {}
// SAFETY: as above.
unsafe impl Sync for RealLine {}

/// A database file's (device, inode).
type FileId = (u64, u64);

/// The lines this process has mapped.
static LINES: Mutex<Option<HashMap<FileId, Weak<RealLine>>>> = Mutex::new(None);

/// The line of the database at `db`, mapped once per process; None when
/// the file cannot be looked at or the line cannot be had here.
pub(super) fn attach(db: &Path) -> Option<Arc<RealLine>> {
    let meta = std::fs::metadata(db).ok()?;
    let key = (
        std::os::unix::fs::MetadataExt::dev(&meta),
        std::os::unix::fs::MetadataExt::ino(&meta),
    );
    let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    let lines = lines.get_or_insert_with(HashMap::new);
    if let Some(l) = lines.get(&key).and_then(Weak::upgrade) {
        return Some(l);
    }
    lines.retain(|_, w| w.strong_count() > 0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(sweep);
    let path = Path::new(DIR).join(format!("litefs_guard.{:x}.{:x}.line", key.0, key.1));
    let line = Arc::new(RealLine::open(path)?);
    lines.insert(key, Arc::downgrade(&line));
    Some(line)
}

fn ofd_lock(fd: &OwnedFd, kind: libc::c_short) -> bool {
    // SAFETY: flock is plain old data; all-zero is valid (l_pid must be 0 for OFD).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: a valid fd and a valid flock; F_OFD_SETLK does not block.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) == 0 }
}

/// Removes the line files nobody holds (left by processes that died
/// attached). A process opening one at the same moment notices (its file
/// is no longer at the name) and opens again.
fn sweep() {
    let Ok(dir) = std::fs::read_dir(DIR) else { return };
    for e in dir.flatten() {
        let name = e.file_name();
        let n = name.as_bytes();
        if !(n.starts_with(b"litefs_guard.") && n.ends_with(b".line")) {
            continue;
        }
        let path = e.path();
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: a NUL-terminated path; no create, no symlink followed.
        let raw = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if raw < 0 {
            continue;
        }
        // SAFETY: a descriptor just opened, owned from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if identity(&fd).is_some_and(|(id, owner)| owner && id == identity_of_path(&c).unwrap_or_default())
            && ofd_lock(&fd, libc::F_WRLCK as libc::c_short)
        {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// (device, inode) of an open file, and whether it is a regular file of ours.
fn identity(fd: &OwnedFd) -> Option<(FileId, bool)> {
    // SAFETY: stat is plain old data.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and stat buffer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return None;
    }
    // SAFETY: geteuid cannot fail.
    let ours = st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_uid == unsafe { libc::geteuid() };
    Some(((st.st_dev, st.st_ino), ours))
}

/// (device, inode) of what a path names now, without following a symlink.
fn identity_of_path(c: &CString) -> Option<FileId> {
    // SAFETY: stat is plain old data.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid stat buffer.
    (unsafe { libc::lstat(c.as_ptr(), &mut st) } == 0).then_some((st.st_dev, st.st_ino))
}

fn now_us() -> u64 {
    // SAFETY: timespec is plain old data.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

impl RealLine {
    fn open(path: PathBuf) -> Option<RealLine> {
        let c = CString::new(path.as_os_str().as_bytes()).ok()?;
        // A file unlinked by its last user between our open and our lock is
        // noticed below and opened again.
        for _ in 0..3 {
            // SAFETY: a NUL-terminated path; the flags refuse a symlink.
            let raw = unsafe {
                libc::open(
                    c.as_ptr(),
                    libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0o600,
                )
            };
            if raw < 0 {
                return None;
            }
            // SAFETY: a descriptor just opened, owned from here on.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let (ino, ours) = identity(&fd)?;
            if !ours {
                return None;
            }
            // Refused while the last user (or a sweep) holds it exclusively,
            // about to unlink it: open again.
            if !ofd_lock(&fd, libc::F_RDLCK as libc::c_short) {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            // Still the file at that name (not one its last user unlinked)?
            if identity_of_path(&c) != Some(ino) {
                continue;
            }
            // SAFETY: stat is plain old data.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: a valid fd and stat buffer.
            if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
                return None;
            }
            let size = st.st_size as usize;
            if size != 0 && size != SIZE {
                return None;
            }
            // Reserve the space (growing an empty file zero-fills it): on a
            // sparse file in a full tmpfs the first store would be SIGBUS.
            // SAFETY: a valid fd; offset and length within the file we size.
            if unsafe { libc::posix_fallocate(fd.as_raw_fd(), 0, SIZE as libc::off_t) } != 0 {
                return None;
            }
            // SAFETY: a shared mapping of the file's SIZE bytes, page-aligned by mmap.
            let map = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    SIZE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if map == libc::MAP_FAILED {
                return None;
            }
            return Some(RealLine {
                map: map as *mut u8,
                path,
                fd,
                ino,
                pid: std::process::id(),
                sleepers_seen: AtomicBool::new(false),
            });
        }
        None
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off + 8 <= SIZE && off % 8 == 0);
        // SAFETY: inside the mapping, 8-byte aligned (the mapping is
        // page-aligned); the mapping lives as long as `self`.
        unsafe { &*(self.map.add(off) as *const AtomicU64) }
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off + 4 <= SIZE && off % 4 == 0);
        // SAFETY: as in u64_at, 4-byte aligned.
        unsafe { &*(self.map.add(off) as *const AtomicU32) }
    }

    fn slot_ticket(&self, i: usize) -> &AtomicU64 {
        self.u64_at(SLOT0 + i * SLOT_SIZE)
    }

    fn slot_beat(&self, i: usize) -> &AtomicU64 {
        self.u64_at(SLOT0 + i * SLOT_SIZE + 8)
    }

    fn slot_word(&self, i: usize) -> &AtomicU32 {
        self.u32_at(SLOT0 + i * SLOT_SIZE + 16)
    }

    /// The live slot with the oldest ticket.
    fn front(&self) -> Option<(usize, u64)> {
        // Nobody in line (the uncontended case): no scan.
        if self.u32_at(TAKEN).load(Ordering::Acquire) == 0 {
            return None;
        }
        let now = now_us();
        (0..SLOTS)
            .filter_map(|i| {
                let t = self.slot_ticket(i).load(Ordering::Acquire);
                let live = t != 0 && now.saturating_sub(self.slot_beat(i).load(Ordering::Acquire)) < STALE_US;
                live.then_some((i, t))
            })
            .min_by_key(|(_, t)| *t)
    }
}

impl Line for RealLine {
    fn ticket(&self) -> u64 {
        self.u64_at(TICKETS).fetch_add(1, Ordering::AcqRel) + 1
    }

    fn join(&self, ticket: u64) -> Option<usize> {
        let now = now_us();
        (0..SLOTS).find(|&i| {
            // The heartbeat first, so the slot is never seen taken and stale.
            let free = self.slot_ticket(i).load(Ordering::Acquire) == 0;
            free && {
                self.slot_beat(i).store(now, Ordering::Release);
                let won = self
                    .slot_ticket(i)
                    .compare_exchange(0, ticket, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if won {
                    self.u32_at(TAKEN).fetch_add(1, Ordering::AcqRel);
                }
                won
            }
        })
    }

    fn refresh(&self, slot: usize) {
        self.slot_beat(slot).store(now_us(), Ordering::Release);
    }

    fn leave(&self, slot: usize) {
        if self.slot_ticket(slot).swap(0, Ordering::AcqRel) != 0 {
            // Never below zero (a dead waiter's slot may have been counted).
            let _ = self
                .u32_at(TAKEN)
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    fn older_than(&self, ticket: Option<u64>) -> bool {
        self.front()
            .is_some_and(|(_, t)| ticket.is_none_or(|mine| t < mine))
    }

    fn seen(&self, slot: usize) -> u32 {
        self.slot_word(slot).load(Ordering::Acquire)
    }

    fn doze(&self, slot: usize, seen: u32, d: Duration) {
        let ts = libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        };
        // SAFETY: a shared (not private) futex on a word of the mapping, so
        // wakers in other processes reach it; a relative timeout. It returns
        // at once if the word moved past `seen`.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.slot_word(slot).as_ptr(),
                libc::FUTEX_WAIT,
                seen,
                &ts as *const libc::timespec,
            )
        };
    }

    fn wake_front(&self) {
        if let Some((i, _)) = self.front() {
            let w = self.slot_word(i);
            w.fetch_add(1, Ordering::AcqRel);
            // SAFETY: as in doze.
            unsafe { libc::syscall(libc::SYS_futex, w.as_ptr(), libc::FUTEX_WAKE, 1) };
        }
    }

    fn held(&self) -> bool {
        self.held_word().load(Ordering::Acquire) != 0
    }

    fn hold(&self) {
        self.held_word().store(1, Ordering::Release);
    }

    fn release(&self) {
        self.held_word().store(0, Ordering::Release);
        self.u64_at(RELEASES).fetch_add(1, Ordering::AcqRel);
        self.wake_front();
    }

    fn releases(&self) -> u64 {
        self.u64_at(RELEASES).load(Ordering::Acquire)
    }
}

impl RealLine {
    fn held_word(&self) -> &AtomicU32 {
        self.u32_at(HELD)
    }

    pub fn sleepers_seen(&self) -> bool {
        self.sleepers_seen.load(Ordering::Relaxed)
    }

    pub fn saw_a_sleeper(&self) {
        self.sleepers_seen.store(true, Ordering::Relaxed);
    }
}

impl Drop for RealLine {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`, no reference into it outlives `self`.
        unsafe { libc::munmap(self.map as *mut libc::c_void, SIZE) };
        // The last process attached (its exclusive lock granted) removes
        // the file — its own file, never a newer one at the same name. A
        // forked child shares the parent's lock: it leaves that to the parent.
        if self.pid != std::process::id() {
            return;
        }
        let same = CString::new(self.path.as_os_str().as_bytes())
            .ok()
            .and_then(|c| identity_of_path(&c))
            == Some(self.ino);
        if same && ofd_lock(&self.fd, libc::F_WRLCK as libc::c_short) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_in(dir: &Path) -> RealLine {
        RealLine::open(dir.join("test.line")).expect("a line in a temp dir")
    }

    #[test]
    fn the_front_is_the_oldest_live_ticket() {
        let dir = tempfile::tempdir().unwrap();
        let l = line_in(dir.path());
        let (a, b) = (l.ticket(), l.ticket());
        assert!(a < b);
        let sb = l.join(b).unwrap();
        assert!(!l.older_than(Some(b)));
        assert!(l.older_than(None));
        let sa = l.join(a).unwrap();
        assert!(l.older_than(Some(b)), "a's ticket is older");
        assert_eq!(l.front().map(|f| f.1), Some(a));
        // A silent waiter is passed over.
        l.slot_beat(sa).store(now_us() - STALE_US - 1, Ordering::Release);
        assert_eq!(l.front().map(|f| f.1), Some(b));
        l.leave(sa);
        l.leave(sb);
        assert!(!l.older_than(None));
    }

    #[test]
    fn a_full_line_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let l = line_in(dir.path());
        for _ in 0..SLOTS {
            assert!(l.join(l.ticket()).is_some());
        }
        assert!(l.join(l.ticket()).is_none());
    }

    #[test]
    fn a_wake_reaches_a_dozing_waiter_in_another_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(line_in(dir.path()));
        let b = line_in(dir.path());
        let slot = a.join(a.ticket()).unwrap();
        let seen = a.seen(slot);
        let a2 = a.clone();
        let t = std::thread::spawn(move || {
            let start = std::time::Instant::now();
            a2.doze(slot, seen, Duration::from_secs(5));
            start.elapsed()
        });
        // (Well within the staleness bound: a dozing waiter is still live.)
        std::thread::sleep(Duration::from_millis(10));
        b.wake_front();
        let waited = t.join().unwrap();
        assert!(
            waited < Duration::from_secs(2),
            "woken, not timed out: {waited:?}"
        );
        // A wake between `seen` and the doze is not lost.
        let seen = a.seen(slot);
        b.wake_front();
        let start = std::time::Instant::now();
        a.doze(slot, seen, Duration::from_secs(5));
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn the_last_one_out_removes_the_file_and_a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("test.line");
        let a = line_in(dir.path());
        let b = line_in(dir.path());
        drop(a);
        assert!(p.exists(), "b still uses it");
        drop(b);
        assert!(!p.exists(), "nothing left behind");
        std::fs::write(&p, b"not a line").unwrap();
        assert!(RealLine::open(p.clone()).is_none(), "wrong size");
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &p).unwrap();
        assert!(RealLine::open(p.clone()).is_none(), "a symlink is not followed");
        assert!(!dir.path().join("elsewhere").exists());
    }
}
