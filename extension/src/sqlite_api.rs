//! The SQLite C API, reached through the routine table of whichever SQLite
//! loaded us. Nothing here links against a SQLite library: every call goes
//! through the pointer SQLite hands to the extension entry point.
//!
//! libsqlite3-sys's own `rusqlite_extension_init2` refuses any runtime older
//! than the headers it was generated from (3.45.3), which would rule out
//! Debian 12's 3.40. We keep our own pointer instead and check, once, that
//! every routine we call is present.

use libsqlite3_sys as ffi;
use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

/// Oldest SQLite we accept: SQLITE_DIRECTONLY arrived in 3.31.0.
pub const MIN_VERSION: c_int = 3_031_000;

static ROUTINES: AtomicPtr<ffi::sqlite3_api_routines> = AtomicPtr::new(std::ptr::null_mut());
static VERSION: AtomicI32 = AtomicI32::new(0);

/// `sqlite3_libversion_number()` of the loading SQLite (0 before `install`).
pub fn version() -> c_int {
    VERSION.load(Ordering::Acquire)
}

/// `sqlite3_db_name`, which only 3.39.0 and later have: older routine tables
/// end before its slot, so it is never read there.
pub fn db_name_routine() -> Option<unsafe extern "C" fn(*mut ffi::sqlite3, c_int) -> *const std::ffi::c_char>
{
    if version() < 3_039_000 {
        return None;
    }
    let table = routines();
    // SAFETY: the table is SQLite's and, from 3.39 on, has this slot.
    unsafe { std::ptr::addr_of!((*table).db_name).read() }
}

/// The routine table; null before [`install`].
pub fn routines() -> *mut ffi::sqlite3_api_routines {
    ROUTINES.load(Ordering::Acquire)
}

/// Calls one routine of the loading SQLite: `sqlite!(get_autocommit(db))`.
///
/// Reads only the named field, so a table shorter than libsqlite3-sys's
/// struct (an older SQLite) is never read past its end.
#[macro_export]
macro_rules! sqlite {
    ($f:ident ( $($arg:expr),* $(,)? )) => {{
        let table = $crate::sqlite_api::routines();
        // SAFETY: `install` stored a non-null table from SQLite and verified
        // this field is present; reading one field stays inside the table.
        #[allow(unused_unsafe)]
        let f = unsafe { ::core::ptr::addr_of!((*table).$f).read() };
        match f {
            Some(f) => f($($arg),*),
            None => panic!(concat!("SQLite routine ", stringify!($f), " is missing")),
        }
    }};
}

/// Names of the routines `install` requires (a missing one fails loading).
const REQUIRED: &[&str] = &[
    "auto_extension",
    "busy_timeout",
    "context_db_handle",
    "create_function_v2",
    "db_filename",
    "db_readonly",
    "errmsg",
    "exec",
    "extended_errcode",
    "file_control",
    "free",
    "get_autocommit",
    "libversion_number",
    "log",
    "malloc",
    "result_error",
    "result_error_code",
    "result_int",
    "result_null",
    "result_text",
    "set_authorizer",
    "user_data",
    "value_text",
    "value_type",
    "vfs_find",
    "vfs_register",
];

/// Stores the routine table handed to the entry point.
///
/// # Safety
/// `table` must be the `sqlite3_api_routines` pointer SQLite passed to an
/// extension entry point (valid for the life of the process).
pub unsafe fn install(table: *mut ffi::sqlite3_api_routines) -> Result<c_int, String> {
    if table.is_null() {
        return Err("SQLite passed no API routine table; load litefs_guard as an extension".into());
    }
    let current = ROUTINES.load(Ordering::Acquire);
    if !current.is_null() && current != table {
        // A second SQLite library in the same process would share our
        // globals (VFS, settings); refuse rather than mix them.
        return Err(
            "litefs_guard is already loaded by another SQLite library in this process; \
             load it from one SQLite only"
                .into(),
        );
    }
    // SAFETY: `table` is SQLite's routine table (caller contract); the
    // version field has existed since the table was introduced.
    let version = match unsafe { (*table).libversion_number } {
        Some(f) => unsafe { f() },
        None => return Err("SQLite routine table has no libversion_number".into()),
    };
    if version < MIN_VERSION {
        return Err(format!(
            "SQLite {} is too old for litefs_guard; version 3.31.0 or newer is needed",
            version_string(version)
        ));
    }
    ROUTINES.store(table, Ordering::Release);
    VERSION.store(version, Ordering::Release);
    for name in REQUIRED {
        if !present(name) {
            return Err(format!("SQLite routine {name} is missing from this SQLite build"));
        }
    }
    Ok(version)
}

