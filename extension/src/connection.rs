//! What the guard knows about one connection: its schemas, the files
//! behind them and their binding to the VFS, and the role as seen for them.
//! Shared by the authorizer and the SQL functions of that connection, which
//! only ever reach the VFS through it; set up by `setup`.

use crate::error::Error;
use crate::role::{self, Role};
use crate::settings::Settings;
use crate::sqlite_api::{self, api};
use crate::{location, vfs};
use libsqlite3_sys as ffi;
use std::ffi::{c_int, c_void, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// What the authorizer and the functions of one connection share.
pub struct ConnState {
    db: *mut ffi::sqlite3,
    settings: &'static Settings,
    /// Files of this connection known to be outside every mount: (file, path).
    unguarded: Mutex<Vec<(usize, Option<PathBuf>)>>,
    /// Schema names seen in statements (only kept for SQLite before 3.39).
    seen_names: Mutex<Vec<CString>>,
    /// An ATTACH was prepared on this connection (SQLite before 3.39 cannot
    /// list what is attached, so the guard assumes the worst).
    attached: AtomicBool,
    /// The main database was opened outside the wrappers and adopted.
    main_adopted: AtomicBool,
}

// SAFETY: SQLite serialises use of a connection; the state is only touched
// from callbacks SQLite makes on behalf of that connection.
unsafe impl Send for ConnState {}
// SAFETY: as for Send.
unsafe impl Sync for ConnState {}

/// Connections set up and still open (their state is alive).
static SET_UP: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Whether `db` was set up already (and is still open).
pub fn is_set_up(db: *mut ffi::sqlite3) -> bool {
    SET_UP
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&(db as usize))
}

impl Drop for ConnState {
    /// The last function holding the state goes as the connection closes.
    fn drop(&mut self) {
        let mut set = SET_UP.lock().unwrap_or_else(|e| e.into_inner());
        set.retain(|&d| d != self.db as usize);
    }
}

impl ConnState {
    /// The state of a connection being set up; its main database is bound
    /// (or adopted) at once.
    pub fn new(db: *mut ffi::sqlite3, settings: &'static Settings) -> ConnState {
        let state = ConnState {
            db,
            settings,
            unguarded: Mutex::new(Vec::new()),
            seen_names: Mutex::new(Vec::new()),
            attached: AtomicBool::new(false),
            main_adopted: AtomicBool::new(false),
        };
        state.bind(c"main");
        if vfs::is_adopted(state.schema_file(c"main")) {
            state.main_adopted.store(true, Ordering::Relaxed);
        }
        state
    }

