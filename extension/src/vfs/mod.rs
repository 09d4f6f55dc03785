//! The guard's VFS layer: a wrapper for every VFS SQLite has, under the same
//! name. Files in the guarded location (main databases, their journals and
//! WALs, found by identity: see `location`) get the write gate, IMMEDIATE
//! escalation, the WAL rule and the backstop; everything else is opened by
//! the base VFS in place and never sees this code again.

mod backstop;
mod file;
pub mod locks;
mod verdict;

pub use file::{
    adopt, bind, in_wal_mode, is_adopted, is_gated, original_methods, recently_allowed, record_verdict,
};

use crate::error::{check, Error};
use crate::location;
use crate::settings::Settings;
use crate::sqlite_api::api;
use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Mutex;

/// One wrapper per VFS this process had when the guard looked: same name,
/// same version, the original (the "base") and the settings its files
/// follow kept in `pAppData`.
#[derive(Clone, Copy)]
struct Wrapper {
    base: *mut ffi::sqlite3_vfs,
    settings: &'static Settings,
}

/// Every wrapper registered so far (they live for the life of the process).
static WRAPPERS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// The wrapper's own part.
fn wrapper_of(vfs: *mut ffi::sqlite3_vfs) -> &'static Wrapper {
    // SAFETY: every VFS whose methods are these was built by `wrap`, with a
    // leaked `Wrapper` in pAppData.
    unsafe { &*((*vfs).pAppData as *const Wrapper) }
}

/// The base VFS behind a wrapper.
fn base_of(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    wrapper_of(vfs).base
}

/// Wraps every VFS SQLite knows under its own name, the default one staying
/// the default. Any way of naming a VFS (`?vfs=unix-none`, `sqlite3_open_v2`'s
/// zVfs, ATTACH with a URI, a VFS an application registered before loading us)
/// then reaches a wrapper: SQLite finds VFSes by name, first match wins, and a
/// wrapper is registered ahead of what it wraps. Called at load, for every
/// new connection and before every ATTACH, so VFSes registered later are
/// wrapped too. Cheap when nothing is new. `memdb` holds no files.
pub fn wrap_all(settings: &'static Settings) -> Result<(), Error> {
    let api = api();
    let mut done = WRAPPERS.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: vfs_find with a null name returns the default VFS or null.
    let head = unsafe { (api.vfs_find)(std::ptr::null()) };
    if head.is_null() {
        return Err(Error::Load("SQLite has no default VFS to wrap".into()));
    }
    // Collect first: registering changes the list being walked.
    let mut todo = Vec::new();
    let mut v = head;
    while !v.is_null() {
        // SAFETY: a registered VFS stays valid; zName is a C string.
        let name = unsafe { CStr::from_ptr((*v).zName) };
        let wrapped_already =
            done.contains(&(v as usize)) || done.iter().any(|&w| base_of(w as *mut ffi::sqlite3_vfs) == v);
        if !wrapped_already && name != c"memdb" && !todo.iter().any(|(n, _)| *n == name) {
            // The first VFS of a name is the one SQLite finds; later ones with
            // the same name are unreachable already.
            // SAFETY: as above.
            let shadowed = unsafe { (api.vfs_find)(name.as_ptr()) } != v;
            if !shadowed {
                todo.push((name, v));
            }
        }
        // SAFETY: pNext is the public list link.
        v = unsafe { (*v).pNext };
    }
    // An original registered again (sqlite3_vfs_register moves it to the
    // front of the list) would now be found before its wrapper: move the
    // wrapper ahead of it again.
    for &w in done.iter() {
        let w = w as *mut ffi::sqlite3_vfs;
        // SAFETY: our wrappers live for the process; zName is the base's name.
        let found = unsafe { (api.vfs_find)((*w).zName) };
        if found == base_of(w) {
            // SAFETY: `w` is a fully initialised, 'static sqlite3_vfs.
            let rc = unsafe { (api.vfs_register)(w, (found == head) as c_int) };
            check(rc, "registering the guard's VFS wrapper")?;
        }
    }
    for (_, v) in todo {
        let is_default = v == head;
        let w = wrap(v, settings);
        // SAFETY: `w` is a fully initialised, 'static sqlite3_vfs.
        let rc = unsafe { (api.vfs_register)(w, is_default as c_int) };
        check(rc, "registering the guard's VFS wrapper")?;
        done.push(w as usize);
    }
    Ok(())
}