/// Whether a required routine is present in the installed table.
fn present(name: &str) -> bool {
    let t = routines();
    // SAFETY: each arm reads a single field of the installed table.
    unsafe {
        match name {
            "auto_extension" => (*t).auto_extension.is_some(),
            "busy_timeout" => (*t).busy_timeout.is_some(),
            "context_db_handle" => (*t).context_db_handle.is_some(),
            "create_function_v2" => (*t).create_function_v2.is_some(),
            "db_filename" => (*t).db_filename.is_some(),
            "db_readonly" => (*t).db_readonly.is_some(),
            "errmsg" => (*t).errmsg.is_some(),
            "exec" => (*t).exec.is_some(),
            "extended_errcode" => (*t).extended_errcode.is_some(),
            "file_control" => (*t).file_control.is_some(),
            "free" => (*t).free.is_some(),
            "get_autocommit" => (*t).get_autocommit.is_some(),
            "libversion_number" => (*t).libversion_number.is_some(),
            "log" => (*t).log.is_some(),
            "malloc" => (*t).malloc.is_some(),
            "result_error" => (*t).result_error.is_some(),
            "result_error_code" => (*t).result_error_code.is_some(),
            "result_int" => (*t).result_int.is_some(),
            "result_null" => (*t).result_null.is_some(),
            "result_text" => (*t).result_text.is_some(),
            "set_authorizer" => (*t).set_authorizer.is_some(),
            "user_data" => (*t).user_data.is_some(),
            "value_text" => (*t).value_text.is_some(),
            "value_type" => (*t).value_type.is_some(),
            "vfs_find" => (*t).vfs_find.is_some(),
            "vfs_register" => (*t).vfs_register.is_some(),
            _ => false,
        }
    }
}

/// `3040001` → `3.40.1`.
pub fn version_string(v: c_int) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1000) % 1000, v % 1000)
}

/// Copies `msg` into memory from sqlite3_malloc, as SQLite expects for
/// error-message out-parameters it will sqlite3_free.
pub fn sqlite_string(msg: &str) -> *mut std::ffi::c_char {
    let bytes = msg.as_bytes();
    let len = bytes.len() + 1;
    let Ok(len_c) = c_int::try_from(len) else {
        return std::ptr::null_mut();
    };
    // SAFETY: allocation through SQLite's allocator; null is handled.
    let p = unsafe { sqlite!(malloc(len_c)) } as *mut u8;
    if p.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: `p` holds `len` bytes; the message never contains a NUL we
    // rely on (interior NULs just shorten the C string).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        *p.add(bytes.len()) = 0;
    }
    p as *mut std::ffi::c_char
}

/// Writes `msg` to SQLite's error log (sqlite3_log), where hosts that set
/// SQLITE_CONFIG_LOG see why a write was refused.
pub fn log(code: c_int, msg: &str) {
    if routines().is_null() {
        return;
    }
    let Ok(c) = std::ffi::CString::new(msg.replace('\0', " ")) else {
        return;
    };
    // SAFETY: "%s" with a valid C string, as sqlite3_log's printf contract wants.
    unsafe { sqlite!(log(code, c"%s".as_ptr(), c.as_ptr())) }
}
