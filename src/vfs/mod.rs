//! The `litefs_guard` VFS: wraps the default VFS. Files in the guarded
//! location (main databases, their journals and WALs inside the mount) get
//! the write gate, IMMEDIATE escalation and the WAL rule; everything else is
//! opened by the base VFS in place and never sees this code again.

mod file;
pub mod locks;

pub use file::{bind, is_gated, note_role, verified_primary};

use crate::settings;
use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

pub const VFS_NAME: &CStr = c"litefs_guard";

/// The VFS we wrap (the default one when the extension first loaded).
static BASE: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(std::ptr::null_mut());
static REGISTERED: Mutex<bool> = Mutex::new(false);

fn base() -> *mut ffi::sqlite3_vfs {
    BASE.load(Ordering::Acquire)
}

/// Registers the VFS as the new default, once per process.
pub fn register() -> Result<(), String> {
    let mut done = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return Ok(());
    }
    // SAFETY: vfs_find with a null name returns the default VFS or null.
    let default = unsafe { crate::sqlite!(vfs_find(std::ptr::null())) };
    if default.is_null() {
        return Err("SQLite has no default VFS to wrap".into());
    }
    // SAFETY: a registered VFS stays valid while registered; zName is a C string.
    let default_name = unsafe { CStr::from_ptr((*default).zName) };
    if default_name == VFS_NAME {
        // Another copy of this library registered it already.
        *done = true;
        return Ok(());
    }
    BASE.store(default, Ordering::Release);
    // SAFETY: `default` is a valid VFS (checked non-null above).
    let b = unsafe { &*default };
    let vfs = Box::new(ffi::sqlite3_vfs {
        iVersion: b.iVersion.min(3),
        szOsFile: file::HEADER_SIZE as c_int + b.szOsFile,
        mxPathname: b.mxPathname,
        pNext: std::ptr::null_mut(),
        zName: VFS_NAME.as_ptr(),
        pAppData: std::ptr::null_mut(),
        xOpen: Some(x_open),
        xDelete: Some(x_delete),
        xAccess: Some(x_access),
        xFullPathname: Some(x_full_pathname),
        xDlOpen: b.xDlOpen.map(|_| x_dl_open as _),
        xDlError: b.xDlError.map(|_| x_dl_error as _),
        xDlSym: b.xDlSym.map(|_| x_dl_sym as _),
        xDlClose: b.xDlClose.map(|_| x_dl_close as _),
        xRandomness: Some(x_randomness),
        xSleep: Some(x_sleep),
        xCurrentTime: Some(x_current_time),
        xGetLastError: Some(x_get_last_error),
        xCurrentTimeInt64: (b.iVersion >= 2 && b.xCurrentTimeInt64.is_some())
            .then_some(x_current_time_int64 as _),
        xSetSystemCall: (b.iVersion >= 3 && b.xSetSystemCall.is_some()).then_some(x_set_system_call as _),
        xGetSystemCall: (b.iVersion >= 3 && b.xGetSystemCall.is_some()).then_some(x_get_system_call as _),
        xNextSystemCall: (b.iVersion >= 3 && b.xNextSystemCall.is_some()).then_some(x_next_system_call as _),
    });
    // The VFS must outlive every connection: it is never unregistered.
    let vfs = Box::leak(vfs);
    // SAFETY: `vfs` is a fully initialised, 'static sqlite3_vfs.
    let rc = unsafe { crate::sqlite!(vfs_register(vfs, 1)) };
    if rc != ffi::SQLITE_OK {
        return Err(format!("registering the litefs_guard VFS failed (code {rc})"));
    }
    *done = true;
    Ok(())
}

/// What SQLite is opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    MainDb,
    Journal,
    Wal,
}

fn kind_of(flags: c_int) -> Option<Kind> {
    if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        Some(Kind::MainDb)
    } else if flags & ffi::SQLITE_OPEN_MAIN_JOURNAL != 0 {
        Some(Kind::Journal)
    } else if flags & ffi::SQLITE_OPEN_WAL != 0 {
        Some(Kind::Wal)
    } else {
        None
    }
}

/// The database a journal or WAL belongs to.
fn database_path(path: &Path, kind: Kind) -> PathBuf {
    let suffix = match kind {
        Kind::MainDb => return path.to_path_buf(),
        Kind::Journal => "-journal",
        Kind::Wal => "-wal",
    };
    let s = path.to_string_lossy();
    PathBuf::from(s.strip_suffix(suffix).unwrap_or(&s).to_string())
}

