//! The extension entry point and the auto-extension hook that sets up every
//! connection opened after loading.

use crate::error::{check, Error};
use crate::{settings, setup, sqlite_api, vfs};
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
    match r.unwrap_or(Err(Error::Internal)) {
        // Stay loaded for good: the VFS and the auto-extension point into this library.
        Ok(()) => ffi::SQLITE_OK_LOAD_PERMANENTLY,
        Err(e) if sqlite_api::installed().is_none() && !err.is_null() => {
            // The API could not be read (a routine is missing): the message
            // still goes through the table's own allocator.
            // SAFETY: `api` is SQLite's table (caller contract); SQLite frees *err.
            unsafe { *err = sqlite_api::string_from_table(api, &e.message()) };
            ffi::SQLITE_ERROR
        }
        Err(e) => fail(err, &e),
    }
}

/// Hands `e` to SQLite through its error-message out-pointer.
fn fail(err: *mut *mut c_char, e: &Error) -> c_int {
    if let (false, Some(api)) = (err.is_null(), sqlite_api::installed()) {
        // SAFETY: SQLite frees *err with sqlite3_free.
        unsafe { *err = api.string(&e.message()) };
    }
    ffi::SQLITE_ERROR
}

/// # Safety
/// See `sqlite3_litefsguard_init`.
unsafe fn load(db: *mut ffi::sqlite3, table: *mut ffi::sqlite3_api_routines) -> Result<(), Error> {
    // SAFETY: `table` is SQLite's routine table.
    let api = unsafe { sqlite_api::install(table) }?;
    // Settings first: a bad setting must fail loading before anything is registered.
    let settings = settings::global()?;
    vfs::register(settings)?;
    register_auto_extension(api)?;
    setup::connection(db, settings)
}

static AUTO: Once = Once::new();

type EntryPoint =
    unsafe extern "C" fn(*mut ffi::sqlite3, *mut *mut c_char, *const ffi::sqlite3_api_routines) -> c_int;

fn register_auto_extension(api: &sqlite_api::Api) -> Result<(), Error> {
    let mut rc = ffi::SQLITE_OK;
    AUTO.call_once(|| {
        // SAFETY: SQLite calls auto-extensions as (db, errmsg, api) -> int;
        // the declared type is a bare `void(*)(void)`, hence the transmute of
        // a function that really has the entry-point signature.
        rc = unsafe {
            (api.auto_extension)(Some(std::mem::transmute::<EntryPoint, unsafe extern "C" fn()>(
                on_open,
            )))
        };
    });
    check(rc, "registering the auto-extension")
}

/// Runs inside every later `sqlite3_open*`, after the main database file is open.
unsafe extern "C" fn on_open(
    db: *mut ffi::sqlite3,
    err: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    let r = std::panic::catch_unwind(|| setup::connection(db, settings::global()?));
    match r.unwrap_or(Err(Error::Internal)) {
        Ok(()) => ffi::SQLITE_OK,
        Err(e) => fail(err, &e),
    }
}
