//! LiteFS's HALT lock: who holds it for which database, who waits, and when
//! a hold expires. Pure bookkeeping; `Cluster` turns holds into writability
//! and into locks in front of the primary's writers.
//!
//! As in LiteFS (`fuse/lock_node.go`) a hold belongs to one open file
//! description of `NAME-lock` (a FUSE file handle), not to a process: any
//! flush of that handle releases it, and a second acquisition through the
//! same handle is `ENOLCK`. One holder per database cluster-wide (LiteFS
//! takes the primary's write lock for it); later requests queue in order.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::locks::Done;

/// Byte of `NAME-lock` that is the halt lock (LiteFS's `LockTypeHalt`).
pub const HALT_BYTE: u64 = 72;

/// LiteFS's halt lock TTL.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(30);

/// One open `NAME-lock` handle on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HaltOwner {
    pub node: usize,
    pub fh: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    pub owner: HaltOwner,
    pub since: Instant,
}

/// A hold that ended, and the queued request it lets in (if any).
pub struct Handoff {
    pub db: String,
    pub released: Holder,
    pub next: Option<(HaltOwner, Done)>,
}

/// A queued request taken out of the table (lease moved: decide again).
pub struct Pending {
    pub db: String,
    pub owner: HaltOwner,
    pub tid: u32,
    pub done: Done,
}

/// What [`HaltTable::acquire`] did with a request.
pub enum Acquire {
    /// Held now; the caller answers with the returned completion.
    Granted(Done),
    /// Someone else holds it; the completion runs on hand-off.
    Queued,
    /// This handle already holds or waits for it: `ENOLCK` (given to the completion).
    Refused,
}

#[derive(Default)]
struct Inner {
    held: HashMap<String, Holder>,
    waiters: Vec<Pending>,
}

pub struct HaltTable {
    expiry: Duration,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for HaltTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HaltTable(expiry={:?})", self.expiry)
    }
}

impl Inner {
    /// Hands `db` to its first waiter, if any.
    fn next_for(&mut self, db: &str, now: Instant) -> Option<(HaltOwner, Done)> {
        let i = self.waiters.iter().position(|w| w.db == db)?;
        let w = self.waiters.remove(i);
        self.held.insert(
            db.to_string(),
            Holder {
                owner: w.owner,
                since: now,
            },
        );
        Some((w.owner, w.done))
    }
}

impl HaltTable {
    pub fn new(expiry: Duration) -> HaltTable {
        HaltTable {
            expiry,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every mutation leaves the maps consistent, so poison is harmless.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn expiry(&self) -> Duration {
        self.expiry
    }

    pub fn acquire(&self, db: &str, owner: HaltOwner, tid: u32, done: Done) -> Acquire {
        let mut inner = self.lock();
        let already = inner.held.get(db).is_some_and(|h| h.owner == owner)
            || inner.waiters.iter().any(|w| w.owner == owner && w.db == db);
        if already {
            drop(inner);
            done(Err(libc::ENOLCK));
            return Acquire::Refused;
        }
        if inner.held.contains_key(db) {
            inner.waiters.push(Pending {
                db: db.to_string(),
                owner,
                tid,
                done,
            });
            return Acquire::Queued;
        }
        inner.held.insert(
            db.to_string(),
            Holder {
                owner,
                since: Instant::now(),
            },
        );
        Acquire::Granted(done)
    }

    /// Unlock or flush of a handle: drops its hold and cancels its queued
    /// request (LiteFS cancels the wait: `EINTR`, run by the caller).
    pub fn release_handle(&self, owner: HaltOwner) -> (Vec<Handoff>, Vec<Done>) {
        let mut inner = self.lock();
        let mut cancelled = Vec::new();
        let mut i = 0;
        while i < inner.waiters.len() {
            if inner.waiters[i].owner == owner {
                cancelled.push(inner.waiters.remove(i).done);
            } else {
                i += 1;
            }
        }
        let dbs: Vec<String> = inner
            .held
            .iter()
            .filter(|(_, h)| h.owner == owner)
            .map(|(db, _)| db.clone())
            .collect();
        let now = Instant::now();
        let handoffs = dbs
            .into_iter()
            .filter_map(|db| {
                let released = inner.held.remove(&db)?;
                let next = inner.next_for(&db, now);
                Some(Handoff { db, released, next })
            })
            .collect();
        (handoffs, cancelled)
    }

    /// Holds older than the expiry end (LiteFS does not renew them).
    pub fn expire(&self, now: Instant) -> Vec<Handoff> {
        let mut inner = self.lock();
        let dbs: Vec<String> = inner
            .held
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.since) >= self.expiry)
            .map(|(db, _)| db.clone())
            .collect();
        dbs.into_iter()
            .filter_map(|db| {
                let released = inner.held.remove(&db)?;
                let next = inner.next_for(&db, now);
                Some(Handoff { db, released, next })
            })
            .collect()
    }

