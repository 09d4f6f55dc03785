//! The `extern "C"` methods SQLite calls: the wrapper VFS's and its files'.
//! Each catches panics at the boundary, finds the file's state and base file
//! (`layout`), and hands them to the policy (`policy`), or forwards to the
//! base unchanged (the plain forwarders, made by two macros).

use super::base::forward;
use super::layout::{self, parts};
use super::outside::{BusyFn, Links};
use super::policy::{self, PragmaAnswer, Rules};
use super::wrap::{base_of, wrapper_of, Wrapper};
use super::{boundary, Kind};
use crate::location;
use crate::sqlite_api::api;
use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

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

/// A path SQLite passed.
///
/// # Safety
/// `name` is a NUL-terminated string.
unsafe fn path_of(name: *const c_char) -> PathBuf {
    // SAFETY: caller contract.
    PathBuf::from(OsStr::from_bytes(unsafe { CStr::from_ptr(name) }.to_bytes()))
}

pub(super) unsafe extern "C" fn x_open(
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
            let path = unsafe { path_of(name) };
            if let Some(found) = settings.locate(&path) {
                if let Err(rc) =
                    policy::vouch_create(&found.mount, &found.db, Rules::of(settings), &Links::detached())
                {
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
            let path = unsafe { path_of(name) };
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
                layout::open(b, name, f, flags, out_flags, kind, db_path, mount, settings)
            },
        }
    })
}

pub(super) unsafe extern "C" fn x_delete(
    v: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync: c_int,
) -> c_int {
    let Wrapper { base: b, settings } = *wrapper_of(v);
    // A guarded database's journal or WAL is not deleted on a node that may
    // not write (a replica's files stay exactly as LiteFS wrote them).
    let refused = boundary(Some(ffi::SQLITE_IOERR_DELETE), || {
        if name.is_null() {
            return None;
        }
        // SAFETY: SQLite passes a NUL-terminated path.
        let path = unsafe { path_of(name) };
        let (db, journal) = ["-journal", "-wal"].iter().find_map(|sfx| {
            path.as_os_str()
                .as_bytes()
                .ends_with(sfx.as_bytes())
                .then(|| (location::database_of(&path, sfx), *sfx == "-journal"))
        })?;
        let found = settings.locate(&db)?;
        policy::vouch_delete(
            found.db,
            &found.mount,
            journal,
            Rules::of(settings),
            &Links::detached(),
        )
        .err()
    });
    if let Some(rc) = refused {
        return rc;
    }
    // SAFETY: `b` is the registered VFS this wrapper was made for.
    match unsafe { (*b).xDelete } {
        // SAFETY: the base VFS's own method, with SQLite's arguments.
        Some(x) => unsafe { x(b, name, sync) },
        None => ffi::SQLITE_IOERR_DELETE,
    }
}

/// A wrapper VFS method that forwards to the base VFS unchanged; `$missing`
/// when the base has none (or on a panic).
macro_rules! plain_vfs_method {
    ($name:ident, $m:ident, ($($a:ident: $t:ty),*) -> $r:ty, missing = $missing:expr) => {
        pub(super) unsafe extern "C" fn $name(v: *mut ffi::sqlite3_vfs, $($a: $t),*) -> $r {
            boundary($missing, || {
                let b = base_of(v);
                // SAFETY: `b` is the registered VFS this wrapper was made for
                // (see `wrap`), valid for the life of the process.
                match unsafe { (*b).$m } {
                    // SAFETY: the base VFS's own method; SQLite's arguments,
                    // passed through untouched.
                    Some(x) => unsafe { x(b, $($a),*) },
                    None => $missing,
                }
            })
        }
    };
}

plain_vfs_method!(x_access, xAccess, (name: *const c_char, flags: c_int, out: *mut c_int) -> c_int, missing = ffi::SQLITE_IOERR_ACCESS);
plain_vfs_method!(x_full_pathname, xFullPathname, (name: *const c_char, n: c_int, out: *mut c_char) -> c_int, missing = ffi::SQLITE_CANTOPEN);
plain_vfs_method!(x_dl_open, xDlOpen, (name: *const c_char) -> *mut c_void, missing = std::ptr::null_mut());
plain_vfs_method!(x_dl_error, xDlError, (n: c_int, out: *mut c_char) -> (), missing = ());
plain_vfs_method!(
    x_dl_sym,
    xDlSym,
    (h: *mut c_void, sym: *const c_char) -> Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)>,
    missing = None
);
plain_vfs_method!(x_dl_close, xDlClose, (h: *mut c_void) -> (), missing = ());
plain_vfs_method!(x_randomness, xRandomness, (n: c_int, out: *mut c_char) -> c_int, missing = 0);
plain_vfs_method!(x_base_sleep, xSleep, (us: c_int) -> c_int, missing = 0);

