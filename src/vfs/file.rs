//! A guarded file: the base VFS's file plus the guard's state, and the
//! sqlite3_io_methods that put the write gate, IMMEDIATE escalation, the WAL
//! rule and the translation of LiteFS's refusals in front of it.

use super::locks::WalLocks;
use super::{boundary, Kind};
use crate::role::{self, Role};
use crate::settings;
use crate::sqlite_api;
use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a role check that allowed writes spares the authorizer another
/// look. The gate itself always looks afresh, so this only decides whether a
/// write is refused at prepare (SQLITE_AUTH) or at the lock (SQLITE_READONLY).
const VERIFIED_TTL: Duration = Duration::from_millis(100);
/// How old a "may write" verdict an auto-checkpoint may reuse.
const CHECKPOINT_REUSE: Duration = Duration::from_millis(1);

/// Our part of the file buffer; the base file follows at `HEADER_SIZE`.
#[repr(C)]
struct GuardFile {
    /// `pMethods` points at one of our method tables.
    file: ffi::sqlite3_file,
    state: *mut FileState,
}

/// Offset of the base file inside SQLite's buffer (8-byte aligned).
pub const HEADER_SIZE: usize = std::mem::size_of::<GuardFile>().next_multiple_of(8);

type BusyFn = unsafe extern "C" fn(*mut c_void) -> c_int;

struct FileState {
    kind: Kind,
    db_path: PathBuf,
    /// What the role check looks at, prepared once for this file.
    target: role::Target,
    read_only: bool,
    /// The connection this main database belongs to (null until bound, and
    /// for a file shared by several connections).
    conn: *mut ffi::sqlite3,
    /// Shared-cache mode: more than one connection bound this file.
    shared: bool,
    /// SQLite mapped the wal-index: the database is in WAL mode.
    shm_mapped: bool,
    /// The connection's busy handler, from SQLITE_FCNTL_BUSYHANDLER.
    busy: Option<(BusyFn, *mut c_void)>,
    wal: WalLocks,
    /// Rollback mode: the guard took RESERVED for SQLite (escalation).
    guard_reserved: bool,
    /// Rollback mode: escalation declined for this SHARED lock.
    rollback_declined: bool,
    /// When a role check for this file last allowed writes.
    verified_primary: Option<Instant>,
}

impl FileState {
    fn role(&self) -> Role {
        let Some(s) = settings::loaded() else {
            return Role::NotRunning("litefs_guard settings are not loaded".into());
        };
        role::detect_target(&self.target, s.marker, s.require_fuse)
    }

    /// The execution-time gate: Ok when this node may write now.
    fn gate(&mut self) -> Result<(), c_int> {
        // A deliberately broken build, only for proving the failover tests can fail.
        if cfg!(feature = "test-no-gate") {
            return Ok(());
        }
        let role = self.role();
        self.note(role.may_write());
        match role.refusal() {
            None => Ok(()),
            Some(why) => {
                sqlite_api::log(
                    ffi::SQLITE_READONLY,
                    &format!("litefs_guard: write to {} refused: {why}", self.db_path.display()),
                );
                Err(ffi::SQLITE_READONLY)
            }
        }
    }

    /// Whether this file's connection is inside an explicit transaction and
    /// may be escalated at all.
    fn escalation_candidate(&self) -> bool {
        if self.kind != Kind::MainDb || self.read_only || self.conn.is_null() {
            return false;
        }
        if !settings::loaded().is_some_and(|s| s.immediate) {
            return false;
        }
        // SAFETY: `conn` is the live connection that owns this file (bound in
        // its init; the file closes before the connection is freed).
        unsafe { crate::sqlite!(get_autocommit(self.conn)) == 0 }
    }

