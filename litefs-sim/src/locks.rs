//! POSIX (fcntl) record locks kept by the daemon, one table per backing file
//! shared by every mount.
//!
//! The kernel keeps FUSE locks per inode of one mount, so without this table
//! a lock taken through node A would not exclude node B. With
//! FUSE_POSIX_LOCKS negotiated the kernel forwards GETLK/SETLK/SETLKW and the
//! close-time FLUSH to us instead, and we apply POSIX rules across mounts.
//! Owners are `(node, lock_owner)`: lock_owner is the kernel's per-process id
//! (scrambled per connection), so two processes on one node differ too.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Completion of a blocking request: `Ok` once granted, `Err(errno)` if cancelled.
pub type Done = Box<dyn FnOnce(Result<(), i32>) + Send>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    pub node: usize,
    pub id: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    Read,
    Write,
}

impl LockType {
    /// F_RDLCK/F_WRLCK; `None` for F_UNLCK or garbage.
    pub fn from_fcntl(t: i32) -> Option<LockType> {
        match t {
            libc::F_RDLCK => Some(LockType::Read),
            libc::F_WRLCK => Some(LockType::Write),
            _ => None,
        }
    }

    pub fn to_fcntl(self) -> i32 {
        match self {
            LockType::Read => libc::F_RDLCK,
            LockType::Write => libc::F_WRLCK,
        }
    }
}

/// Owner node of the locks the halt lock puts in front of the primary's
/// writers (see [`LockTable::block_node`]); no real node has this index.
pub const HALT_NODE: usize = usize::MAX;

/// A held lock on the inclusive byte range `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub owner: Owner,
    pub typ: LockType,
    pub start: u64,
    pub end: u64,
    pub pid: u32,
    /// `Some(n)`: conflicts only with owners on node `n` (a halt blocker).
    pub only: Option<usize>,
}

/// The parameters of one lock request.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub owner: Owner,
    pub typ: LockType,
    pub start: u64,
    pub end: u64,
    pub pid: u32,
}

struct Waiter {
    file: String,
    req: Request,
    /// Kernel thread id of the blocked caller, to notice its signals.
    tid: u32,
    done: Done,
}

#[derive(Default)]
struct Inner {
    files: HashMap<String, Vec<Held>>,
    waiters: Vec<Waiter>,
}

#[derive(Default)]
pub struct LockTable {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for LockTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockTable")
    }
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

fn conflicts<'a>(locks: &'a [Held], r: &'a Request) -> impl Iterator<Item = &'a Held> + 'a {
    locks.iter().filter(move |l| {
        l.owner != r.owner
            && l.only.is_none_or(|n| n == r.owner.node)
            && overlaps((l.start, l.end), (r.start, r.end))
            && (l.typ == LockType::Write || r.typ == LockType::Write)
    })
}

/// Drops `owner`'s coverage of `start..=end`, splitting locks that straddle it.
fn remove_range(locks: &mut Vec<Held>, owner: Owner, start: u64, end: u64) {
    let mut out = Vec::with_capacity(locks.len() + 1);
    for l in locks.drain(..) {
        if l.owner != owner || !overlaps((l.start, l.end), (start, end)) {
            out.push(l);
            continue;
        }
        if l.start < start {
            out.push(Held { end: start - 1, ..l });
        }
        if l.end > end {
            out.push(Held { start: end + 1, ..l });
        }
    }
    *locks = out;
}

/// Installs a lock, replacing the owner's previous coverage of the range and
/// merging with the owner's adjacent locks of the same type.
fn apply(locks: &mut Vec<Held>, r: &Request) {
    remove_range(locks, r.owner, r.start, r.end);
    let mut new = Held {
        owner: r.owner,
        typ: r.typ,
        start: r.start,
        end: r.end,
        pid: r.pid,
        only: None,
    };
    // After remove_range only neighbours touching the range can merge.
    locks.retain(|l| {
        let touches = l.start <= new.end.saturating_add(1) && new.start <= l.end.saturating_add(1);
        if l.owner == new.owner && l.typ == new.typ && touches {
            new.start = new.start.min(l.start);
            new.end = new.end.max(l.end);
            false
        } else {
            true
        }
    });
    locks.push(new);
}

