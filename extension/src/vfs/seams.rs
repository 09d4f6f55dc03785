//! The two seams of the policy (`policy.rs`, `floor.rs`, `forward.rs`):
//! [`BaseFile`], the file below the guard, and [`Outside`], everything else
//! a guarded file asks about or tells. The FFI layer passes the real ones
//! (`base.rs`, `outside.rs`); the policy's tests pass fakes.

use super::backstop::Evidence;
use crate::error::Error;
use crate::halt_lock;
use crate::litefs_files::Unreadable;
use crate::position::{Lag, Position};
use crate::role::{self, Marker, Role};
use std::ffi::c_int;
use std::path::Path;
use std::time::{Duration, Instant};

/// The file below the guard (the base VFS's file), as the policy uses it.
pub(super) trait BaseFile {
    fn lock(&mut self, level: c_int) -> c_int;
    fn unlock(&mut self, level: c_int) -> c_int;
    fn read(&mut self, buf: &mut [u8], off: i64) -> c_int;
    fn write(&mut self, buf: &[u8], off: i64) -> c_int;
    fn truncate(&mut self, size: i64) -> c_int;
    fn sync(&mut self, flags: c_int) -> c_int;
    fn shm_lock(&mut self, offset: c_int, n: c_int, flags: c_int) -> c_int;
    fn shm_barrier(&mut self);
    fn shm_unmap(&mut self, delete: c_int) -> c_int;
}

/// The node-wide line of writers waiting for one database's write lock
/// (`fairwait`); the real one is `line.rs`. Slots are places in the line.
pub(super) trait Line {
    /// A new ticket: a place behind everyone who took one before.
    fn ticket(&self) -> u64;
    /// Stands in line with `ticket`; None when the line is full.
    fn join(&self, ticket: u64) -> Option<usize>;
    /// The waiter in `slot` is alive (a silent one is passed over).
    fn refresh(&self, slot: usize);
    fn leave(&self, slot: usize);
    /// Whether a live waiter with an older ticket than `ticket` (any, for
    /// None) stands in line.
    fn older_than(&self, ticket: Option<u64>) -> bool;
    /// The slot's wake-up count, read before looking at the line.
    fn seen(&self, slot: usize) -> u32;
    /// Dozes until the slot is woken after `seen`, or `d` passes.
    fn doze(&self, slot: usize, seen: u32, d: Duration);
    /// Wakes the waiter at the front.
    fn wake_front(&self);
    /// A guarded writer holds the write lock (as far as the line knows).
    fn held(&self) -> bool;
    /// This process's guarded writer took the write lock.
    fn hold(&self);
    /// It let it go: the front is woken.
    fn release(&self);
    /// How many times guarded writers let the lock go.
    fn releases(&self) -> u64;
}

/// Everything else a guarded file asks about or tells. Methods take `&self`
/// so several closures of one call may ask (the busy handler and the gate).
pub(super) trait Outside {
    /// A handle on the evidence of this file's main database (see `backstop`).
    type Evidence: Evidence;
    /// One look at the mount.
    fn role(&self, target: &role::Target, marker: Marker, require_fuse: bool) -> Role;
    /// The file's connection is inside an explicit transaction (false when
    /// the file has no single connection).
    fn in_explicit_transaction(&self) -> bool;
    /// Calls the connection's busy handler; false when it gives up (or there is none).
    fn busy(&self) -> bool;
    fn evidence(&self) -> Self::Evidence;
    /// Writes to SQLite's error log.
    fn log(&self, rc: c_int, e: &Error);
    /// Whether the database's `-journal` exists.
    fn journal_exists(&self, db: &Path) -> bool;
    /// errno, right after the base call that failed.
    fn errno(&self) -> i32;
    /// The position in the `NAME-pos` file at `path`, read now.
    fn position(&self, path: &Path) -> Result<Position, Unreadable>;
    /// The lag in the `.lag` file at `path`, read now.
    fn lag(&self, path: &Path) -> Result<Lag, Unreadable>;
    /// The clock the read-floor wait measures with, and its sleep.
    fn now(&self) -> Instant;
    fn sleep(&self, d: Duration);
    /// sqlite3_interrupt() is pending on the file's connection (always false
    /// before SQLite 3.41, which cannot say).
    fn interrupted(&self) -> bool;
    /// Several connections share this file (shared-cache mode).
    fn shared_cache(&self) -> bool;
    /// Write forwarding: takes the halt lock of `db` for this file (a main
    /// database), waiting at most `timeout` (see `forward`).
    fn halt_take(&self, db: &Path, timeout: std::time::Duration) -> Result<(), halt_lock::AcquireError>;
    /// Why the halt lock vouching for this file's main database is lost;
    /// None while it is held, or when there is none.
    fn halt_lost(&self) -> Option<String>;
    /// Releases this file's halt lock, if it holds one.
    fn halt_give_back(&self);
    /// The TXID `NAME-pos` shows now for the database `db`.
    fn txid(&self, db: &Path) -> Option<u64>;
    // The fair wait for the write lock (see `fairwait`). Each is a no-op
    // for a file without a seat (fair wait off, or not a main database).
    /// Joins the line of the database `db` (once; later calls cost nothing).
    fn fair_join(&self, db: &Path);
    /// Whether a write-lock request should answer "busy" without trying:
    /// this connection waits in line and an older waiter stands there.
    fn fair_stand_aside(&self) -> bool;
    /// A write-lock request was busy: the busy handler's next sleep on this
    /// thread is spent in line.
    fn fair_busy(&self);
    /// Whether this file holds the turn (cleared: asked once).
    fn fair_take_turn(&self) -> bool;
    /// The turn was used, and the lock was still busy.
    fn fair_missed(&self);
    /// This file took the write lock on the base file.
    fn fair_held(&self);
    /// This file let the base file's write lock go.
    fn fair_released(&self);
}
