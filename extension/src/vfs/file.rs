//! A guarded file: the base VFS's file plus the guard's state, and the
//! sqlite3_io_methods that put the write gate, IMMEDIATE escalation, the WAL
//! rule, the file-layer backstop and the translation of LiteFS's refusals in
//! front of it.
//!
//! Two layouts share one set of methods (the `A` parameter): files the
//! wrappers opened (our header, then the base file in the same buffer) and
//! *adopted* files — a guarded database a connection had open before the
//! guard loaded, or that a VFS registered later opened — whose method table
//! was swapped for ours while the base file stays where it is; their state
//! lives in a side table keyed by the file pointer.

use super::backstop::{Backstop, Evidence};
use super::locks::WalLocks;
use super::verdict::{RecentVerdict, AUTHORIZER_REUSE, CHECKPOINT_REUSE};
use super::{boundary, Kind};
use crate::error::Error;
use crate::role::Marker;
use crate::role::{self, Role};
use crate::settings::Settings;
use crate::sqlite_api::{self, api};
use crate::wal_rule;
use libsqlite3_sys as ffi;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What an open file copies from the settings its VFS wrapper was made with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    marker: Marker,
    require_fuse: bool,
    /// Escalate plain BEGIN (LITEFS_GUARD_IMMEDIATE).
    immediate: bool,
    /// Refuse leaving WAL (LITEFS_GUARD_WAL).
    keep_wal: bool,
}

impl Rules {
    pub(super) fn of(s: &Settings) -> Rules {
        Rules {
            marker: s.marker,
            require_fuse: s.require_fuse,
            immediate: s.immediate,
            keep_wal: s.keep_wal,
        }
    }
}

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
    rules: Rules,
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
    /// The last role verdict for this file (see `verdict`).
    verdict: RecentVerdict,
    /// The lock level SQLite holds on the base file (main database).
    lock: c_int,
    /// A `PRAGMA journal_mode` away from WAL passed the WAL rule (LITEFS_GUARD_WAL=0).
    leaving_wal: bool,
    /// Whether the next write must be vouched for (see `backstop`).
    backstop: Backstop,
    /// Main database: the gate passed, and the base write lock is held, in
    /// the current write transaction (the evidence of `backstop`).
    write_ok: bool,
    /// Where this file's evidence lives: its own `write_ok` (main database),
    /// or its main database file's (a `-journal` or `-wal` linked through
    /// `sqlite3_database_file_object`); null when unknown (SQLite 3.31,
    /// which lacks that routine): every transaction is then looked up.
    evidence: *mut bool,
    /// Main database: the name SQLite opened it by (its journal and WAL
    /// names are this plus a suffix).
    open_name: Vec<u8>,
}

/// A file's evidence, as the backstop asks for it.
struct Ev(*mut bool);

impl Evidence for Ev {
    fn holds(&self) -> bool {
        // SAFETY: null, or a `write_ok` of a main file that outlives this
        // file (SQLite closes a journal and WAL before their database);
        // calls on one connection's files are serialised.
        !self.0.is_null() && unsafe { *self.0 }
    }
    fn grant(&mut self) {
        if !self.0.is_null() {
            // SAFETY: as in holds.
            unsafe { *self.0 = true };
        }
    }
    fn revoke(&mut self) {
        if !self.0.is_null() {
            // SAFETY: as in holds.
            unsafe { *self.0 = false };
        }
    }
}

