//! Write forwarding (`PRAGMA litefs_forward`, `LITEFS_GUARD_FORWARD`): on a
//! replica that knows its primary, a write transaction of a forwarding
//! connection takes LiteFS's halt lock, writes locally (LiteFS ships the
//! change to the primary) and lets the lock go as soon as the transaction's
//! read lock is gone.
//!
//! The state machine of one guarded main database file, in plain Rust: the
//! halt lock itself is behind [`Outside`] (`halt_take`, `halt_lost`,
//! `halt_give_back`; the real ones are in `halt_lock`), so it is tested
//! against a fake. A child module of `policy`: it extends [`Guard`].
//!
//! Where the lock is taken (never while this connection holds a read lock
//! when it can be helped: LiteFS's acquisition waits for the replica to catch
//! up, which a held read lock would stop):
//! - an explicit transaction (`BEGIN …`): at the first barrier of its read
//!   transaction, before the read lock — like the IMMEDIATE escalation, which
//!   then takes the WAL write lock too; rollback mode: before `xLock(SHARED)`;
//! - an autocommit write or `BEGIN IMMEDIATE`/`EXCLUSIVE` (SQLite still in
//!   autocommit when it locks): at its request for the write lock, which
//!   answers SQLITE_BUSY once when the connection's busy handler agrees to
//!   retry — SQLite then drops its read lock, waits and starts again, and
//!   the next barrier takes the halt lock first. Without a busy handler (or
//!   in rollback mode, where the pager keeps SHARED while it retries) the lock
//!   is taken right there, read lock held, within the same bound.
//!
//! Where it is checked: at the write-lock request and before the WAL's
//! commit frame is written (`halt_lost`: a fork since it was taken, older
//! than `halt_lock::MAX_HOLD`, or LiteFS no longer shows it). A lost lock
//! fails the write with SQLITE_READONLY before the commit frame, so nothing
//! is committed.
//!
//! Where it is released: when the transaction's read lock goes (WAL read
//! slot released with no write lock held; rollback mode: `xUnlock(NONE)`),
//! and in any case at `xShmUnmap` and `xClose`. The waits are bounded by
//! `LITEFS_GUARD_HALT_TIMEOUT_MS` (SQLITE_BUSY after it).

use super::*;
use std::time::{Duration, Instant};

/// What a retry waits for the halt lock once its statement's budget is spent.
const RETRY_SLICE: Duration = Duration::from_millis(50);

/// The forwarding state of one main database file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(in crate::vfs) struct Forwarding {
    /// `PRAGMA litefs_forward` (default: LITEFS_GUARD_FORWARD).
    pub on: bool,
    /// This file holds the halt lock for its connection's transaction.
    pub held: bool,
    /// The next read transaction takes the halt lock before its read lock
    /// (a write lock request was sent round with SQLITE_BUSY for that).
    pub want: bool,
    /// Taking the lock before the read lock failed: the transaction's
    /// write-lock request answers this code.
    pub failed: Option<c_int>,
    /// A write lock was granted under the hold (the transaction may commit).
    pub wrote: bool,
    /// The TXID `NAME-pos` showed after this connection's last forwarded
    /// write transaction (its read floor: the primary has it).
    pub last_txid: Option<u64>,
    /// When the wait of the current write for the halt lock ends: SQLite's
    /// busy handler may retry a write answered SQLITE_BUSY, and the retries
    /// share one LITEFS_GUARD_HALT_TIMEOUT_MS (then answer at once).
    pub deadline: Option<Instant>,
}

