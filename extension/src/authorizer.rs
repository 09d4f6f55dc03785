//! The authorizer: SQLite's own parser tells us, at prepare time, which
//! statements write which database. We only sort its actions into "writes
//! database X" or not; the connection decides whether X may be written now.

use crate::connection::ConnState;
use crate::{sqlite_api, wal_rule};
use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, c_void, CStr};

/// What a statement's action does, as far as the guard cares. Names are
/// SQLite's bytes: a schema name need not be UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Reads, connection state, transactions, TEMP objects.
    Allow,
    /// Writes this schema ("main", an ATTACH name).
    Writes(&'a CStr),
    /// Writes this schema, but may also be SQLite's own internal statement
    /// (parsed while a virtual table is set up, or the schema change of a
    /// `CREATE … IF NOT EXISTS` that finds the object present). Refused at
    /// prepare only where the file layer cannot refuse it.
    WritesUnlessGated(&'a CStr),
    /// Writes every attached database (unqualified `PRAGMA wal_checkpoint`, …).
    WritesAll,
}

/// Pragmas that write the database file whenever they run.
const ALWAYS_WRITING_PRAGMAS: &[&str] = &["incremental_vacuum", "wal_checkpoint"];
/// Pragmas that write the database file when given a value.
const SETTING_WRITES_PRAGMAS: &[&str] = &[
    "application_id",
    "default_cache_size",
    "journal_mode",
    "schema_version",
    "user_version",
];
/// Pragmas that may write, or may change nothing (a page size or encoding
/// for a database that exists already, `journal_mode=wal` on a WAL database,
/// an `optimize` with nothing to do): stock SQLite with `query_only` runs
/// them, so they are left to the lock gate where it covers the file.
const MAYBE_WRITING_PRAGMAS: &[&str] = &[
    "auto_vacuum",
    "encoding",
    "legacy_file_format",
    "page_size",
    "optimize",
];
/// Pragmas that apply to every database when not qualified with a schema.
const ALL_SCHEMA_PRAGMAS: &[&str] = &["journal_mode", "wal_checkpoint", "optimize"];
/// Tables SQLite writes on its own: the schema table, and the shadow tables
/// of the built-in virtual tables (FTS3/4/5, R*Tree), which their modules
/// prepare statements for when a table is first used, on any connection.
/// A user's own write to one of these is still refused — by the file layer.
const SCHEMA_TABLES: &[&[u8]] = &[b"sqlite_master", b"sqlite_schema", b"sqlite_temp_master"];
const SHADOW_SUFFIXES: &[&[u8]] = &[
    b"_data",
    b"_idx",
    b"_content",
    b"_docsize",
    b"_config",
    b"_segments",
    b"_segdir",
    b"_stat",
    b"_node",
    b"_rowid",
    b"_parent",
];

fn internal_table(name: Option<&CStr>) -> bool {
    let Some(n) = name.map(CStr::to_bytes) else {
        return false;
    };
    // No allocation: this runs for every INSERT/UPDATE/DELETE prepared.
    let tail_is = |s: &[u8]| n.len() >= s.len() && n[n.len() - s.len()..].eq_ignore_ascii_case(s);
    SCHEMA_TABLES.iter().any(|t| n.eq_ignore_ascii_case(t)) || SHADOW_SUFFIXES.iter().any(|s| tail_is(s))
}

fn is(name: &CStr, s: &str) -> bool {
    name.to_bytes().eq_ignore_ascii_case(s.as_bytes())
}

/// Sorts one authorizer call. `a1`, `a2`, `db` are SQLite's arguments 3–5.
pub fn classify<'a>(
    action: c_int,
    a1: Option<&'a CStr>,
    a2: Option<&'a CStr>,
    db: Option<&'a CStr>,
) -> Verdict<'a> {
    let on = |name: Option<&'a CStr>| match name {
        Some(n) if is(n, "temp") => Verdict::Allow,
        Some(n) => Verdict::Writes(n),
        None => Verdict::Writes(c"main"),
    };
    let unless_gated = |v: Verdict<'a>| match v {
        Verdict::Writes(n) => Verdict::WritesUnlessGated(n),
        other => other,
    };
    match action {
        ffi::SQLITE_INSERT | ffi::SQLITE_UPDATE | ffi::SQLITE_DELETE if internal_table(a1) => {
            unless_gated(on(db))
        }
        // The authorizer runs before SQLite knows whether the object exists,
        // so `IF NOT EXISTS` on an existing one could never pass here; and on
        // SQLite 3.40 a refusal before the schema is read comes back as
        // SQLITE_SCHEMA. The gate answers SQLITE_READONLY instead.
        // (CREATE INDEX also shows a REINDEX of the new index; `PRAGMA
        // optimize` prepares an ANALYZE, which stock `query_only` refuses
        // only when it would write — so does the gate.)
        ffi::SQLITE_CREATE_TABLE
        | ffi::SQLITE_CREATE_INDEX
        | ffi::SQLITE_CREATE_TRIGGER
        | ffi::SQLITE_CREATE_VIEW
        | ffi::SQLITE_REINDEX
        | ffi::SQLITE_ANALYZE => unless_gated(on(db)),
        ffi::SQLITE_INSERT
        | ffi::SQLITE_UPDATE
        | ffi::SQLITE_DELETE
        | ffi::SQLITE_CREATE_VTABLE
        | ffi::SQLITE_DROP_TABLE
        | ffi::SQLITE_DROP_INDEX
        | ffi::SQLITE_DROP_TRIGGER
        | ffi::SQLITE_DROP_VIEW
        | ffi::SQLITE_DROP_VTABLE => on(db),
        // ALTER TABLE names the database first, the table second.
        ffi::SQLITE_ALTER_TABLE => on(a1),
        ffi::SQLITE_PRAGMA => classify_pragma(a1, a2, db),
        _ => Verdict::Allow,
    }
}