impl FileState {
    fn role(&self) -> Role {
        role::detect_target(&self.target, self.rules.marker, self.rules.require_fuse)
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
                let e = Error::WriteRefused {
                    db: self.db_path.clone(),
                    why,
                };
                sqlite_api::log(e.code(), &e);
                Err(e.code())
            }
        }
    }

    /// Whether this file's connection is inside an explicit transaction and
    /// may be escalated at all.
    fn escalation_candidate(&self) -> bool {
        if self.kind != Kind::MainDb || self.read_only || self.conn.is_null() {
            return false;
        }
        if !self.rules.immediate {
            return false;
        }
        // SAFETY: `conn` is the live connection that owns this file (bound in
        // its init; the file closes before the connection is freed).
        unsafe { (api().get_autocommit)(self.conn) == 0 }
    }

    /// When the mount under an open file is gone, the unix VFS reports every
    /// failing shm lock as "busy" and SQLite retries for about ten seconds
    /// before a "locking protocol" error. Say what it is, at once.
    fn dead_mount_error(&self) -> Option<c_int> {
        match self.role() {
            Role::NotRunning(why) => {
                let e = Error::MountGone {
                    db: self.db_path.clone(),
                    why,
                };
                sqlite_api::log(e.code(), &e);
                Some(e.code())
            }
            _ => None,
        }
    }

    /// What the backstop asks before a write it has no evidence for.
    fn vouch(&mut self) -> Result<(), c_int> {
        let mut backstop = std::mem::take(&mut self.backstop);
        let r = backstop.check(&mut Ev(self.evidence), &mut || self.gate());
        self.backstop = backstop;
        r
    }

    /// The base write lock is held after a passed gate: evidence for the
    /// transaction's writes.
    fn granted(&mut self) {
        self.write_ok = true;
    }

    /// The write transaction on this database ended (or may have).
    fn end_of_write(&mut self) {
        Ev(self.evidence).revoke();
        self.backstop.arm();
    }

    fn note(&mut self, may_write: bool) {
        self.verdict.record(may_write);
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
    settings: &'static Settings,
) -> c_int {
    let gf = f as *mut GuardFile;
    let real = real_file(f);
    // SAFETY: caller contract: the buffer holds our header and the base file.
    unsafe {
        (*gf).file.pMethods = std::ptr::null();
        (*gf).state = std::ptr::null_mut();
        let mut state = Box::new(FileState::new(kind, db_path, &mount, flags, Rules::of(settings)));
        state.evidence = match kind {
            Kind::MainDb => &mut state.write_ok,
            Kind::Journal => main_evidence(name, b"-journal"),
            Kind::Wal => main_evidence(name, b"-wal"),
        };
        if kind == Kind::MainDb && !name.is_null() {
            // SAFETY: SQLite passes a NUL-terminated name.
            state.open_name = CStr::from_ptr(name).to_bytes().to_vec();
        }
        if kind == Kind::MainDb && flags & ffi::SQLITE_OPEN_CREATE != 0 && !name.is_null() {
            // Creating a database (open, ATTACH or VACUUM INTO a new path in
            // the mount) writes the mount: not on a node that may not write.
            // LiteFS refuses it too, and leaves an empty entry behind.
            // SAFETY: SQLite passes a NUL-terminated path.
            let exists = libc::access(name, libc::F_OK) == 0;
            if !exists {
                if let Err(rc) = vouch_create(&mount, &state.db_path, settings) {
                    return rc;
                }
            }
        }
        if kind == Kind::Journal && flags & ffi::SQLITE_OPEN_READWRITE != 0 {
            // Opening a journal to write it starts a write transaction (or
            // plays back a hot journal): never on a node that may not write.
            // Asked before the file is created, so nothing is left behind.
            if let Err(rc) = state.vouch() {
                if flags & ffi::SQLITE_OPEN_CREATE == 0 {
                    let db = state.db_path.clone();
                    sqlite_api::log(rc, &Error::HotJournal { db });
                }
                return rc;
            }
        }
        let Some(x_open) = (*b).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        let rc = x_open(b, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK || (*real).pMethods.is_null() {
            return rc;
        }
        let kind = state.kind;
        (*gf).state = Box::into_raw(state);
        (*gf).file.pMethods = methods_for::<false>((*real).pMethods);
        if kind == Kind::MainDb {
            let mut mains = MAINS.lock().unwrap_or_else(|e| e.into_inner());
            mains.push((f as usize, (*gf).state as usize));
        }
    }
    ffi::SQLITE_OK
}

impl FileState {
    fn new(kind: Kind, db_path: PathBuf, mount: &Path, flags: c_int, rules: Rules) -> FileState {
        FileState {
            kind,
            rules,
            target: role::Target::new(mount, Some(&db_path)),
            backstop: Backstop::default(),
            write_ok: false,
            evidence: std::ptr::null_mut(),
            open_name: Vec::new(),
            db_path,
            read_only: flags & ffi::SQLITE_OPEN_READONLY != 0,
            conn: std::ptr::null_mut(),
            shared: false,
            shm_mapped: false,
            busy: None,
            wal: WalLocks::default(),
            guard_reserved: false,
            rollback_declined: false,
            verdict: RecentVerdict::default(),
            lock: ffi::SQLITE_LOCK_NONE,
            leaving_wal: false,
        }
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
        // SAFETY: registered states are alive until their file closes
        // (which removes them, under this lock).
        let st = unsafe { &mut *(state as *mut FileState) };
        if wanted.strip_suffix(suffix) == Some(st.open_name.as_slice()) {
            return &mut st.write_ok;
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

/// The three things every method needs: our state, the file the base methods
/// take, and those methods.
///
/// # Safety
/// `f` is an open file whose methods are ours of layout `A`.
unsafe fn parts<'a, const A: bool>(
    f: *mut ffi::sqlite3_file,
) -> (
    &'a mut FileState,
    *mut ffi::sqlite3_file,
    &'a ffi::sqlite3_io_methods,
) {
    if A {
        let (state, methods) = with_adopted(f, |a| (&mut *a.state as *mut FileState, a.methods))
            .expect("an adopted file is in the side table until it closes");
        // SAFETY: the state is boxed (stable address) and freed only in
        // x_close; SQLite serialises calls per file; the methods are static.
        unsafe { (&mut *state, f, &*methods) }
    } else {
        let real = real_file(f);
        // SAFETY: set in `open`, freed only in `x_close`; the base file is open.
        unsafe { (&mut *(*(f as *mut GuardFile)).state, real, &*(*real).pMethods) }
    }
}

fn is_ours(f: *mut ffi::sqlite3_file) -> bool {
    if f.is_null() {
        return false;
    }
    // SAFETY: `f` is a file SQLite returned for a connection; reading pMethods is valid.
    let m = unsafe { (*f).pMethods };
    ALL_METHODS.iter().any(|t| std::ptr::eq(m, *t))
}

/// The method table an adopted file had before the guard took it over
/// (null for any other file).
pub fn original_methods(f: *mut ffi::sqlite3_file) -> *const ffi::sqlite3_io_methods {
    if !is_adopted(f) {
        return std::ptr::null();
    }
    with_adopted(f, |a| a.methods).unwrap_or(std::ptr::null())
}

/// Whether `f` is a file the guard adopted (see `adopt`).
pub fn is_adopted(f: *mut ffi::sqlite3_file) -> bool {
    if f.is_null() {
        return false;
    }
    // SAFETY: as in is_ours.
    let m = unsafe { (*f).pMethods };
    [&ADOPTED_V1, &ADOPTED_V2, &ADOPTED_V3, &ADOPTED_V3_NOSHM]
        .iter()
        .any(|t| std::ptr::eq(m, *t))
}

/// `parts` of one of our files, whichever its layout.
///
/// # Safety
/// `f` is one of our open files.
unsafe fn any_parts<'a>(
    f: *mut ffi::sqlite3_file,
) -> (
    &'a mut FileState,
    *mut ffi::sqlite3_file,
    &'a ffi::sqlite3_io_methods,
) {
    if is_adopted(f) {
        // SAFETY: caller contract.
        unsafe { parts::<true>(f) }
    } else {
        // SAFETY: caller contract.
        unsafe { parts::<false>(f) }
    }
}

/// The state of one of our files, whichever its layout.
///
/// # Safety
/// `f` is one of our open files.
unsafe fn state_of<'a>(f: *mut ffi::sqlite3_file) -> &'a mut FileState {
    // SAFETY: caller contract.
    unsafe { any_parts(f).0 }
}

/// May the `-journal` or `-wal` of this guarded database be deleted now?
/// Deleting one is part of a write transaction (DELETE journal mode) or of
/// the last close after a checkpoint, both already vouched for on a node
/// that may write; on any other node the files stay as they are.
pub(super) fn vouch_delete(
    db: PathBuf,
    mount: &Path,
    journal: bool,
    settings: &Settings,
) -> Result<(), c_int> {
    let just_closed = CLOSED_JOURNAL
        .with(|c| c.borrow_mut().take())
        .is_some_and(|p| journal && p == db);
    if just_closed {
        return Ok(());
    }
    FileState::new(
        Kind::Journal,
        db,
        mount,
        ffi::SQLITE_OPEN_READONLY,
        Rules::of(settings),
    )
    .gate()
}

/// May a new file be created at `path` in this mount now (role of the mount
/// alone: the file is not there yet)?
pub(super) fn vouch_create(mount: &Path, path: &Path, settings: &Settings) -> Result<(), c_int> {
    let mut s = FileState::new(
        Kind::Journal,
        path.to_path_buf(),
        mount,
        ffi::SQLITE_OPEN_READONLY,
        Rules::of(settings),
    );
    s.target = role::Target::new(mount, None);
    s.gate()
}

thread_local! {
    /// The database whose `-journal` this thread just closed inside a write
    /// transaction that had passed the gate: DELETE mode deletes it next,
    /// in the same call. Taken by that delete, or replaced by the next close.
    static CLOSED_JOURNAL: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Puts a guarded main database that a connection opened outside the
/// wrappers (before the guard loaded, or through a VFS registered later)
/// under the guard: its method table is swapped for ours, which forward to
/// the original with the same file. Must run under the connection's mutex
/// (SQLite holds it during the auto-extension, authorizer and file control).
/// Returns false when `f` was ours already or is not a main database.
/// `main` is the database file a `-journal` or `-wal` belongs to (its evidence
/// is theirs); ignored for a main database.
pub fn adopt(
    f: *mut ffi::sqlite3_file,
    kind: Kind,
    at: &crate::location::Located,
    read_only: bool,
    main: *mut ffi::sqlite3_file,
    settings: &Settings,
) -> bool {
    if f.is_null() || is_ours(f) {
        return false;
    }
    // SAFETY: an open file of a live connection: pMethods is valid or null.
    let orig = unsafe { (*f).pMethods };
    if orig.is_null() {
        return false;
    }
    let flags = if read_only {
        ffi::SQLITE_OPEN_READONLY
    } else {
        ffi::SQLITE_OPEN_READWRITE
    };
    let mut state = Box::new(FileState::new(
        kind,
        at.db.clone(),
        &at.mount,
        flags,
        Rules::of(settings),
    ));
    state.evidence = if kind == Kind::MainDb {
        &mut state.write_ok
    } else if is_ours(main) {
        // SAFETY: `main` is ours (checked) and open; its state is boxed.
        unsafe { &mut state_of(main).write_ok }
    } else {
        std::ptr::null_mut()
    };
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

/// Binds a main database file to its connection so escalation can ask
/// whether that connection is inside an explicit transaction. Returns false
/// for files that are not ours.
pub fn bind(f: *mut ffi::sqlite3_file, conn: *mut ffi::sqlite3) -> bool {
    if !is_ours(f) {
        return false;
    }
    // SAFETY: `f` is ours (checked) and open.
    let s = unsafe { state_of(f) };
    if s.kind != Kind::MainDb {
        return true;
    }
    if !s.conn.is_null() && s.conn != conn {
        // Two connections on one file: shared-cache mode. Either may close
        // while the file stays open, so neither is remembered: no escalation.
        s.shared = true;
    }
    s.conn = if s.shared { std::ptr::null_mut() } else { conn };
    true
}

/// Whether the authorizer may reuse this file's last verdict instead of
/// looking (see `verdict`). False for files not ours.
pub fn recently_allowed(f: *mut ffi::sqlite3_file) -> bool {
    // SAFETY: `f` is ours (checked) and open.
    is_ours(f) && unsafe { state_of(f) }.verdict.allowed_within(AUTHORIZER_REUSE)
}

/// Records the authorizer's own fresh role check for this file.
pub fn record_verdict(f: *mut ffi::sqlite3_file, may_write: bool) {
    if is_ours(f) {
        // SAFETY: `f` is ours (checked) and open.
        unsafe { state_of(f) }.note(may_write);
    }
}

/// Whether `f` is a file of this VFS (so its writes pass the gate).
pub fn is_gated(f: *mut ffi::sqlite3_file) -> bool {
    is_ours(f)
}

/// Whether our main database file `f` is in WAL mode (its journal file is
/// then the `-wal`).
pub fn in_wal_mode(f: *mut ffi::sqlite3_file) -> bool {
    if !is_ours(f) {
        return false;
    }
    // SAFETY: `f` is ours (checked) and open.
    let (s, real, base) = unsafe { any_parts(f) };
    header_says_wal(s, real, base)
}

// The methods. SAFETY (all): SQLite calls them with a file whose method
// table is one of ours of layout `A` (see `parts`), open until x_close.

macro_rules! forward {
    ($base:expr, $real:expr, $m:ident ( $($arg:expr),* )) => {{
        match $base.$m {
            #[allow(unused_unsafe)]
            Some(m) => unsafe { m($real, $($arg),*) },
            None => ffi::SQLITE_IOERR,
        }
    }};
}

unsafe extern "C" fn x_close<const A: bool>(f: *mut ffi::sqlite3_file) -> c_int {
    boundary(ffi::SQLITE_IOERR_CLOSE, || {
        // SAFETY: see above; the state is freed exactly once, here.
        unsafe {
            let (s, real, base) = parts::<A>(f);
            // Release before the base unmaps or closes: an in-process leak otherwise.
            s.wal
                .release(&mut |o, n, fl| forward!(base, real, xShmLock(o, n, fl)));
            if s.kind == Kind::Journal {
                // DELETE mode: the delete that follows is part of a vouched transaction.
                let vouched = Ev(s.evidence).holds().then(|| s.db_path.clone());
                CLOSED_JOURNAL.with(|c| *c.borrow_mut() = vouched);
            }
            if A {
                let orig = with_adopted(f, |a| a.methods).unwrap_or(std::ptr::null());
                let mut map = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(m) = map.as_mut() {
                    m.remove(&(f as usize));
                }
                drop(map);
                (*f).pMethods = orig;
                match orig.as_ref().and_then(|m| m.xClose) {
                    Some(close) => close(f),
                    None => ffi::SQLITE_OK,
                }
            } else {
                let gf = f as *mut GuardFile;
                {
                    let mut mains = MAINS.lock().unwrap_or_else(|e| e.into_inner());
                    mains.retain(|&(file, _)| file != f as usize);
                }
                drop(Box::from_raw((*gf).state));
                (*gf).state = std::ptr::null_mut();
                let rc = forward!(base, real, xClose());
                (*gf).file.pMethods = std::ptr::null();
                rc
            }
        }
    })
}

unsafe extern "C" fn x_read<const A: bool>(
    f: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    n: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_READ, || {
        // SAFETY: see above.
        let (_, real, base) = unsafe { parts::<A>(f) };
        forward!(base, real, xRead(buf, n, off))
    })
}

/// LiteFS refuses writes on a replica with EACCES at the FUSE layer, which
/// SQLite reports as "disk I/O error" in WAL mode. Say what it really is.
fn translate(s: &mut FileState, rc: c_int) -> c_int {
    if rc == ffi::SQLITE_OK || rc & 0xff != ffi::SQLITE_IOERR {
        return rc;
    }
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if ![libc::EACCES, libc::EROFS, libc::EPERM].contains(&errno) {
        return rc;
    }
    match s.gate() {
        Ok(()) => rc,
        Err(readonly) => readonly,
    }
}

/// The backstop's question before `n` bytes are written at `off`.
fn before_write(s: &mut FileState, buf: *const c_void, n: c_int, off: i64) -> Result<(), c_int> {
    // SAFETY: SQLite passes `n` readable bytes.
    let bytes =
        |len: usize| unsafe { std::slice::from_raw_parts(buf as *const u8, len.min(n.max(0) as usize)) };
    let mut backstop = std::mem::take(&mut s.backstop);
    let mut ev = Ev(s.evidence);
    let r = match s.kind {
        Kind::MainDb => backstop.check(&mut ev, &mut || s.gate()),
        Kind::Journal => {
            // SQLite ends a transaction in PERSIST and EXCLUSIVE mode by
            // zeroing the header's first 28 bytes (zeroJournalHdr). A new
            // header is longer (a sector) and never all zero: its magic may
            // be zero until synced, but it holds the sector and page sizes.
            let cleared = off == 0 && (1..=28).contains(&n) && bytes(28).iter().all(|b| *b == 0);
            backstop.journal_write(&mut ev, off, n as i64, cleared, &mut || s.gate())
        }
        Kind::Wal => {
            // A frame header (24 bytes after the 32-byte WAL header) whose
            // "database size" field is set marks a commit.
            let commit = n == 24 && off >= 32 && bytes(8)[4..8] != [0, 0, 0, 0];
            backstop.wal_write(&mut ev, off, n as i64, commit, &mut || s.gate())
        }
    };
    s.backstop = backstop;
    r
}

unsafe extern "C" fn x_write<const A: bool>(
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    n: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_WRITE, || {
        // SAFETY: see above.
        let (s, real, base) = unsafe { parts::<A>(f) };
        if let Err(rc) = before_write(s, buf, n, off) {
            return rc;
        }
        let rc = forward!(base, real, xWrite(buf, n, off));
        translate(s, rc)
    })
}

unsafe extern "C" fn x_truncate<const A: bool>(f: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    boundary(ffi::SQLITE_IOERR_TRUNCATE, || {
        // SAFETY: see above.
        let (s, real, base) = unsafe { parts::<A>(f) };
        if s.kind == Kind::Journal && size == 0 {
            // TRUNCATE mode ends a write transaction this way; an empty
            // journal is a cold one.
            s.end_of_write();
        } else if let Err(rc) = s.vouch() {
            return rc;
        }
        let rc = forward!(base, real, xTruncate(size));
        translate(s, rc)
    })
}

unsafe extern "C" fn x_sync<const A: bool>(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR_FSYNC, || {
        // SAFETY: see above.
        let (s, real, base) = unsafe { parts::<A>(f) };
        let rc = forward!(base, real, xSync(flags));
        translate(s, rc)
    })
}

unsafe extern "C" fn x_file_size<const A: bool>(
    f: *mut ffi::sqlite3_file,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_FSTAT, || {
        // SAFETY: see above.
        let (_, real, base) = unsafe { parts::<A>(f) };
        forward!(base, real, xFileSize(out))
    })
}