    /// When the mount under an open file is gone, the unix VFS reports every
    /// failing shm lock as "busy" and SQLite retries for about ten seconds
    /// before a "locking protocol" error. Say what it is, at once.
    fn dead_mount_error(&self) -> Option<c_int> {
        match self.role() {
            Role::NotRunning(why) => {
                sqlite_api::log(
                    ffi::SQLITE_CANTOPEN,
                    &format!(
                        "litefs_guard: {} unusable: LiteFS is not running: {why}",
                        self.db_path.display()
                    ),
                );
                Some(ffi::SQLITE_CANTOPEN)
            }
            _ => None,
        }
    }

    fn note(&mut self, may_write: bool) {
        self.verified_primary = may_write.then(Instant::now);
    }

    fn call_busy(&self) -> bool {
        call_busy(self.busy)
    }
}

/// Whether the last error looks like a FUSE daemon that went away (a live
/// lock conflict gives EAGAIN/EACCES, or no errno at all).
fn mount_may_be_dead() -> bool {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    [libc::ENOTCONN, libc::EIO, libc::ENODEV, libc::ESTALE].contains(&errno)
}

/// Calls the connection's busy handler; false when it gives up (or there is none).
fn call_busy(busy: Option<(BusyFn, *mut c_void)>) -> bool {
    match busy {
        // SAFETY: SQLite's own busy-handler callback and argument, as it
        // handed them to the file with SQLITE_FCNTL_BUSYHANDLER.
        Some((f, arg)) => unsafe { f(arg) != 0 },
        None => false,
    }
}

