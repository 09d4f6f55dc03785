//! Lock bookkeeping for one guarded main database file: which write lock the
//! guard holds on SQLite's behalf (IMMEDIATE escalation), which SQLite thinks
//! it holds, and which WAL read slot is held. Plain Rust, tested without SQLite;
//! the effects (the base VFS, the role check, the busy handler) come in as
//! closures. See docs/immediate-locking in the README for why each rule exists.

use libsqlite3_sys as ffi;
use std::ffi::c_int;

/// WAL lock slots (wal.c): write lock, checkpoint lock, first read mark.
pub const WAL_WRITE_LOCK: c_int = 0;
pub const WAL_CKPT_LOCK: c_int = 1;
pub const WAL_READ_LOCK0: c_int = 3;
pub const WAL_NREADER: c_int = 5;

const LOCK_EXCL: c_int = ffi::SQLITE_SHM_LOCK | ffi::SQLITE_SHM_EXCLUSIVE;
const UNLOCK_EXCL: c_int = ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_EXCLUSIVE;

/// The underlying shm lock call.
pub type BaseShmLock<'a> = &'a mut dyn FnMut(c_int, c_int, c_int) -> c_int;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WalLocks {
    /// The guard took WAL_WRITE_LOCK itself (escalation) and holds it.
    pub guard_write: bool,
    /// SQLite believes it holds WAL_WRITE_LOCK.
    pub sqlite_write: bool,
    /// The shared read-mark lock SQLite holds, if any.
    pub read_slot: Option<c_int>,
    /// Escalation was declined (role or busy) for the read transaction being
    /// started: do not look at the role again until it ends.
    pub declined: bool,
}

impl WalLocks {
    /// Whether a barrier may start an escalation: nothing is held yet.
    pub fn may_escalate(&self) -> bool {
        !self.guard_write && !self.sqlite_write && self.read_slot.is_none() && !self.declined
    }

    /// Takes WAL_WRITE_LOCK for an explicit transaction, waiting through the
    /// connection's busy handler. Gives up quietly (stays deferred) when the
    /// handler does. `still_allowed` is asked again after any wait: the role
    /// may have changed while this transaction queued for the lock. While
    /// `stand_aside` says so (an older waiter in the fair line), it waits
    /// without asking the base VFS.
    pub fn escalate(
        &mut self,
        base: BaseShmLock<'_>,
        stand_aside: &mut dyn FnMut() -> bool,
        busy: &mut dyn FnMut() -> bool,
        still_allowed: &mut dyn FnMut() -> bool,
    ) -> bool {
        let mut waited = false;
        loop {
            let rc = if stand_aside() {
                ffi::SQLITE_BUSY
            } else {
                base(WAL_WRITE_LOCK, 1, LOCK_EXCL)
            };
            match rc {
                ffi::SQLITE_OK => {
                    if waited && !still_allowed() {
                        base(WAL_WRITE_LOCK, 1, UNLOCK_EXCL);
                        self.declined = true;
                        return false;
                    }
                    self.guard_write = true;
                    return true;
                }
                ffi::SQLITE_BUSY if busy() => waited = true,
                _ => {
                    self.declined = true;
                    return false;
                }
            }
        }
    }

    /// SQLite's own xShmLock call. `gate` is asked before SQLite takes the
    /// write lock for a write transaction, and before a checkpoint; it returns
    /// the error to answer with.
    pub fn shm_lock(
        &mut self,
        base: BaseShmLock<'_>,
        offset: c_int,
        n: c_int,
        flags: c_int,
        gate: &mut dyn FnMut() -> Result<(), c_int>,
    ) -> c_int {
        let unlock = flags & ffi::SQLITE_SHM_UNLOCK != 0;
        match (offset, n, unlock) {
            (WAL_WRITE_LOCK, 1, false) => {
                if self.guard_write {
                    // Held for SQLite already: never ask the base VFS twice.
                    self.sqlite_write = true;
                    return ffi::SQLITE_OK;
                }
                // With a read slot this is a write transaction; without one it
                // is recovery or a checkpoint, which replicas must be able to run.
                if self.read_slot.is_some() {
                    if let Err(rc) = gate() {
                        return rc;
                    }
                }
                let rc = base(offset, n, flags);
                if rc == ffi::SQLITE_OK {
                    self.sqlite_write = true;
                }
                rc
            }
            (WAL_WRITE_LOCK, 1, true) => {
                self.sqlite_write = false;
                if self.guard_write {
                    // No read slot: SQLite's brief claim while re-reading the
                    // header under our lock. Keep holding it for the transaction.
                    if self.read_slot.is_some() {
                        self.release(base);
                    }
                    return ffi::SQLITE_OK;
                }
                base(offset, n, flags)
            }
            (o, 1, false) if is_read_slot(o) && flags & ffi::SQLITE_SHM_SHARED != 0 => {
                let rc = base(offset, n, flags);
                if rc == ffi::SQLITE_OK {
                    self.read_slot = Some(o);
                }
                rc
            }
            (o, 1, true) if is_read_slot(o) && flags & ffi::SQLITE_SHM_SHARED != 0 => {
                let rc = base(offset, n, flags);
                if self.read_slot == Some(o) {
                    self.read_slot = None;
                    self.declined = false;
                    // A read-only explicit transaction ended, or SQLite retries
                    // its read: let go; the next barrier escalates again.
                    if self.guard_write && !self.sqlite_write {
                        self.release(base);
                    }
                }
                rc
            }
            (WAL_CKPT_LOCK, 1, false) if flags & ffi::SQLITE_SHM_EXCLUSIVE != 0 => {
                // A checkpoint writes the database file. On a node that may
                // not write (closing the last connection on a replica
                // checkpoints), answer "busy": SQLite then skips it quietly.
                if gate().is_err() {
                    return ffi::SQLITE_BUSY;
                }
                base(offset, n, flags)
            }
            (WAL_CKPT_LOCK, 1, true) => {
                let rc = base(offset, n, flags);
                // A checkpoint inside BEGIN escalated through its own barrier.
                self.release_if_idle(base);
                rc
            }
            _ => base(offset, n, flags),
        }
    }