/// Bytes 18 and 19 of the header are 2 in a WAL database.
fn header_says_wal(s: &FileState, real: *mut ffi::sqlite3_file, base: &ffi::sqlite3_io_methods) -> bool {
    // A mapped wal-index answers without a read (on LiteFS, a FUSE round trip).
    if s.shm_mapped {
        return true;
    }
    let mut hdr = [0u8; 2];
    let rc = forward!(base, real, xRead(hdr.as_mut_ptr() as *mut c_void, 2, 18));
    rc == ffi::SQLITE_OK && hdr == [2, 2]
}

fn journal_exists(db_path: &Path) -> bool {
    let mut p = db_path.as_os_str().to_os_string();
    p.push("-journal");
    std::fs::symlink_metadata(PathBuf::from(p)).is_ok()
}

unsafe extern "C" fn x_lock<const A: bool>(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR_LOCK, || {
        // SAFETY: see above.
        let (s, real, base) = unsafe { parts::<A>(f) };
        if s.kind != Kind::MainDb {
            return forward!(base, real, xLock(level));
        }
        let rc = match level {
            ffi::SQLITE_LOCK_RESERVED => {
                // The rollback-journal write gate (the WAL one is in xShmLock).
                if !s.guard_reserved {
                    if let Err(rc) = s.gate() {
                        return rc;
                    }
                }
                let rc = forward!(base, real, xLock(level));
                if rc == ffi::SQLITE_OK {
                    s.granted();
                }
                rc
            }
            ffi::SQLITE_LOCK_SHARED => {
                let rc = forward!(base, real, xLock(level));
                if rc != ffi::SQLITE_OK
                    || s.rollback_declined
                    || s.guard_reserved
                    || !s.escalation_candidate()
                {
                    rc
                } else {
                    s.lock = ffi::SQLITE_LOCK_SHARED;
                    escalate_rollback(s, real, base)
                }
            }
            ffi::SQLITE_LOCK_EXCLUSIVE => {
                if header_says_wal(s, real, base) {
                    // In WAL mode SQLite locks the database file exclusively to
                    // checkpoint and delete the WAL as the last connection
                    // closes (or to leave WAL). On a node that may not write,
                    // "busy" makes it skip that quietly and leave the files
                    // alone. (In locking_mode=EXCLUSIVE it is taken at the first
                    // read, with no wal-index mapped: reads go on; the
                    // backstop watches its writes.)
                    if s.shm_mapped && s.wal.read_slot.is_none() && !s.leaving_wal && s.gate().is_err() {
                        return ffi::SQLITE_BUSY;
                    }
                } else if s.lock < ffi::SQLITE_LOCK_RESERVED && !s.guard_reserved {
                    // Straight from SHARED to EXCLUSIVE: SQLite is about to
                    // play back a hot journal into the database.
                    if s.gate().is_err() {
                        let e = Error::HotJournal {
                            db: s.db_path.clone(),
                        };
                        sqlite_api::log(e.code(), &e);
                        return e.code();
                    }
                    let rc = forward!(base, real, xLock(level));
                    if rc == ffi::SQLITE_OK {
                        // Playing back the hot journal writes the database.
                        s.granted();
                    }
                    return rc;
                }
                forward!(base, real, xLock(level))
            }
            _ => forward!(base, real, xLock(level)),
        };
        if rc == ffi::SQLITE_OK {
            s.lock = s.lock.max(level);
        }
        rc
    })
}

