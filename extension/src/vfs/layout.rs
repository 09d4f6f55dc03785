//! Where a guarded file's state lives, and how a method finds it.
//!
//! Two layouts share one set of methods (the `A` parameter of the
//! trampolines): files the wrappers opened (`A = false`: our header, then
//! the base file in the same buffer) and *adopted* files (`A = true`) — a
//! guarded database a connection had open before the guard loaded, or that
//! a VFS registered later opened — whose method table was swapped for ours
//! while the base file stays where it is; their state lives in a side table
//! keyed by the file pointer. Also here: the method tables, the registry of
//! open main files (MAINS) a journal or WAL finds its evidence through, and
//! the file-level work behind the public functions in `vfs` (mod.rs).

use super::base::{forward, RawBase};
use super::outside::Links;
use super::policy::{self, Guard, Rules};
use super::sleeper::Seat;
use super::trampolines::*;
use super::Kind;
use crate::settings::Settings;
use libsqlite3_sys as ffi;
use std::collections::HashMap;
use std::ffi::{c_int, CStr};
use std::path::PathBuf;
use std::ptr::addr_of_mut;
use std::sync::Mutex;

/// Our part of the file buffer; the base file follows at `HEADER_SIZE`.
#[repr(C)]
struct GuardFile {
    /// `pMethods` points at one of our method tables.
    file: ffi::sqlite3_file,
    state: *mut FileState,
}

/// Offset of the base file inside SQLite's buffer (8-byte aligned).
pub const HEADER_SIZE: usize = std::mem::size_of::<GuardFile>().next_multiple_of(8);

/// Everything the guard keeps for one open file.
pub(super) struct FileState {
    /// The policy's state.
    pub guard: Guard,
    /// The connection, busy handler and evidence the policy asks about.
    pub links: Links,
    /// Main database: the gate passed, and the base write lock is held, in
    /// the current write transaction (the evidence of `backstop`; its
    /// journal and WAL point at it too).
    write_ok: bool,
    /// Main database: the name SQLite opened it by (its journal and WAL
    /// names are this plus a suffix).
    open_name: Vec<u8>,
}

