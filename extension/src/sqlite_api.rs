//! The SQLite C API, reached through the routine table of whichever SQLite
//! loaded us. Nothing here links against a SQLite library: every call goes
//! through a pointer SQLite handed to the extension entry point.
//!
//! libsqlite3-sys's own `rusqlite_extension_init2` refuses any runtime older
//! than the headers it was generated from (3.45.3), which would rule out
//! Debian 12's 3.40. So the table is read once, at load, into [`Api`]: one
//! typed function pointer per routine the guard calls. A routine every
//! supported version has is a plain field (missing: loading fails); one that
//! only newer versions have is an `Option`, read only when
//! `sqlite3_libversion_number()` says the table is long enough — an older
//! table ends before that slot, and reading past it is out of bounds.

use crate::error::Error;
use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, c_uchar, c_void};
use std::sync::OnceLock;

/// Oldest SQLite we accept: SQLITE_DIRECTONLY arrived in 3.31.0.
pub const MIN_VERSION: c_int = 3_031_000;
/// `sqlite3_txn_state` arrived in 3.34.0.
const TXN_STATE_VERSION: c_int = 3_034_000;
/// `sqlite3_db_name` arrived in 3.39.0.
const DB_NAME_VERSION: c_int = 3_039_000;
/// `sqlite3_is_interrupted` arrived in 3.41.0.
const IS_INTERRUPTED_VERSION: c_int = 3_041_000;

type Db = *mut ffi::sqlite3;
type Ctx = *mut ffi::sqlite3_context;
type Value = *mut ffi::sqlite3_value;
type ScalarFn = unsafe extern "C" fn(Ctx, c_int, *mut Value);
type FinalFn = unsafe extern "C" fn(Ctx);
type DestroyFn = unsafe extern "C" fn(*mut c_void);
/// sqlite3_set_authorizer's callback.
pub type AuthorizerFn = unsafe extern "C" fn(
    *mut c_void,
    c_int,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
) -> c_int;

/// The routines the guard calls, exactly those.
pub struct Api {
    pub auto_extension: unsafe extern "C" fn(Option<unsafe extern "C" fn()>) -> c_int,
    #[allow(clippy::type_complexity)]
    pub create_function_v2: unsafe extern "C" fn(
        Db,
        *const c_char,
        c_int,
        c_int,
        *mut c_void,
        Option<ScalarFn>,
        Option<ScalarFn>,
        Option<FinalFn>,
        Option<DestroyFn>,
    ) -> c_int,
    pub db_filename: unsafe extern "C" fn(Db, *const c_char) -> *const c_char,
    pub db_readonly: unsafe extern "C" fn(Db, *const c_char) -> c_int,
    pub exec: unsafe extern "C" fn(
        Db,
        *const c_char,
        ffi::sqlite3_callback,
        *mut c_void,
        *mut *mut c_char,
    ) -> c_int,
    pub file_control: unsafe extern "C" fn(Db, *const c_char, c_int, *mut c_void) -> c_int,
    pub get_autocommit: unsafe extern "C" fn(Db) -> c_int,
    pub log: unsafe extern "C" fn(c_int, *const c_char, ...),
    pub malloc: unsafe extern "C" fn(c_int) -> *mut c_void,
    pub result_error: unsafe extern "C" fn(Ctx, *const c_char, c_int),
    pub result_error_code: unsafe extern "C" fn(Ctx, c_int),
    pub result_int64: unsafe extern "C" fn(Ctx, i64),
    pub result_null: unsafe extern "C" fn(Ctx),
    pub result_text: unsafe extern "C" fn(Ctx, *const c_char, c_int, Option<DestroyFn>),
    pub set_authorizer: unsafe extern "C" fn(Db, Option<AuthorizerFn>, *mut c_void) -> c_int,
    pub user_data: unsafe extern "C" fn(Ctx) -> *mut c_void,
    pub value_double: unsafe extern "C" fn(Value) -> f64,
    pub value_int64: unsafe extern "C" fn(Value) -> i64,
    pub value_text: unsafe extern "C" fn(Value) -> *const c_uchar,
    pub value_type: unsafe extern "C" fn(Value) -> c_int,
    pub vfs_find: unsafe extern "C" fn(*const c_char) -> *mut ffi::sqlite3_vfs,
    pub vfs_register: unsafe extern "C" fn(*mut ffi::sqlite3_vfs, c_int) -> c_int,
    /// 3.39.0 and later: lists a connection's schema names.
    pub db_name: Option<unsafe extern "C" fn(Db, c_int) -> *const c_char>,
    /// 3.34.0 and later: whether a schema has a read or write transaction open.
    pub txn_state: Option<unsafe extern "C" fn(Db, *const c_char) -> c_int>,
    /// 3.41.0 and later: whether sqlite3_interrupt() is pending.
    pub is_interrupted: Option<unsafe extern "C" fn(Db) -> c_int>,
}

