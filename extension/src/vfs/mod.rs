//! The guard's VFS layer: a wrapper for every VFS SQLite has, under the same
//! name. Files in the guarded location (main databases, their journals and
//! WALs, found by identity: see `location`) get the write gate, IMMEDIATE
//! escalation, the WAL rule and the backstop; everything else is opened by
//! the base VFS in place and never sees this code again.
//!
//! Two layers:
//! - the safe policy, in plain Rust with no raw pointers: `policy` (the
//!   gate, escalation, the WAL rule, the backstop hook-up, translation, the
//!   hot-journal refusal, end-of-write bookkeeping), `locks` (the WAL lock
//!   state machine), `backstop` (the file-layer backstop), `verdict` (how
//!   long a role verdict is reused), `fairwait` (the fair wait for the
//!   write lock: a waiter's place in the line). `policy` reaches the base
//!   file through the `BaseFile` trait and everything else through the
//!   `Outside` trait (`seams`);
//! - the FFI below it: `wrap` (wrapping every VFS), `trampolines` (the
//!   `extern "C"` methods, panics caught there), `layout` (where a file's
//!   state lives: header or adopted side table, the method tables, MAINS),
//!   `base` and `outside` (the real `BaseFile` and `Outside`), `line` (the
//!   node-wide line of waiters in shared memory) and `sleeper` (a file's
//!   seat in it, and which file a busy handler's xSleep belongs to).

mod backstop;
mod base;
mod fairwait;
mod floor;
mod layout;
mod line;
pub mod locks;
mod outside;
mod policy;
mod seams;
mod sleeper;
mod trampolines;
mod verdict;
mod wrap;

pub use wrap::{register, wrap_all};

use crate::settings::Settings;
use libsqlite3_sys as ffi;
use policy::{Guard, Rules};

/// What SQLite is opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MainDb,
    Journal,
    Wal,
}

/// Catches a panic at the FFI boundary and answers `on_panic` instead.
fn boundary<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(on_panic)
}

// What the rest of the extension asks of the VFS about a file. `f` is null
// or a file SQLite returned for a connection, asked under that connection's
// mutex (as SQLite holds it during the auto-extension, authorizer and file
// control).

/// Puts a guarded main database that a connection opened outside the
/// wrappers (before the guard loaded, or through a VFS registered later)
/// under the guard: its method table is swapped for ours, which forward to
/// the original with the same file. Must run under the connection's mutex
/// (SQLite holds it during the auto-extension, authorizer and file control).
/// Returns false when `f` was ours already or is not a main database.
/// `main` is the database file a `-journal` or `-wal` belongs to (its evidence
/// is theirs); ignored for a main database.
pub fn adopt(
    f: *mut ffi::sqlite3_file,
    kind: Kind,
    at: &crate::location::Located,
    read_only: bool,
    main: *mut ffi::sqlite3_file,
    settings: &Settings,
) -> bool {
    if f.is_null() || layout::is_ours(f) {
        return false;
    }
    let guard = Guard::new(kind, at.db.clone(), &at.mount, read_only, Rules::of(settings));
    layout::adopt(f, kind, guard, main)
}

/// Binds a main database file to its connection so escalation can ask
/// whether that connection is inside an explicit transaction. Returns false
/// for files that are not ours.
pub fn bind(f: *mut ffi::sqlite3_file, conn: *mut ffi::sqlite3) -> bool {
    layout::with_state(f, |s, _| {
        if s.guard.kind() == Kind::MainDb {
            s.links.bind(conn);
            if s.links.shared {
                // Per-connection read settings cannot hold on a shared file.
                s.guard.forget_read_settings();
            }
        }
    })
    .is_some()
}

/// Whether `f` is a file the guard adopted (see `adopt`).
pub fn is_adopted(f: *mut ffi::sqlite3_file) -> bool {
    layout::is_adopted(f)
}

/// The method table an adopted file had before the guard took it over
/// (null for any other file).
pub fn original_methods(f: *mut ffi::sqlite3_file) -> *const ffi::sqlite3_io_methods {
    layout::original_methods(f)
}

/// Whether `f` is a file of this VFS (so its writes pass the gate).
pub fn is_gated(f: *mut ffi::sqlite3_file) -> bool {
    layout::is_ours(f)
}

/// Whether our main database file `f` is in WAL mode (its journal file is
/// then the `-wal`).
pub fn in_wal_mode(f: *mut ffi::sqlite3_file) -> bool {
    layout::with_state(f, |s, mut base| s.guard.in_wal_mode(&mut base)).unwrap_or(false)
}

/// Whether the authorizer may reuse this file's last verdict instead of
/// looking (see `verdict`). False for files not ours.
pub fn recently_allowed(f: *mut ffi::sqlite3_file) -> bool {
    layout::with_state(f, |s, _| s.guard.recently_allowed()).unwrap_or(false)
}

/// The last read of this main database file that the read floor or the
/// staleness limit refused, as logged (None for files not ours).
pub fn last_refusal(f: *mut ffi::sqlite3_file) -> Option<String> {
    layout::with_state(f, |s, _| s.guard.last_refusal().map(str::to_string)).flatten()
}

/// Records the authorizer's own fresh role check for this file.
pub fn record_verdict(f: *mut ffi::sqlite3_file, may_write: bool) {
    layout::with_state(f, |s, _| s.guard.note(may_write));
}

/// Whether `PRAGMA litefs_forward` is on for this main database file
/// (false for files not ours).
pub fn forwarding(f: *mut ffi::sqlite3_file) -> bool {
    layout::with_state(f, |s, _| s.guard.forwarding_on()).unwrap_or(false)
}

/// The TXID this file's connection's last forwarded write transaction left
/// in `NAME-pos` (its read floor), if any.
pub fn forwarded_txid(f: *mut ffi::sqlite3_file) -> Option<u64> {
    layout::with_state(f, |s, _| s.guard.forwarded_txid()).flatten()
}