/// xSleep: a busy handler's sleep right after a guarded write-lock request
/// was busy is spent in that database's fair line (`sleeper`); any other
/// sleep is the base VFS's.
pub(super) unsafe extern "C" fn x_sleep(v: *mut ffi::sqlite3_vfs, us: c_int) -> c_int {
    if let Some(slept) = boundary(None, || super::sleeper::sleep(us)) {
        return slept;
    }
    // SAFETY: the same arguments SQLite passed, to the base VFS.
    unsafe { x_base_sleep(v, us) }
}
plain_vfs_method!(x_current_time, xCurrentTime, (out: *mut f64) -> c_int, missing = ffi::SQLITE_ERROR);
plain_vfs_method!(x_get_last_error, xGetLastError, (n: c_int, out: *mut c_char) -> c_int, missing = 0);
plain_vfs_method!(x_current_time_int64, xCurrentTimeInt64, (out: *mut ffi::sqlite3_int64) -> c_int, missing = ffi::SQLITE_ERROR);
plain_vfs_method!(x_set_system_call, xSetSystemCall, (name: *const c_char, p: ffi::sqlite3_syscall_ptr) -> c_int, missing = ffi::SQLITE_NOTFOUND);
plain_vfs_method!(x_get_system_call, xGetSystemCall, (name: *const c_char) -> ffi::sqlite3_syscall_ptr, missing = None);
plain_vfs_method!(x_next_system_call, xNextSystemCall, (name: *const c_char) -> *const c_char, missing = std::ptr::null());

/// A file method that forwards to the base file unchanged: `$missing` when
/// the base has none, `$on_panic` on a panic.
macro_rules! plain_file_method {
    ($name:ident, $m:ident, ($($a:ident: $t:ty),*) -> $r:ty, missing = $missing:expr, on_panic = $on_panic:expr) => {
        pub(super) unsafe extern "C" fn $name<const A: bool>(f: *mut ffi::sqlite3_file, $($a: $t),*) -> $r {
            boundary($on_panic, || {
                // SAFETY: SQLite calls this with a file whose method table is
                // one of ours of layout `A`, open until xClose.
                let (_, base) = unsafe { parts::<A>(f) };
                match base.methods.$m {
                    // SAFETY: the base file's own method; SQLite's arguments,
                    // passed through untouched.
                    Some(m) => unsafe { m(base.file, $($a),*) },
                    None => $missing,
                }
            })
        }
    };
}

plain_file_method!(x_read, xRead, (buf: *mut c_void, n: c_int, off: ffi::sqlite3_int64) -> c_int, missing = ffi::SQLITE_IOERR, on_panic = ffi::SQLITE_IOERR_READ);
plain_file_method!(x_file_size, xFileSize, (out: *mut ffi::sqlite3_int64) -> c_int, missing = ffi::SQLITE_IOERR, on_panic = ffi::SQLITE_IOERR_FSTAT);
plain_file_method!(x_check_reserved_lock, xCheckReservedLock, (out: *mut c_int) -> c_int, missing = ffi::SQLITE_IOERR, on_panic = ffi::SQLITE_IOERR_CHECKRESERVEDLOCK);
plain_file_method!(x_sector_size, xSectorSize, () -> c_int, missing = 4096, on_panic = 4096);
plain_file_method!(x_device_characteristics, xDeviceCharacteristics, () -> c_int, missing = 0, on_panic = 0);
plain_file_method!(x_fetch, xFetch, (off: ffi::sqlite3_int64, amt: c_int, pp: *mut *mut c_void) -> c_int, missing = ffi::SQLITE_IOERR, on_panic = ffi::SQLITE_IOERR_MMAP);
plain_file_method!(x_unfetch, xUnfetch, (off: ffi::sqlite3_int64, p: *mut c_void) -> c_int, missing = ffi::SQLITE_IOERR, on_panic = ffi::SQLITE_IOERR_MMAP);

// The methods with policy. Each finds the file's parts — SAFETY (each
// `parts` call): SQLite calls these with a file whose method table is one
// of ours of layout `A` (see `layout::parts`), open until x_close — and
// hands them to the guard.

pub(super) unsafe extern "C" fn x_close<const A: bool>(f: *mut ffi::sqlite3_file) -> c_int {
    boundary(ffi::SQLITE_IOERR_CLOSE, || {
        // SAFETY: see above.
        let (st, mut base) = unsafe { parts::<A>(f) };
        st.guard.closing(&mut base, &st.links);
        if let Some(seat) = &st.links.seat {
            seat.close();
        }
        // SAFETY: `f` is ours of layout `A` and `base` its base file; `st`
        // is not used again.
        unsafe { layout::close::<A>(f, base) }
    })
}

pub(super) unsafe extern "C" fn x_write<const A: bool>(
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    n: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_WRITE, || {
        // SAFETY: see above.
        let (st, mut base) = unsafe { parts::<A>(f) };
        let bytes = if buf.is_null() || n <= 0 {
            &[][..]
        } else {
            // SAFETY: SQLite passes `n` readable bytes.
            unsafe { std::slice::from_raw_parts(buf as *const u8, n as usize) }
        };
        st.guard.write(&mut base, &st.links, bytes, off)
    })
}

