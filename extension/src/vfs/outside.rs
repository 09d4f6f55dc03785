//! The outside world as the policy sees it: [`Links`] holds what a guarded
//! file knows of its surroundings — its connection (for the autocommit
//! state), that connection's busy handler and the evidence of its main
//! database file — and answers the policy's [`Outside`] questions with the
//! real role lookup, SQLite's log and errno.

use super::backstop::Evidence;
use super::seams::Outside;
use super::sleeper::Seat;
use crate::error::Error;
use crate::halt_lock;
use crate::litefs_files::{self, Unreadable};
use crate::location::Located;
use crate::position::{Lag, Position};
use crate::role::Marker;
use crate::role::{self, Role};
use crate::sqlite_api::{self, api};
use libsqlite3_sys as ffi;
use std::ffi::{c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) type BusyFn = unsafe extern "C" fn(*mut c_void) -> c_int;

/// A file's links to the outside.
pub(super) struct Links {
    /// The connection this main database belongs to (null until bound, and
    /// for a file shared by several connections).
    pub conn: *mut ffi::sqlite3,
    /// Shared-cache mode: more than one connection bound this file.
    pub shared: bool,
    /// The connection's busy handler, from SQLITE_FCNTL_BUSYHANDLER.
    pub busy: Option<(BusyFn, *mut c_void)>,
    /// Where this file's evidence lives: its own file's `write_ok` (main
    /// database), or its main database file's (a `-journal` or `-wal`: see
    /// `layout::main_evidence`); null when unknown: every transaction is
    /// then looked up.
    pub evidence: *mut bool,
    /// A main database's seat in the line for its write lock (fair wait
    /// on: LITEFS_GUARD_FAIR_WAIT).
    pub seat: Option<Arc<Seat>>,
}

impl Links {
    /// No connection, no busy handler, no evidence: for a question asked
    /// without an open file (create, delete).
    pub fn detached() -> Links {
        Links {
            conn: std::ptr::null_mut(),
            shared: false,
            busy: None,
            evidence: std::ptr::null_mut(),
            seat: None,
        }
    }

    /// Binds a main database file to the connection `conn` so escalation
    /// can ask whether that connection is inside an explicit transaction.
    pub fn bind(&mut self, conn: *mut ffi::sqlite3) {
        if !self.conn.is_null() && self.conn != conn {
            // Two connections on one file: shared-cache mode. Either may close
            // while the file stays open, so neither is remembered: no escalation.
            self.shared = true;
        }
        self.conn = if self.shared { std::ptr::null_mut() } else { conn };
    }
}

/// A file's evidence, as the backstop asks for it.
#[derive(Clone, Copy)]
pub(super) struct Ev(pub *mut bool);

impl Evidence for Ev {
    fn holds(&self) -> bool {
        // SAFETY: null, or a `write_ok` of a main file that outlives this
        // file (SQLite closes a journal and WAL before their database);
        // calls on one connection's files are serialised.
        !self.0.is_null() && unsafe { *self.0 }
    }
    fn grant(&mut self) {
        if !self.0.is_null() {
            // SAFETY: as in holds.
            unsafe { *self.0 = true };
        }
    }
    fn revoke(&mut self) {
        if !self.0.is_null() {
            // SAFETY: as in holds.
            unsafe { *self.0 = false };
        }
    }
}

impl Outside for Links {
    type Evidence = Ev;

    fn role(&self, target: &role::Target, marker: Marker, require_fuse: bool) -> Role {
        role::detect_target(target, marker, require_fuse)
    }

    fn in_explicit_transaction(&self) -> bool {
        if self.conn.is_null() {
            return false;
        }
        // SAFETY: `conn` is the live connection that owns this file (bound in
        // its init; the file closes before the connection is freed).
        unsafe { (api().get_autocommit)(self.conn) == 0 }
    }

    fn busy(&self) -> bool {
        match self.busy {
            // SAFETY: SQLite's own busy-handler callback and argument, as it
            // handed them to the file with SQLITE_FCNTL_BUSYHANDLER.
            Some((f, arg)) => unsafe { f(arg) != 0 },
            None => false,
        }
    }

    fn evidence(&self) -> Ev {
        Ev(self.evidence)
    }

    fn log(&self, rc: c_int, e: &Error) {
        sqlite_api::log(rc, e);
    }

    fn journal_exists(&self, db_path: &Path) -> bool {
        let mut p = db_path.as_os_str().to_os_string();
        p.push("-journal");
        std::fs::symlink_metadata(PathBuf::from(p)).is_ok()
    }

    fn errno(&self) -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    fn position(&self, path: &Path) -> Result<Position, Unreadable> {
        litefs_files::position_at(path)
    }

    fn lag(&self, path: &Path) -> Result<Lag, Unreadable> {
        litefs_files::lag_at(path)
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }

    fn interrupted(&self) -> bool {
        match api().is_interrupted {
            // SAFETY: `conn` is the live connection that owns this file (as in
            // in_explicit_transaction).
            Some(f) if !self.conn.is_null() => unsafe { f(self.conn) != 0 },
            _ => false,
        }
    }

    fn shared_cache(&self) -> bool {
        self.shared
    }

    // A main database file's halt lock is registered under the address of
    // its evidence, which its `-wal` and `-journal` share.

    fn halt_take(&self, db: &Path, timeout: Duration) -> Result<(), halt_lock::AcquireError> {
        if self.evidence.is_null() {
            return Err(halt_lock::AcquireError::Failed(
                "the file has no state to keep it in".into(),
            ));
        }
        halt_lock::take(self.evidence as usize, db, timeout)
    }

    fn halt_lost(&self) -> Option<String> {
        if self.evidence.is_null() {
            return None;
        }
        halt_lock::lost(self.evidence as usize)
    }

    fn halt_give_back(&self) {
        if !self.evidence.is_null() {
            halt_lock::give_back(self.evidence as usize);
        }
    }

    fn txid(&self, db: &Path) -> Option<u64> {
        let l = Located {
            mount: db.parent()?.to_path_buf(),
            db: db.to_path_buf(),
        };
        litefs_files::position(&l).ok().map(|p| p.txid)
    }

    fn fair_join(&self, db: &Path) {
        if let Some(s) = &self.seat {
            s.join(db);
        }
    }

    fn fair_stand_aside(&self) -> bool {
        self.seat.as_ref().is_some_and(|s| s.stand_aside())
    }

    fn fair_busy(&self) {
        if let Some(s) = &self.seat {
            s.busy();
        }
    }

    fn fair_take_turn(&self) -> bool {
        self.seat.as_ref().is_some_and(|s| s.take_turn())
    }

    fn fair_missed(&self) {
        if let Some(s) = &self.seat {
            s.missed();
        }
    }

    fn fair_held(&self) {
        if let Some(s) = &self.seat {
            s.held();
        }
    }

    fn fair_released(&self) {
        if let Some(s) = &self.seat {
            s.released();
        }
    }
}