/// Rollback-journal escalation: holding SHARED, also take RESERVED so a
/// plain BEGIN behaves like BEGIN IMMEDIATE. While RESERVED is busy, drop to
/// NONE between busy-handler calls so the current writer can commit.
fn escalate_rollback(
    s: &mut FileState,
    real: *mut ffi::sqlite3_file,
    base: &ffi::sqlite3_io_methods,
) -> c_int {
    // Never on a WAL database: RESERVED would then be held for good.
    if header_says_wal(s, real, base) {
        return ffi::SQLITE_OK;
    }
    if !s.role().may_write() {
        s.rollback_declined = true;
        return ffi::SQLITE_OK;
    }
    let mut waited = false;
    loop {
        match forward!(base, real, xLock(ffi::SQLITE_LOCK_RESERVED)) {
            ffi::SQLITE_OK => {
                // Nobody else can be writing now, so a journal is hot: let
                // SQLite roll it back as a plain deferred transaction. And
                // after queueing for the lock, the role may have changed.
                if journal_exists(&s.db_path) || (waited && s.gate().is_err()) {
                    forward!(base, real, xUnlock(ffi::SQLITE_LOCK_SHARED));
                    s.rollback_declined = true;
                } else {
                    s.guard_reserved = true;
                    s.lock = ffi::SQLITE_LOCK_RESERVED;
                    s.note(true);
                    s.granted();
                }
                return ffi::SQLITE_OK;
            }
            ffi::SQLITE_BUSY => {
                waited = true;
                forward!(base, real, xUnlock(ffi::SQLITE_LOCK_NONE));
                let retry = s.call_busy();
                let rc = forward!(base, real, xLock(ffi::SQLITE_LOCK_SHARED));
                if rc != ffi::SQLITE_OK {
                    s.lock = ffi::SQLITE_LOCK_NONE;
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

unsafe extern "C" fn x_unlock<const A: bool>(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR_UNLOCK, || {
        // SAFETY: see above.
        let (s, real, base) = unsafe { parts::<A>(f) };
        if s.kind == Kind::MainDb && level <= ffi::SQLITE_LOCK_SHARED {
            // A transaction ended: whatever it was allowed ends with it.
            s.end_of_write();
            s.guard_reserved = false;
            s.leaving_wal = false;
            if level == ffi::SQLITE_LOCK_NONE {
                s.rollback_declined = false;
                // Safety net: a transaction that failed before taking a read
                // slot must not leave the escalated write lock behind.
                s.wal
                    .release_if_idle(&mut |o, n, fl| forward!(base, real, xShmLock(o, n, fl)));
            }
        }
        let rc = forward!(base, real, xUnlock(level));
        s.lock = s.lock.min(level);
        rc
    })
}

unsafe extern "C" fn x_check_reserved_lock<const A: bool>(
    f: *mut ffi::sqlite3_file,
    out: *mut c_int,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, || {
        // SAFETY: see above.
        let (_, real, base) = unsafe { parts::<A>(f) };
        forward!(base, real, xCheckReservedLock(out))
    })
}

unsafe extern "C" fn x_file_control<const A: bool>(
    f: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    boundary(ffi::SQLITE_ERROR, || {
        // SAFETY: see above.
        let (s, real, base) = unsafe { parts::<A>(f) };
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
                if let Some(e) = wal_rule::check_pragma(s.rules.keep_wal, name, value) {
                    // SAFETY: SQLite frees az[0] with sqlite3_free.
                    unsafe { *az = api().string(&e.message()) };
                    sqlite_api::log(e.code(), &e);
                    return e.code();
                }
                if name.is_some_and(|n| n.eq_ignore_ascii_case("journal_mode"))
                    && value.is_some_and(|v| !v.trim().eq_ignore_ascii_case("wal"))
                {
                    s.leaving_wal = true;
                }
            }
            ffi::SQLITE_FCNTL_COMMIT_PHASETWO if s.kind == Kind::MainDb => {
                // Sent at every commit, in every locking mode.
                s.end_of_write();
            }
            ffi::SQLITE_FCNTL_SIZE_HINT
            | ffi::SQLITE_FCNTL_BEGIN_ATOMIC_WRITE
            | ffi::SQLITE_FCNTL_COMMIT_ATOMIC_WRITE => {
                // These grow or write the file.
                if let Err(rc) = s.vouch() {
                    return rc;
                }
            }
            _ => {}
        }
        forward!(base, real, xFileControl(op, arg))
    })
}

fn cstr<'a>(p: *const c_char) -> Option<&'a str> {
    // SAFETY: SQLite passes NUL-terminated strings or null.
    (!p.is_null())
        .then(|| unsafe { CStr::from_ptr(p) }.to_str().ok())
        .flatten()
}

unsafe extern "C" fn x_sector_size<const A: bool>(f: *mut ffi::sqlite3_file) -> c_int {
    boundary(4096, || {
        // SAFETY: see above.
        let (_, real, base) = unsafe { parts::<A>(f) };
        match base.xSectorSize {
            // SAFETY: the base file's own method.
            Some(m) => unsafe { m(real) },
            None => 4096,
        }
    })
}

unsafe extern "C" fn x_device_characteristics<const A: bool>(f: *mut ffi::sqlite3_file) -> c_int {
    boundary(0, || {
        // SAFETY: see above.
        let (_, real, base) = unsafe { parts::<A>(f) };
        match base.xDeviceCharacteristics {
            // SAFETY: the base file's own method.
            Some(m) => unsafe { m(real) },
            None => 0,
        }
    })
}

unsafe extern "C" fn x_shm_map<const A: bool>(
    f: *mut ffi::sqlite3_file,
    pg: c_int,
    pgsz: c_int,
    extend: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_SHMMAP, || {
        // SAFETY: see above.
        let (s, real, base) = unsafe { parts::<A>(f) };
        let rc = forward!(base, real, xShmMap(pg, pgsz, extend, pp));
        if rc == ffi::SQLITE_OK {
            s.shm_mapped = true;
        }
        rc
    })
}