fn classify_pragma<'a>(name: Option<&CStr>, value: Option<&CStr>, db: Option<&'a CStr>) -> Verdict<'a> {
    let Some(name) = name else {
        return Verdict::Allow;
    };
    let on = |list: &[&str]| list.iter().any(|p| is(name, p));
    let to_wal = is(name, "journal_mode")
        && value.is_some_and(|v| v.to_bytes().trim_ascii().eq_ignore_ascii_case(b"wal"));
    let maybe = to_wal || (on(MAYBE_WRITING_PRAGMAS) && (value.is_some() || is(name, "optimize")));
    let writes = maybe || on(ALWAYS_WRITING_PRAGMAS) || (value.is_some() && on(SETTING_WRITES_PRAGMAS));
    let target = match (writes, db) {
        (false, _) => return Verdict::Allow,
        (true, Some(d)) if is(d, "temp") => return Verdict::Allow,
        (true, Some(d)) => Verdict::Writes(d),
        (true, None) if on(ALL_SCHEMA_PRAGMAS) && !maybe => return Verdict::WritesAll,
        (true, None) => Verdict::Writes(c"main"),
    };
    match target {
        Verdict::Writes(d) if maybe => Verdict::WritesUnlessGated(d),
        v => v,
    }
}

/// The authorizer SQLite calls while preparing each statement.
///
/// # Safety
/// `user` is the `ConnState` this module was installed with (see
/// `connection::setup`), alive for as long as the connection.
pub unsafe extern "C" fn callback(
    user: *mut c_void,
    action: c_int,
    a1: *const c_char,
    a2: *const c_char,
    db: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    let r = std::panic::catch_unwind(|| {
        // SAFETY: SQLite passes NUL-terminated strings or null.
        let (a1, a2, db) = unsafe { (opt_cstr(a1), opt_cstr(a2), opt_cstr(db)) };
        // SAFETY: `user` is the ConnState pointer registered with this callback.
        let state = unsafe { &*(user as *const ConnState) };
        // A VFS registered since the last look must be wrapped before
        // ATTACH can name it.
        if action == ffi::SQLITE_ATTACH && state.note_attach().is_err() {
            return ffi::SQLITE_DENY;
        }
        if let Some(name) = db {
            state.note_name(name);
            state.saw_schema(name);
        }
        // Checkpoints take the write lock without a read slot, where the VFS
        // gate must let recovery pass: pragmas are always checked afresh here.
        let fresh = action == ffi::SQLITE_PRAGMA;
        // An unqualified journal_mode/locking_mode change applies to every
        // attached database, but SQLite shows it only to the main file: the
        // VFS cannot refuse it for the others, so refuse it here.
        if action == ffi::SQLITE_PRAGMA && db.is_none() {
            let (name, value) = (a1.and_then(|c| c.to_str().ok()), a2.and_then(|c| c.to_str().ok()));
            if let Some(refusal) = wal_rule::check_pragma(state.settings().keep_wal, name, value) {
                if state.any_attached_guarded() {
                    sqlite_api::log(ffi::SQLITE_AUTH, &refusal);
                    return ffi::SQLITE_DENY;
                }
            }
        }
        match classify(action, a1, a2, db) {
            Verdict::Allow => ffi::SQLITE_OK,
            Verdict::WritesUnlessGated(schema) if state.is_gated(schema) => ffi::SQLITE_OK,
            Verdict::Writes(schema) | Verdict::WritesUnlessGated(schema) => {
                state.authorize_write(Some(schema), fresh)
            }
            Verdict::WritesAll => state.authorize_write(None, fresh),
        }
    });
    // A panic must not cross into SQLite; refusing is the safe answer.
    r.unwrap_or(ffi::SQLITE_DENY)
}

