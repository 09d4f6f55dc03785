//! Wrapping every VFS: one wrapper per VFS SQLite has, registered under the
//! same name ahead of it, whose methods are the trampolines.

use super::layout;
use super::trampolines::*;
use crate::error::{check, Error};
use crate::settings::Settings;
use crate::sqlite_api::api;
use libsqlite3_sys as ffi;
use std::ffi::{c_int, c_void, CStr};
use std::sync::Mutex;

/// One wrapper per VFS this process had when the guard looked: same name,
/// same version, the original (the "base") and the settings its files
/// follow kept in `pAppData`.
#[derive(Clone, Copy)]
pub(super) struct Wrapper {
    pub base: *mut ffi::sqlite3_vfs,
    pub settings: &'static Settings,
}

/// Every wrapper registered so far (they live for the life of the process).
static WRAPPERS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// The wrapper's own part.
pub(super) fn wrapper_of(vfs: *mut ffi::sqlite3_vfs) -> &'static Wrapper {
    // SAFETY: every VFS whose methods are these was built by `wrap`, with a
    // leaked `Wrapper` in pAppData.
    unsafe { &*((*vfs).pAppData as *const Wrapper) }
}

/// The base VFS behind a wrapper.
pub(super) fn base_of(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
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
        szOsFile: layout::HEADER_SIZE as c_int + b_ref.szOsFile,
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