unsafe extern "C" fn x_shm_lock<const A: bool>(
    f: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_SHMLOCK, || {
        // SAFETY: see above.
        let (s, real, base) = unsafe { parts::<A>(f) };
        let unlock = flags & ffi::SQLITE_SHM_UNLOCK != 0;
        let writing = s.wal.read_slot.is_some();
        // The lock state is moved out so the gate may borrow the rest of `s`.
        let mut wal = std::mem::take(&mut s.wal);
        let rc = wal.shm_lock(
            &mut |o, n, fl| forward!(base, real, xShmLock(o, n, fl)),
            offset,
            n,
            flags,
            &mut || {
                // A checkpoint right after this connection's own commit (the
                // auto-checkpoint) reuses the commit's fresh verdict.
                let just_checked =
                    offset == super::locks::WAL_CKPT_LOCK && s.verdict.allowed_within(CHECKPOINT_REUSE);
                if just_checked {
                    Ok(())
                } else {
                    s.gate()
                }
            },
        );
        // The gate was asked (a write transaction's write lock, or a
        // checkpoint) and the base lock is held: evidence.
        let gated = !unlock
            && rc == ffi::SQLITE_OK
            && n == 1
            && ((offset == super::locks::WAL_WRITE_LOCK && writing)
                || (offset == super::locks::WAL_CKPT_LOCK && flags & ffi::SQLITE_SHM_EXCLUSIVE != 0));
        let writer_done = unlock
            && n == 1
            && (offset == super::locks::WAL_WRITE_LOCK || offset == super::locks::WAL_CKPT_LOCK)
            && !wal.guard_write;
        s.wal = wal;
        if writer_done {
            // A WAL write transaction or checkpoint ended.
            s.end_of_write();
        } else if gated {
            s.granted();
        }
        if rc == ffi::SQLITE_BUSY && mount_may_be_dead() {
            return s.dead_mount_error().unwrap_or(rc);
        }
        rc
    })
}