/// Catches a panic at the FFI boundary and answers `on_panic` instead.
fn boundary<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(on_panic)
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    f: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    boundary(ffi::SQLITE_CANTOPEN, || {
        let b = base();
        let guarded = (|| {
            let kind = kind_of(flags)?;
            if name.is_null() {
                return None;
            }
            // SAFETY: SQLite passes a NUL-terminated path.
            let path = PathBuf::from(unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned());
            let db_path = database_path(&path, kind);
            let mount = settings::loaded()?.mount_for(&db_path)?;
            Some((kind, db_path, mount))
        })();
        match guarded {
            // SAFETY: unguarded files are opened by the base VFS in place: the
            // buffer is at least the base's szOsFile, and SQLite then talks to
            // the base file's own methods directly.
            None => unsafe { ((*b).xOpen.expect("base xOpen"))(b, name, f, flags, out_flags) },
            // SAFETY: `f` is SQLite's buffer of our szOsFile bytes.
            Some((kind, db_path, mount)) => unsafe {
                file::open(b, name, f, flags, out_flags, kind, db_path, mount)
            },
        }
    })
}

// Everything below forwards to the base VFS unchanged.
// SAFETY (all): `base()` is the valid, registered default VFS captured in
// `register`; the arguments are SQLite's, passed through untouched.

unsafe extern "C" fn x_delete(_v: *mut ffi::sqlite3_vfs, name: *const c_char, sync: c_int) -> c_int {
    let b = base();
    match unsafe { (*b).xDelete } {
        Some(x) => unsafe { x(b, name, sync) },
        None => ffi::SQLITE_IOERR_DELETE,
    }
}
unsafe extern "C" fn x_access(
    _v: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let b = base();
    match unsafe { (*b).xAccess } {
        Some(x) => unsafe { x(b, name, flags, out) },
        None => ffi::SQLITE_IOERR_ACCESS,
    }
}
unsafe extern "C" fn x_full_pathname(
    _v: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let b = base();
    match unsafe { (*b).xFullPathname } {
        Some(x) => unsafe { x(b, name, n, out) },
        None => ffi::SQLITE_CANTOPEN,
    }
}
unsafe extern "C" fn x_dl_open(_v: *mut ffi::sqlite3_vfs, name: *const c_char) -> *mut c_void {
    let b = base();
    match unsafe { (*b).xDlOpen } {
        Some(x) => unsafe { x(b, name) },
        None => std::ptr::null_mut(),
    }
}
unsafe extern "C" fn x_dl_error(_v: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    let b = base();
    if let Some(x) = unsafe { (*b).xDlError } {
        unsafe { x(b, n, out) }
    }
}
unsafe extern "C" fn x_dl_sym(
    _v: *mut ffi::sqlite3_vfs,
    h: *mut c_void,
    sym: *const c_char,
) -> Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)> {
    let b = base();
    match unsafe { (*b).xDlSym } {
        Some(x) => unsafe { x(b, h, sym) },
        None => None,
    }
}
unsafe extern "C" fn x_dl_close(_v: *mut ffi::sqlite3_vfs, h: *mut c_void) {
    let b = base();
    if let Some(x) = unsafe { (*b).xDlClose } {
        unsafe { x(b, h) }
    }
}
unsafe extern "C" fn x_randomness(_v: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let b = base();
    match unsafe { (*b).xRandomness } {
        Some(x) => unsafe { x(b, n, out) },
        None => 0,
    }
}
unsafe extern "C" fn x_sleep(_v: *mut ffi::sqlite3_vfs, us: c_int) -> c_int {
    let b = base();
    match unsafe { (*b).xSleep } {
        Some(x) => unsafe { x(b, us) },
        None => 0,
    }
}
unsafe extern "C" fn x_current_time(_v: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let b = base();
    match unsafe { (*b).xCurrentTime } {
        Some(x) => unsafe { x(b, out) },
        None => ffi::SQLITE_ERROR,
    }
}
unsafe extern "C" fn x_get_last_error(_v: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let b = base();
    match unsafe { (*b).xGetLastError } {
        Some(x) => unsafe { x(b, n, out) },
        None => 0,
    }
}
unsafe extern "C" fn x_current_time_int64(_v: *mut ffi::sqlite3_vfs, out: *mut ffi::sqlite3_int64) -> c_int {
    let b = base();
    match unsafe { (*b).xCurrentTimeInt64 } {
        Some(x) => unsafe { x(b, out) },
        None => ffi::SQLITE_ERROR,
    }
}
unsafe extern "C" fn x_set_system_call(
    _v: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    p: ffi::sqlite3_syscall_ptr,
) -> c_int {
    let b = base();
    match unsafe { (*b).xSetSystemCall } {
        Some(x) => unsafe { x(b, name, p) },
        None => ffi::SQLITE_NOTFOUND,
    }
}
unsafe extern "C" fn x_get_system_call(
    _v: *mut ffi::sqlite3_vfs,
    name: *const c_char,
) -> ffi::sqlite3_syscall_ptr {
    let b = base();
    match unsafe { (*b).xGetSystemCall } {
        Some(x) => unsafe { x(b, name) },
        None => None,
    }
}
unsafe extern "C" fn x_next_system_call(_v: *mut ffi::sqlite3_vfs, name: *const c_char) -> *const c_char {
    let b = base();
    match unsafe { (*b).xNextSystemCall } {
        Some(x) => unsafe { x(b, name) },
        None => std::ptr::null(),
    }
}