impl Inner {
    /// Grants waiters on `file` that no longer conflict, in arrival order.
    fn wake(&mut self, file: &str, granted: &mut Vec<Done>) {
        let mut i = 0;
        while i < self.waiters.len() {
            if self.waiters[i].file == file {
                let locks = self.files.entry(file.to_string()).or_default();
                if conflicts(locks, &self.waiters[i].req).next().is_none() {
                    let w = self.waiters.remove(i);
                    apply(locks, &w.req);
                    granted.push(w.done);
                    continue;
                }
            }
            i += 1;
        }
    }

    /// Would `owner` waiting for `r` on `file` close a cycle of waiters?
    fn would_deadlock(&self, file: &str, r: &Request) -> bool {
        let blockers = |file: &str, r: &Request| -> Vec<Owner> {
            self.files
                .get(file)
                .map(|l| conflicts(l, r).map(|h| h.owner).collect())
                .unwrap_or_default()
        };
        let mut stack = blockers(file, r);
        let mut seen = HashSet::new();
        while let Some(o) = stack.pop() {
            if o == r.owner {
                return true;
            }
            if !seen.insert(o) {
                continue;
            }
            for w in self.waiters.iter().filter(|w| w.req.owner == o) {
                stack.extend(blockers(&w.file, &w.req));
            }
        }
        false
    }
}

fn finish(done: Vec<Done>, result: Result<(), i32>) {
    for d in done {
        d(result);
    }
}

