//! Errors of the guard, with messages that name the value and what to do.

use std::path::PathBuf;

/// A setting read from the environment (or litefs.yml) is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("{var}={value:?} is not valid: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Config(String),
}

/// Why the guard will not let this node write.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RefusalReason {
    #[error("this node is a replica; the primary is {0}")]
    Replica(String),
    #[error("this node is a replica and no primary is known (LiteFS has lost its primary)")]
    ReplicaNoPrimary,
    #[error("this node is not the primary (the database file {0} has no write permission, as LiteFS shows it on replicas)")]
    ReadOnlyFile(PathBuf),
    #[error("LiteFS is not running: {0}")]
    NotRunning(String),
}

/// Errors the SQL functions raise.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FunctionError {
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
}
