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
//!   long a role verdict is reused). `policy` reaches the base file through
//!   the `BaseFile` trait and everything else through the `Outside` trait;
//! - the FFI below it: `wrap` (wrapping every VFS), `trampolines` (the
//!   `extern "C"` methods, panics caught there), `layout` (where a file's
//!   state lives: header or adopted side table, the method tables, MAINS),
//!   `base` and `outside` (the real `BaseFile` and `Outside`).

mod backstop;
mod base;
mod layout;
pub mod locks;
mod outside;
mod policy;
mod trampolines;
mod verdict;
mod wrap;

pub use layout::{
    adopt, bind, in_wal_mode, is_adopted, is_gated, original_methods, recently_allowed, record_verdict,
};
pub use wrap::{register, wrap_all};

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