/// # Safety
/// `p` is null or a NUL-terminated string valid for `'a`.
unsafe fn opt_cstr<'a>(p: *const c_char) -> Option<&'a CStr> {
    // SAFETY: caller contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dml_writes_its_schema() {
        assert_eq!(
            classify(ffi::SQLITE_INSERT, Some(c"t"), None, Some(c"main")),
            Verdict::Writes(c"main")
        );
        assert_eq!(
            classify(ffi::SQLITE_UPDATE, Some(c"t"), Some(c"c"), Some(c"aux")),
            Verdict::Writes(c"aux")
        );
        assert_eq!(
            classify(ffi::SQLITE_DELETE, Some(c"t"), None, Some(c"temp")),
            Verdict::Allow
        );
    }

    #[test]
    fn alter_table_names_db_first() {
        assert_eq!(
            classify(ffi::SQLITE_ALTER_TABLE, Some(c"aux"), Some(c"t"), None),
            Verdict::Writes(c"aux")
        );
    }

    #[test]
    fn reads_and_transactions_allowed() {
        for a in [
            ffi::SQLITE_READ,
            ffi::SQLITE_SELECT,
            ffi::SQLITE_TRANSACTION,
            ffi::SQLITE_SAVEPOINT,
            ffi::SQLITE_FUNCTION,
            ffi::SQLITE_ATTACH,
            ffi::SQLITE_DETACH,
            ffi::SQLITE_RECURSIVE,
        ] {
            assert_eq!(
                classify(a, Some(c"x"), Some(c"y"), Some(c"main")),
                Verdict::Allow,
                "action {a}"
            );
        }
        for a in [
            ffi::SQLITE_CREATE_TEMP_TABLE,
            ffi::SQLITE_CREATE_TEMP_INDEX,
            ffi::SQLITE_CREATE_TEMP_VIEW,
            ffi::SQLITE_CREATE_TEMP_TRIGGER,
            ffi::SQLITE_DROP_TEMP_TABLE,
        ] {
            assert_eq!(
                classify(a, Some(c"x"), None, Some(c"temp")),
                Verdict::Allow,
                "action {a}"
            );
        }
    }

    #[test]
    fn pragmas() {
        let p = |n: &'static CStr, v: Option<&'static CStr>, d: Option<&'static CStr>| {
            classify(ffi::SQLITE_PRAGMA, Some(n), v, d)
        };
        assert_eq!(p(c"user_version", Some(c"3"), None), Verdict::Writes(c"main"));
        assert_eq!(p(c"user_version", None, None), Verdict::Allow);
        assert_eq!(
            p(c"USER_VERSION", Some(c"3"), Some(c"aux")),
            Verdict::Writes(c"aux")
        );
        assert_eq!(p(c"journal_mode", Some(c"delete"), None), Verdict::WritesAll);
        assert_eq!(
            p(c"journal_mode", Some(c"WAL"), None),
            Verdict::WritesUnlessGated(c"main")
        );
        assert_eq!(
            p(c"page_size", Some(c"4096"), Some(c"aux")),
            Verdict::WritesUnlessGated(c"aux")
        );
        assert_eq!(p(c"optimize", None, None), Verdict::WritesUnlessGated(c"main"));
        assert_eq!(p(c"page_size", None, None), Verdict::Allow);
        assert_eq!(p(c"journal_mode", None, None), Verdict::Allow);
        assert_eq!(p(c"wal_checkpoint", None, None), Verdict::WritesAll);
        assert_eq!(
            p(c"incremental_vacuum", None, Some(c"main")),
            Verdict::Writes(c"main")
        );
        assert_eq!(p(c"busy_timeout", Some(c"100"), None), Verdict::Allow);
        assert_eq!(p(c"foreign_keys", Some(c"1"), None), Verdict::Allow);
        assert_eq!(p(c"query_only", Some(c"1"), None), Verdict::Allow);
        assert_eq!(p(c"user_version", Some(c"1"), Some(c"temp")), Verdict::Allow);
    }
}