impl LockTable {
    pub fn new() -> LockTable {
        LockTable::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every mutation below leaves the table consistent, so poison is harmless.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// F_GETLK: the first lock that would block `r`, if any.
    pub fn test(&self, file: &str, r: &Request) -> Option<Held> {
        let inner = self.lock();
        inner
            .files
            .get(file)
            .and_then(|l| conflicts(l, r).next().copied())
    }

    /// F_SETLK: grant now or fail with EAGAIN.
    pub fn try_set(&self, file: &str, r: &Request) -> Result<(), i32> {
        let mut inner = self.lock();
        let locks = inner.files.entry(file.to_string()).or_default();
        if conflicts(locks, r).next().is_some() {
            return Err(libc::EAGAIN);
        }
        apply(locks, r);
        // A downgrade (write -> read) may unblock readers.
        let mut granted = Vec::new();
        inner.wake(file, &mut granted);
        drop(inner);
        finish(granted, Ok(()));
        Ok(())
    }

    /// F_SETLKW: `done` runs once the lock is granted (possibly right away),
    /// or with EDEADLK / EINTR. Never blocks the calling thread.
    pub fn set_wait(&self, file: &str, r: &Request, tid: u32, done: Done) {
        let mut inner = self.lock();
        let locks = inner.files.entry(file.to_string()).or_default();
        if conflicts(locks, r).next().is_none() {
            apply(locks, r);
            let mut granted = Vec::new();
            inner.wake(file, &mut granted);
            drop(inner);
            finish(granted, Ok(()));
            done(Ok(()));
            return;
        }
        if inner.would_deadlock(file, r) {
            drop(inner);
            done(Err(libc::EDEADLK));
            return;
        }
        inner.waiters.push(Waiter {
            file: file.to_string(),
            req: *r,
            tid,
            done,
        });
    }

    /// F_UNLCK of a range.
    pub fn unlock(&self, file: &str, owner: Owner, start: u64, end: u64) {
        let mut inner = self.lock();
        if let Some(locks) = inner.files.get_mut(file) {
            remove_range(locks, owner, start, end);
        }
        let mut granted = Vec::new();
        inner.wake(file, &mut granted);
        drop(inner);
        finish(granted, Ok(()));
    }

    /// Puts a write lock on `start..=end` of `file` that only owners on
    /// `node` conflict with, whatever is held there already (the primary's
    /// transaction in flight finishes; its next one waits). Owned by
    /// `(HALT_NODE, tag)`; [`LockTable::unblock`] removes it.
    pub fn block_node(&self, file: &str, node: usize, tag: u64, start: u64, end: u64) {
        let owner = Owner {
            node: HALT_NODE,
            id: tag,
        };
        let mut inner = self.lock();
        let locks = inner.files.entry(file.to_string()).or_default();
        remove_range(locks, owner, start, end);
        locks.push(Held {
            owner,
            typ: LockType::Write,
            start,
            end,
            pid: 0,
            only: Some(node),
        });
    }

    /// Removes what [`LockTable::block_node`] put on `file` under `tag`.
    pub fn unblock(&self, file: &str, tag: u64) {
        self.release_owner(
            file,
            Owner {
                node: HALT_NODE,
                id: tag,
            },
        );
    }

    /// Close of any descriptor of `file` by `owner` drops all its locks (POSIX).
    pub fn release_owner(&self, file: &str, owner: Owner) {
        self.unlock(file, owner, 0, u64::MAX);
    }

    /// Cancels blocked requests whose caller thread `interrupted(tid)` says
    /// has a signal to handle (FUSE would send INTERRUPT; fuser drops those).
    pub fn cancel_interrupted(&self, interrupted: impl Fn(u32) -> bool) -> usize {
        let mut inner = self.lock();
        let mut cancelled = Vec::new();
        let mut i = 0;
        while i < inner.waiters.len() {
            if interrupted(inner.waiters[i].tid) {
                cancelled.push(inner.waiters.remove(i).done);
            } else {
                i += 1;
            }
        }
        drop(inner);
        let n = cancelled.len();
        finish(cancelled, Err(libc::EINTR));
        n
    }

    /// Fails every blocked request (shutdown).
    pub fn cancel_all(&self) -> usize {
        self.cancel_interrupted(|_| true)
    }

    /// Snapshot for the `locks` control command and tests.
    pub fn held(&self) -> Vec<(String, Held)> {
        let inner = self.lock();
        let mut out: Vec<(String, Held)> = inner
            .files
            .iter()
            .flat_map(|(f, l)| l.iter().map(move |h| (f.clone(), *h)))
            .collect();
        out.sort_by(|a, b| (&a.0, a.1.start).cmp(&(&b.0, b.1.start)));
        out
    }

    pub fn waiting(&self) -> usize {
        self.lock().waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const A: Owner = Owner { node: 0, id: 1 };
    const B: Owner = Owner { node: 1, id: 1 };
    const C: Owner = Owner { node: 0, id: 2 };

    fn req(owner: Owner, typ: LockType, start: u64, end: u64) -> Request {
        Request {
            owner,
            typ,
            start,
            end,
            pid: 1,
        }
    }

    #[test]
    fn readers_share_writers_exclude() {
        let t = LockTable::new();
        assert_eq!(t.try_set("f", &req(A, LockType::Read, 0, 9)), Ok(()));
        assert_eq!(t.try_set("f", &req(B, LockType::Read, 5, 20)), Ok(()));
        assert_eq!(t.try_set("f", &req(C, LockType::Write, 9, 9)), Err(libc::EAGAIN));
        assert_eq!(t.try_set("f", &req(C, LockType::Write, 21, 30)), Ok(()));
        // Same owner never conflicts with itself; upgrade in place.
        assert_eq!(t.try_set("f", &req(C, LockType::Write, 25, 40)), Ok(()));
        assert_eq!(t.try_set("other", &req(B, LockType::Write, 0, 99)), Ok(()));
    }

    #[test]
    fn ranges_split_and_merge() {
        let t = LockTable::new();
        t.try_set("f", &req(A, LockType::Write, 0, 99)).unwrap();
        t.unlock("f", A, 10, 19);
        let held: Vec<_> = t.held().into_iter().map(|(_, h)| (h.start, h.end)).collect();
        assert_eq!(held, vec![(0, 9), (20, 99)]);
        assert!(t.try_set("f", &req(B, LockType::Write, 10, 19)).is_ok());
        t.release_owner("f", B);
        t.try_set("f", &req(A, LockType::Write, 10, 19)).unwrap();
        let held: Vec<_> = t.held().into_iter().map(|(_, h)| (h.start, h.end)).collect();
        assert_eq!(held, vec![(0, 99)]);
        // Downgrading the middle splits into three pieces of two types.
        t.try_set("f", &req(A, LockType::Read, 40, 49)).unwrap();
        assert_eq!(t.held().len(), 3);
        assert!(t.try_set("f", &req(B, LockType::Read, 40, 49)).is_ok());
        assert!(t.try_set("f", &req(B, LockType::Read, 39, 49)).is_err());
    }

    #[test]
    fn waiters_are_granted_on_unlock_and_deadlocks_detected() {
        let t = LockTable::new();
        t.try_set("f", &req(A, LockType::Write, 0, 0)).unwrap();
        t.try_set("g", &req(B, LockType::Write, 0, 0)).unwrap();
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        t.set_wait(
            "f",
            &req(B, LockType::Write, 0, 0),
            10,
            Box::new(move |r| tx.send(("b", r)).unwrap()),
        );
        assert_eq!(t.waiting(), 1);
        // A waiting for g (held by B, who waits for A) is a deadlock.
        t.set_wait(
            "g",
            &req(A, LockType::Write, 0, 0),
            11,
            Box::new(move |r| tx2.send(("a", r)).unwrap()),
        );
        assert_eq!(rx.recv().unwrap(), ("a", Err(libc::EDEADLK)));
        t.release_owner("f", A);
        assert_eq!(rx.recv().unwrap(), ("b", Ok(())));
        assert_eq!(t.waiting(), 0);
        assert_eq!(t.test("f", &req(A, LockType::Read, 0, 0)).unwrap().owner, B);
    }

    #[test]
    fn interrupted_waiters_get_eintr() {
        let t = LockTable::new();
        t.try_set("f", &req(A, LockType::Write, 0, 0)).unwrap();
        let (tx, rx) = mpsc::channel();
        t.set_wait(
            "f",
            &req(B, LockType::Read, 0, 0),
            42,
            Box::new(move |r| tx.send(r).unwrap()),
        );
        assert_eq!(t.cancel_interrupted(|tid| tid == 7), 0);
        assert_eq!(t.cancel_interrupted(|tid| tid == 42), 1);
        assert_eq!(rx.recv().unwrap(), Err(libc::EINTR));
    }

    #[test]
    fn node_blockers_stop_only_their_node() {
        let t = LockTable::new();
        t.block_node("f", 0, 9, 120, 120);
        assert_eq!(
            t.try_set("f", &req(A, LockType::Write, 120, 120)),
            Err(libc::EAGAIN)
        );
        assert_eq!(
            t.try_set("f", &req(C, LockType::Read, 120, 120)),
            Err(libc::EAGAIN)
        );
        assert_eq!(t.try_set("f", &req(B, LockType::Write, 120, 120)), Ok(()));
        t.release_owner("f", B);
        let (tx, rx) = mpsc::channel();
        t.set_wait(
            "f",
            &req(A, LockType::Write, 120, 120),
            1,
            Box::new(move |r| tx.send(r).unwrap()),
        );
        assert!(rx.try_recv().is_err());
        t.unblock("f", 9);
        assert_eq!(rx.recv().unwrap(), Ok(()));
    }
}