impl FileState {
    /// A boxed state (the evidence pointers need a stable address); a main
    /// database's evidence is its own.
    fn boxed(kind: Kind, guard: Guard, evidence: *mut bool) -> Box<FileState> {
        let mut state = Box::new(FileState {
            guard,
            links: Links::detached(),
            write_ok: false,
            open_name: Vec::new(),
        });
        state.links.evidence = if kind == Kind::MainDb {
            addr_of_mut!(state.write_ok)
        } else {
            evidence
        };
        state
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
    settings: &'static Settings,
) -> c_int {
    let gf = f as *mut GuardFile;
    let real = real_file(f);
    // SAFETY: caller contract: the buffer holds our header and the base file.
    unsafe {
        (*gf).file.pMethods = std::ptr::null();
        (*gf).state = std::ptr::null_mut();
    }
    let rules = Rules::of(settings);
    let read_only = flags & ffi::SQLITE_OPEN_READONLY != 0;
    let evidence = match kind {
        Kind::MainDb => std::ptr::null_mut(),
        Kind::Journal => main_evidence(name, b"-journal"),
        Kind::Wal => main_evidence(name, b"-wal"),
    };
    let mut state = FileState::boxed(
        kind,
        Guard::new(kind, db_path, &mount, read_only, rules),
        evidence,
    );
    if kind == Kind::MainDb && state.guard.fair() {
        state.links.seat = Some(Seat::new());
    }
    if kind == Kind::MainDb && !name.is_null() {
        // SAFETY: SQLite passes a NUL-terminated name.
        state.open_name = unsafe { CStr::from_ptr(name) }.to_bytes().to_vec();
    }
    if kind == Kind::MainDb && flags & ffi::SQLITE_OPEN_CREATE != 0 && !name.is_null() {
        // Creating a database (open, ATTACH or VACUUM INTO a new path in
        // the mount) writes the mount: not on a node that may not write.
        // LiteFS refuses it too, and leaves an empty entry behind.
        // SAFETY: SQLite passes a NUL-terminated path.
        let exists = unsafe { libc::access(name, libc::F_OK) } == 0;
        if !exists {
            if let Err(rc) = policy::vouch_create(&mount, state.guard.db_path(), rules, &Links::detached()) {
                return rc;
            }
        }
    }
    let st = &mut *state;
    if let Err(rc) = st.guard.before_open(&st.links, flags) {
        return rc;
    }
    // SAFETY: `b` is the registered base VFS (caller contract).
    let Some(x_open) = (unsafe { (*b).xOpen }) else {
        return ffi::SQLITE_CANTOPEN;
    };
    // SAFETY: the base VFS opens its file in the rest of SQLite's buffer,
    // which is at least its szOsFile bytes (see `wrap`).
    let rc = unsafe { x_open(b, name, real, flags, out_flags) };
    // SAFETY: `real` is the base file the base xOpen just filled in.
    if rc != ffi::SQLITE_OK || unsafe { (*real).pMethods.is_null() } {
        return rc;
    }
    // SAFETY: our header (caller contract); the base file is open.
    unsafe {
        (*gf).state = Box::into_raw(state);
        (*gf).file.pMethods = methods_for::<false>((*real).pMethods);
        if kind == Kind::MainDb {
            let mut mains = MAINS.lock().unwrap_or_else(|e| e.into_inner());
            mains.push((f as usize, (*gf).state as usize));
        }
    }
    ffi::SQLITE_OK
}

/// Takes the guard out of a file that is closing and closes the base file.
///
/// # Safety
/// `f` is an open file whose methods are ours of layout `A`; `base` its
/// base file. No reference to its state may be used afterwards.
pub(super) unsafe fn close<const A: bool>(f: *mut ffi::sqlite3_file, base: RawBase<'_>) -> c_int {
    if A {
        let orig = with_adopted(f, |a| a.methods).unwrap_or(std::ptr::null());
        let mut map = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = map.as_mut() {
            m.remove(&(f as usize));
        }
        drop(map);
        // SAFETY: the original table goes back before the original xClose.
        unsafe { (*f).pMethods = orig };
        // SAFETY: `orig` is null or the file's original static method table.
        match unsafe { orig.as_ref() }.and_then(|m| m.xClose) {
            // SAFETY: the file's own close, on the file.
            Some(close) => unsafe { close(f) },
            None => ffi::SQLITE_OK,
        }
    } else {
        let gf = f as *mut GuardFile;
        {
            let mut mains = MAINS.lock().unwrap_or_else(|e| e.into_inner());
            mains.retain(|&(file, _)| file != f as usize);
        }
        // SAFETY: the state was set by `open` with Box::into_raw and is freed
        // exactly once, here.
        unsafe {
            drop(Box::from_raw((*gf).state));
            (*gf).state = std::ptr::null_mut();
        }
        let rc = forward!(base, xClose());
        // SAFETY: our header.
        unsafe { (*gf).file.pMethods = std::ptr::null() };
        rc
    }
}

/// Main database files the wrappers opened and that are still open:
/// (address of the `sqlite3_file`, address of its state).
static MAINS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// How far SQLite's pager places a journal or WAL name after its main file
/// handle in the one allocation that holds both (the Pager, its cache, three
/// file handles, then the names): a few KiB; generous on purpose.
const PAGER_SPAN: usize = 1 << 14;

/// The evidence of the main database file a `-journal` or `-wal` named
/// `name` belongs to: the wrapper-opened main file of the *same pager*,
/// recognised without reading foreign memory — it lies just before the name
/// in the pager's allocation, and the name is its own name plus the suffix.
/// (`sqlite3_database_file_object` would say the same, but reads memory
/// before the name: undefined for a name a shim or the application made.)
/// Null when there is no such file: every transaction is then looked up.
fn main_evidence(name: ffi::sqlite3_filename, suffix: &[u8]) -> *mut bool {
    if name.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: SQLite passes a NUL-terminated name.
    let wanted = unsafe { CStr::from_ptr(name) }.to_bytes();
    let at = name as usize;
    let mains = MAINS.lock().unwrap_or_else(|e| e.into_inner());
    // The pager's allocation is contiguous, so its own main file is the
    // nearest registered one below the name (other connections to the same
    // database have the same name but lie elsewhere).
    let nearest = mains
        .iter()
        .filter(|&&(file, _)| file < at && at - file < PAGER_SPAN)
        .max_by_key(|&&(file, _)| file);
    if let Some(&(_, state)) = nearest {
        let st = state as *mut FileState;
        // SAFETY: registered states are alive until their file closes
        // (which removes them, under this lock).
        if wanted.strip_suffix(suffix) == Some(unsafe { (*st).open_name.as_slice() }) {
            // SAFETY: as above.
            return unsafe { addr_of_mut!((*st).write_ok) };
        }
    }
    std::ptr::null_mut()
}

/// Our method table mirroring the base file's: same version, and no shm
/// methods where the base has none (`unix-none`, `unix-dotfile`): offering
/// them would make SQLite use WAL there and call a missing method.
fn methods_for<const A: bool>(base: *const ffi::sqlite3_io_methods) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: SQLite's base file has a valid method table.
    let b = unsafe { &*base };
    let shm = b.iVersion >= 2 && b.xShmMap.is_some() && b.xShmLock.is_some();
    match (A, b.iVersion, shm) {
        (false, v, true) if v >= 3 => &METHODS_V3,
        (false, v, false) if v >= 3 => &METHODS_V3_NOSHM,
        (false, 2, true) => &METHODS_V2,
        (false, _, _) => &METHODS_V1,
        (true, v, true) if v >= 3 => &ADOPTED_V3,
        (true, v, false) if v >= 3 => &ADOPTED_V3_NOSHM,
        (true, 2, true) => &ADOPTED_V2,
        (true, _, _) => &ADOPTED_V1,
    }
}