/// Opens a guarded file.
///
/// # Safety
/// `f` is SQLite's file buffer of the wrapper VFS's szOsFile bytes; `b` the base VFS.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn open(
    b: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    f: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
    kind: Kind,
    db_path: PathBuf,
    mount: PathBuf,
) -> c_int {
    let gf = f as *mut GuardFile;
    let real = real_file(f);
    // SAFETY: caller contract: the buffer holds our header and the base file.
    unsafe {
        (*gf).file.pMethods = std::ptr::null();
        (*gf).state = std::ptr::null_mut();
        let Some(x_open) = (*b).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        let rc = x_open(b, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK || (*real).pMethods.is_null() {
            return rc;
        }
        let version = (*(*real).pMethods).iVersion;
        let state = Box::new(FileState {
            kind,
            target: role::Target::new(&mount, Some(&db_path)),
            db_path,
            read_only: flags & ffi::SQLITE_OPEN_READONLY != 0,
            conn: std::ptr::null_mut(),
            shared: false,
            shm_mapped: false,
            busy: None,
            wal: WalLocks::default(),
            guard_reserved: false,
            rollback_declined: false,
            verified_primary: None,
        });
        (*gf).state = Box::into_raw(state);
        (*gf).file.pMethods = match version {
            v if v >= 3 => &METHODS_V3,
            2 => &METHODS_V2,
            _ => &METHODS_V1,
        };
    }
    ffi::SQLITE_OK
}

fn real_file(f: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: the base file lives HEADER_SIZE bytes into the same buffer.
    unsafe { (f as *mut u8).add(HEADER_SIZE) as *mut ffi::sqlite3_file }
}

fn is_ours(f: *mut ffi::sqlite3_file) -> bool {
    if f.is_null() {
        return false;
    }
    // SAFETY: `f` is a file SQLite returned for a connection; reading pMethods is valid.
    let m = unsafe { (*f).pMethods };
    std::ptr::eq(m, &METHODS_V1) || std::ptr::eq(m, &METHODS_V2) || std::ptr::eq(m, &METHODS_V3)
}

/// # Safety
/// `f` is one of our open files.
unsafe fn state<'a>(f: *mut ffi::sqlite3_file) -> &'a mut FileState {
    // SAFETY: set in `open`, freed only in `x_close`; SQLite serialises calls per file.
    unsafe { &mut *(*(f as *mut GuardFile)).state }
}

/// Binds a main database file to its connection so escalation can ask
/// whether that connection is inside an explicit transaction. Returns false
/// for files that are not ours.
pub fn bind(f: *mut ffi::sqlite3_file, conn: *mut ffi::sqlite3) -> bool {
    if !is_ours(f) {
        return false;
    }
    // SAFETY: `f` is ours (checked) and open.
    let s = unsafe { state(f) };
    if !s.conn.is_null() && s.conn != conn {
        // Two connections on one file: shared-cache mode. Either may close
        // while the file stays open, so neither is remembered: no escalation.
        s.shared = true;
    }
    s.conn = if s.shared { std::ptr::null_mut() } else { conn };
    true
}

/// Whether a role check for this file said "may write" within the last
/// VERIFIED_TTL. The authorizer may trust it because the write gate checks
/// again, afresh, when the write lock is taken. False for files not ours.
pub fn verified_primary(f: *mut ffi::sqlite3_file) -> bool {
    // SAFETY: `f` is ours (checked) and open.
    is_ours(f)
        && unsafe { state(f) }
            .verified_primary
            .is_some_and(|t| t.elapsed() < VERIFIED_TTL)
}

/// Records the authorizer's own fresh role check for this file.
pub fn note_role(f: *mut ffi::sqlite3_file, may_write: bool) {
    if is_ours(f) {
        // SAFETY: `f` is ours (checked) and open.
        unsafe { state(f) }.note(may_write);
    }
}

/// Whether `f` is a file of this VFS (so its writes pass the gate).
pub fn is_gated(f: *mut ffi::sqlite3_file) -> bool {
    is_ours(f)
}

// The methods. SAFETY (all): SQLite calls them with a file opened by `open`
// (our header, then a base file whose pMethods is non-null); `real_file`
// gives the base file and `base_methods` its method table.

unsafe fn base_methods<'a>(f: *mut ffi::sqlite3_file) -> &'a ffi::sqlite3_io_methods {
    unsafe { &*(*real_file(f)).pMethods }
}

macro_rules! forward {
    ($f:expr, $m:ident ( $($arg:expr),* )) => {{
        let real = real_file($f);
        #[allow(unused_unsafe)]
        match unsafe { base_methods($f) }.$m {
            #[allow(unused_unsafe)]
            Some(m) => unsafe { m(real, $($arg),*) },
            None => ffi::SQLITE_IOERR,
        }
    }};
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    boundary(ffi::SQLITE_IOERR_CLOSE, || {
        let gf = f as *mut GuardFile;
        // SAFETY: see above; the state is freed exactly once, here.
        unsafe {
            if !(*gf).state.is_null() {
                let s = state(f);
                // Release before the base unmaps or closes: an in-process leak otherwise.
                s.wal.release(&mut |o, n, fl| base_shm_lock(f, o, n, fl));
                drop(Box::from_raw((*gf).state));
                (*gf).state = std::ptr::null_mut();
            }
            let rc = forward!(f, xClose());
            (*gf).file.pMethods = std::ptr::null();
            rc
        }
    })
}

unsafe extern "C" fn x_read(
    f: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    n: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    forward!(f, xRead(buf, n, off))
}

/// LiteFS refuses writes on a replica with EACCES at the FUSE layer, which
/// SQLite reports as "disk I/O error" in WAL mode. Say what it really is.
fn translate(f: *mut ffi::sqlite3_file, rc: c_int) -> c_int {
    if rc == ffi::SQLITE_OK || rc & 0xff != ffi::SQLITE_IOERR {
        return rc;
    }
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if ![libc::EACCES, libc::EROFS, libc::EPERM].contains(&errno) {
        return rc;
    }
    // SAFETY: `f` is ours and open.
    match unsafe { state(f) }.gate() {
        Ok(()) => rc,
        Err(readonly) => readonly,
    }
}

unsafe extern "C" fn x_write(
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    n: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_WRITE, || {
        translate(f, forward!(f, xWrite(buf, n, off)))
    })
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    boundary(ffi::SQLITE_IOERR_TRUNCATE, || {
        translate(f, forward!(f, xTruncate(size)))
    })
}

unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR_FSYNC, || {
        translate(f, forward!(f, xSync(flags)))
    })
}

unsafe extern "C" fn x_file_size(f: *mut ffi::sqlite3_file, out: *mut ffi::sqlite3_int64) -> c_int {
    forward!(f, xFileSize(out))
}

/// Bytes 18 and 19 of the header are 2 in a WAL database.
fn header_says_wal(f: *mut ffi::sqlite3_file) -> bool {
    // A mapped wal-index answers without a read (on LiteFS, a FUSE round trip).
    // SAFETY: `f` is ours and open.
    if unsafe { state(f) }.shm_mapped {
        return true;
    }
    let mut hdr = [0u8; 2];
    let rc = forward!(f, xRead(hdr.as_mut_ptr() as *mut c_void, 2, 18));
    rc == ffi::SQLITE_OK && hdr == [2, 2]
}

fn journal_exists(db_path: &Path) -> bool {
    let mut p = db_path.as_os_str().to_os_string();
    p.push("-journal");
    std::fs::symlink_metadata(PathBuf::from(p)).is_ok()
}

unsafe extern "C" fn x_lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR_LOCK, || {
        // SAFETY: `f` is ours and open.
        let s = unsafe { state(f) };
        if s.kind != Kind::MainDb {
            return forward!(f, xLock(level));
        }
        match level {
            ffi::SQLITE_LOCK_RESERVED => {
                // The rollback-journal write gate (the WAL one is in xShmLock).
                if !s.guard_reserved {
                    if let Err(rc) = s.gate() {
                        return rc;
                    }
                }
                forward!(f, xLock(level))
            }
            ffi::SQLITE_LOCK_SHARED => {
                let rc = forward!(f, xLock(level));
                if rc != ffi::SQLITE_OK
                    || s.rollback_declined
                    || s.guard_reserved
                    || !s.escalation_candidate()
                {
                    return rc;
                }
                escalate_rollback(f, s)
            }
            ffi::SQLITE_LOCK_EXCLUSIVE if header_says_wal(f) && s.gate().is_err() => {
                // In WAL mode SQLite locks the database file exclusively only to
                // checkpoint and delete the WAL as the last connection closes
                // (or to leave WAL). On a node that may not write, "busy" makes
                // it skip that quietly and leave the files alone.
                ffi::SQLITE_BUSY
            }
            _ => forward!(f, xLock(level)),
        }
    })
}

/// Rollback-journal escalation: holding SHARED, also take RESERVED so a
/// plain BEGIN behaves like BEGIN IMMEDIATE. While RESERVED is busy, drop to
/// NONE between busy-handler calls so the current writer can commit.
fn escalate_rollback(f: *mut ffi::sqlite3_file, s: &mut FileState) -> c_int {
    // Never on a WAL database: RESERVED would then be held for good.
    if header_says_wal(f) {
        return ffi::SQLITE_OK;
    }
    if !s.role().may_write() {
        s.rollback_declined = true;
        return ffi::SQLITE_OK;
    }
    let mut waited = false;
    loop {
        match forward!(f, xLock(ffi::SQLITE_LOCK_RESERVED)) {
            ffi::SQLITE_OK => {
                // Nobody else can be writing now, so a journal is hot: let
                // SQLite roll it back as a plain deferred transaction. And
                // after queueing for the lock, the role may have changed.
                if journal_exists(&s.db_path) || (waited && s.gate().is_err()) {
                    forward!(f, xUnlock(ffi::SQLITE_LOCK_SHARED));
                    s.rollback_declined = true;
                } else {
                    s.guard_reserved = true;
                    s.note(true);
                }
                return ffi::SQLITE_OK;
            }
            ffi::SQLITE_BUSY => {
                waited = true;
                forward!(f, xUnlock(ffi::SQLITE_LOCK_NONE));
                let retry = s.call_busy();
                let rc = forward!(f, xLock(ffi::SQLITE_LOCK_SHARED));
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                if !retry {
                    // The application's timeout ran out: stay deferred, as stock would.
                    s.rollback_declined = true;
                    return ffi::SQLITE_OK;
                }
            }
            _ => {
                s.rollback_declined = true;
                return ffi::SQLITE_OK;
            }
        }
    }
}