/// The first shm call of every WAL read transaction, made while SQLite reads
/// the wal-index header: the place to take the write lock for a plain BEGIN
/// (see the README's "IMMEDIATE for plain BEGIN").
unsafe extern "C" fn x_shm_barrier<const A: bool>(f: *mut ffi::sqlite3_file) {
    boundary((), || {
        // SAFETY: see above.
        let (s, real, base) = unsafe { parts::<A>(f) };
        if s.wal.may_escalate() && s.escalation_candidate() {
            if s.role().may_write() {
                s.note(true);
                // The lock state is moved out so the closures may use `s`.
                let mut wal = std::mem::take(&mut s.wal);
                let busy = s.busy;
                let got = wal.escalate(
                    &mut |o, n, fl| forward!(base, real, xShmLock(o, n, fl)),
                    &mut || call_busy(busy),
                    &mut || s.gate().is_ok(),
                );
                s.wal = wal;
                if got {
                    s.granted();
                }
            } else {
                s.note(false);
                s.wal.declined = true;
            }
        }
        if let Some(m) = base.xShmBarrier {
            // SAFETY: the base file's own method.
            unsafe { m(real) }
        }
    })
}

unsafe extern "C" fn x_shm_unmap<const A: bool>(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    boundary(ffi::SQLITE_IOERR, || {
        // SAFETY: see above.
        let (s, real, base) = unsafe { parts::<A>(f) };
        s.wal
            .release(&mut |o, n, fl| forward!(base, real, xShmLock(o, n, fl)));
        s.wal.read_slot = None;
        s.shm_mapped = false;
        forward!(base, real, xShmUnmap(delete))
    })
}

unsafe extern "C" fn x_fetch<const A: bool>(
    f: *mut ffi::sqlite3_file,
    off: ffi::sqlite3_int64,
    amt: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_MMAP, || {
        // SAFETY: see above.
        let (_, real, base) = unsafe { parts::<A>(f) };
        forward!(base, real, xFetch(off, amt, pp))
    })
}

unsafe extern "C" fn x_unfetch<const A: bool>(
    f: *mut ffi::sqlite3_file,
    off: ffi::sqlite3_int64,
    p: *mut c_void,
) -> c_int {
    boundary(ffi::SQLITE_IOERR_MMAP, || {
        // SAFETY: see above.
        let (_, real, base) = unsafe { parts::<A>(f) };
        forward!(base, real, xUnfetch(off, p))
    })
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