    /// The lease moved: every hold is gone (it was a lock on the old
    /// primary); queued requests come back to be decided again.
    pub fn drop_all(&self) -> (Vec<(String, Holder)>, Vec<Pending>) {
        let mut inner = self.lock();
        let mut held: Vec<(String, Holder)> = inner.held.drain().collect();
        held.sort_by(|a, b| a.0.cmp(&b.0));
        let waiters = std::mem::take(&mut inner.waiters);
        (held, waiters)
    }

    /// Cancels queued requests whose caller thread has a signal pending.
    pub fn cancel_interrupted(&self, interrupted: impl Fn(u32) -> bool) -> Vec<Pending> {
        let mut inner = self.lock();
        let mut out = Vec::new();
        let mut i = 0;
        while i < inner.waiters.len() {
            if interrupted(inner.waiters[i].tid) {
                out.push(inner.waiters.remove(i));
            } else {
                i += 1;
            }
        }
        out
    }

    /// Does any handle on `node` hold the halt lock of `db`? (LiteFS lets
    /// every process of that node write.)
    pub fn node_holds(&self, node: usize, db: &str) -> bool {
        self.lock().held.get(db).is_some_and(|h| h.owner.node == node)
    }

    /// Current holds, sorted by database.
    pub fn held(&self) -> Vec<(String, Holder)> {
        let mut v: Vec<(String, Holder)> = self.lock().held.iter().map(|(d, h)| (d.clone(), *h)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub fn waiting(&self) -> usize {
        self.lock().waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const A: HaltOwner = HaltOwner { node: 1, fh: 5 };
    const B: HaltOwner = HaltOwner { node: 2, fh: 7 };

    fn sink() -> (Done, mpsc::Receiver<Result<(), i32>>) {
        let (tx, rx) = mpsc::channel();
        (Box::new(move |r| tx.send(r).unwrap()), rx)
    }

    #[test]
    fn one_holder_queue_and_handoff() {
        let t = HaltTable::new(Duration::from_secs(30));
        let (d, _) = sink();
        assert!(matches!(t.acquire("a", A, 1, d), Acquire::Granted(_)));
        assert!(t.node_holds(1, "a") && !t.node_holds(2, "a") && !t.node_holds(1, "b"));
        let (d, rx) = sink();
        assert!(matches!(t.acquire("a", A, 1, d), Acquire::Refused));
        assert_eq!(rx.recv().unwrap(), Err(libc::ENOLCK));
        let (d, _) = sink();
        assert!(matches!(t.acquire("a", B, 2, d), Acquire::Queued));
        assert_eq!(t.waiting(), 1);
        let (h, cancelled) = t.release_handle(A);
        assert!(cancelled.is_empty());
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].released.owner, A);
        assert_eq!(h[0].next.as_ref().map(|n| n.0), Some(B));
        assert!(t.node_holds(2, "a"));
    }

    #[test]
    fn expiry_and_lease_moves() {
        let t = HaltTable::new(Duration::from_millis(10));
        let (d, _) = sink();
        assert!(matches!(t.acquire("a", A, 1, d), Acquire::Granted(_)));
        assert!(t.expire(Instant::now()).is_empty());
        let later = Instant::now() + Duration::from_millis(20);
        let h = t.expire(later);
        assert_eq!(h.len(), 1);
        assert!(h[0].next.is_none());
        assert!(t.held().is_empty());
        let (d, _) = sink();
        assert!(matches!(t.acquire("a", A, 1, d), Acquire::Granted(_)));
        let (d, _) = sink();
        assert!(matches!(t.acquire("a", B, 9, d), Acquire::Queued));
        assert_eq!(t.cancel_interrupted(|tid| tid == 1).len(), 0);
        let (held, waiters) = t.drop_all();
        assert_eq!(held.len(), 1);
        assert_eq!(waiters.len(), 1);
        assert_eq!(waiters[0].tid, 9);
        assert!(t.held().is_empty() && t.waiting() == 0);
    }
}
