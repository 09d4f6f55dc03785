//! The file-layer backstop: no write, truncate or size change reaches a
//! guarded database, its `-wal` or its `-journal` on a node that may not
//! write, whatever locking SQLite did or skipped (`nolock=1`, an inherited
//! `locking_mode=EXCLUSIVE`, a build that takes the WAL write lock early).
//!
//! Cost: the lock gate already looked at the role once per write transaction.
//! Its pass — only once the base lock is really held — is kept as *evidence*
//! by that connection's main database file until the transaction ends; its
//! `-journal` and `-wal` find their main file through
//! `sqlite3_database_file_object` and ask it. Each file's first write of a
//! transaction is checked against that evidence; only a write transaction
//! that skipped the gate pays a role lookup here. Evidence belongs to one
//! connection's file, never to a thread or a path: another connection on
//! the same thread never rides on it. Plain Rust, tested without SQLite: the
//! evidence and the lookup come in as a trait object and a closure.

use std::ffi::c_int;

/// The evidence a file's writes are checked against: its main database
/// file's record of a passed gate in the current write transaction.
pub trait Evidence {
    fn holds(&self) -> bool;
    /// The role was checked afresh (a lookup) and allows writing.
    fn grant(&mut self);
    /// The write transaction ended (or may have).
    fn revoke(&mut self);
}

/// One file's part: whether its next write must be vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backstop {
    armed: bool,
    /// WAL: the highest offset written since the last check; a write below
    /// it starts over (a rolled-back transaction's frames are overwritten).
    high: i64,
    /// WAL: a commit frame's header was written; its page comes next.
    commit_page_next: bool,
}

impl Default for Backstop {
    fn default() -> Backstop {
        Backstop {
            armed: true,
            high: 0,
            commit_page_next: false,
        }
    }
}

impl Backstop {
    /// The next write needs evidence or a fresh lookup again.
    pub fn arm(&mut self) {
        self.armed = true;
        self.high = 0;
    }

    /// Before a write (or truncate, or size change) of this file. `lookup`
    /// is the role check.
    pub fn check(
        &mut self,
        ev: &mut dyn Evidence,
        lookup: &mut dyn FnMut() -> Result<(), c_int>,
    ) -> Result<(), c_int> {
        if !self.armed {
            return Ok(());
        }
        if !ev.holds() {
            lookup()?;
            ev.grant();
        }
        self.armed = false;
        Ok(())
    }

    /// A write to a `-wal` file at `off` of `len` bytes; `commit` when it is
    /// a frame header with the commit mark. After the commit frame's page the
    /// file is armed again and the evidence ends, so the next transaction is
    /// checked again.
    pub fn wal_write(
        &mut self,
        ev: &mut dyn Evidence,
        off: i64,
        len: i64,
        commit: bool,
        lookup: &mut dyn FnMut() -> Result<(), c_int>,
    ) -> Result<(), c_int> {
        if std::mem::take(&mut self.commit_page_next) && !self.armed {
            // The page of the commit frame just checked. The transaction is
            // over: its evidence too (in EXCLUSIVE mode no unlock follows,
            // and SQLite before 3.40 sends no COMMIT_PHASETWO in WAL mode).
            ev.revoke();
            self.arm();
            return Ok(());
        }
        if !self.armed && off < self.high {
            // Overwriting frames: a new transaction after a rollback. Its
            // evidence, if any, is from before: look again.
            ev.revoke();
            self.arm();
        }
        self.check(ev, lookup)?;
        self.high = self.high.max(off + len);
        self.commit_page_next = commit;
        Ok(())
    }

    /// A write to a `-journal` file at `off` of `len` bytes; `header_cleared`
    /// when it zeroes the header (how SQLite ends a transaction in PERSIST or
    /// EXCLUSIVE mode). A new header at offset 0 starts a transaction:
    /// checked afresh. (SQLite also fills in the 8-byte magic at offset 0
    /// in the middle of a transaction: that is no new start.)
    pub fn journal_write(
        &mut self,
        ev: &mut dyn Evidence,
        off: i64,
        len: i64,
        header_cleared: bool,
        lookup: &mut dyn FnMut() -> Result<(), c_int>,
    ) -> Result<(), c_int> {
        if off == 0 {
            if header_cleared {
                // The transaction is over: the write itself is harmless
                // (a zeroed header makes the journal cold).
                ev.revoke();
                self.arm();
                return Ok(());
            }
            if len != 8 {
                self.arm();
            }
        }
        self.check(ev, lookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Default)]
    struct Fake(bool);
    impl Evidence for Fake {
        fn holds(&self) -> bool {
            self.0
        }
        fn grant(&mut self) {
            self.0 = true;
        }
        fn revoke(&mut self) {
            self.0 = false;
        }
    }