pub(super) unsafe extern "C" fn x_truncate<const A: bool>(
    f: *mut ffi::sqlite3_file,
    size: ffi::sqlite3_int64,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_TRUNCATE, || {
        // SAFETY: see above.
        let (st, mut base) = unsafe { parts::<A>(f) };
        st.guard.truncate(&mut base, &st.links, size)
    })
}

pub(super) unsafe extern "C" fn x_sync<const A: bool>(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR_FSYNC, || {
        // SAFETY: see above.
        let (st, mut base) = unsafe { parts::<A>(f) };
        st.guard.sync(&mut base, &st.links, flags)
    })
}

pub(super) unsafe extern "C" fn x_lock<const A: bool>(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR_LOCK, || {
        // SAFETY: see above.
        let (st, mut base) = unsafe { parts::<A>(f) };
        st.guard.lock(&mut base, &st.links, level)
    })
}

pub(super) unsafe extern "C" fn x_unlock<const A: bool>(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR_UNLOCK, || {
        // SAFETY: see above.
        let (st, mut base) = unsafe { parts::<A>(f) };
        st.guard.unlock(&mut base, &st.links, level)
    })
}

pub(super) unsafe extern "C" fn x_file_control<const A: bool>(
    f: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    boundary(ffi::SQLITE_ERROR, || {
        // SAFETY: see above.
        let (st, base) = unsafe { parts::<A>(f) };
        match op {
            ffi::SQLITE_FCNTL_BUSYHANDLER if !arg.is_null() => {
                let ap = arg as *mut *mut c_void;
                // SAFETY: SQLite passes {xBusyHandler, pBusyArg} as two pointers.
                let (func, data) = unsafe { (*ap, *ap.add(1)) };
                st.links.busy = (!func.is_null()).then(|| {
                    // SAFETY: the first is SQLite's busy-handler callback.
                    (unsafe { std::mem::transmute::<*mut c_void, BusyFn>(func) }, data)
                });
            }
            ffi::SQLITE_FCNTL_PRAGMA if st.guard.kind() == Kind::MainDb => {
                let az = arg as *mut *mut c_char;
                // SAFETY: SQLite passes char*[3]: error out, pragma name, value.
                let (name, value) = unsafe { (cstr(*az.add(1)), cstr(*az.add(2))) };
                match st.guard.pragma(&st.links, name, value) {
                    Err(e) => {
                        // SAFETY: SQLite frees az[0] with sqlite3_free.
                        unsafe { *az = api().string(&e.message()) };
                        return e.code();
                    }
                    Ok(PragmaAnswer::Handled(text)) => {
                        // SAFETY: as above; SQLite returns it as the pragma's
                        // one result row.
                        unsafe { *az = api().string(&text) };
                        return ffi::SQLITE_OK;
                    }
                    Ok(PragmaAnswer::NotOurs) => {}
                }
            }
            ffi::SQLITE_FCNTL_COMMIT_PHASETWO => st.guard.committed(&st.links),
            ffi::SQLITE_FCNTL_SIZE_HINT
            | ffi::SQLITE_FCNTL_BEGIN_ATOMIC_WRITE
            | ffi::SQLITE_FCNTL_COMMIT_ATOMIC_WRITE => {
                // These grow or write the file.
                if let Err(rc) = st.guard.growing(&st.links) {
                    return rc;
                }
            }
            _ => {}
        }
        forward!(base, xFileControl(op, arg))
    })
}

fn cstr<'a>(p: *const c_char) -> Option<&'a str> {
    // SAFETY: SQLite passes NUL-terminated strings or null.
    (!p.is_null())
        .then(|| unsafe { CStr::from_ptr(p) }.to_str().ok())
        .flatten()
}

pub(super) unsafe extern "C" fn x_shm_map<const A: bool>(
    f: *mut ffi::sqlite3_file,
    pg: c_int,
    pgsz: c_int,
    extend: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_SHMMAP, || {
        // SAFETY: see above.
        let (st, base) = unsafe { parts::<A>(f) };
        let rc = forward!(base, xShmMap(pg, pgsz, extend, pp));
        st.guard.shm_mapped(rc);
        rc
    })
}

pub(super) unsafe extern "C" fn x_shm_lock<const A: bool>(
    f: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_SHMLOCK, || {
        // SAFETY: see above.
        let (st, mut base) = unsafe { parts::<A>(f) };
        st.guard.shm_lock(&mut base, &st.links, offset, n, flags)
    })
}

pub(super) unsafe extern "C" fn x_shm_barrier<const A: bool>(f: *mut ffi::sqlite3_file) {
    boundary((), || {
        // SAFETY: see above.
        let (st, mut base) = unsafe { parts::<A>(f) };
        st.guard.shm_barrier(&mut base, &st.links)
    })
}

pub(super) unsafe extern "C" fn x_shm_unmap<const A: bool>(
    f: *mut ffi::sqlite3_file,
    delete: c_int,
) -> c_int {
    boundary(ffi::SQLITE_IOERR, || {
        // SAFETY: see above.
        let (st, mut base) = unsafe { parts::<A>(f) };
        st.guard.shm_unmap(&mut base, &st.links, delete)
    })
}
