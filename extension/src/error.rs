//! The guard's one error type, with messages that name the value and what to
//! do, and its one conversion to what SQLite shows: a result code and a
//! message that starts with `litefs_guard:` ([`Error::message`], used at
//! every FFI boundary). SQL function errors are the exception: they start
//! with the function's name (`litefs_config(): …`), which already says
//! where they come from, and are shown as they are.

use crate::role::RefusalReason;
use libsqlite3_sys as ffi;
use std::ffi::c_int;
use std::path::PathBuf;

/// Put before every message the guard hands to SQLite or its log.
pub const PREFIX: &str = "litefs_guard: ";

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    // Loading and setting up a connection.
    /// A setting read from the environment is unusable.
    #[error("{var}={value:?} is not valid: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
    /// litefs.yml cannot give the guard what it needs.
    #[error("{0}")]
    Config(String),
    /// The loading SQLite cannot host the guard.
    #[error("{0}")]
    Load(String),
    /// A SQLite call failed; see [`check`].
    #[error("{what} failed (code {rc})")]
    Sqlite { what: String, rc: c_int },
    /// A panic was caught at the FFI boundary.
    #[error("internal error (a bug: please report it)")]
    Internal,

    // Refusals: SQLite sees the code, its log this message.
    #[error("write to {} refused: {why}", db.display())]
    WriteRefused { db: PathBuf, why: RefusalReason },
    #[error("{}-journal is a hot journal; this node may not write, so it is left for the primary", db.display())]
    HotJournal { db: PathBuf },
    #[error("{} unusable: LiteFS is not running: {why}", db.display())]
    MountGone { db: PathBuf, why: String },
    #[error(
        "locking_mode=EXCLUSIVE refused: with it SQLite stops taking the locks where the guard \
         checks this node may write"
    )]
    ExclusiveLocking,
    #[error(
        "journal_mode={0} refused: databases on LiteFS stay in WAL (leaving WAL on a live cluster \
         crashed replicas); set LITEFS_GUARD_WAL=0 only for a cluster that never used WAL"
    )]
    LeavingWal(String),
    #[error("could not put {} in WAL mode (code {rc})", db.display())]
    WalSwitch { db: PathBuf, rc: c_int },
    /// A read transaction refused by `PRAGMA litefs_min_txid`: `local` and
    /// `primary` are said already ("at 00…05/… (TXID 5)", "the primary is node-a").
    #[error(
        "read of {} refused: this node is {local}, below the read floor TXID {floor} \
         (PRAGMA litefs_min_txid), after waiting {waited_ms} ms (PRAGMA litefs_wait_ms); {primary}",
        db.display()
    )]
    FloorNotReached {
        db: PathBuf,
        floor: u64,
        local: String,
        waited_ms: u64,
        primary: String,
    },
    /// A read transaction refused by `PRAGMA litefs_max_lag_ms`: `behind` is
    /// said already ("replica is 1500 ms behind primary node-a").
    #[error("read of {} refused: {behind}; limit {limit} ms (PRAGMA litefs_max_lag_ms)", db.display())]
    TooStale { db: PathBuf, behind: String, limit: u64 },
    /// Interrupted (sqlite3_interrupt) while waiting for the read floor.
    #[error("read of {} interrupted while waiting for the read floor TXID {floor}", db.display())]
    FloorInterrupted { db: PathBuf, floor: u64 },
    /// A `PRAGMA litefs_*` value that is not one.
    #[error("PRAGMA {name} = {value:?} is not valid: {expected}")]
    BadPragma {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(
        "PRAGMA {0} is not available on a shared-cache database: its settings are per \
         connection, and here several connections share the file"
    )]
    PragmaSharedCache(&'static str),
    /// `PRAGMA litefs_forward = …` while LITEFS_GUARD_FORWARD_PRAGMA=0.
    #[error(
        "PRAGMA litefs_forward cannot be changed from SQL here (LITEFS_GUARD_FORWARD_PRAGMA=0); \
         forwarding follows LITEFS_GUARD_FORWARD"
    )]
    ForwardPragmaOff,
    /// Write forwarding: the halt lock was not granted within the bound.
    #[error(
        "write to {} not forwarded: LiteFS's halt lock was not granted within {ms} ms \
         (LITEFS_GUARD_HALT_TIMEOUT_MS); another node or process may be holding it",
        db.display()
    )]
    HaltTimeout { db: PathBuf, ms: u64 },
    /// Write forwarding: the halt lock could not be taken.
    #[error("write to {} not forwarded: LiteFS's halt lock could not be taken: {why}", db.display())]
    HaltFailed { db: PathBuf, why: String },
    /// Write forwarding: the halt lock this transaction held is gone.
    #[error(
        "write to {} refused: the halt lock this forwarded transaction held {why}; nothing was \
         committed, run the transaction again",
        db.display()
    )]
    HaltLost { db: PathBuf, why: String },

    // SQL function errors (shown without the prefix).
    #[error("{name}() takes {expected}, got {got} argument(s)")]
    Arity {
        name: &'static str,
        expected: &'static str,
        got: i32,
    },
    #[error("{name}(): {message}")]
    BadArgument { name: &'static str, message: String },
    #[error("LiteFS is not running: {0}")]
    NotRunning(String),
    #[error("no LiteFS mount for this connection: its main database is not a file and LITEFS_GUARD_DIR is not set; open a database in the LiteFS mount or set LITEFS_GUARD_DIR")]
    NoMount,
    /// `schema` is shown already (quoted, cut to a readable length).
    #[error("{name}(): no database named {schema} on this connection; pass 'main' or the name of an ATTACHed database")]
    UnknownSchema { name: &'static str, schema: String },
    #[error(
        "{name}(): database {schema} {why}; only a database in a LiteFS mount has a replication position"
    )]
    NotInMount {
        name: &'static str,
        schema: String,
        why: String,
    },
    #[error("{name}(): cannot read {}: {why}; is LiteFS running and is the database one of its databases?", path.display())]
    LiteFsFile {
        name: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error(
        "litefs_wait_txid(): called inside a transaction that {0}; a read transaction held open \
         stops replication on a replica, so the wait could never succeed: call it outside any \
         transaction, after COMMIT or ROLLBACK (and with no other statement still reading)"
    )]
    WaitInTransaction(&'static str),
    #[error("litefs_wait_txid(): interrupted")]
    WaitInterrupted,
}

