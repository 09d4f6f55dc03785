//! The file-layer backstop: no write, truncate or size change reaches a
//! guarded database, its `-wal` or its `-journal` on a node that may not
//! write, whatever locking SQLite did or skipped (`nolock=1`, an inherited
//! `locking_mode=EXCLUSIVE`, a build that takes the WAL write lock early).
//!
//! Cost: the lock gate already looked at the role once per write transaction.
//! Its pass is remembered as *evidence* for that database on this thread (a
//! connection's writes run on the thread that took its locks) until the
//! transaction ends, and each file's first write of a transaction is checked
//! against it. Only a write transaction that skipped the gate pays a role
//! lookup here. Plain Rust, tested without SQLite: the lookup comes in as a
//! closure.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A small number for each guarded database path (evidence names these).
pub fn key_of(db: &Path) -> u64 {
    static KEYS: Mutex<Option<HashMap<PathBuf, u64>>> = Mutex::new(None);
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    let keys = keys.get_or_insert_with(HashMap::new);
    let next = keys.len() as u64 + 1;
    *keys.entry(db.to_path_buf()).or_insert(next)
}

/// How many databases one thread may be writing at once (ATTACH) before
/// the oldest evidence is forgotten (costing a lookup, never a pass).
const SLOTS: usize = 4;

thread_local! {
    static EVIDENCE: RefCell<[u64; SLOTS]> = const { RefCell::new([0; SLOTS]) };
}

/// A role check for database `key` allowed writing, on this thread.
pub fn grant(key: u64) {
    EVIDENCE.with(|e| {
        let mut e = e.borrow_mut();
        if e[0] != key && !e.contains(&key) {
            // Newest first; the oldest falls off.
            for i in (1..SLOTS).rev() {
                e[i] = e[i - 1];
            }
            e[0] = key;
        }
    });
}

/// The write transaction on `key` ended (or may have): forget its evidence.
pub fn revoke(key: u64) {
    EVIDENCE.with(|e| {
        for k in e.borrow_mut().iter_mut().filter(|k| **k == key) {
            *k = 0;
        }
    });
}

pub fn holds(key: u64) -> bool {
    EVIDENCE.with(|e| e.borrow().contains(&key))
}

/// One file's part: whether its next write must be vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backstop {
    key: u64,
    armed: bool,
    /// WAL: the highest offset written since the last check; a write below
    /// it starts over (a rolled-back transaction's frames are overwritten).
    high: i64,
    /// WAL: a commit frame's header was written; its page comes next.
    commit_page_next: bool,
}

impl Backstop {
    pub fn new(key: u64) -> Backstop {
        Backstop {
            key,
            armed: true,
            high: 0,
            commit_page_next: false,
        }
    }

    pub fn key(&self) -> u64 {
        self.key
    }

    /// The next write needs evidence or a fresh lookup again.
    pub fn arm(&mut self) {
        self.armed = true;
        self.high = 0;
    }

    /// Before a write (or truncate, or size change) of this file. `lookup`
    /// is the role check; on success it grants evidence itself.
    pub fn check(&mut self, lookup: &mut dyn FnMut() -> Result<(), c_int>) -> Result<(), c_int> {
        if !self.armed {
            return Ok(());
        }
        if !holds(self.key) {
            lookup()?;
        }
        self.armed = false;
        Ok(())
    }

    /// A write to a `-wal` file at `off` of `len` bytes; `commit` when it is
    /// a frame header with the commit mark. After the commit frame's page the
    /// file is armed again, so the next transaction is checked again.
    pub fn wal_write(
        &mut self,
        off: i64,
        len: i64,
        commit: bool,
        lookup: &mut dyn FnMut() -> Result<(), c_int>,
    ) -> Result<(), c_int> {
        if std::mem::take(&mut self.commit_page_next) && !self.armed {
            // The page of the commit frame just checked. The transaction is
            // over: its evidence too (in EXCLUSIVE mode no unlock follows,
            // and SQLite before 3.40 sends no COMMIT_PHASETWO in WAL mode).
            revoke(self.key);
            self.arm();
            return Ok(());
        }
        if !self.armed && off < self.high {
            // Overwriting frames: a new transaction after a rollback. Its
            // evidence, if any, is from before: look again.
            revoke(self.key);
            self.arm();
        }
        self.check(lookup)?;
        self.high = self.high.max(off + len);
        self.commit_page_next = commit;
        Ok(())
    }