unsafe extern "C" fn x_unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR_UNLOCK, || {
        // SAFETY: `f` is ours and open.
        let s = unsafe { state(f) };
        if s.kind == Kind::MainDb && level <= ffi::SQLITE_LOCK_SHARED {
            s.guard_reserved = false;
            if level == ffi::SQLITE_LOCK_NONE {
                s.rollback_declined = false;
                // Safety net: a transaction that failed before taking a read
                // slot must not leave the escalated write lock behind.
                s.wal.release_if_idle(&mut |o, n, fl| base_shm_lock(f, o, n, fl));
            }
        }
        forward!(f, xUnlock(level))
    })
}

unsafe extern "C" fn x_check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    forward!(f, xCheckReservedLock(out))
}

unsafe extern "C" fn x_file_control(f: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    boundary(ffi::SQLITE_ERROR, || {
        // SAFETY: `f` is ours and open.
        let s = unsafe { state(f) };
        match op {
            ffi::SQLITE_FCNTL_BUSYHANDLER if !arg.is_null() => {
                // SAFETY: SQLite passes {xBusyHandler, pBusyArg} as two pointers.
                let ap = arg as *mut *mut c_void;
                let (func, data) = unsafe { (*ap, *ap.add(1)) };
                s.busy = (!func.is_null())
                    .then(|| (unsafe { std::mem::transmute::<*mut c_void, BusyFn>(func) }, data));
            }
            ffi::SQLITE_FCNTL_PRAGMA if s.kind == Kind::MainDb => {
                // SAFETY: SQLite passes char*[3]: error out, pragma name, value.
                let az = arg as *mut *mut c_char;
                let (name, value) = unsafe { (cstr(*az.add(1)), cstr(*az.add(2))) };
                if let Some(msg) = crate::wal_rule::check_pragma(name, value) {
                    // SAFETY: SQLite frees az[0] with sqlite3_free.
                    unsafe { *az = sqlite_api::sqlite_string(&msg) };
                    sqlite_api::log(ffi::SQLITE_ERROR, &msg);
                    return ffi::SQLITE_ERROR;
                }
            }
            _ => {}
        }
        forward!(f, xFileControl(op, arg))
    })
}

fn cstr<'a>(p: *const c_char) -> Option<&'a str> {
    // SAFETY: SQLite passes NUL-terminated strings or null.
    (!p.is_null())
        .then(|| unsafe { CStr::from_ptr(p) }.to_str().ok())
        .flatten()
}

unsafe extern "C" fn x_sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    let real = real_file(f);
    match unsafe { base_methods(f) }.xSectorSize {
        Some(m) => unsafe { m(real) },
        None => 4096,
    }
}

unsafe extern "C" fn x_device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    let real = real_file(f);
    match unsafe { base_methods(f) }.xDeviceCharacteristics {
        Some(m) => unsafe { m(real) },
        None => 0,
    }
}

unsafe extern "C" fn x_shm_map(
    f: *mut ffi::sqlite3_file,
    pg: c_int,
    pgsz: c_int,
    extend: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    let rc = forward!(f, xShmMap(pg, pgsz, extend, pp));
    if rc == ffi::SQLITE_OK {
        // SAFETY: `f` is ours and open.
        unsafe { state(f) }.shm_mapped = true;
    }
    rc
}

fn base_shm_lock(f: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    forward!(f, xShmLock(offset, n, flags))
}

