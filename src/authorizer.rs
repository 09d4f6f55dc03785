//! The authorizer: SQLite's own parser tells us, at prepare time, which
//! statements write which database. We only sort its actions into "writes
//! database X" or not; the connection decides whether X may be written now.

use crate::connection::ConnState;
use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, c_void, CStr};

/// What a statement's action does, as far as the guard cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Reads, connection state, transactions, TEMP objects.
    Allow,
    /// Writes this schema ("main", an ATTACH name).
    Writes(&'a str),
    /// Writes every attached database (unqualified `PRAGMA wal_checkpoint`, …).
    WritesAll,
}

/// Pragmas that write the database file whenever they run.
const ALWAYS_WRITING_PRAGMAS: &[&str] = &["incremental_vacuum", "wal_checkpoint", "optimize"];
/// Pragmas that write the database file when given a value.
const SETTING_WRITES_PRAGMAS: &[&str] = &[
    "application_id",
    "auto_vacuum",
    "default_cache_size",
    "encoding",
    "journal_mode",
    "legacy_file_format",
    "page_size",
    "schema_version",
    "user_version",
];
/// Pragmas that apply to every database when not qualified with a schema.
const ALL_SCHEMA_PRAGMAS: &[&str] = &["journal_mode", "wal_checkpoint", "optimize"];

/// Sorts one authorizer call. `a1`, `a2`, `db` are SQLite's arguments 3–5.
pub fn classify<'a>(
    action: c_int,
    a1: Option<&'a str>,
    a2: Option<&'a str>,
    db: Option<&'a str>,
) -> Verdict<'a> {
    let on = |name: Option<&'a str>| match name {
        Some(n) if n.eq_ignore_ascii_case("temp") => Verdict::Allow,
        Some(n) => Verdict::Writes(n),
        None => Verdict::Writes("main"),
    };
    match action {
        ffi::SQLITE_INSERT
        | ffi::SQLITE_UPDATE
        | ffi::SQLITE_DELETE
        | ffi::SQLITE_CREATE_TABLE
        | ffi::SQLITE_CREATE_INDEX
        | ffi::SQLITE_CREATE_TRIGGER
        | ffi::SQLITE_CREATE_VIEW
        | ffi::SQLITE_CREATE_VTABLE
        | ffi::SQLITE_DROP_TABLE
        | ffi::SQLITE_DROP_INDEX
        | ffi::SQLITE_DROP_TRIGGER
        | ffi::SQLITE_DROP_VIEW
        | ffi::SQLITE_DROP_VTABLE
        | ffi::SQLITE_REINDEX
        | ffi::SQLITE_ANALYZE => on(db),
        // ALTER TABLE names the database first, the table second.
        ffi::SQLITE_ALTER_TABLE => on(a1),
        ffi::SQLITE_PRAGMA => classify_pragma(a1.unwrap_or(""), a2, db),
        _ => Verdict::Allow,
    }
}

fn classify_pragma<'a>(name: &str, value: Option<&str>, db: Option<&'a str>) -> Verdict<'a> {
    let is = |list: &[&str]| list.iter().any(|p| p.eq_ignore_ascii_case(name));
    let writes = is(ALWAYS_WRITING_PRAGMAS) || (value.is_some() && is(SETTING_WRITES_PRAGMAS));
    match (writes, db) {
        (false, _) => Verdict::Allow,
        (true, Some(d)) if d.eq_ignore_ascii_case("temp") => Verdict::Allow,
        (true, Some(d)) => Verdict::Writes(d),
        (true, None) if is(ALL_SCHEMA_PRAGMAS) => Verdict::WritesAll,
        (true, None) => Verdict::Writes("main"),
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
        let (a1, a2, db) = unsafe { (opt_str(a1), opt_str(a2), opt_str(db)) };
        // SAFETY: `user` is the ConnState pointer registered with this callback.
        let state = unsafe { &*(user as *const ConnState) };
        if let Some(name) = db {
            state.saw_schema(name);
        }
        // Checkpoints take the write lock without a read slot, where the VFS
        // gate must let recovery pass: pragmas are always checked afresh here.
        let fresh = action == ffi::SQLITE_PRAGMA;
        // An unqualified journal_mode/locking_mode change applies to every
        // attached database, but SQLite shows it only to the main file: the
        // VFS cannot refuse it for the others, so refuse it here.
        if action == ffi::SQLITE_PRAGMA && db.is_none() {
            if let Some(msg) = crate::wal_rule::check_pragma(a1, a2) {
                if state.any_attached_guarded() {
                    crate::sqlite_api::log(ffi::SQLITE_AUTH, &msg);
                    return ffi::SQLITE_DENY;
                }
            }
        }
        match classify(action, a1, a2, db) {
            Verdict::Allow => ffi::SQLITE_OK,
            Verdict::Writes(schema) => state.authorize_write(Some(schema), fresh),
            Verdict::WritesAll => state.authorize_write(None, fresh),
        }
    });
    // A panic must not cross into SQLite; refusing is the safe answer.
    r.unwrap_or(ffi::SQLITE_DENY)
}

/// # Safety
/// `p` is null or a NUL-terminated string valid for `'a`.
unsafe fn opt_str<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        None
    } else {
        // SAFETY: caller contract.
        unsafe { CStr::from_ptr(p) }.to_str().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dml_writes_its_schema() {
        assert_eq!(
            classify(ffi::SQLITE_INSERT, Some("t"), None, Some("main")),
            Verdict::Writes("main")
        );
        assert_eq!(
            classify(ffi::SQLITE_UPDATE, Some("t"), Some("c"), Some("aux")),
            Verdict::Writes("aux")
        );
        assert_eq!(
            classify(ffi::SQLITE_DELETE, Some("t"), None, Some("temp")),
            Verdict::Allow
        );
    }

    #[test]
    fn alter_table_names_db_first() {
        assert_eq!(
            classify(ffi::SQLITE_ALTER_TABLE, Some("aux"), Some("t"), None),
            Verdict::Writes("aux")
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
                classify(a, Some("x"), Some("y"), Some("main")),
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
                classify(a, Some("x"), None, Some("temp")),
                Verdict::Allow,
                "action {a}"
            );
        }
    }

    #[test]
    fn pragmas() {
        let p = |n, v, d| classify(ffi::SQLITE_PRAGMA, Some(n), v, d);
        assert_eq!(p("user_version", Some("3"), None), Verdict::Writes("main"));
        assert_eq!(p("user_version", None, None), Verdict::Allow);
        assert_eq!(p("USER_VERSION", Some("3"), Some("aux")), Verdict::Writes("aux"));
        assert_eq!(p("journal_mode", Some("delete"), None), Verdict::WritesAll);
        assert_eq!(p("journal_mode", None, None), Verdict::Allow);
        assert_eq!(p("wal_checkpoint", None, None), Verdict::WritesAll);
        assert_eq!(
            p("incremental_vacuum", None, Some("main")),
            Verdict::Writes("main")
        );
        assert_eq!(p("busy_timeout", Some("100"), None), Verdict::Allow);
        assert_eq!(p("foreign_keys", Some("1"), None), Verdict::Allow);
        assert_eq!(p("query_only", Some("1"), None), Verdict::Allow);
        assert_eq!(p("user_version", Some("1"), Some("temp")), Verdict::Allow);
    }
}