/// `ON`/`OFF` (and SQLite's other boolean words), as SQLite's own boolean
/// pragmas read them.
fn parse_switch(v: &str) -> Option<bool> {
    match v
        .trim()
        .trim_matches(|c| c == '\'' || c == '"')
        .to_ascii_lowercase()
        .as_str()
    {
        "1" | "on" | "true" | "yes" => Some(true),
        "0" | "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

impl Guard {
    /// `PRAGMA litefs_forward[=ON|OFF]`: answers the value now in force,
    /// `1` or `0` (like SQLite's boolean pragmas). Switching it inside a
    /// transaction that holds the halt lock keeps the lock until that
    /// transaction ends.
    pub(in crate::vfs) fn forward_pragma(&mut self, value: Option<&str>) -> Result<String, Error> {
        if let Some(v) = value {
            if !self.rules.forward_pragma {
                return Err(Error::ForwardPragmaOff);
            }
            self.fwd.on = parse_switch(v).ok_or_else(|| Error::BadPragma {
                name: "litefs_forward",
                value: v.to_string(),
                expected: "use ON or OFF",
            })?;
        }
        Ok(if self.fwd.on { "1" } else { "0" }.to_string())
    }

    /// Whether writes of this connection are forwarded now: on, a writable
    /// main database, and a replica that knows its primary.
    pub(in crate::vfs) fn forwards(&self, role: &Role) -> bool {
        self.fwd.on
            && self.kind == Kind::MainDb
            && !self.read_only
            && matches!(role, Role::Replica { primary: Some(_), .. })
    }

    /// Whether forwarding is switched on for this file (the authorizer's
    /// question; the role is its own).
    pub(in crate::vfs) fn forwarding_on(&self) -> bool {
        self.fwd.on && self.kind == Kind::MainDb && !self.read_only
    }

    /// The TXID this connection's last forwarded transaction produced.
    pub(in crate::vfs) fn forwarded_txid(&self) -> Option<u64> {
        self.fwd.last_txid
    }

    /// Takes the halt lock (bounded); Err is the code to answer, logged.
    fn halt_take<S: Outside>(&mut self, out: &S) -> Result<(), c_int> {
        let ms = self.rules.halt_timeout_ms;
        let bound = Duration::from_millis(ms);
        let now = Instant::now();
        // One budget for a write and its busy-handler retries (SQLite drops
        // and retakes its read lock between them, so the VFS cannot see
        // where a statement ends): a deadline stands until one bound after
        // it passed. Once spent, each retry still waits a short slice — the
        // lock may be free by now — instead of failing at once.
        let deadline = match self.fwd.deadline {
            Some(d) if now < d + bound => d,
            _ => now + bound,
        };
        self.fwd.deadline = Some(deadline);
        let left = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
            .unwrap_or(RETRY_SLICE);
        let r = out.halt_take(&self.db_path, left);
        match r {
            Ok(()) => {
                self.fwd.held = true;
                self.fwd.wrote = false;
                self.fwd.deadline = None;
                Ok(())
            }
            Err(e) => {
                let db = self.db_path.clone();
                let e = match e {
                    halt_lock::AcquireError::Timeout => Error::HaltTimeout { db, ms },
                    halt_lock::AcquireError::Failed(why) => Error::HaltFailed { db, why },
                };
                out.log(e.code(), &e);
                Err(e.code())
            }
        }
    }

    /// Whether the read about to start may take the halt lock (cheap: no
    /// role lookup; `forward_before_read` decides).
    pub(in crate::vfs) fn forward_wanted<S: Outside>(&self, out: &S) -> bool {
        self.fwd.on
            && !self.fwd.held
            && self.kind == Kind::MainDb
            && !self.read_only
            && (self.fwd.want || out.in_explicit_transaction())
    }

    /// Before a read lock (WAL barrier with no lock held, rollback SHARED):
    /// an explicit transaction, or a write sent round for it, takes the halt
    /// lock now. A failure is kept for the write-lock request: reads go on.
    pub(in crate::vfs) fn forward_before_read<S: Outside>(&mut self, out: &S) {
        if !self.fwd.on || self.fwd.held || self.kind != Kind::MainDb || self.read_only {
            return;
        }
        if !(std::mem::take(&mut self.fwd.want) || out.in_explicit_transaction()) {
            return;
        }
        if !self.forwards(&self.role(out)) {
            return;
        }
        self.fwd.failed = self.halt_take(out).err();
    }

    /// SQLite asks for the write lock (WAL_WRITE_LOCK with a read slot, or
    /// RESERVED). Ok: go on to the gate (which sees the halt lock held, or
    /// refuses as without forwarding). `may_send_round`: SQLite retries this
    /// request after dropping its read lock when it is answered SQLITE_BUSY.
    pub(in crate::vfs) fn forward_at_write_lock<S: Outside>(
        &mut self,
        out: &S,
        may_send_round: bool,
    ) -> Result<(), c_int> {
        if !self.fwd.on && !self.fwd.held {
            return Ok(());
        }
        if let Some(rc) = self.fwd.failed.take() {
            return Err(rc);
        }
        if self.fwd.held {
            self.halt_check(out)?;
            self.fwd.wrote = true;
            return Ok(());
        }
        if !self.forwards(&self.role(out)) {
            return Ok(());
        }
        if may_send_round && out.busy() {
            self.fwd.want = true;
            return Err(ffi::SQLITE_BUSY);
        }
        self.halt_take(out)?;
        self.fwd.wrote = true;
        Ok(())
    }

    /// The lock vouching for this file's transaction is still held (a file
    /// with none to vouch for passes). Err: SQLITE_READONLY, logged.
    pub(in crate::vfs) fn halt_check<S: Outside>(&mut self, out: &S) -> Result<(), c_int> {
        match out.halt_lost() {
            None => Ok(()),
            Some(why) => {
                let e = Error::HaltLost {
                    db: self.db_path.clone(),
                    why,
                };
                out.log(e.code(), &e);
                Err(e.code())
            }
        }
    }

    /// This connection's read lock is gone (or the file closes): the halt
    /// lock goes too. After a write, the position it produced is recorded.
    pub(in crate::vfs) fn forward_done<S: Outside>(&mut self, out: &S) {
        self.fwd.failed = None;
        if std::mem::take(&mut self.fwd.held) {
            // Read while the lock is held: nobody else's commit is in it yet.
            if std::mem::take(&mut self.fwd.wrote) {
                if let Some(txid) = out.txid(&self.db_path) {
                    self.fwd.last_txid = Some(self.fwd.last_txid.map_or(txid, |t| t.max(txid)));
                    // Read your own write: later reads on this connection wait
                    // until this node shows the TXID the write produced.
                    self.read.min_txid = self.read.min_txid.max(txid);
                }
            }
            out.halt_give_back();
            // The checkpoint that may follow must not ride on the verdict of
            // a write lock taken under the halt lock.
            self.note(false);
        }
    }
}