    /// Records that setting up this connection is complete: a second load
    /// on it is then a no-op. Undone when the state is dropped.
    pub fn mark_set_up(&self) {
        SET_UP
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.db as usize);
    }

    pub fn db(&self) -> *mut ffi::sqlite3 {
        self.db
    }

    pub fn settings(&self) -> &'static Settings {
        self.settings
    }

    /// The file path behind a schema name; None for :memory: and temp.
    pub fn schema_path(&self, schema: &CStr) -> Option<PathBuf> {
        // SAFETY: valid connection and C string; SQLite returns null or a C string.
        let p = unsafe { (api().db_filename)(self.db, schema.as_ptr()) };
        if p.is_null() {
            return None;
        }
        // SAFETY: non-null, NUL-terminated, valid until the schema is detached.
        let b = unsafe { CStr::from_ptr(p) }.to_bytes();
        (!b.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(b)))
    }

    /// The open file behind a schema name (asked each time:
    /// sqlite3_deserialize() replaces the main file).
    fn schema_file(&self, name: &CStr) -> *mut ffi::sqlite3_file {
        self.file_pointer(name, ffi::SQLITE_FCNTL_FILE_POINTER)
    }

    /// The file a FILE_POINTER or JOURNAL_POINTER file control names; null
    /// when there is none.
    fn file_pointer(&self, name: &CStr, op: c_int) -> *mut ffi::sqlite3_file {
        let mut f: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: both controls write one sqlite3_file pointer into `f`.
        let rc = unsafe { (api().file_control)(self.db, name.as_ptr(), op, &mut f as *mut _ as *mut c_void) };
        if rc == ffi::SQLITE_OK {
            f
        } else {
            std::ptr::null_mut()
        }
    }

    /// Puts a schema's file under the guard: binds it to this connection
    /// (for IMMEDIATE escalation) and, when a guarded database was opened
    /// outside the wrappers (before loading, or by a VFS registered since),
    /// adopts it. Files known to be unguarded are remembered by pointer and
    /// path, so this costs one file-control call per statement and schema.
    fn bind(&self, schema: &CStr) -> bool {
        let f = self.schema_file(schema);
        if f.is_null() {
            return false;
        }
        if vfs::bind(f, self.db) {
            if vfs::is_adopted(f) {
                self.adopt_journal(schema, f);
            }
            return true;
        }
        let path = self.schema_path(schema);
        let mut plain = self.unguarded.lock().unwrap_or_else(|e| e.into_inner());
        if plain.iter().any(|(p, q)| *p == f as usize && *q == path) {
            return false;
        }
        let found = path.as_deref().and_then(|p| self.settings.locate(p));
        match found {
            Some(l) => {
                // SAFETY: valid connection and schema name.
                let ro = self.is_read_only(schema);
                vfs::adopt(f, vfs::Kind::MainDb, &l, ro, std::ptr::null_mut(), self.settings);
                self.adopt_journal(schema, f);
                vfs::bind(f, self.db)
            }
            None => {
                if plain.len() > 64 {
                    plain.remove(0);
                }
                plain.push((f as usize, path));
                false
            }
        }
    }

    /// An adopted database's `-wal` (or open `-journal`) was opened by the
    /// same outside VFS: adopt it too, so the file-layer backstop sees its
    /// writes (in `locking_mode=EXCLUSIVE` no lock call reaches the gate).
    fn adopt_journal(&self, schema: &CStr, main: *mut ffi::sqlite3_file) {
        let j = self.file_pointer(schema, ffi::SQLITE_FCNTL_JOURNAL_POINTER);
        // SAFETY: a file of this connection: pMethods is null while closed.
        if j.is_null() || unsafe { (*j).pMethods.is_null() } || vfs::is_gated(j) {
            return;
        }
        // Only a file of the same VFS as its database: an in-memory journal
        // (journal_mode=MEMORY) is told apart by its method table, which
        // must stay SQLite's own.
        // SAFETY: as above, pMethods of an open file.
        if !std::ptr::eq(unsafe { (*j).pMethods }, vfs::original_methods(main)) {
            return;
        }
        let Some(l) = self.schema_path(schema).and_then(|p| self.settings.locate(&p)) else {
            return;
        };
        let kind = if vfs::in_wal_mode(main) {
            vfs::Kind::Wal
        } else {
            vfs::Kind::Journal
        };
        vfs::adopt(j, kind, &l, false, main, self.settings);
    }

    /// Whether `schema` names a database of this connection (main, temp or
    /// an ATTACH name).
    pub fn has_schema(&self, schema: &CStr) -> bool {
        // SAFETY: valid connection and schema name; -1 means "no such schema".
        unsafe { (api().db_readonly)(self.db, schema.as_ptr()) != -1 }
    }

    /// Whether this schema was opened read-only.
    pub fn is_read_only(&self, schema: &CStr) -> bool {
        // SAFETY: valid connection and schema name.
        unsafe { (api().db_readonly)(self.db, schema.as_ptr()) == 1 }
    }

    /// Whether `PRAGMA litefs_forward` is on for the main database.
    pub fn main_forwarding(&self) -> bool {
        vfs::forwarding(self.schema_file(c"main"))
    }

    /// The TXID the main database's last forwarded write transaction left
    /// in `NAME-pos` on this connection (its read floor), if any.
    pub fn main_forwarded_txid(&self) -> Option<u64> {
        vfs::forwarded_txid(self.schema_file(c"main"))
    }

    /// Whether the main database is gated by the VFS.
    /// The last read of main that the read floor or staleness limit
    /// refused (see `PRAGMA litefs_min_txid`), as logged.
    pub fn main_last_refusal(&self) -> Option<String> {
        vfs::last_refusal(self.schema_file(c"main"))
    }

    pub fn main_is_gated(&self) -> bool {
        vfs::is_gated(self.schema_file(c"main"))
    }

    /// Whether writes to this schema are stopped at the file layer (so the
    /// authorizer may leave SQLite's own internal statements to the gate).
    pub fn is_gated(&self, schema: &CStr) -> bool {
        vfs::is_gated(self.schema_file(schema))
    }

    /// Called by the authorizer for every schema a statement names, so
    /// ATTACHed databases get bound (or adopted) when they are first used.
    pub fn saw_schema(&self, schema: &CStr) {
        let b = schema.to_bytes();
        if b.eq_ignore_ascii_case(b"main") {
            // Bound at setup; an adopted main's `-wal`/`-journal` may have been
            // opened since (by the outside VFS the pager keeps using).
            if self.main_adopted.load(Ordering::Relaxed) {
                let f = self.schema_file(schema);
                if vfs::is_adopted(f) {
                    self.adopt_journal(schema, f);
                }
            }
        } else if !b.eq_ignore_ascii_case(b"temp") {
            self.bind(schema);
        }
    }

    /// The mount guarding `path`, if any (by the file's identity).
    pub fn mount_for(&self, path: &Path) -> Option<location::Located> {
        self.settings.locate(path)
    }

    /// The role as seen for the database at `path` (or the mount alone).
    pub fn role_for(&self, mount: &Path, db: Option<&Path>) -> Role {
        role::detect(role::Probe {
            mount,
            marker: self.settings.marker,
            require_fuse: self.settings.require_fuse,
            db,
        })
    }

    /// The authorizer's decision for a statement that writes `schema`
    /// (None: every schema). SQLITE_DENY makes the prepare fail with SQLITE_AUTH.
    /// `fresh` skips the VFS's last answer, for writes its gate cannot see.
    pub fn authorize_write(&self, schema: Option<&CStr>, fresh: bool) -> c_int {
        match schema {
            Some(s) => self.authorize_schema(s, fresh),
            None => {
                for s in self.schema_names() {
                    let rc = self.authorize_schema(&s, fresh);
                    if rc != ffi::SQLITE_OK {
                        return rc;
                    }
                }
                ffi::SQLITE_OK
            }
        }
    }

    fn authorize_schema(&self, s: &CStr, fresh: bool) -> c_int {
        // A verdict the VFS reached moments ago stands in for a lookup (the
        // gate looks again at the lock; bounds: `vfs::verdict`). Only files
        // inside a mount are the VFS's, so this may come first.
        let file = self.schema_file(s);
        if !fresh && vfs::recently_allowed(file) {
            return ffi::SQLITE_OK;
        }
        let Some(path) = self.schema_path(s) else {
            return ffi::SQLITE_OK;
        };
        let Some(l) = self.mount_for(&path) else {
            return ffi::SQLITE_OK;
        };
        let role = self.role_for(&l.mount, Some(&l.db));
        vfs::record_verdict(file, role.may_write());
        // Write forwarding: a replica that knows its primary may write once
        // it holds the halt lock, which the VFS takes for the transaction
        // (and the gate then requires).
        if vfs::forwarding(file) && role.primary_host().is_some() {
            return ffi::SQLITE_OK;
        }
        if let Some(why) = role.refusal() {
            sqlite_api::log(ffi::SQLITE_AUTH, &Error::WriteRefused { db: l.db, why });
            return ffi::SQLITE_DENY;
        }
        ffi::SQLITE_OK
    }

    /// Records that an ATTACH is being prepared on this connection, and
    /// wraps any VFS registered since the last look, so ATTACH cannot name
    /// one the guard has not seen.
    pub fn note_attach(&self) -> Result<(), Error> {
        self.attached.store(true, Ordering::Relaxed);
        vfs::wrap_all(self.settings)
    }

    /// Whether a database ATTACHed to this connection is guarded (before
    /// 3.39, where attached names cannot be listed: whether any ATTACH ran).
    pub fn any_attached_guarded(&self) -> bool {
        if api().db_name.is_none() {
            return self.attached.load(Ordering::Relaxed);
        }
        self.schema_names()
            .iter()
            .skip(1)
            .filter_map(|s| self.schema_path(s))
            .any(|p| self.mount_for(&p).is_some())
    }

    /// Every schema name of the connection ("main", ATTACH names; not "temp").
    /// SQLite before 3.39 cannot list them: there, the names this connection's
    /// statements used so far stand in (the file-layer gate covers the rest).
    fn schema_names(&self) -> Vec<CString> {
        let mut names = vec![c"main".to_owned()];
        let Some(db_name) = api().db_name else {
            names.extend(
                self.seen_names
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .cloned(),
            );
            return names;
        };
        for i in 2..125 {
            // SAFETY: valid connection; returns null past the last schema.
            let p = unsafe { db_name(self.db, i) };
            if p.is_null() {
                break;
            }
            // SAFETY: non-null C string owned by SQLite.
            names.push(unsafe { CStr::from_ptr(p) }.to_owned());
        }
        names
    }

    /// Remembers a schema name a statement used (for SQLite before 3.39).
    pub fn note_name(&self, schema: &CStr) {
        if api().db_name.is_some() {
            return;
        }
        let b = schema.to_bytes();
        if b.eq_ignore_ascii_case(b"main") || b.eq_ignore_ascii_case(b"temp") {
            return;
        }
        let mut seen = self.seen_names.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.iter().any(|n| n.as_c_str() == schema) && seen.len() < 125 {
            seen.push(schema.to_owned());
        }
    }
}
