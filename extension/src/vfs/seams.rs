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
}