/// The table the API was read from, and the API.
static API: OnceLock<(usize, Api)> = OnceLock::new();

/// The loading SQLite's API.
///
/// # Panics
/// Before [`install`]. Every caller runs inside a callback SQLite makes after
/// loading (and inside a panic boundary), so this cannot happen.
pub fn api() -> &'static Api {
    &API.get()
        .expect("the SQLite API is read at load, before any callback")
        .1
}

/// `api()` when the API was read already (for error paths of loading).
pub fn installed() -> Option<&'static Api> {
    API.get().map(|(_, a)| a)
}

/// Reads the routine table handed to the entry point, once per process.
///
/// # Safety
/// `table` must be the `sqlite3_api_routines` pointer SQLite passed to an
/// extension entry point (valid for the life of the process).
pub unsafe fn install(table: *mut ffi::sqlite3_api_routines) -> Result<&'static Api, Error> {
    if table.is_null() {
        return Err(Error::Load(
            "SQLite passed no API routine table; load litefs_guard as an extension".into(),
        ));
    }
    if let Some((first, api)) = API.get() {
        if *first != table as usize {
            // A second SQLite library in the same process would share our
            // globals (VFS, settings); refuse rather than mix them.
            return Err(Error::Load(
                "litefs_guard is already loaded by another SQLite library in this process; \
                 load it from one SQLite only"
                    .into(),
            ));
        }
        return Ok(api);
    }
    // SAFETY: caller contract: SQLite's table, valid for the process.
    let api = unsafe { read(table) }?;
    Ok(&API.get_or_init(|| (table as usize, api)).1)
}

/// One required routine, or the error naming it.
macro_rules! required {
    ($t:expr, $name:ident) => {{
        // SAFETY: every supported version's table has this slot (checked
        // against MIN_VERSION first); reading one field stays inside it.
        let f = unsafe { std::ptr::addr_of!((*$t).$name).read() };
        f.ok_or_else(|| {
            Error::Load(format!(
                "SQLite routine {} is missing from this SQLite build",
                stringify!($name)
            ))
        })?
    }};
}