/// A wrapper for `b`, leaked: a VFS must outlive every connection.
fn wrap(b: *mut ffi::sqlite3_vfs, settings: &'static Settings) -> *mut ffi::sqlite3_vfs {
    // SAFETY: `b` is a registered VFS.
    let b_ref = unsafe { &*b };
    let app = Box::leak(Box::new(Wrapper { base: b, settings })) as *mut Wrapper;
    let v = b_ref.iVersion;
    Box::leak(Box::new(ffi::sqlite3_vfs {
        iVersion: v.min(3),
        szOsFile: file::HEADER_SIZE as c_int + b_ref.szOsFile,
        mxPathname: b_ref.mxPathname,
        pNext: std::ptr::null_mut(),
        zName: b_ref.zName,
        pAppData: app as *mut c_void,
        xOpen: Some(x_open),
        xDelete: b_ref.xDelete.map(|_| x_delete as _),
        xAccess: b_ref.xAccess.map(|_| x_access as _),
        xFullPathname: b_ref.xFullPathname.map(|_| x_full_pathname as _),
        xDlOpen: b_ref.xDlOpen.map(|_| x_dl_open as _),
        xDlError: b_ref.xDlError.map(|_| x_dl_error as _),
        xDlSym: b_ref.xDlSym.map(|_| x_dl_sym as _),
        xDlClose: b_ref.xDlClose.map(|_| x_dl_close as _),
        xRandomness: b_ref.xRandomness.map(|_| x_randomness as _),
        xSleep: b_ref.xSleep.map(|_| x_sleep as _),
        xCurrentTime: b_ref.xCurrentTime.map(|_| x_current_time as _),
        xGetLastError: b_ref.xGetLastError.map(|_| x_get_last_error as _),
        xCurrentTimeInt64: (v >= 2 && b_ref.xCurrentTimeInt64.is_some()).then_some(x_current_time_int64 as _),
        xSetSystemCall: (v >= 3 && b_ref.xSetSystemCall.is_some()).then_some(x_set_system_call as _),
        xGetSystemCall: (v >= 3 && b_ref.xGetSystemCall.is_some()).then_some(x_get_system_call as _),
        xNextSystemCall: (v >= 3 && b_ref.xNextSystemCall.is_some()).then_some(x_next_system_call as _),
    }))
}

/// Registers the wrappers, once per process (and again for new VFSes).
pub fn register(settings: &'static Settings) -> Result<(), Error> {
    wrap_all(settings)
}

/// What SQLite is opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
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

/// Catches a panic at the FFI boundary and answers `on_panic` instead.
fn boundary<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(on_panic)
}

unsafe extern "C" fn x_open(
    v: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    f: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    boundary(ffi::SQLITE_CANTOPEN, || {
        let Wrapper { base: b, settings } = *wrapper_of(v);
        if flags & ffi::SQLITE_OPEN_SUPER_JOURNAL != 0 && !name.is_null() {
            // A multi-database transaction's super-journal is created next to
            // the main database: inside the mount, that is a write.
            // SAFETY: SQLite passes a NUL-terminated path.
            let path = PathBuf::from(OsStr::from_bytes(unsafe { CStr::from_ptr(name) }.to_bytes()));
            if let Some(found) = settings.locate(&path) {
                if let Err(rc) = file::vouch_create(&found.mount, &found.db, settings) {
                    return rc;
                }
            }
        }
        let guarded = (|| {
            let kind = kind_of(flags)?;
            if name.is_null() {
                return None;
            }
            // SAFETY: SQLite passes a NUL-terminated path (any bytes).
            let path = PathBuf::from(OsStr::from_bytes(unsafe { CStr::from_ptr(name) }.to_bytes()));
            let db_path = match kind {
                Kind::MainDb => path,
                Kind::Journal => location::database_of(&path, "-journal"),
                Kind::Wal => location::database_of(&path, "-wal"),
            };
            let found = settings.locate(&db_path)?;
            Some((kind, found.db, found.mount))
        })();
        match guarded {
            // SAFETY: unguarded files are opened by the base VFS in place: the
            // buffer is at least the base's szOsFile, and SQLite then talks to
            // the base file's own methods directly.
            None => unsafe { ((*b).xOpen.expect("base xOpen"))(b, name, f, flags, out_flags) },
            // SAFETY: `f` is SQLite's buffer of our szOsFile bytes.
            Some((kind, db_path, mount)) => unsafe {
                file::open(b, name, f, flags, out_flags, kind, db_path, mount, settings)
            },
        }
    })
}

// Everything below forwards to the base VFS unchanged.
// SAFETY (all): `base_of(v)` is the registered VFS this wrapper was made
// for (see `wrap`); the arguments are SQLite's, passed through untouched.