    /// A write to a `-journal` file at `off`; `header_cleared` when it zeroes
    /// the header (how SQLite ends a transaction in PERSIST or EXCLUSIVE
    /// mode). A write at offset 0 starts a transaction: checked afresh.
    pub fn journal_write(
        &mut self,
        off: i64,
        header_cleared: bool,
        lookup: &mut dyn FnMut() -> Result<(), c_int>,
    ) -> Result<(), c_int> {
        if off == 0 {
            if header_cleared {
                // The transaction is over: the write itself is harmless
                // (a zeroed header makes the journal cold).
                revoke(self.key);
                self.arm();
                return Ok(());
            }
            self.arm();
        }
        self.check(lookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn counting(n: &Cell<u32>, ok: bool) -> impl FnMut() -> Result<(), c_int> + '_ {
        move || {
            n.set(n.get() + 1);
            ok.then_some(()).ok_or(8)
        }
    }

    #[test]
    fn a_gated_transaction_needs_no_lookup() {
        let n = Cell::new(0);
        let mut b = Backstop::new(101);
        grant(101);
        assert_eq!(b.check(&mut counting(&n, false)), Ok(()));
        assert_eq!(b.check(&mut counting(&n, false)), Ok(()));
        assert_eq!(n.get(), 0);
        revoke(101);
    }

    #[test]
    fn an_ungated_transaction_is_looked_up_once() {
        let n = Cell::new(0);
        let mut b = Backstop::new(102);
        assert_eq!(b.check(&mut counting(&n, true)), Ok(()));
        assert_eq!(b.check(&mut counting(&n, true)), Ok(()));
        assert_eq!(n.get(), 1);
        let mut b = Backstop::new(102);
        assert_eq!(b.check(&mut counting(&n, false)), Err(8));
        assert_eq!(
            b.check(&mut counting(&n, false)),
            Err(8),
            "stays armed after a refusal"
        );
    }

    #[test]
    fn evidence_is_per_database_and_per_thread() {
        grant(103);
        let mut other = Backstop::new(104);
        let n = Cell::new(0);
        assert_eq!(other.check(&mut counting(&n, false)), Err(8));
        let t = std::thread::spawn(|| holds(103)).join().unwrap();
        assert!(!t);
        revoke(103);
        assert!(!holds(103));
    }

    #[test]
    fn a_journal_header_starts_a_transaction() {
        let n = Cell::new(0);
        let mut j = Backstop::new(105);
        grant(105);
        assert_eq!(j.journal_write(0, false, &mut counting(&n, false)), Ok(()));
        assert_eq!(j.journal_write(512, false, &mut counting(&n, false)), Ok(()));
        // EXCLUSIVE mode: the header is zeroed at the end, no unlock follows.
        assert_eq!(j.journal_write(0, true, &mut counting(&n, false)), Ok(()));
        assert_eq!(n.get(), 0);
        // The next transaction has no evidence: refused on a replica.
        assert_eq!(j.journal_write(0, false, &mut counting(&n, false)), Err(8));
        assert_eq!(n.get(), 1);
    }

    #[test]
    fn wal_rearms_after_commit_and_on_overwrite() {
        let n = Cell::new(0);
        let mut w = Backstop::new(106);
        grant(106);
        assert_eq!(w.wal_write(32, 24, false, &mut counting(&n, false)), Ok(()));
        assert_eq!(w.wal_write(56, 4096, false, &mut counting(&n, false)), Ok(()));
        assert_eq!(w.wal_write(4152, 24, true, &mut counting(&n, false)), Ok(()));
        assert_eq!(w.wal_write(4176, 4096, false, &mut counting(&n, false)), Ok(()));
        assert_eq!(n.get(), 0);
        assert!(!holds(106), "a commit ends the transaction's evidence");
        // Next transaction without a gate: looked up (and refused here).
        assert_eq!(w.wal_write(8272, 24, false, &mut counting(&n, false)), Err(8));
        // A rolled-back transaction's frames overwritten: evidence is stale.
        let mut w = Backstop::new(107);
        grant(107);
        assert_eq!(w.wal_write(32, 24, false, &mut counting(&n, true)), Ok(()));
        assert_eq!(w.wal_write(56, 4096, false, &mut counting(&n, true)), Ok(()));
        let before = n.get();
        assert_eq!(w.wal_write(32, 24, false, &mut counting(&n, false)), Err(8));
        assert_eq!(n.get(), before + 1);
    }
}