    /// Lets go of the guard's write lock when no transaction needs it.
    pub fn release_if_idle(&mut self, base: BaseShmLock<'_>) {
        if self.guard_write && !self.sqlite_write && self.read_slot.is_none() {
            self.release(base);
        }
    }

    /// Releases the guard's write lock exactly once.
    pub fn release(&mut self, base: BaseShmLock<'_>) {
        if self.guard_write {
            self.guard_write = false;
            self.sqlite_write = false;
            base(WAL_WRITE_LOCK, 1, UNLOCK_EXCL);
        }
    }
}

fn is_read_slot(offset: c_int) -> bool {
    (WAL_READ_LOCK0..WAL_READ_LOCK0 + WAL_NREADER).contains(&offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A fake shm: counts exclusive holders per slot, refuses when busy.
    #[derive(Default)]
    struct Shm {
        held: HashMap<c_int, c_int>,
        other_writer: bool,
        calls: Vec<(c_int, c_int, c_int)>,
    }
    impl Shm {
        fn call(&mut self, o: c_int, n: c_int, f: c_int) -> c_int {
            self.calls.push((o, n, f));
            if o == WAL_WRITE_LOCK && f == LOCK_EXCL && self.other_writer {
                return ffi::SQLITE_BUSY;
            }
            let e = self.held.entry(o).or_default();
            if f & ffi::SQLITE_SHM_UNLOCK != 0 {
                *e -= 1;
            } else {
                *e += 1;
            }
            ffi::SQLITE_OK
        }
    }
    const LOCK_SH: c_int = ffi::SQLITE_SHM_LOCK | ffi::SQLITE_SHM_SHARED;
    const UNLOCK_SH: c_int = ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_SHARED;

    fn lock(w: &mut WalLocks, s: &mut Shm, o: c_int, f: c_int) -> c_int {
        w.shm_lock(&mut |a, b, c| s.call(a, b, c), o, 1, f, &mut || Ok(()))
    }

    #[test]
    fn escalated_write_transaction_takes_base_lock_once() {
        let (mut w, mut s) = (WalLocks::default(), Shm::default());
        assert!(w.may_escalate());
        assert!(w.escalate(
            &mut |a, b, c| s.call(a, b, c),
            &mut || false,
            &mut || false,
            &mut || true
        ));
        // Header re-read: SQLite's brief claim does not touch the base lock.
        assert_eq!(lock(&mut w, &mut s, WAL_WRITE_LOCK, LOCK_EXCL), ffi::SQLITE_OK);
        assert_eq!(lock(&mut w, &mut s, WAL_WRITE_LOCK, UNLOCK_EXCL), ffi::SQLITE_OK);
        assert!(w.guard_write);
        assert_eq!(lock(&mut w, &mut s, 4, LOCK_SH), ffi::SQLITE_OK);
        assert_eq!(lock(&mut w, &mut s, WAL_WRITE_LOCK, LOCK_EXCL), ffi::SQLITE_OK);
        assert_eq!(lock(&mut w, &mut s, WAL_WRITE_LOCK, UNLOCK_EXCL), ffi::SQLITE_OK);
        assert!(!w.guard_write);
        assert_eq!(s.held[&WAL_WRITE_LOCK], 0, "released exactly once");
        assert_eq!(lock(&mut w, &mut s, 4, UNLOCK_SH), ffi::SQLITE_OK);
        let write_calls = s.calls.iter().filter(|c| c.0 == WAL_WRITE_LOCK).count();
        assert_eq!(write_calls, 2);
    }

    #[test]
    fn read_only_explicit_transaction_releases_on_read_unlock() {
        let (mut w, mut s) = (WalLocks::default(), Shm::default());
        w.escalate(
            &mut |a, b, c| s.call(a, b, c),
            &mut || false,
            &mut || false,
            &mut || true,
        );
        lock(&mut w, &mut s, 3, LOCK_SH);
        lock(&mut w, &mut s, 3, UNLOCK_SH);
        assert!(!w.guard_write);
        assert_eq!(s.held[&WAL_WRITE_LOCK], 0);
        assert!(w.may_escalate());
    }

    #[test]
    fn busy_handler_decides_how_long_to_wait() {
        let (mut w, mut s) = (
            WalLocks::default(),
            Shm {
                other_writer: true,
                ..Default::default()
            },
        );
        let mut tries = 0;
        let got = w.escalate(
            &mut |a, b, c| s.call(a, b, c),
            &mut || false,
            &mut || {
                tries += 1;
                tries < 3
            },
            &mut || true,
        );
        assert!(!got);
        assert_eq!(tries, 3);
        assert!(w.declined && !w.may_escalate());
        // The read slot ending clears the decline.
        lock(&mut w, &mut s, 5, LOCK_SH);
        lock(&mut w, &mut s, 5, UNLOCK_SH);
        assert!(w.may_escalate());
    }

    #[test]
    fn standing_aside_waits_without_asking_the_base_vfs() {
        let (mut w, mut s) = (WalLocks::default(), Shm::default());
        let aside = std::cell::Cell::new(2);
        let got = w.escalate(
            &mut |a, b, c| s.call(a, b, c),
            &mut || {
                aside.set(aside.get() - 1);
                aside.get() >= 0
            },
            &mut || true,
            &mut || true,
        );
        assert!(got && w.guard_write);
        let asked = s.calls.iter().filter(|c| c.0 == WAL_WRITE_LOCK).count();
        assert_eq!(
            asked, 1,
            "the lock is asked for once its turn came: {:?}",
            s.calls
        );
    }

    #[test]
    fn role_is_checked_again_after_waiting_for_the_lock() {
        let mut s = Shm {
            other_writer: true,
            ..Default::default()
        };
        let mut w = WalLocks::default();
        let waits = std::cell::Cell::new(0);
        let mut base = |a, b, c| {
            // The other writer commits after the first wait.
            if waits.get() > 0 {
                s.other_writer = false;
            }
            s.call(a, b, c)
        };
        let got = w.escalate(
            &mut base,
            &mut || false,
            &mut || {
                waits.set(waits.get() + 1);
                true
            },
            &mut || false,
        );
        assert!(!got && w.declined && !w.guard_write);
        assert_eq!(s.held[&WAL_WRITE_LOCK], 0, "taken and given back");
    }

    #[test]
    fn gate_refuses_write_lock_with_read_slot_only() {
        let (mut w, mut s) = (WalLocks::default(), Shm::default());
        let mut gate = || Err(ffi::SQLITE_READONLY);
        // Recovery (no read slot) passes.
        let rc = w.shm_lock(
            &mut |a, b, c| s.call(a, b, c),
            WAL_WRITE_LOCK,
            1,
            LOCK_EXCL,
            &mut gate,
        );
        assert_eq!(rc, ffi::SQLITE_OK);
        w.shm_lock(
            &mut |a, b, c| s.call(a, b, c),
            WAL_WRITE_LOCK,
            1,
            UNLOCK_EXCL,
            &mut gate,
        );
        lock(&mut w, &mut s, 3, LOCK_SH);
        let rc = w.shm_lock(
            &mut |a, b, c| s.call(a, b, c),
            WAL_WRITE_LOCK,
            1,
            LOCK_EXCL,
            &mut gate,
        );
        assert_eq!(rc, ffi::SQLITE_READONLY);
        assert!(!w.sqlite_write);
    }

    #[test]
    fn checkpoint_refused_quietly_when_the_gate_says_no() {
        let (mut w, mut s) = (WalLocks::default(), Shm::default());
        let rc = w.shm_lock(
            &mut |a, b, c| s.call(a, b, c),
            WAL_CKPT_LOCK,
            1,
            LOCK_EXCL,
            &mut || Err(ffi::SQLITE_READONLY),
        );
        assert_eq!(rc, ffi::SQLITE_BUSY);
        assert!(s.calls.is_empty(), "the base lock was never taken");
    }

    #[test]
    fn checkpoint_inside_begin_releases_on_ckpt_unlock() {
        let (mut w, mut s) = (WalLocks::default(), Shm::default());
        lock(&mut w, &mut s, WAL_CKPT_LOCK, LOCK_EXCL);
        w.escalate(
            &mut |a, b, c| s.call(a, b, c),
            &mut || false,
            &mut || false,
            &mut || true,
        );
        lock(&mut w, &mut s, WAL_CKPT_LOCK, UNLOCK_EXCL);
        assert!(!w.guard_write);
        assert_eq!(s.held[&WAL_WRITE_LOCK], 0);
    }
}