unsafe extern "C" fn x_delete(v: *mut ffi::sqlite3_vfs, name: *const c_char, sync: c_int) -> c_int {
    let Wrapper { base: b, settings } = *wrapper_of(v);
    // A guarded database's journal or WAL is not deleted on a node that may
    // not write (a replica's files stay exactly as LiteFS wrote them).
    let refused = boundary(Some(ffi::SQLITE_IOERR_DELETE), || {
        if name.is_null() {
            return None;
        }
        // SAFETY: SQLite passes a NUL-terminated path.
        let path = PathBuf::from(OsStr::from_bytes(unsafe { CStr::from_ptr(name) }.to_bytes()));
        let (db, journal) = ["-journal", "-wal"].iter().find_map(|sfx| {
            path.as_os_str()
                .as_bytes()
                .ends_with(sfx.as_bytes())
                .then(|| (location::database_of(&path, sfx), *sfx == "-journal"))
        })?;
        let found = settings.locate(&db)?;
        file::vouch_delete(found.db, &found.mount, journal, settings).err()
    });
    if let Some(rc) = refused {
        return rc;
    }
    match unsafe { (*b).xDelete } {
        Some(x) => unsafe { x(b, name, sync) },
        None => ffi::SQLITE_IOERR_DELETE,
    }
}
unsafe extern "C" fn x_access(
    v: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let b = base_of(v);
    match unsafe { (*b).xAccess } {
        Some(x) => unsafe { x(b, name, flags, out) },
        None => ffi::SQLITE_IOERR_ACCESS,
    }
}
unsafe extern "C" fn x_full_pathname(
    v: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let b = base_of(v);
    match unsafe { (*b).xFullPathname } {
        Some(x) => unsafe { x(b, name, n, out) },
        None => ffi::SQLITE_CANTOPEN,
    }
}
unsafe extern "C" fn x_dl_open(v: *mut ffi::sqlite3_vfs, name: *const c_char) -> *mut c_void {
    let b = base_of(v);
    match unsafe { (*b).xDlOpen } {
        Some(x) => unsafe { x(b, name) },
        None => std::ptr::null_mut(),
    }
}
unsafe extern "C" fn x_dl_error(v: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    let b = base_of(v);
    if let Some(x) = unsafe { (*b).xDlError } {
        unsafe { x(b, n, out) }
    }
}
unsafe extern "C" fn x_dl_sym(
    v: *mut ffi::sqlite3_vfs,
    h: *mut c_void,
    sym: *const c_char,
) -> Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)> {
    let b = base_of(v);
    match unsafe { (*b).xDlSym } {
        Some(x) => unsafe { x(b, h, sym) },
        None => None,
    }
}
unsafe extern "C" fn x_dl_close(v: *mut ffi::sqlite3_vfs, h: *mut c_void) {
    let b = base_of(v);
    if let Some(x) = unsafe { (*b).xDlClose } {
        unsafe { x(b, h) }
    }
}
unsafe extern "C" fn x_randomness(v: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let b = base_of(v);
    match unsafe { (*b).xRandomness } {
        Some(x) => unsafe { x(b, n, out) },
        None => 0,
    }
}
unsafe extern "C" fn x_sleep(v: *mut ffi::sqlite3_vfs, us: c_int) -> c_int {
    let b = base_of(v);
    match unsafe { (*b).xSleep } {
        Some(x) => unsafe { x(b, us) },
        None => 0,
    }
}
unsafe extern "C" fn x_current_time(v: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let b = base_of(v);
    match unsafe { (*b).xCurrentTime } {
        Some(x) => unsafe { x(b, out) },
        None => ffi::SQLITE_ERROR,
    }
}
unsafe extern "C" fn x_get_last_error(v: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let b = base_of(v);
    match unsafe { (*b).xGetLastError } {
        Some(x) => unsafe { x(b, n, out) },
        None => 0,
    }
}
unsafe extern "C" fn x_current_time_int64(v: *mut ffi::sqlite3_vfs, out: *mut ffi::sqlite3_int64) -> c_int {
    let b = base_of(v);
    match unsafe { (*b).xCurrentTimeInt64 } {
        Some(x) => unsafe { x(b, out) },
        None => ffi::SQLITE_ERROR,
    }
}
unsafe extern "C" fn x_set_system_call(
    v: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    p: ffi::sqlite3_syscall_ptr,
) -> c_int {
    let b = base_of(v);
    match unsafe { (*b).xSetSystemCall } {
        Some(x) => unsafe { x(b, name, p) },
        None => ffi::SQLITE_NOTFOUND,
    }
}
unsafe extern "C" fn x_get_system_call(
    v: *mut ffi::sqlite3_vfs,
    name: *const c_char,
) -> ffi::sqlite3_syscall_ptr {
    let b = base_of(v);
    match unsafe { (*b).xGetSystemCall } {
        Some(x) => unsafe { x(b, name) },
        None => None,
    }
}
unsafe extern "C" fn x_next_system_call(v: *mut ffi::sqlite3_vfs, name: *const c_char) -> *const c_char {
    let b = base_of(v);
    match unsafe { (*b).xNextSystemCall } {
        Some(x) => unsafe { x(b, name) },
        None => std::ptr::null(),
    }
}