fn real_file(f: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: the base file lives HEADER_SIZE bytes into the same buffer.
    unsafe { (f as *mut u8).add(HEADER_SIZE) as *mut ffi::sqlite3_file }
}

/// An adopted file: its state and the method table it had.
struct Adopted {
    state: Box<FileState>,
    methods: *const ffi::sqlite3_io_methods,
}

// SAFETY: only touched under the ADOPTED mutex or by SQLite's serialised
// calls on that file.
unsafe impl Send for Adopted {}

static ADOPTED: Mutex<Option<HashMap<usize, Adopted>>> = Mutex::new(None);

fn with_adopted<T>(f: *mut ffi::sqlite3_file, g: impl FnOnce(&mut Adopted) -> T) -> Option<T> {
    let mut map = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
    map.as_mut()?.get_mut(&(f as usize)).map(g)
}

/// What every method needs: our state, and the base file with its methods.
///
/// # Safety
/// `f` is an open file whose methods are ours of layout `A`.
pub(super) unsafe fn parts<'a, const A: bool>(f: *mut ffi::sqlite3_file) -> (&'a mut FileState, RawBase<'a>) {
    if A {
        let (state, methods) = with_adopted(f, |a| (&mut *a.state as *mut FileState, a.methods))
            .expect("an adopted file is in the side table until it closes");
        // SAFETY: the state is boxed (stable address) and freed only in
        // x_close; SQLite serialises calls per file; the methods are static.
        unsafe {
            (
                &mut *state,
                RawBase {
                    file: f,
                    methods: &*methods,
                },
            )
        }
    } else {
        let real = real_file(f);
        // SAFETY: set in `open`, freed only in `x_close`; the base file is open.
        unsafe {
            (
                &mut *(*(f as *mut GuardFile)).state,
                RawBase {
                    file: real,
                    methods: &*(*real).pMethods,
                },
            )
        }
    }
}

/// `parts` of one of our files, whichever its layout.
///
/// # Safety
/// `f` is one of our open files.
unsafe fn any_parts<'a>(f: *mut ffi::sqlite3_file) -> (&'a mut FileState, RawBase<'a>) {
    if is_adopted(f) {
        // SAFETY: caller contract.
        unsafe { parts::<true>(f) }
    } else {
        // SAFETY: caller contract.
        unsafe { parts::<false>(f) }
    }
}