/// # Safety
/// As [`install`].
unsafe fn read(t: *mut ffi::sqlite3_api_routines) -> Result<Api, Error> {
    // SAFETY: the version slot has existed since the table was introduced.
    let Some(libversion) = (unsafe { (*t).libversion_number }) else {
        return Err(Error::Load(
            "SQLite routine table has no libversion_number".into(),
        ));
    };
    // SAFETY: SQLite's own routine.
    let version = unsafe { libversion() };
    if version < MIN_VERSION {
        return Err(Error::Load(format!(
            "SQLite {} is too old for litefs_guard; version 3.31.0 or newer is needed",
            version_string(version)
        )));
    }
    let db_name = if version >= DB_NAME_VERSION {
        // SAFETY: from 3.39.0 on the table has this slot.
        unsafe { std::ptr::addr_of!((*t).db_name).read() }
    } else {
        None
    };
    let txn_state = if version >= TXN_STATE_VERSION {
        // SAFETY: from 3.34.0 on the table has this slot.
        unsafe { std::ptr::addr_of!((*t).txn_state).read() }
    } else {
        None
    };
    let is_interrupted = if version >= IS_INTERRUPTED_VERSION {
        // SAFETY: from 3.41.0 on the table has this slot.
        unsafe { std::ptr::addr_of!((*t).is_interrupted).read() }
    } else {
        None
    };
    Ok(Api {
        auto_extension: required!(t, auto_extension),
        create_function_v2: required!(t, create_function_v2),
        db_filename: required!(t, db_filename),
        db_readonly: required!(t, db_readonly),
        exec: required!(t, exec),
        file_control: required!(t, file_control),
        get_autocommit: required!(t, get_autocommit),
        log: required!(t, log),
        malloc: required!(t, malloc),
        result_error: required!(t, result_error),
        result_error_code: required!(t, result_error_code),
        result_int64: required!(t, result_int64),
        result_null: required!(t, result_null),
        result_text: required!(t, result_text),
        set_authorizer: required!(t, set_authorizer),
        user_data: required!(t, user_data),
        value_double: required!(t, value_double),
        value_int64: required!(t, value_int64),
        value_text: required!(t, value_text),
        value_type: required!(t, value_type),
        vfs_find: required!(t, vfs_find),
        vfs_register: required!(t, vfs_register),
        db_name,
        txn_state,
        is_interrupted,
    })
}

/// `3040001` → `3.40.1`.
pub fn version_string(v: c_int) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1000) % 1000, v % 1000)
}

impl Api {
    /// Copies `msg` into memory from sqlite3_malloc, as SQLite expects for
    /// error-message out-parameters it will sqlite3_free. Null when out of memory.
    pub fn string(&self, msg: &str) -> *mut c_char {
        copy_with(self.malloc, msg)
    }
}

/// [`Api::string`] before the API could be read (loading failed on a
/// missing routine): through the table's own `malloc`, null when it has none.
///
/// # Safety
/// `table` is null or SQLite's routine table.
pub unsafe fn string_from_table(table: *mut ffi::sqlite3_api_routines, msg: &str) -> *mut c_char {
    if table.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: caller contract; `malloc` has been in every table since 3.0.
    match unsafe { (*table).malloc } {
        Some(malloc) => copy_with(malloc, msg),
        None => std::ptr::null_mut(),
    }
}

fn copy_with(malloc: unsafe extern "C" fn(c_int) -> *mut c_void, msg: &str) -> *mut c_char {
    let bytes = msg.as_bytes();
    let len = bytes.len() + 1;
    let Ok(len_c) = c_int::try_from(len) else {
        return std::ptr::null_mut();
    };
    // SAFETY: allocation through SQLite's allocator; null is handled.
    let p = unsafe { malloc(len_c) } as *mut u8;
    if p.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: `p` holds `len` bytes; an interior NUL just shortens the string.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        *p.add(bytes.len()) = 0;
    }
    p as *mut c_char
}

/// Writes `msg` to SQLite's error log (sqlite3_log), where hosts that set
/// SQLITE_CONFIG_LOG see why a write was refused. The one place log lines
/// get the `litefs_guard:` prefix.
pub fn log(code: c_int, msg: &dyn std::fmt::Display) {
    let Some(api) = installed() else {
        return;
    };
    let text = format!("{}{msg}", crate::error::PREFIX).replace('\0', " ");
    let Ok(c) = std::ffi::CString::new(text) else {
        return;
    };
    // SAFETY: "%s" with a valid C string, as sqlite3_log's printf contract wants.
    unsafe { (api.log)(code, c"%s".as_ptr(), c.as_ptr()) }
}
