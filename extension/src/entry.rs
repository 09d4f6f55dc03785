//! The extension entry point and the auto-extension hook that guards every
//! connection opened after loading.

use crate::{connection, settings, sqlite_api, vfs};
use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int};
use std::sync::Once;

/// `sqlite3_litefsguard_init`: the name SQLite derives from both
/// `litefs_guard.so` and `liblitefs_guard.so`.
///
/// # Safety
/// Called by SQLite's extension loader with a valid connection, error-message
/// out-pointer and API routine table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_litefsguard_init(
    db: *mut ffi::sqlite3,
    err: *mut *mut c_char,
    api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: forwarded caller contract.
    let r = std::panic::catch_unwind(|| unsafe { load(db, api) });
    let msg = match r {
        // Stay loaded for good: the VFS and the auto-extension point into this library.
        Ok(Ok(())) => return ffi::SQLITE_OK_LOAD_PERMANENTLY,
        Ok(Err(msg)) => msg,
        Err(_) => "litefs_guard: internal error while loading (a bug: please report it)".to_string(),
    };
    if !err.is_null() && !sqlite_api::routines().is_null() {
        // SAFETY: SQLite frees *err with sqlite3_free.
        unsafe { *err = sqlite_api::sqlite_string(&msg) };
    }
    ffi::SQLITE_ERROR
}

/// # Safety
/// See `sqlite3_litefsguard_init`.
unsafe fn load(db: *mut ffi::sqlite3, api: *mut ffi::sqlite3_api_routines) -> Result<(), String> {
    // SAFETY: `api` is SQLite's routine table.
    unsafe { sqlite_api::install(api) }.map_err(|e| format!("litefs_guard: {e}"))?;
    // Settings first: a bad setting must fail loading before anything is registered.
    settings::global().map_err(|e| format!("litefs_guard: {e}"))?;
    vfs::register().map_err(|e| format!("litefs_guard: {e}"))?;
    register_auto_extension()?;
    connection::setup(db)
}

static AUTO: Once = Once::new();

fn register_auto_extension() -> Result<(), String> {
    let mut rc = ffi::SQLITE_OK;
    AUTO.call_once(|| {
        // SAFETY: SQLite calls auto-extensions as (db, errmsg, api) -> int;
        // the declared type is a bare `void(*)(void)`, hence the transmute of
        // a function that really has the entry-point signature.
        rc = unsafe {
            let f: unsafe extern "C" fn(
                *mut ffi::sqlite3,
                *mut *mut c_char,
                *const ffi::sqlite3_api_routines,
            ) -> c_int = on_open;
            crate::sqlite!(auto_extension(Some(std::mem::transmute::<
                unsafe extern "C" fn(
                    *mut ffi::sqlite3,
                    *mut *mut c_char,
                    *const ffi::sqlite3_api_routines,
                ) -> c_int,
                unsafe extern "C" fn(),
            >(f))))
        };
    });
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(format!(
            "litefs_guard: registering the auto-extension failed (code {rc})"
        ))
    }
}

/// Runs inside every later `sqlite3_open*`, after the main database file is open.
unsafe extern "C" fn on_open(
    db: *mut ffi::sqlite3,
    err: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    match std::panic::catch_unwind(|| connection::setup(db)) {
        Ok(Ok(())) => ffi::SQLITE_OK,
        Ok(Err(msg)) => {
            if !err.is_null() {
                // SAFETY: SQLite frees *err with sqlite3_free.
                unsafe { *err = sqlite_api::sqlite_string(&msg) };
            }
            ffi::SQLITE_ERROR
        }
        Err(_) => ffi::SQLITE_ERROR,
    }
}
