//! Per-connection setup: the one place that gives a connection its state,
//! the SQL functions, the authorizer and, on the primary, WAL. The
//! authorizer and the functions only see the connection's state; neither
//! imports this module back.

use crate::connection::{self, ConnState};
use crate::error::{check, Error};
use crate::settings::Settings;
use crate::sqlite_api::{self, api};
use crate::{authorizer, functions, vfs};
use libsqlite3_sys as ffi;
use std::ffi::c_void;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long opening waits to put a fresh database in WAL while others do too.
const WAL_SWITCH_PATIENCE: Duration = Duration::from_secs(5);

/// Sets up a connection. Safe to call twice on the same connection.
pub fn connection(db: *mut ffi::sqlite3, settings: &'static Settings) -> Result<(), Error> {
    vfs::wrap_all(settings)?;
    if connection::is_set_up(db) {
        // Loaded again on a guarded connection (`SELECT load_extension(…)`):
        // its functions cannot be replaced while that statement runs, and
        // need not be.
        return Ok(());
    }
    let state = Arc::new(ConnState::new(db, settings));
    if settings.keep_wal {
        ensure_wal(&state);
    }
    // The functions own the state (their destructors run when the connection
    // closes); the authorizer only borrows it. So the functions come first: if
    // registering them fails (say, a second load while a statement runs), the
    // authorizer still points at the state the old functions keep alive.
    functions::register(db, state.clone())?;
    // SAFETY: `db` is the open connection SQLite handed us; the pointer stays
    // valid while the functions registered above hold the Arc.
    let rc =
        unsafe { (api().set_authorizer)(db, Some(authorizer::callback), Arc::as_ptr(&state) as *mut c_void) };
    check(rc, "installing the authorizer")?;
    state.mark_set_up();
    Ok(())
}

/// Puts the main database in WAL on the primary, waiting out other
/// connections doing the same (it never touches the application's busy
/// handler). On a replica nothing is written.
fn ensure_wal(state: &ConnState) {
    let Some(path) = state.schema_path(c"main") else {
        return;
    };
    let Some(l) = state.mount_for(&path) else {
        return;
    };
    if state.is_read_only(c"main") || !state.role_for(&l.mount, Some(&l.db)).may_write() {
        return;
    }
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        // SAFETY: valid connection; static SQL; no callback.
        let rc = unsafe {
            (api().exec)(
                state.db(),
                c"PRAGMA main.journal_mode=WAL".as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let busy = rc & 0xff == ffi::SQLITE_BUSY || rc & 0xff == ffi::SQLITE_LOCKED;
        if rc == ffi::SQLITE_OK || !busy || start.elapsed() > WAL_SWITCH_PATIENCE {
            if rc != ffi::SQLITE_OK {
                sqlite_api::log(rc, &Error::WalSwitch { db: path, rc });
            }
            return;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