impl Error {
    /// The result code SQLite reports for this error.
    pub fn code(&self) -> c_int {
        match self {
            Error::Sqlite { rc, .. } | Error::WalSwitch { rc, .. } => *rc,
            Error::WriteRefused { .. } | Error::HaltFailed { .. } | Error::HaltLost { .. } => {
                ffi::SQLITE_READONLY
            }
            Error::HaltTimeout { .. } => ffi::SQLITE_BUSY,
            Error::HotJournal { .. } => ffi::SQLITE_READONLY_ROLLBACK,
            Error::MountGone { .. } => ffi::SQLITE_CANTOPEN,
            Error::WaitInterrupted | Error::FloorInterrupted { .. } => ffi::SQLITE_INTERRUPT,
            // Not SQLITE_BUSY: SQLite retries a busy read lock (in WAL mode
            // for about ten seconds, then SQLITE_PROTOCOL; in both modes
            // through the busy handler). LOCKED is answered as it is.
            Error::FloorNotReached { .. } | Error::TooStale { .. } => ffi::SQLITE_LOCKED,
            _ => ffi::SQLITE_ERROR,
        }
    }

    /// The message SQLite shows: the one place the prefix is added.
    pub fn message(&self) -> String {
        format!("{PREFIX}{self}")
    }
}

/// Ok for SQLITE_OK, else the error naming what failed.
pub fn check(rc: c_int, what: &str) -> Result<(), Error> {
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(Error::Sqlite {
            what: what.to_string(),
            rc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_prefix_once_and_codes_follow_the_kind() {
        let e = check(ffi::SQLITE_MISUSE, "installing the authorizer").unwrap_err();
        assert_eq!(
            e.message(),
            "litefs_guard: installing the authorizer failed (code 21)"
        );
        assert_eq!(e.code(), ffi::SQLITE_MISUSE);
        assert_eq!(check(ffi::SQLITE_OK, "x"), Ok(()));
        let r = Error::WriteRefused {
            db: "/litefs/app.db".into(),
            why: RefusalReason::Replica("node-a".into()),
        };
        assert_eq!(r.code(), ffi::SQLITE_READONLY);
        assert_eq!(
            r.message(),
            "litefs_guard: write to /litefs/app.db refused: this node is a replica; the primary is node-a"
        );
        assert_eq!(
            Error::HotJournal { db: "/l/a.db".into() }.code(),
            ffi::SQLITE_READONLY_ROLLBACK
        );
    }

    #[test]
    fn position_function_errors_name_the_function_and_the_file() {
        let e = Error::LiteFsFile {
            name: "litefs_txid",
            path: "/litefs/app.db-pos".into(),
            why: "it does not exist".into(),
        };
        assert_eq!(
            e.to_string(),
            "litefs_txid(): cannot read /litefs/app.db-pos: it does not exist; is LiteFS running \
             and is the database one of its databases?"
        );
        assert_eq!(e.code(), ffi::SQLITE_ERROR);
        assert_eq!(Error::WaitInterrupted.code(), ffi::SQLITE_INTERRUPT);
        assert_eq!(
            Error::WaitInterrupted.to_string(),
            "litefs_wait_txid(): interrupted"
        );
        assert!(Error::WaitInTransaction("holds a read lock on main")
            .to_string()
            .starts_with("litefs_wait_txid(): called inside a transaction that holds a read lock on main; "));
    }
}