unsafe extern "C" fn x_shm_lock(f: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR_SHMLOCK, || {
        // SAFETY: `f` is ours and open.
        let s = unsafe { state(f) };
        // The lock state is moved out so the gate may borrow the rest of `s`.
        let mut wal = std::mem::take(&mut s.wal);
        let rc = wal.shm_lock(
            &mut |o, n, fl| base_shm_lock(f, o, n, fl),
            offset,
            n,
            flags,
            &mut || {
                // A checkpoint right after this connection's own commit (the
                // auto-checkpoint) reuses the commit's fresh verdict.
                let just_checked = offset == super::locks::WAL_CKPT_LOCK
                    && s.verified_primary.is_some_and(|t| t.elapsed() < CHECKPOINT_REUSE);
                if just_checked {
                    Ok(())
                } else {
                    s.gate()
                }
            },
        );
        s.wal = wal;
        if rc == ffi::SQLITE_BUSY && mount_may_be_dead() {
            return s.dead_mount_error().unwrap_or(rc);
        }
        rc
    })
}

/// The first shm call of every WAL read transaction, made while SQLite reads
/// the wal-index header: the place to take the write lock for a plain BEGIN
/// (see the README's "IMMEDIATE for plain BEGIN").
unsafe extern "C" fn x_shm_barrier(f: *mut ffi::sqlite3_file) {
    boundary((), || {
        // SAFETY: `f` is ours and open.
        let s = unsafe { state(f) };
        if s.wal.may_escalate() && s.escalation_candidate() {
            if s.role().may_write() {
                s.note(true);
                // The lock state is moved out so the closures may use `s`.
                let mut wal = std::mem::take(&mut s.wal);
                let busy = s.busy;
                wal.escalate(
                    &mut |o, n, fl| base_shm_lock(f, o, n, fl),
                    &mut || call_busy(busy),
                    &mut || s.gate().is_ok(),
                );
                s.wal = wal;
            } else {
                s.note(false);
                s.wal.declined = true;
            }
        }
        let real = real_file(f);
        if let Some(m) = unsafe { base_methods(f) }.xShmBarrier {
            unsafe { m(real) }
        }
    })
}

unsafe extern "C" fn x_shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR, || {
        // SAFETY: `f` is ours and open.
        let s = unsafe { state(f) };
        s.wal.release(&mut |o, n, fl| base_shm_lock(f, o, n, fl));
        s.wal.read_slot = None;
        s.shm_mapped = false;
        forward!(f, xShmUnmap(delete))
    })
}

unsafe extern "C" fn x_fetch(
    f: *mut ffi::sqlite3_file,
    off: ffi::sqlite3_int64,
    amt: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    forward!(f, xFetch(off, amt, pp))
}

unsafe extern "C" fn x_unfetch(f: *mut ffi::sqlite3_file, off: ffi::sqlite3_int64, p: *mut c_void) -> c_int {
    forward!(f, xUnfetch(off, p))
}

macro_rules! methods {
    ($name:ident, $v:expr) => {
        static $name: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
            iVersion: $v,
            xClose: Some(x_close),
            xRead: Some(x_read),
            xWrite: Some(x_write),
            xTruncate: Some(x_truncate),
            xSync: Some(x_sync),
            xFileSize: Some(x_file_size),
            xLock: Some(x_lock),
            xUnlock: Some(x_unlock),
            xCheckReservedLock: Some(x_check_reserved_lock),
            xFileControl: Some(x_file_control),
            xSectorSize: Some(x_sector_size),
            xDeviceCharacteristics: Some(x_device_characteristics),
            xShmMap: if $v >= 2 { Some(x_shm_map) } else { None },
            xShmLock: if $v >= 2 { Some(x_shm_lock) } else { None },
            xShmBarrier: if $v >= 2 { Some(x_shm_barrier) } else { None },
            xShmUnmap: if $v >= 2 { Some(x_shm_unmap) } else { None },
            xFetch: if $v >= 3 { Some(x_fetch) } else { None },
            xUnfetch: if $v >= 3 { Some(x_unfetch) } else { None },
        };
    };
}
methods!(METHODS_V1, 1);
methods!(METHODS_V2, 2);
methods!(METHODS_V3, 3);