/// `g` with the state and base file of `f`, whichever its layout; None when
/// `f` is not one of our files. `f` is null or a file SQLite returned for a
/// connection (its pMethods readable), called under that connection's mutex.
pub(super) fn with_state<T>(
    f: *mut ffi::sqlite3_file,
    g: impl FnOnce(&mut FileState, RawBase<'_>) -> T,
) -> Option<T> {
    if !is_ours(f) {
        return None;
    }
    // SAFETY: `f` is ours (checked) and open.
    let (s, base) = unsafe { any_parts(f) };
    Some(g(s, base))
}

/// Whether `f` is one of our files, whichever its layout.
pub(super) fn is_ours(f: *mut ffi::sqlite3_file) -> bool {
    if f.is_null() {
        return false;
    }
    // SAFETY: `f` is a file SQLite returned for a connection; reading pMethods is valid.
    let m = unsafe { (*f).pMethods };
    ALL_METHODS.iter().any(|t| std::ptr::eq(m, *t))
}

/// Whether `f` is an adopted file (its method table swapped for ours).
pub(super) fn is_adopted(f: *mut ffi::sqlite3_file) -> bool {
    if f.is_null() {
        return false;
    }
    // SAFETY: as in is_ours.
    let m = unsafe { (*f).pMethods };
    [&ADOPTED_V1, &ADOPTED_V2, &ADOPTED_V3, &ADOPTED_V3_NOSHM]
        .iter()
        .any(|t| std::ptr::eq(m, *t))
}

/// The method table an adopted file had (null for any other file).
pub(super) fn original_methods(f: *mut ffi::sqlite3_file) -> *const ffi::sqlite3_io_methods {
    if !is_adopted(f) {
        return std::ptr::null();
    }
    with_adopted(f, |a| a.methods).unwrap_or(std::ptr::null())
}

/// Adopts `f` (see `vfs::adopt`) with the policy state `guard`; `main` is
/// the main database file of a `-journal` or `-wal`, whose evidence is
/// theirs. False when `f` is null, ours already, or closed.
pub(super) fn adopt(
    f: *mut ffi::sqlite3_file,
    kind: Kind,
    guard: Guard,
    main: *mut ffi::sqlite3_file,
) -> bool {
    if f.is_null() || is_ours(f) {
        return false;
    }
    // SAFETY: an open file of a live connection: pMethods is valid or null.
    let orig = unsafe { (*f).pMethods };
    if orig.is_null() {
        return false;
    }
    let evidence = if kind == Kind::MainDb {
        std::ptr::null_mut()
    } else {
        with_state(main, |s, _| addr_of_mut!(s.write_ok)).unwrap_or(std::ptr::null_mut())
    };
    let mut state = FileState::boxed(kind, guard, evidence);
    if kind == Kind::MainDb && state.guard.fair() {
        // Its busy handler sleeps outside the wrappers, but it marks the
        // line while it holds the write lock, for the others.
        state.links.seat = Some(Seat::new());
    }
    {
        let mut map = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
        map.get_or_insert_with(HashMap::new)
            .insert(f as usize, Adopted { state, methods: orig });
    }
    // SAFETY: swapping the method table under the connection's mutex; the
    // original table is restored before the base xClose runs.
    unsafe { (*f).pMethods = methods_for::<true>(orig) };
    true
}

macro_rules! methods {
    ($name:ident, $v:expr, $shm:expr, $a:expr) => {
        static $name: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
            iVersion: $v,
            xClose: Some(x_close::<$a>),
            xRead: Some(x_read::<$a>),
            xWrite: Some(x_write::<$a>),
            xTruncate: Some(x_truncate::<$a>),
            xSync: Some(x_sync::<$a>),
            xFileSize: Some(x_file_size::<$a>),
            xLock: Some(x_lock::<$a>),
            xUnlock: Some(x_unlock::<$a>),
            xCheckReservedLock: Some(x_check_reserved_lock::<$a>),
            xFileControl: Some(x_file_control::<$a>),
            xSectorSize: Some(x_sector_size::<$a>),
            xDeviceCharacteristics: Some(x_device_characteristics::<$a>),
            xShmMap: if $v >= 2 && $shm {
                Some(x_shm_map::<$a>)
            } else {
                None
            },
            xShmLock: if $v >= 2 && $shm {
                Some(x_shm_lock::<$a>)
            } else {
                None
            },
            xShmBarrier: if $v >= 2 && $shm {
                Some(x_shm_barrier::<$a>)
            } else {
                None
            },
            xShmUnmap: if $v >= 2 && $shm {
                Some(x_shm_unmap::<$a>)
            } else {
                None
            },
            xFetch: if $v >= 3 { Some(x_fetch::<$a>) } else { None },
            xUnfetch: if $v >= 3 { Some(x_unfetch::<$a>) } else { None },
        };
    };
}
methods!(METHODS_V1, 1, false, false);
methods!(METHODS_V2, 2, true, false);
methods!(METHODS_V3, 3, true, false);
methods!(METHODS_V3_NOSHM, 3, false, false);
methods!(ADOPTED_V1, 1, false, true);
methods!(ADOPTED_V2, 2, true, true);
methods!(ADOPTED_V3, 3, true, true);
methods!(ADOPTED_V3_NOSHM, 3, false, true);

static ALL_METHODS: [&ffi::sqlite3_io_methods; 8] = [
    &METHODS_V1,
    &METHODS_V2,
    &METHODS_V3,
    &METHODS_V3_NOSHM,
    &ADOPTED_V1,
    &ADOPTED_V2,
    &ADOPTED_V3,
    &ADOPTED_V3_NOSHM,
];