    fn counting(n: &Cell<u32>, ok: bool) -> impl FnMut() -> Result<(), c_int> + '_ {
        move || {
            n.set(n.get() + 1);
            ok.then_some(()).ok_or(8)
        }
    }

    #[test]
    fn a_gated_transaction_needs_no_lookup() {
        let n = Cell::new(0);
        let (mut b, mut ev) = (Backstop::default(), Fake(true));
        assert_eq!(b.check(&mut ev, &mut counting(&n, false)), Ok(()));
        assert_eq!(b.check(&mut ev, &mut counting(&n, false)), Ok(()));
        assert_eq!(n.get(), 0);
    }

    #[test]
    fn an_ungated_transaction_is_looked_up_once() {
        let n = Cell::new(0);
        let (mut b, mut ev) = (Backstop::default(), Fake(false));
        assert_eq!(b.check(&mut ev, &mut counting(&n, true)), Ok(()));
        assert_eq!(b.check(&mut ev, &mut counting(&n, true)), Ok(()));
        assert_eq!(n.get(), 1);
        assert!(
            ev.holds(),
            "a passed lookup is evidence for the other files of the transaction"
        );
        let (mut b, mut ev) = (Backstop::default(), Fake(false));
        assert_eq!(b.check(&mut ev, &mut counting(&n, false)), Err(8));
        assert_eq!(
            b.check(&mut ev, &mut counting(&n, false)),
            Err(8),
            "stays armed after a refusal"
        );
        assert!(!ev.holds());
    }

    #[test]
    fn a_journal_header_starts_a_transaction() {
        let n = Cell::new(0);
        let (mut j, mut ev) = (Backstop::default(), Fake(true));
        assert_eq!(
            j.journal_write(&mut ev, 0, 512, false, &mut counting(&n, false)),
            Ok(())
        );
        assert_eq!(
            j.journal_write(&mut ev, 512, 4100, false, &mut counting(&n, false)),
            Ok(())
        );
        assert_eq!(
            j.journal_write(&mut ev, 0, 8, false, &mut counting(&n, false)),
            Ok(())
        );
        // EXCLUSIVE mode: the header is zeroed at the end, no unlock follows.
        assert_eq!(
            j.journal_write(&mut ev, 0, 28, true, &mut counting(&n, false)),
            Ok(())
        );
        assert_eq!(n.get(), 0);
        assert!(!ev.holds());
        // The next transaction has no evidence: refused on a replica.
        assert_eq!(
            j.journal_write(&mut ev, 0, 512, false, &mut counting(&n, false)),
            Err(8)
        );
        assert_eq!(n.get(), 1);
    }

    #[test]
    fn wal_rearms_after_commit_and_on_overwrite() {
        let n = Cell::new(0);
        let (mut w, mut ev) = (Backstop::default(), Fake(true));
        assert_eq!(
            w.wal_write(&mut ev, 32, 24, false, &mut counting(&n, false)),
            Ok(())
        );
        assert_eq!(
            w.wal_write(&mut ev, 56, 4096, false, &mut counting(&n, false)),
            Ok(())
        );
        assert_eq!(
            w.wal_write(&mut ev, 4152, 24, true, &mut counting(&n, false)),
            Ok(())
        );
        assert_eq!(
            w.wal_write(&mut ev, 4176, 4096, false, &mut counting(&n, false)),
            Ok(())
        );
        assert_eq!(n.get(), 0);
        assert!(!ev.holds(), "a commit ends the transaction's evidence");
        // Next transaction without a gate: looked up (and refused here).
        assert_eq!(
            w.wal_write(&mut ev, 8272, 24, false, &mut counting(&n, false)),
            Err(8)
        );
        // A rolled-back transaction's frames overwritten: evidence is stale.
        let (mut w, mut ev) = (Backstop::default(), Fake(true));
        assert_eq!(
            w.wal_write(&mut ev, 32, 24, false, &mut counting(&n, true)),
            Ok(())
        );
        assert_eq!(
            w.wal_write(&mut ev, 56, 4096, false, &mut counting(&n, true)),
            Ok(())
        );
        let before = n.get();
        assert_eq!(
            w.wal_write(&mut ev, 32, 24, false, &mut counting(&n, false)),
            Err(8)
        );
        assert_eq!(n.get(), before + 1);
    }
}
